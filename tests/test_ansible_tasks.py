"""The Ansible collection's tasks (contrib/ansible/.../module_utils/policy.py) on
libvirt's test driver: what changes, check mode, a second run, diff, bad input.

The tasks need no Ansible: they take a PolicyManager and the module's parameters, so
they are tested here with the unit tests; the modules around them are checked by
`ansible-test sanity` (ci/ansible.sh) and run for real in the guest tier."""

import os
import sys

import libvirt
import pytest
from testdriver import URI, RecordingConn
from unit_helpers import REPO, policy, snapshot

from policyhook.api import PolicyManager
from policyhook.errors import PolicyError
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.results import Writes

sys.path.insert(0, os.path.join(REPO, "contrib", "ansible"))
from ansible_collections.policyhook.libvirt.plugins.module_utils import policy as tasks  # noqa: E402


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield RecordingConn(c)
    c.close()


@pytest.fixture
def paths(tmp_path):
    return Paths(str(tmp_path))


def manager(paths, conn):
    # A new manager per task, as each module run is a new process.
    return PolicyManager(paths, uri=URI, connect=lambda uri: conn, cgroup_version=1)


def params(**kw):
    base = {"domain": None, "vcpupin": None, "emulatorpin": None, "iothreadpin": None, "weight": None,
            "cap": None, "state": "present", "exclusive": False, "undefined": False}
    base.update(kw)
    return base


def run(paths, conn, check_mode=False, **kw):
    return tasks.policy_task(manager(paths, conn), params(**kw), check_mode)


def test_check_mode_reports_the_change_and_saves_nothing(paths, conn):
    before = snapshot(paths.etc)
    r = run(paths, conn, check_mode=True, domain="running2", vcpupin={"0": "2", 1: "4"}, weight=512)
    assert r["changed"] is True and r["status"] == "dry-run" and r["applied_live"] is False
    assert r["policy"]["vcpupin"] == {"0": "2", "1": "4"} and r["policy"]["weight"] == 512
    assert '"weight": 512' in r["diff"]["after"] and r["diff"]["before"] == ""
    assert snapshot(paths.etc) == before
    assert conn.calls == []


def test_a_real_run_saves_and_applies_live_then_a_second_run_changes_nothing(paths, conn):
    r = run(paths, conn, domain="running2", vcpupin={"0": "2"}, weight=512)
    assert (r["changed"], r["status"], r["applied_live"]) == (True, "applied", True)
    stored = Registry(paths).load("running2")
    assert stored.sched == {"weight": 512} and str(stored.pins[("vcpu", 0)]) == "2"
    calls = len(conn.calls)
    assert calls > 0
    again = run(paths, conn, domain="running2", vcpupin={"0": "2"}, weight=512)
    assert (again["changed"], again["status"]) == (False, "unchanged")
    assert len(conn.calls) == calls
    assert "diff" not in again


def test_settings_not_given_are_kept_unless_exclusive(paths, conn):
    run(paths, conn, domain="stopped", vcpupin={"0": "2"}, weight=512)
    r = run(paths, conn, domain="stopped", cap=50)
    assert r["changed"] and r["status"] == "saved-not-running"
    assert (r["policy"]["weight"], r["policy"]["cap"], r["policy"]["vcpupin"]) == (512, 50, {"0": "2"})
    r = run(paths, conn, domain="stopped", cap=50, exclusive=True)
    assert r["changed"] and "weight" not in r["policy"] and "vcpupin" not in r["policy"]
    assert r["policy"]["cap"] == 50


def test_the_diff_shows_the_policy_before_and_after(paths, conn):
    run(paths, conn, domain="stopped", weight=300)
    r = run(paths, conn, domain="stopped", weight=400)
    assert '"weight": 300' in r["diff"]["before"] and '"weight": 400' in r["diff"]["after"]
    assert r["diff"]["before_header"] == paths.domain_file("stopped")


@pytest.mark.parametrize("kw,message", [
    (dict(domain="running2", vcpupin={"0": "2"}, weight=70000), "invalid weight 70000: must be 1..65535"),
    (dict(domain="running2", vcpupin={"5": "2"}, weight=300),
     "invalid vCPU 5: domain 'running2' has 2 vCPUs (0-1)"),
    (dict(domain="running2", vcpupin={"0": "3-1"}), "invalid cpulist '3-1': range 3-1 is reversed"),
    (dict(domain="running2", emulatorpin="7"),
     "invalid cpulist '7': CPU 7 not on this host (host CPUs: 0,2,4)"),
    (dict(domain="nosuch", weight=300),
     "domain 'nosuch' is not defined in libvirt (%s); --undefined records a policy for a domain "
     "not defined yet" % URI),
])
def test_bad_input_fails_with_policyctls_message_and_saves_nothing(paths, conn, kw, message):
    run(paths, conn, domain="running2", cap=20)
    before = snapshot(paths.etc)
    with pytest.raises(PolicyError) as info:
        run(paths, conn, **kw)
    assert str(info.value) == message
    assert snapshot(paths.etc) == before


def test_undefined_records_a_policy_for_a_domain_libvirt_does_not_know(paths, conn):
    r = run(paths, conn, domain="later", weight=300, undefined=True)
    assert (r["changed"], r["status"]) == (True, "not-defined")


def test_state_absent_removes_the_policy_once(paths, conn):
    run(paths, conn, domain="running2", weight=512)
    r = run(paths, conn, check_mode=True, domain="running2", state="absent")
    assert r["changed"] and Registry(paths).load("running2") is not None
    r = run(paths, conn, domain="running2", state="absent")
    assert (r["changed"], r["status"], r["policy"]) == (True, "applied", None)
    assert Registry(paths).load("running2") is None
    assert run(paths, conn, domain="running2", state="absent")["changed"] is False


def occupy(paths, conn, check_mode=False, **kw):
    base = {"cpus": None, "domains": None, "state": "present", "whole_cores": False}
    base.update(kw)
    return tasks.occupancy_task(manager(paths, conn), base, check_mode)


def test_occupancy_check_mode_then_real_then_unchanged_then_absent(paths, conn):
    r = occupy(paths, conn, check_mode=True, cpus="2", domains=["running2"])
    assert r["changed"] and r["status"] == "dry-run" and Registry(paths).load_host().is_empty()
    r = occupy(paths, conn, cpus="2", domains=["running2"])
    assert r["changed"] and r["occupancy"] == {"2": ["running2"]} and r["status"] == "applied"
    assert Registry(paths).load_host() == HostPolicy({2: ["running2"]})
    assert occupy(paths, conn, cpus="2", domains=["running2"])["changed"] is False
    r = occupy(paths, conn, cpus="2", state="absent")
    assert r["changed"] and r["occupancy"] == {} and r["domains"] is None
    assert occupy(paths, conn, cpus="2", state="absent")["changed"] is False


def test_occupancy_refused_saves_nothing(paths, conn):
    Registry(paths).transact(lambda _snap: Writes(domains=[policy("stopped", pins={0: "2"})]))
    before = snapshot(paths.etc)
    with pytest.raises(PolicyError) as info:
        occupy(paths, conn, cpus="2", domains=["running2"])
    assert str(info.value).startswith("vCPU 0 of 'stopped' is pinned to 2 (policy)")
    assert snapshot(paths.etc) == before
