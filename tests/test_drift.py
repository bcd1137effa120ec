"""Weight and cap changed behind policyhook's back are drift, for every driver and cgroup
version: a live weight that differs, and a cap removed live (the quota unlimited, in
each spelling libvirt reads back) where the policy has one. Expected parameters come
from the man page's formulas (tests/oracle.py), not from the mapping under test.

Pure (planner.drift and planner.differences), then through the API on libvirt's test
driver, where `verify` must report the change and `apply` must put the policy back."""

import libvirt
import oracle
import pytest
from testdriver import URI, RecordingConn
from unit_helpers import policy

from policyhook.api import PolicyManager
from policyhook.cpuset import CpuSet
from policyhook.describe import drift_line
from policyhook.domxml import DomainFacts
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.planner import Live, differences, drift, plan

HOST = CpuSet.parse("0-3")
WEIGHT, CAP = 512, 50
SETUPS = [(driver, cgroup) for driver in ("qemu", "lxc") for cgroup in (1, 2)] + [("libxl", None)]
IDS = ["%s-v%s" % s if s[1] else s[0] for s in SETUPS]


def effective(driver, cgroup, weight=WEIGHT, cap=CAP):
    return plan(policy("vm", weight=weight, cap=cap), HostPolicy(), DomainFacts("vm", driver, 2), HOST,
                cgroup or 1)


def lines(found):
    return [drift_line(d) for d in found]


@pytest.mark.parametrize("driver,cgroup", SETUPS, ids=IDS)
def test_the_plan_holds_the_documented_parameters_and_matches_them_live(driver, cgroup):
    want = oracle.sched_params(driver, cgroup or 1, WEIGHT, CAP)
    p = effective(driver, cgroup)
    assert p.sched == want
    assert drift(p, Live(sched=want)) == []
    assert differences(p, Live(sched=want)).sched == {}


@pytest.mark.parametrize("driver,cgroup", SETUPS, ids=IDS)
@pytest.mark.parametrize("live_weight", [256, WEIGHT + 256, 1])
def test_a_live_weight_that_differs_is_drift(driver, cgroup, live_weight):
    want = oracle.sched_params(driver, cgroup or 1, WEIGHT, CAP)
    live = dict(want, **oracle.sched_params(driver, cgroup or 1, weight=live_weight))
    (key,) = oracle.sched_params(driver, cgroup or 1, weight=1)
    p = effective(driver, cgroup)
    assert lines(drift(p, Live(sched=live))) == ["%s: policy %d, live %d" % (key, want[key], live[key])]
    # What needs applying: the scheduler call, with every parameter of the plan.
    assert differences(p, Live(sched=live)).sched == want


@pytest.mark.parametrize("driver,cgroup", SETUPS, ids=IDS)
def test_a_cap_removed_live_is_drift(driver, cgroup):
    want = oracle.sched_params(driver, cgroup or 1, WEIGHT, CAP)
    key = oracle.quota_key(driver)
    # No limit reads -1 on cgroup v1 and 2^44 - 1 on cgroup v2; Xen says cap 0.
    unlimited = 0 if driver == "libxl" else oracle.UNLIMITED_QUOTA[cgroup]
    p = effective(driver, cgroup)
    for no_cap in {unlimited, -1 if driver != "libxl" else 0}:
        live = dict(want, **{key: no_cap})
        assert lines(drift(p, Live(sched=live))) == ["%s: policy %d, live %d" % (key, want[key], no_cap)]
        assert differences(p, Live(sched=live)).sched == want


@pytest.mark.parametrize("driver,cgroup", SETUPS, ids=IDS)
def test_a_cap_set_live_where_the_policy_has_none_is_drift(driver, cgroup):
    want = oracle.sched_params(driver, cgroup or 1, WEIGHT, 0)
    key = oracle.quota_key(driver)
    p = effective(driver, cgroup, cap=0)
    assert p.sched == want
    capped = dict(want, **oracle.sched_params(driver, cgroup or 1, cap=CAP))
    assert lines(drift(p, Live(sched=capped))) == ["%s: policy %d, live %d" % (key, want[key], capped[key])]
    # Every spelling of "no cap" is no drift (Xen has one: 0).
    spellings = [0] if driver == "libxl" else [-1, oracle.UNLIMITED_QUOTA[2], 2 ** 63 - 1]
    for no_cap in spellings:
        assert drift(p, Live(sched=dict(want, **{key: no_cap}))) == []


@pytest.mark.parametrize("driver,cgroup", SETUPS, ids=IDS)
def test_parameters_missing_live_are_drift(driver, cgroup):
    want = oracle.sched_params(driver, cgroup or 1, WEIGHT, CAP)
    p = effective(driver, cgroup)
    assert lines(drift(p, Live(sched={}))) == ["%s: policy %d, live None" % kv for kv in sorted(want.items())]


# ---- through the API: verify reports, apply repairs ----------------------------------------


@pytest.fixture
def fake():
    conn = libvirt.open(URI)
    yield RecordingConn(conn)
    conn.close()


def verified(pm):
    return [(v.domain, v.status, lines(v.drift)) for v in pm.verify(["running2"])]


@pytest.mark.parametrize("cgroup", [1, 2])
@pytest.mark.parametrize("change", ["weight", "cap removed"])
def test_verify_reports_weight_and_cap_changed_behind_our_back_and_apply_repairs(tmp_path, fake, cgroup,
                                                                               change):
    pm = PolicyManager(Paths(str(tmp_path)), uri=URI, connect=lambda uri: fake, cgroup_version=cgroup)
    pm.set_sched("running2", "weight", WEIGHT)
    pm.set_sched("running2", "cap", CAP)
    want = oracle.sched_params("qemu", cgroup, WEIGHT, CAP)
    assert fake.sched["running2"] == want
    assert verified(pm) == [("running2", "in-force", [])]
    # As `virsh schedinfo --live` would: another weight, or no quota at all.
    if change == "weight":
        key, value = "cpu_shares", oracle.cpu_shares(256, cgroup)
    else:
        key, value = "global_quota", oracle.UNLIMITED_QUOTA[cgroup]
    fake.sched["running2"][key] = value
    assert verified(pm) == [("running2", "drift", ["%s: policy %d, live %d" % (key, want[key], value)])]
    pm.apply(["running2"])
    assert fake.sched["running2"] == want
    assert verified(pm) == [("running2", "in-force", [])]
