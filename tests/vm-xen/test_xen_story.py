"""The whole story on Xen itself, under the credit scheduler: a policy recorded with
policyctl while the domain is off, `virsh -c xen:///system start`, and the policy read
back from Xen with its own tools (`xl vcpu-list` for the pins, `xl sched-credit` for
weight and cap, "same as xm sched-credit -d <domain> -w <weight> -c <cap>"); then a
reboot, which Xen's libxl answers by building the domain anew, and the occupancy of
CPUs between two domains."""

import json
import time

import lab
import pytest
import xen

PINS = {0: "2", 1: "3"}


def record_policy(name, occupy=None):
    steps = [("vcpupin", name, "0", "2"), ("vcpupin", name, "1", "3"), ("schedweight", name, "512"),
             ("schedcap", name, "50")]
    if occupy:
        steps.append(("cpuoccupy", occupy, name))
    for args in steps:
        r = xen.policyctl(*args)
        assert r.returncode == 0, "policyctl %s: %s%s" % (" ".join(args), r.stdout, r.stderr)


def start(name):
    t0 = time.monotonic()
    xen.virsh("start", name, timeout=300)
    xen.record("virsh start %s (a PV domain, Xen under TCG)" % name, "%.1f s" % (time.monotonic() - t0))


def in_force(name):
    assert xen.settled(lambda: xen.vcpu_list(name), PINS) == PINS
    assert xen.settled(lambda: xen.sched_params(name), (512, 50)) == (512, 50)


def test_policy_in_force_at_start(domains, credit):
    name = domains()
    record_policy(name)
    cursor = lab.journal_cursor()
    start(name)
    in_force(name)
    xen.record("xl vcpu-list %s (vcpupin 0 2, vcpupin 1 3)" % name, xen.xl("vcpu-list", name))
    xen.record("xl sched-credit -d %s (schedweight 512, schedcap 50)" % name,
               xen.xl("sched-credit", "-d", name))

    # libvirt's view and policyctl's agree with Xen's: no drift.
    sched = lab.schedinfo(name, uri=xen.URI)
    xen.record("virsh schedinfo %s" % name, ", ".join("%s %s" % kv for kv in sorted(sched.items())))
    assert (sched["Scheduler"], sched["weight"], sched["cap"]) == ("credit", "512", "50")
    assert lab.vcpupin(name, uri=xen.URI) == PINS
    doc = json.loads(xen.policyctl("cpupolicy", name, "--json", check=True).stdout)
    assert doc["running"] and doc["drift"] == [], doc
    r = xen.policyctl("verify", name)
    assert r.returncode == 0, r.stdout + r.stderr

    for line in xen.logged(cursor, "libxl %s prepare/begin: admitted" % name,
                           "libxl %s start/begin: applier started" % name,
                           "libxl %s applier (start/begin): applied" % name):
        xen.record("journalctl -t policyhook", line)


def test_reboot_builds_the_domain_anew_and_the_policy_again(domains, credit):
    """Under QEMU a reboot keeps the process and its pins; Xen destroys the domain and
    builds a new one (a new domain id), and libvirt runs every hook again."""
    name = domains()
    record_policy(name)
    start(name)
    in_force(name)
    before = xen.domid(name)
    # Out of force behind libvirt's back: only the policy applied anew brings it back.
    xen.xl("vcpu-pin", name, "all", "all")
    xen.xl("sched-credit", "-d", name, "-w", "256", "-c", "0")
    assert xen.vcpu_list(name) == {0: "all", 1: "all"}
    cursor = lab.journal_cursor()
    xen.virsh("reboot", name)

    def rebuilt():
        try:
            return xen.domid(name) != before
        except lab.LabError:
            return False   # between the old domain and the new one
    lab.wait_for(rebuilt, 180, "Xen to build %s anew after virsh reboot" % name)
    in_force(name)
    after = xen.domid(name)
    xen.record("virsh reboot %s: domain id" % name, "%d, then %d" % (before, after))
    xen.record("xl vcpu-list %s after the reboot" % name, xen.xl("vcpu-list", name))
    xen.record("xl sched-credit -d %s after the reboot" % name, xen.xl("sched-credit", "-d", name))
    for line in xen.logged(cursor, "libxl %s prepare/begin: admitted" % name,
                           "libxl %s start/begin: applier started" % name,
                           "libxl %s applier (start/begin): applied" % name):
        xen.record("journalctl -t policyhook after the reboot", line)
    doc = json.loads(xen.policyctl("cpupolicy", name, "--json", check=True).stdout)
    assert doc["drift"] == [], doc


