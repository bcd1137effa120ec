"""Automatic placement in the lab guest (8 CPUs: siblings 0-1, 2-3, 4-5, 6-7; NUMA node
0 = 0-3, node 1 = 4-7): `cpuoccupy --auto 2` takes one whole core on one node and never
CPU 0 ([occupancy] reserved's default), and `vcpupin --auto` pins a 2-vCPU domain there,
in force from its start, read back from `virsh vcpupin` and the kernel; with
`[occupancy] memory = follow` in persistent mode, `virsh numatune` shows that node."""

import glob
import os
import re

import guest
import lab
import pytest

CONF = "/etc/policyhook/policyhook.conf"


@pytest.fixture(autouse=True)
def freed(installed):
    """Every test starts and ends with no CPU occupied."""
    lab.policyctl("cpuoccupy", "0-7", "--clear")
    yield
    lab.policyctl("cpuoccupy", "0-7", "--clear")


@pytest.fixture
def following(installed):
    """policyhook.conf with persistent mode and memory = follow, given back after."""
    with open(CONF) as f:
        before = f.read()
    # The shipped file has both sections, every key commented out.
    text = re.sub(r"(?m)^\[libvirt\]\n", "[libvirt]\npersistent = yes\n", before, count=1)
    text = re.sub(r"(?m)^\[occupancy\]\n", "[occupancy]\nmemory = follow\n", text, count=1)
    assert text.count("persistent = yes") == text.count("memory = follow") == 1
    with open(CONF, "w") as f:
        f.write(text)
    yield
    with open(CONF, "w") as f:
        f.write(before)


def numatune(name, *flags):
    out = lab.virsh("numatune", name, *flags).stdout
    return dict(re.findall(r"^(\w+)\s*:\s*(\S*)\s*$", out, re.M))

NODES = {0: {0, 1, 2, 3}, 1: {4, 5, 6, 7}}
SIBLINGS = [{0, 1}, {2, 3}, {4, 5}, {6, 7}]


def cpus(text):
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def test_the_guests_caches():
    """What the guest's sysfs says of each CPU's L3 cache (placement prefers one)."""
    found = {}
    for path in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index3/shared_cpu_list")):
        with open(path) as f:
            found[path.split("/")[5]] = f.read().strip()
    guest.record("L3 cache of each CPU (cache/index3/shared_cpu_list)", found or "no index3")
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index3/level"):
        with open(path) as f:
            assert f.read().strip() == "3"


def test_auto_takes_a_whole_core_and_vcpupin_auto_puts_it_in_force(domains):
    a = domains("-a")
    dry = lab.policyctl("cpuoccupy", "--auto", "2", a, "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, ""), dry.stderr
    guest.record("policyctl cpuoccupy --auto 2 %s --dry-run" % a, "\n" + dry.stdout.rstrip())
    assert lab.occupied() == {}
    r = lab.policyctl("cpuoccupy", "--auto", "2", a)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    held = {c for c, doms in lab.occupied().items() if a in doms}
    assert held in SIBLINGS and 0 not in held
    assert any(held <= node for node in NODES.values())
    # Node 0 has one free whole core (2-3; 0-1 holds reserved CPU 0), node 1 has two.
    assert held == {4, 5}
    assert dry.stdout.splitlines()[-1] == "CPUs 4-5 occupied by %s: would be saved (dry run)" % a

    r = lab.policyctl("vcpupin", a, "--auto")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    guest.record("policyctl vcpupin %s --auto" % a, r.stdout.rstrip())
    lab.virsh("start", a)
    pins = lab.settled(lambda: (lab.vcpupin(a), lab.emulatorpin(a)), ({0: "4", 1: "5"}, "6-7"))
    guest.record("virsh vcpupin / emulatorpin of %s at start" % a, pins)
    assert pins == ({0: "4", 1: "5"}, "6-7")
    vcpu_threads = sorted(t for t in lab.qemu_threads(a) if t.startswith("CPU "))
    assert [lab.affinity(a, t) for t in vcpu_threads] == ["4", "5"]


def test_nothing_fits(domains):
    a = domains("-a")
    r = lab.policyctl("cpuoccupy", "--auto", "5", a)
    assert r.returncode == 3
    assert r.stderr == (
        "Error: cannot place 5 CPUs for %s: no NUMA node has 5 free CPUs in whole cores outside "
        "[occupancy] reserved (0) and the occupied CPUs (node 0: 1 free whole core; node 1: 2 free "
        "whole cores); best partial choice: CPUs 4-7 on node 1; nothing saved\n" % a)
    assert lab.occupied() == {}
    assert os.path.exists(lab.paths().conf)


def test_memory_follows_in_persistent_mode(domains, following):
    b = domains("-b")
    assert lab.policyctl("cpuoccupy", "--auto", "2", b).returncode == 0
    r = lab.policyctl("vcpupin", b, "--auto")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    guest.record("policyctl vcpupin %s --auto (persistent, memory = follow)" % b, r.stdout.rstrip())
    assert "memory bound to NUMA node 1 (in its definition: from the next start)" in r.stdout
    config = numatune(b, "--config")
    guest.record("virsh numatune %s --config" % b, config)
    assert config.get("numa_nodeset") == "1"
    lab.virsh("start", b)
    live = lab.settled(lambda: numatune(b).get("numa_nodeset"), "1")
    guest.record("virsh numatune %s (running)" % b, numatune(b))
    assert live == "1"
    shown = lab.policyctl("cpupolicy", b).stdout
    guest.record("policyctl cpupolicy %s: memory" % b,
                 [line for line in shown.splitlines() if line.startswith("Memory:")])
    assert "Memory:      bound to NUMA node 1 (memory = follow); definition 1, live 1" in shown.splitlines()
