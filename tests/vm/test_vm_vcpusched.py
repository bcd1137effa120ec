"""Real-time vCPUs (policyctl vcpusched) on cgroup v2, read back from the kernel with
`chrt -p` on each vCPU thread: set live by policyctl on a running domain, put in force
by the hook's applier at start, and in persistent mode written into the definition as
<vcpusched>, which libvirt itself puts in force at start. Each domain occupies the CPUs
its real-time vCPUs are pinned to (a real-time vCPU on a shared CPU is refused)."""

import re
import subprocess

import guest
import lab
import pytest


def chrt(name):
    """{vCPU: 'SCHED_FIFO 10'} as `chrt -p` reports each vCPU thread's policy and priority."""
    found = {}
    for comm, tid in guest.threads(name).items():
        m = re.match(r"CPU (\d+)/", comm)
        if not m:
            continue
        out = subprocess.run(["chrt", "-p", str(tid)], capture_output=True, text=True, check=True).stdout
        policy = re.search(r"scheduling policy: (\S+)", out).group(1)
        priority = re.search(r"scheduling priority: (\d+)", out).group(1)
        found[int(m.group(1))] = guest.record("%s vCPU %s: chrt -p" % (name, m.group(1)),
                                              "%s %s" % (policy, priority))
    return found


def occupy(name, cpus="6-7"):
    for argv in (("cpuoccupy", cpus, name), ("vcpupin", name, "0", cpus[0]),
                 ("vcpupin", name, "1", cpus[-1])):
        r = lab.policyctl(*argv)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def freed(installed):
    yield
    lab.policyctl("cpuoccupy", "0-7", "--clear")


@pytest.mark.moves_others
def test_live_and_at_start(domains, freed):
    name = domains()
    lab.virsh("start", name, timeout=180)
    occupy(name)
    r = lab.policyctl("vcpusched", name, "0-1", "fifo", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == ("%s: vCPU 0 scheduled fifo, priority 10, vCPU 1 scheduled "
                                        "fifo, priority 10: saved; applied live" % name)
    assert chrt(name) == {0: "SCHED_FIFO 10", 1: "SCHED_FIFO 10"}
    assert lab.policyctl("verify", name).returncode == 0
    # Behind policyhook's back: verify names it, apply puts it back.
    subprocess.run(["chrt", "-o", "-p", "0", str(guest.threads(name)["CPU 1/TCG"])], check=True)
    r = lab.policyctl("verify", name)
    assert (r.returncode, r.stdout) == (7, "%s: DRIFT: vCPU 1 scheduler: policy fifo:10, live other "
                                           "(policyctl apply %s)\n" % (name, name))
    assert lab.policyctl("apply", name).returncode == 0
    assert chrt(name)[1] == "SCHED_FIFO 10"
    # One vCPU round-robin, then the domain restarted: the applier sets both at start.
    assert lab.policyctl("vcpusched", name, "1", "rr", "5").returncode == 0
    lab.virsh("destroy", name)
    lab.virsh("start", name, timeout=180)
    got = lab.settled(lambda: chrt(name), {0: "SCHED_FIFO 10", 1: "SCHED_RR 5"})
    assert got == {0: "SCHED_FIFO 10", 1: "SCHED_RR 5"}
    # Unset: back to the kernel's default, live.
    assert lab.policyctl("unset", name, "vcpusched").returncode == 0
    assert chrt(name) == {0: "SCHED_OTHER 0", 1: "SCHED_OTHER 0"}


@pytest.mark.moves_others
def test_persistent_mode_writes_vcpusched_into_the_definition(domains, freed):
    name = domains()
    with lab.setting("libvirt", "persistent", "yes"):
        occupy(name)
        r = lab.policyctl("vcpusched", name, "0-1", "rr", "7")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "written into its definition" in r.stdout
        xml = lab.virsh("dumpxml", "--inactive", name).stdout
        found = sorted(re.findall(r"<vcpusched [^>]*/>", xml))
        guest.record("%s: <vcpusched> in the definition" % name, " ".join(found))
        assert found == ["<vcpusched vcpus='0' scheduler='rr' priority='7'/>",
                         "<vcpusched vcpus='1' scheduler='rr' priority='7'/>"]
        lab.virsh("start", name, timeout=180)
        assert chrt(name) == {0: "SCHED_RR 7", 1: "SCHED_RR 7"}
        assert lab.policyctl("remove", name).returncode == 0
        assert "<vcpusched" not in lab.virsh("dumpxml", "--inactive", name).stdout