def test_occupancy_between_two_domains(domains, credit):
    """cpuoccupy 2-3 for the first: the second, with no policy, is kept off CPUs 2-3,
    and so is dom0."""
    a, b = domains("-a"), domains("-b")
    xen.free_dom0()
    record_policy(a, occupy="2-3")
    for name in (a, b):
        start(name)
    in_force(a)
    kept_off = {0: "0-1,4-7", 1: "0-1,4-7"}
    assert xen.settled(lambda: xen.vcpu_list(b), kept_off) == kept_off
    xen.record("xl vcpu-list (cpuoccupy 2-3 %s)" % a, xen.xl("vcpu-list", a, b))
    assert xen.sched_params(b) == (256, 0)
    # On Xen, dom0 is a libvirt domain too (Domain-0): recording the occupancy while it
    # ran kept its vCPUs off CPUs 2-3 as well.
    assert xen.vcpu_list("Domain-0") == kept_off
    r = xen.policyctl("occupancy")
    xen.record("policyctl occupancy", r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr

    # Freed: the domain without a pin of its own gets every CPU back.
    began = time.monotonic()
    # Under TCG every pin call crosses libxl to Xen and back: once it took over 60 s.
    r = xen.policyctl("cpuoccupy", "2-3", "--clear", timeout=180)
    xen.record("policyctl cpuoccupy 2-3 --clear (%.1f s)" % (time.monotonic() - began), r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    free = {0: "all", 1: "all"}
    assert xen.settled(lambda: xen.vcpu_list(b), free) == free
    in_force(a)
    xen.free_dom0()


def test_dom0_gets_every_cpu_back_when_the_occupancy_ends(domains, credit):
    """dom0 is a transient libvirt domain: its live definition, which the pins cpuoccupy
    gives it change, is its only one. What it had is recorded before it is first
    pinned (originals.remember), so clearing the set gives it every CPU back."""
    a = domains()
    xen.free_dom0()
    try:
        r = xen.policyctl("cpuoccupy", "2-3", a, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        kept_off = {0: "0-1,4-7", 1: "0-1,4-7"}
        assert xen.settled(lambda: xen.vcpu_list("Domain-0"), kept_off) == kept_off
        r = xen.policyctl("cpuoccupy", "2-3", "--clear", timeout=180)
        xen.record("policyctl cpuoccupy 2-3 --clear, dom0 kept off", r.stdout)
        assert r.returncode == 0, r.stdout + r.stderr
        free = {0: "all", 1: "all"}
        assert xen.settled(lambda: xen.vcpu_list("Domain-0"), free, timeout=10) == free
    finally:
        xen.free_dom0()


@pytest.fixture(scope="module")
def running(installed):
    """One domain with no policy, running for the live changes."""
    name = xen.PREFIX + "live"
    xen.define(name)
    start(name)
    yield name
    xen.undefine(name)
    xen.policyctl("remove", name)


@pytest.mark.parametrize("weight,cap", [(1, 0), (65535, 200), (256, 50)])
def test_weight_and_cap_live(credit, running, weight, cap):
    for args in (("schedweight", running, str(weight)), ("schedcap", running, str(cap))):
        r = xen.policyctl(*args)
        assert r.returncode == 0 and "applied live" in r.stdout, r.stdout + r.stderr
    got = xen.settled(lambda: xen.sched_params(running), (weight, cap))
    xen.record("schedweight %d, schedcap %d live: xl sched-credit weight, cap" % (weight, cap),
               "%s, %s" % got)
    assert got == (weight, cap)
    doc = json.loads(xen.policyctl("cpupolicy", running, "--json", check=True).stdout)
    assert doc["drift"] == [], doc
