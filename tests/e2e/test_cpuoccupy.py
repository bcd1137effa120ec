"""cpuoccupy on the real daemon: two occupants of CPU 1 and one outsider (2-CPU host)."""

import json
import os

import lab
import pytest

# Every test here runs cpuoccupy, which re-pins every running domain outside the set
# (a dry run or a refusal too, were it wrong) and lists them in its report.
pytestmark = pytest.mark.moves_others


def _host_bytes():
    if not os.path.exists(lab.paths().host_file):
        return None
    with open(lab.paths().host_file, "rb") as f:
        return f.read()


def _pins(name):
    return lab.vcpupin(name), lab.emulatorpin(name)


def test_three_domains(domains):
    a, b, c = domains("-a"), domains("-b"), domains("-c")
    for name in (a, b, c):
        lab.virsh("start", name)
        assert _pins(name) == ({0: "0-1", 1: "0-1"}, "0-1")

    # The outsider is moved off CPU 1 live; the occupants keep both CPUs.
    r = lab.policyctl("cpuoccupy", "1", "%s,%s" % (a, b))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "CPU 1 occupied by %s, %s: saved; applied live to 1 running domain" % (a, b),
        "  %s: re-pinned live: vCPU 0 -> 0, vCPU 1 -> 0, emulator -> 0" % c,
    ]
    assert _pins(c) == ({0: "0", 1: "0"}, "0")
    assert _pins(a) == ({0: "0-1", 1: "0-1"}, "0-1")
    assert lab.occupied() == {1: sorted([a, b])}
    report = json.loads(lab.policyctl("cpupolicy", c, "--json").stdout)
    assert report["effective"]["kept_off"] == "1"
    text = lab.policyctl("cpupolicy", c).stdout
    assert "Note:        CPU 1 is occupied by other domains (cpuoccupy); kept off it\n" in text
    assert report["drift"] == []
    assert json.loads(lab.policyctl("cpupolicy", a, "--json").stdout)["occupies"] == [1]

    # Started later, the outsider lands off CPU 1 (the hook's applier).
    lab.virsh("destroy", c)
    lab.virsh("start", c)
    lab.wait_for(lambda: _pins(c) == ({0: "0", 1: "0"}, "0"), 15, "the outsider to land off CPU 1")

    # A policy of the outsider that needs CPU 1 only: refused at start, with the reason.
    lab.virsh("destroy", c)
    with open(lab.paths().domain_file(c), "w") as f:
        json.dump({"version": 1, "domain": c, "vcpupin": {"0": "1"}}, f)
    r = lab.virsh("start", c, check=False)
    assert r.returncode == 1
    assert "policyhook: refusing to start '%s': vCPU 0 of '%s' is pinned to 1 (policy), which " \
           "is occupied by %s, %s (cpuoccupy); it would have no CPU left" % (c, c, a, b) in r.stderr
    os.unlink(lab.paths().domain_file(c))
    lab.virsh("start", c)

    # Clearing frees the CPU again, live.
    r = lab.policyctl("cpuoccupy", "1", "--clear")
    assert r.returncode == 0, r.stderr
    lab.wait_for(lambda: _pins(c) == ({0: "0-1", 1: "0-1"}, "0-1"), 15, "CPU 1 to be free again")
    assert _host_bytes() is None

    # The rule on live pins (doc/design.md "Occupancy"): an outsider with a vCPU pinned by
    # hand only to CPU 1 stops occupancy.
    lab.virsh("vcpupin", c, "0", "1", "--live")
    before = _host_bytes()
    r = lab.policyctl("cpuoccupy", "1", "%s,%s" % (a, b))
    assert r.returncode == 3
    assert r.stderr == ("Error: running domain '%s' has vCPU 0 pinned only to 1 (live); it cannot "
                        "be occupied by %s, %s (unpin it first: virsh vcpupin %s 0 --live "
                        "CPULIST)\n" % (c, a, b, c))
    assert _host_bytes() == before
    assert _pins(c)[0] == {0: "1", 1: "0-1"}


def test_dry_run_changes_nothing(domains):
    a, c = domains("-a"), domains("-c")
    lab.virsh("start", a)
    lab.virsh("start", c)
    r = lab.policyctl("cpuoccupy", "1", a, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "CPU 1 occupied by %s: would be saved (dry run)" % a,
        "  %s: would be re-pinned: vCPU 0 -> 0, vCPU 1 -> 0, emulator -> 0" % c,
    ]
    assert _host_bytes() is None
    assert _pins(c) == ({0: "0-1", 1: "0-1"}, "0-1")


def test_occupying_every_cpu_is_refused(installed):
    r = lab.policyctl("cpuoccupy", "0-1", lab.PREFIX + "x", "--undefined")
    assert r.returncode == 3
    assert r.stderr == ("Error: cpuoccupy would occupy every host CPU (0-1); domains outside the "
                        "occupancy sets would have no CPU left\n")
    assert _host_bytes() is None


def test_a_transient_domain_gets_its_cpus_back(domains):
    """A domain made with `virsh create` has no definition but its live one, which the
    pins cpuoccupy gives it change (Xen's dom0 is such a domain too): clearing the set
    gives it both CPUs back, not the pins cpuoccupy gave it."""
    a, t = domains("-a"), domains("-t")
    lab.virsh("undefine", t)
    lab.virsh("create", "/tmp/%s.xml" % t)
    r = lab.policyctl("cpuoccupy", "1", a)
    assert r.returncode == 0, r.stderr
    assert _pins(t) == ({0: "0", 1: "0"}, "0")
    # What policyhook wrote is now in the only definition libvirt has of it.
    assert "<vcpupin vcpu='0' cpuset='0'/>" in lab.virsh("dumpxml", "--inactive", t).stdout
    r = lab.policyctl("cpuoccupy", "1", "--clear")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "CPU 1 no longer occupied: saved; applied live to 1 running domain",
        "  %s: re-pinned live: vCPU 0 -> 0-1, vCPU 1 -> 0-1, emulator -> 0-1" % t,
    ]
    assert _pins(t) == ({0: "0-1", 1: "0-1"}, "0-1")
    assert json.loads(lab.policyctl("cpupolicy", t, "--json").stdout)["drift"] == []
