"""Weight and cap on cgroup v2, read from the kernel's files of the domain's cgroups:
applied live by policyctl to a running domain, and put in force by the hook at start.

What is right (policyhook's mapping, DESIGN.md): weight W is cpu_shares =
clamp(round(W * 100 / 256), 1, 10000), which libvirt writes into the scope's cpu.weight
(range 1-10000, default 100 = weight 256); cap C is C ms of CPU per 100 ms period for
the whole domain, in cpu.max of its libvirt/ cgroup, and cap 0 is no limit ("max")."""

import json

import guest
import lab
import pytest

WEIGHT_TO_CPU_WEIGHT = {1: "1", 256: "100", 65535: "10000"}
CAP_TO_CPU_MAX = {0: "max 100000", 50: "50000 100000", 400: "400000 100000"}


def read_sched(name):
    base = guest.scope(name)
    return guest.read(base + "/cpu.weight"), guest.read(base + "/libvirt/cpu.max")


def drift(name, what=None):
    """cpupolicy's drift lines; `what` also records its reading of the live values."""
    doc = json.loads(lab.policyctl("cpupolicy", name, "--json", check=True).stdout)
    if what:
        guest.record("%s: policyctl cpupolicy live weight, cap" % what,
                     "%s, %s" % (doc["live"]["weight"], doc["live"]["cap"]))
    return doc["drift"]


@pytest.fixture(scope="module")
def running(installed):
    """One domain with no policy, running for the live changes."""
    name = "phvm-live"
    lab.define(name)
    lab.virsh("start", name, timeout=180)
    yield name
    lab.undefine(name)
    lab.policyctl("remove", name)


@pytest.mark.parametrize("weight", sorted(WEIGHT_TO_CPU_WEIGHT))
def test_weight_live(running, weight):
    r = lab.policyctl("schedweight", running, str(weight))
    assert r.returncode == 0 and "applied live" in r.stdout, r.stdout + r.stderr
    want = WEIGHT_TO_CPU_WEIGHT[weight]
    got = lab.settled(lambda: read_sched(running)[0], want)
    guest.record("weight %d live: cpu.weight" % weight, got)
    guest.record("weight %d live: virsh schedinfo cpu_shares" % weight, lab.schedinfo(running)["cpu_shares"])
    assert got == want
    assert drift(running, "weight %d live" % weight) == []


@pytest.mark.parametrize("cap", sorted(CAP_TO_CPU_MAX, reverse=True))
def test_cap_live(running, cap):
    r = lab.policyctl("schedcap", running, str(cap))
    assert r.returncode == 0 and "applied live" in r.stdout, r.stdout + r.stderr
    want = CAP_TO_CPU_MAX[cap]
    got = lab.settled(lambda: read_sched(running)[1], want)
    guest.record("cap %d live: libvirt/cpu.max" % cap, got)
    guest.record("cap %d live: virsh schedinfo global_quota" % cap, lab.schedinfo(running)["global_quota"])
    assert got == want
    found = drift(running, "cap %d live" % cap)
    if cap:   # cap 0's drift: test_no_drift_without_a_cap
        assert found == []


@pytest.mark.parametrize("weight,cap", [(1, 400), (256, 0), (65535, 50)])
def test_weight_and_cap_at_start(domains, weight, cap):
    name = domains()
    assert lab.policyctl("schedweight", name, str(weight)).returncode == 0
    assert lab.policyctl("schedcap", name, str(cap)).returncode == 0
    lab.virsh("start", name, timeout=180)
    want = (WEIGHT_TO_CPU_WEIGHT[weight], CAP_TO_CPU_MAX[cap])
    got = lab.settled(lambda: read_sched(name), want)
    guest.record("weight %d at start: cpu.weight" % weight, got[0])
    guest.record("cap %d at start: libvirt/cpu.max" % cap, got[1])
    assert got == want
    if cap:
        assert drift(name) == []


# libvirt reads a cgroup v2 "max" quota back as 17592186044415 (its largest quota,
# VIR_CGROUP_CPU_QUOTA_MAX), where cgroup v1 gives -1: both mean no cap, no drift.
def test_no_drift_without_a_cap(running):
    assert lab.policyctl("schedcap", running, "0").returncode == 0
    assert lab.settled(lambda: read_sched(running)[1], CAP_TO_CPU_MAX[0]) == CAP_TO_CPU_MAX[0]
    assert lab.schedinfo(running)["global_quota"] == "17592186044415"
    doc = json.loads(lab.policyctl("cpupolicy", running, "--json", check=True).stdout)
    assert (doc["drift"], doc["live"]["cap"]) == ([], 0)
