"""[occupancy] mode = running on the real daemon: CPU 1 is kept from the others only
while its occupant runs (2-CPU host)."""

import re

import lab
import pytest

pytestmark = pytest.mark.moves_others


@pytest.fixture
def running_mode(installed):
    with open(lab.paths().conf) as f:
        before = f.read()
    # The shipped file has its [occupancy] header uncommented, every key commented out;
    # one installed by an older package may have no such section.
    text = re.sub(r"(?m)^\[occupancy\]$", "[occupancy]\nmode = running", before, count=1)
    if text == before:
        text = before + "\n[occupancy]\nmode = running\n"
    with open(lab.paths().conf, "w") as f:
        f.write(text)
    yield
    with open(lab.paths().conf, "w") as f:
        f.write(before)
    lab.policyctl("cpuoccupy", "1", "--clear")


def _pins(name):
    return lab.vcpupin(name), lab.emulatorpin(name)


FREE = ({0: "0-1", 1: "0-1"}, "0-1")
OFF_1 = ({0: "0", 1: "0"}, "0")


def test_outsider_moves_only_while_the_occupant_runs(domains, running_mode):
    a, c = domains("-a"), domains("-c")
    lab.virsh("start", c)
    assert _pins(c) == FREE

    # The occupant is not running: nothing moves, and cpupolicy says why.
    r = lab.policyctl("cpuoccupy", "1", a)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("CPU 1 occupied by %s: saved" % a)
    assert _pins(c) == FREE

    # It starts: its applier moves the outsider off CPU 1.
    lab.virsh("start", a)
    lab.wait_for(lambda: _pins(c) == OFF_1, 15, "the outsider to move off CPU 1")
    assert _pins(a) == FREE

    # A domain started while the occupant runs lands off CPU 1 at once.
    lab.virsh("destroy", c)
    lab.virsh("start", c)
    lab.wait_for(lambda: _pins(c) == OFF_1, 15, "the outsider to land off CPU 1")

    # The occupant stops: the updater at `release` gives CPU 1 back.
    lab.virsh("destroy", a)
    lab.wait_for(lambda: _pins(c) == FREE, 15, "CPU 1 to be given back")
    assert "occupancy (running mode): %s vCPU 0 -> 0-1" % c in lab.log_text()

    # Started while no occupant runs, an outsider keeps every CPU.
    lab.virsh("destroy", c)
    lab.virsh("start", c)
    assert _pins(c) == FREE
    assert lab.policyctl("verify", c).returncode == 0
