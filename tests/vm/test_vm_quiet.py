"""Quiet CPUs ([occupancy] housekeeping = yes) in the lab guest, with irqbalance running
as its package enables it: an occupant on one core (CPUs 6-7, siblings), every IRQ the
kernel lets move off them while it runs, read back after irqbalance's own 10-second
interval, the workqueue masks off them, irqbalance banned from them; after it stops,
and after its applier is killed midway and `policyctl apply --all` runs, the default
IRQ mask, the workqueue masks and irqbalance's configuration as they were before.
(With irqbalance running, where each IRQ lands afterwards is irqbalance's to decide.)"""

import json
import os
import re
import signal
import subprocess
import time

import guest
import lab
import pytest

CONF = "/etc/policyhook/policyhook.conf"
RECORD = "/run/policyhook/housekeeping.json"
LOG = "/var/log/policyhook/policyhook.log"
DROPIN = "/run/systemd/system/irqbalance.service.d"
HELD = {6, 7}
MASKS = {"default": "/proc/irq/default_smp_affinity",
         "workqueue": "/sys/devices/virtual/workqueue/cpumask",
         "writeback": "/sys/bus/workqueue/devices/writeback/cpumask"}
IRQBALANCE_INTERVAL = 10


def host_state():
    """What must be as before once nothing is held: the masks, irqbalance's own file, and
    no drop-in of ours."""
    state = {k: guest.read(p) for k, p in MASKS.items()}
    with open("/etc/default/irqbalance", "rb") as f:
        state["/etc/default/irqbalance"] = f.read()
    state["drop-in"] = os.path.exists(DROPIN)
    return state


def irqs():
    """{irq: CPUs of its smp_affinity_list}."""
    found = {}
    for n in os.listdir("/proc/irq"):
        if n.isdigit():
            try:
                found[n] = guest.cpus(guest.read("/proc/irq/%s/smp_affinity_list" % n))
            except OSError:
                pass   # freed meanwhile
    return found


def managed():
    """{irq} the kernel manages, as `policyctl occupancy --json` names them."""
    doc = json.loads(lab.policyctl("occupancy", "--json").stdout)
    return {i["irq"] for n in doc["nodes"] for s in n["sockets"] for k in s["cores"] for c in k["cpus"]
            for i in c.get("managed_irqs", ())}


def irqbalance_banned():
    pid = lab.run(["systemctl", "show", "-p", "MainPID", "--value", "irqbalance.service"]).stdout.strip()
    with open("/proc/%s/environ" % pid, "rb") as f:
        env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    return env.get(b"IRQBALANCE_BANNED_CPULIST", b"").decode()


@pytest.fixture
def quieting(installed):
    assert lab.run(["systemctl", "is-active", "irqbalance.service"]).stdout.strip() == "active", \
        "irqbalance does not run in the guest (scripts/vm-lab.sh installs and enables it)"
    with open(CONF) as f:
        before = f.read()
    text = re.sub(r"(?m)^\[occupancy\]\n", "[occupancy]\nhousekeeping = yes\n", before, count=1)
    with open(CONF, "w") as f:
        f.write(text if text != before else before + "\n[occupancy]\nhousekeeping = yes\n")
    yield host_state()
    lab.policyctl("cpuoccupy", "0-7", "--clear")
    lab.policyctl("apply", "--all")          # gives back what is recorded
    with open(CONF, "w") as f:
        f.write(before)


def movable_on_held():
    kernel = managed()
    return {n: c for n, c in irqs().items() if c & HELD and n not in kernel}


def check_quiet(a):
    """Everything that may move is off CPUs 6-7 once irqbalance has had its turn: an IRQ
    irqbalance had put on CPU 6 or 7 alone is its to move (a mask that would be empty
    keeps its own), at its first pass after the restart that bans them, up to an
    interval after the restart itself (seconds under TCG). The clock starts once the
    restarted irqbalance runs with the ban: systemd's reload and restart take their own
    time in a loaded guest."""
    assert lab.settled(lambda: os.path.exists(RECORD), True)
    assert lab.settled(lambda: guest.cpus(irqbalance_banned()) >= HELD, True, timeout=120)
    t0 = time.monotonic()
    time.sleep(IRQBALANCE_INTERVAL + 2)
    on_held = lab.settled(movable_on_held, {}, timeout=4 * IRQBALANCE_INTERVAL, interval=1)
    guest.record("movable IRQs on 6-7, %.0f s after irqbalance ran with the ban" % (time.monotonic() - t0),
                 on_held)
    guest.record("IRQs the kernel manages while %s occupies 6-7 (policyctl occupancy)" % a,
                 sorted(managed(), key=int))
    assert on_held == {}
    masks = {k: guest.read(p) for k, p in MASKS.items()}
    guest.record("default IRQ and workqueue masks while %s runs" % a, masks)
    assert all(int(v.replace(",", ""), 16) & 0xc0 == 0 for v in masks.values()), masks
    assert guest.cpus(irqbalance_banned()) >= HELD
    picture = lab.policyctl("occupancy").stdout
    assert "Kernel-managed IRQs on CPU 6 (they stay)" in picture, picture
    r = lab.policyctl("verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_quiet_cpus_follow_the_occupant(domains, quieting):
    a = domains("-a")
    assert lab.policyctl("cpuoccupy", "6-7", a).returncode == 0
    lab.virsh("start", a)
    check_quiet(a)
    lab.virsh("destroy", a)
    after = lab.settled(host_state, quieting)
    assert after == quieting
    # The updater drops its record once everything is given back: a moment after the masks.
    assert lab.settled(lambda: os.path.exists(RECORD), False) is False


def test_a_killed_applier_then_apply_all(domains, quieting):
    a = domains("-a")
    assert lab.policyctl("cpuoccupy", "6-7", a).returncode == 0
    offset = os.path.getsize(LOG) if os.path.exists(LOG) else 0
    start = subprocess.Popen(["virsh", "-c", lab.URI, "start", a], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    pid = None
    deadline = time.monotonic() + 30
    while pid is None and time.monotonic() < deadline:
        with open(LOG) as f:
            f.seek(offset)
            m = re.search(r"qemu %s start/begin: applier started \(pid (\d+)\)" % re.escape(a), f.read())
        pid = int(m.group(1)) if m else None
        time.sleep(0.01)
    assert pid, "no applier started"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # done already
    assert start.wait(timeout=120) == 0, start.stderr.read()
    r = lab.policyctl("apply", "--all")
    assert r.returncode == 0, r.stderr
    check_quiet(a)
    lab.virsh("destroy", a)
    lab.settled(lambda: os.path.exists(RECORD), False)
    assert lab.policyctl("apply", "--all").returncode == 0
    assert host_state() == quieting
