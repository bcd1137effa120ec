"""Weight and cap on cgroup v2, read from the kernel's files of the domain's cgroups:
applied live by policyctl to a running domain, and put in force by the hook at start.

What is right (policyhook's mapping, doc/design.md): weight W is cpu_shares =
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


# Each setting: policyctl's command, its value in read_sched(), the file that is, and
# the field virsh schedinfo shows it in.
SETTINGS = {"weight": ("schedweight", 0, "cpu.weight", "cpu_shares"),
            "cap": ("schedcap", 1, "libvirt/cpu.max", "global_quota")}
LIVE = ([("weight", w, WEIGHT_TO_CPU_WEIGHT[w]) for w in sorted(WEIGHT_TO_CPU_WEIGHT)]
        + [("cap", c, CAP_TO_CPU_MAX[c]) for c in sorted(CAP_TO_CPU_MAX, reverse=True)])


@pytest.mark.parametrize("setting,value,want", LIVE, ids=["%s-%d" % (s, v) for s, v, _ in LIVE])
def test_live(running, setting, value, want):
    command, index, path, field = SETTINGS[setting]
    r = lab.policyctl(command, running, str(value))
    assert r.returncode == 0 and "applied live" in r.stdout, r.stdout + r.stderr
    got = lab.settled(lambda: read_sched(running)[index], want)
    guest.record("%s %d live: %s" % (setting, value, path), got)
    guest.record("%s %d live: virsh schedinfo %s" % (setting, value, field), lab.schedinfo(running)[field])
    assert got == want
    assert drift(running, "%s %d live" % (setting, value)) == []


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
