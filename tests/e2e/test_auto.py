"""cpuoccupy --auto and vcpupin --auto on the real daemon (this lab's host: 2 CPUs, one
NUMA node, no SMT): CPU 0 is [occupancy] reserved's default, so `--auto 1` takes CPU 1;
vcpupin --auto pins a 1-vCPU domain there and its emulator on CPU 0; with memory =
follow in persistent mode the definition gets <numatune> nodeset 0, live too."""

import re

import lab
import pytest

# cpuoccupy re-pins every running domain outside the set.
pytestmark = pytest.mark.moves_others


@pytest.fixture
def following(installed):
    with open(lab.paths().conf) as f:
        before = f.read()
    # The shipped file has both headers uncommented, every key commented out.
    text = re.sub(r"(?m)^\[libvirt\]$", "[libvirt]\npersistent = yes", before, count=1)
    text = re.sub(r"(?m)^\[occupancy\]$", "[occupancy]\nmemory = follow", text, count=1)
    assert text.count("persistent = yes") == text.count("memory = follow") == 1
    with open(lab.paths().conf, "w") as f:
        f.write(text)
    yield
    with open(lab.paths().conf, "w") as f:
        f.write(before)


def numatune(name, *flags):
    out = lab.virsh("numatune", name, *flags).stdout
    return dict(re.findall(r"^(\w+)\s*:\s*(\S*)\s*$", out, re.M))


def test_auto_on_the_real_daemon(domains, following):
    a = domains("-a", vcpus=1)
    try:
        dry = lab.policyctl("cpuoccupy", "--auto", "1", a, "--dry-run")
        assert (dry.returncode, dry.stderr) == (0, ""), dry.stderr
        assert dry.stdout.splitlines() == [
            "NUMA node 0: the most free CPUs (1)",
            "  CPU 1: free; no running domain pinned there",
            "CPU 1 occupied by %s: would be saved (dry run)" % a]
        assert lab.policyctl("cpuoccupy", "--auto", "1", a).returncode == 0
        assert lab.occupied() == {1: [a]}
        r = lab.policyctl("vcpupin", a, "--auto")
        assert (r.returncode, r.stderr) == (0, ""), r.stderr
        assert r.stdout.splitlines()[0] == (
            "%s: vCPU 0 pinned 1:1 to the CPUs it occupies (1); emulator to 0 (node 0 outside every "
            "occupancy): saved; applies at next start (domain is not running); written into its "
            "definition" % a)
        assert numatune(a, "--config").get("numa_nodeset") == "0"
        lab.virsh("start", a)
        assert (lab.vcpupin(a), lab.emulatorpin(a)) == ({0: "1"}, "0")
        assert numatune(a).get("numa_nodeset") == "0"
        # A second domain finds nothing: exit 3, nothing saved.
        r = lab.policyctl("cpuoccupy", "--auto", "1", a + "-more", "--undefined")
        assert r.returncode == 3
        assert r.stderr.startswith("Error: cannot place 1 CPU for %s-more: no NUMA node has 1 free CPUs "
                                   "outside [occupancy] reserved (0) and the occupied CPUs" % a)
    finally:
        lab.policyctl("remove", a)
        lab.policyctl("cpuoccupy", "1", "--clear")
