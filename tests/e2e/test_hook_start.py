"""The hook installed by `make install`: `virsh start` and the policy is in force."""

import json
import os
import time

import lab
import pytest


def _in_force(name, pins, shares=None, quota=None):
    def ok():
        if lab.vcpupin(name) != pins:
            return False
        sched = lab.schedinfo(name)
        return (shares is None or sched.get("cpu_shares") == shares) and \
            (quota is None or sched.get("global_quota") == quota)
    return lab.wait_for(ok, 15, "the policy of %s to be in force" % name)


def test_policy_written_while_off_is_in_force_after_start(domains):
    # The hook runs through a link to SBINDIR/policyhook, as a package installs it
    # (doc/packaging.md, "The hook's layout"): here the links staged under the tests' root,
    # which their instance's wrappers run (tests/e2e/conftest.py).
    for hook in lab.RUNS:
        target = os.readlink(hook)
        assert target.endswith("/sbin/policyhook") and os.access(target, os.X_OK), (hook, target)
    name = domains()
    for args in (("vcpupin", name, "0", "1"), ("vcpupin", name, "1", "0"),
                 ("emulatorpin", name, "1"), ("schedweight", name, "512"), ("schedcap", name, "50")):
        assert lab.policyctl(*args).returncode == 0
    lab.virsh("start", name)
    _in_force(name, {0: "1", 1: "0"}, "2048", "50000")
    assert lab.emulatorpin(name) == "1"
    st = lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied" and lab.state(name),
                      15, "the applier's result")
    assert st["source"] == "hook start/begin"
    assert st["after_start_ms"] >= 0

    # No hook runs at reboot or reset; the QEMU threads and their pins survive.
    lab.virsh("reboot", name)
    lab.virsh("reset", name)
    time.sleep(0.5)
    _in_force(name, {0: "1", 1: "0"}, "2048", "50000")


@pytest.mark.restarts_libvirtd
def test_reconnect_applies_a_policy_changed_while_libvirtd_was_down(domains):
    name = domains()
    assert lab.policyctl("vcpupin", name, "0", "0").returncode == 0
    lab.virsh("start", name)
    _in_force(name, {0: "0", 1: "0-1"})
    lab.stop_daemon()
    try:
        r = lab.policyctl("vcpupin", name, "0", "1")
        assert r.returncode == 0
        assert "not applied live (libvirt unreachable)" in r.stdout
    finally:
        lab.start_daemon()
    _in_force(name, {0: "1", 1: "0-1"})
    assert lab.virsh("domstate", name).stdout.strip() == "running"


def test_conflicting_policy_makes_start_fail_with_our_message(domains):
    name = domains()
    # Written for a 4-vCPU domain; this one has 2.
    with open(lab.paths().domain_file(name), "w") as f:
        json.dump({"version": 1, "domain": name, "vcpupin": {"3": "0"}}, f)
    r = lab.virsh("start", name, check=False)
    assert r.returncode == 1
    assert "policyhook: refusing to start '%s': vCPU 3 of '%s' has a pin, but the domain has " \
           "2 vCPUs (0-1)" % (name, name) in r.stderr
    assert lab.virsh("domstate", name).stdout.strip() == "shut off"


def test_corrupt_policy_lets_the_domain_start_and_is_reported(domains):
    name = domains()
    path = lab.paths().domain_file(name)
    with open(path, "w") as f:
        f.write('{"version": 1, "domain": "%s", "weight": -5}' % name)
    lab.virsh("start", name)
    assert lab.virsh("domstate", name).stdout.strip() == "running"
    r = lab.policyctl("check")
    assert r.returncode == 4
    assert "%s: $.weight: -5 is less than the minimum of 1" % path in r.stdout
    with open(lab.paths().log) as f:
        assert "%s prepare/begin: policy not checked: %s: $.weight: -5 is not in 1..65535" \
            % (name, path) in f.read()


def test_failing_second_hook_leaves_no_stray_applier(domains):
    name = domains()
    assert lab.policyctl("vcpupin", name, "0", "1").returncode == 0
    other = "/etc/libvirt/hooks/qemu.d/zz-fail-started"
    with open(other, "w") as f:
        f.write('#!/bin/sh\n[ "$1" = "%s" ] && [ "$2" = started ] && { echo "test hook says no" >&2; '
                'exit 3; }\nexit 0\n' % name)
    os.chmod(other, 0o755)
    try:
        r = lab.virsh("start", name, check=False)
        assert r.returncode == 1
        assert "test hook says no" in r.stderr
    finally:
        os.unlink(other)
    assert lab.virsh("domstate", name).stdout.strip() == "shut off"
    lab.wait_for(lambda: not lab.appliers(), 15, "the applier to exit")
    assert lab.state(name) is None


def test_domain_without_policy_starts_untouched(domains):
    name = domains()
    lab.virsh("start", name)
    assert lab.vcpupin(name) == {0: "0-1", 1: "0-1"}
    assert lab.state(name) is None


def test_paused_start_gets_the_policy_too(domains):
    name = domains()
    assert lab.policyctl("vcpupin", name, "1", "1").returncode == 0
    assert lab.policyctl("schedcap", name, "25").returncode == 0
    lab.virsh("start", "--paused", name)
    _in_force(name, {0: "0-1", 1: "1"}, quota="25000")
    assert lab.virsh("domstate", name).stdout.strip() == "paused"
