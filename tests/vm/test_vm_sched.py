"""Weight and cap on cgroup v2, read from the kernel's files of the domain's cgroups:
applied live by policyctl to a running domain, and put in force by the hook at start.

What is right (policyhook's mapping, doc/design.md): weight W is cpu_shares =
clamp(round(W * 100 / 256), 1, 10000), which libvirt writes into the scope's cpu.weight
(range 1-10000, default 100 = weight 256); cap C is C ms of CPU per 100 ms period for
the whole domain, in cpu.max of its libvirt/ cgroup, and cap 0 is no limit ("max").

Changed behind policyhook's back (`virsh schedinfo --live`), weight and cap are drift:
`policyctl verify` names it, and the watcher's unit with [watch] on_drift = repair puts
them back."""

import json
import os
import re

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


# ---- weight and cap changed behind policyhook's back ------------------------------------

CONF = "/etc/policyhook/policyhook.conf"
WATCH = "policyhook-watch.service"
# Weight 512 is cpu_shares 200 (cpu.weight 200), cap 50 a global_quota of 50000 us per
# 100000 us period; a removed quota reads back as VIR_CGROUP_CPU_QUOTA_MAX.
IN_FORCE = ("200", "50000 100000")
CHANGES = [("cpu_shares=100", ("100", "50000 100000"), "cpu_shares: policy 200, live 100", "cpu_shares", 100),
           ("global_quota=-1", ("200", "max 100000"), "global_quota: policy 50000, live 17592186044415",
            "global_quota", 17592186044415)]


@pytest.fixture(scope="module")
def capped(installed):
    """One running domain with weight 512 and cap 50 in force."""
    name = "phvm-drift"
    lab.define(name)
    for args in (("schedweight", name, "512"), ("schedcap", name, "50")):
        assert lab.policyctl(*args).returncode == 0
    lab.virsh("start", name, timeout=180)
    try:
        assert lab.settled(lambda: read_sched(name), IN_FORCE) == IN_FORCE
        yield name
    finally:
        lab.undefine(name)
        lab.policyctl("remove", name)


def verified(name):
    r = lab.policyctl("verify", name)
    doc = json.loads(lab.policyctl("verify", name, "--json").stdout)
    return r, [(d["domain"], d["status"], d["drift"]) for d in doc]


@pytest.mark.parametrize("change,files,line,param,live", CHANGES, ids=["weight", "cap-removed"])
def test_verify_reports_weight_and_cap_changed_live(capped, change, files, line, param, live):
    lab.virsh("schedinfo", capped, "--live", "--set", change)
    got = read_sched(capped)
    guest.record("virsh schedinfo --live --set %s: cpu.weight, libvirt/cpu.max" % change, got)
    assert got == files
    r, docs = verified(capped)
    assert (r.returncode, r.stdout, r.stderr) == (
        7, "%s: DRIFT: %s (policyctl apply %s)\n" % (capped, line, capped),
        "Error: 1 of 1 domain not in force: %s\n" % capped)
    want = {"cpu_shares": 200, "global_quota": 50000}[param]
    assert docs == [(capped, "drift", [{"setting": param, "index": None, "policy": want, "live": live}])]
    assert lab.policyctl("apply", capped).returncode == 0
    assert lab.settled(lambda: read_sched(capped), IN_FORCE) == IN_FORCE
    assert verified(capped)[0].returncode == 0


def test_the_watcher_repairs_weight_and_cap_changed_live(capped):
    with open(CONF) as f:
        conf = f.read()
    offset = os.path.getsize(lab.paths().log) if os.path.exists(lab.paths().log) else 0
    try:
        with open(CONF, "w") as f:
            f.write(re.sub(r"(?m)^\[watch\]\n", "[watch]\non_drift = repair\nsettle = 0.5\n", conf, count=1))
        lab.run(["systemctl", "start", WATCH])
        lab.wait_for(lambda: re.search(r"watch: \S+: watching", lab.log_text()[offset:]), 60,
                     "the watcher to start")
        for change, files, line, _param, _live in CHANGES:
            lab.virsh("schedinfo", capped, "--live", "--set", change)
            assert read_sched(capped) == files
            got = lab.settled(lambda: read_sched(capped), IN_FORCE, 30, 0.05)
            guest.record("%s after virsh schedinfo --live --set %s" % (WATCH, change), got)
            assert got == IN_FORCE
            repaired = "watch: %s: drift (tunable) repaired: %s" % (capped, line)
            lab.wait_for(lambda text=repaired: text in lab.log_text()[offset:], 10, repr(repaired))
        sched = lab.schedinfo(capped)
        assert (sched["cpu_shares"], sched["global_quota"]) == ("200", "50000")
    finally:
        lab.run(["systemctl", "stop", WATCH], check=False)
        with open(CONF, "w") as f:
            f.write(conf)
