"""Quiet CPUs ([occupancy] housekeeping = yes), the pure part: given what the host's
files hold now (hostfiles.Snapshot's values), the CPUs to keep quiet and the record of
what was there before, which masks to write and which to give back.

Keys name what a mask belongs to (hostfiles.py reads and writes them):
  irq/N                /proc/irq/N/smp_affinity_list (a cpulist)
  irq/default          /proc/irq/default_smp_affinity (a hex mask): IRQs registered later
  workqueue            /sys/devices/virtual/workqueue/cpumask (hex): unbound workqueues
  workqueue/writeback  /sys/bus/workqueue/devices/writeback/cpumask (hex)
  kthread/PID/START    a movable kernel thread's affinity (a cpulist); START, its start
                       time, keeps a recycled PID from being taken for it

The record is {"saved": {key: text as read}, "applied": {key: text written},
"managed": {irq: CPUs}}: saved holds each original before it is first changed, byte for
byte, and is what a give-back writes.
"""

from .cpuset import CpuSet

HEX = ("irq/default", "workqueue", "workqueue/writeback")


def is_hex(key):
    return key in HEX


def parse(key, text):
    """The CPUs of a mask as the kernel prints it (an empty set for an empty mask)."""
    text = text.strip()
    if is_hex(key):
        digits = text.replace(",", "")
        number = int(digits, 16) if digits else 0
        return CpuSet(i for i in range(number.bit_length()) if number >> i & 1)
    return CpuSet.parse(text) if text else CpuSet()


def render(key, cpus):
    """The text to write: a cpulist, or a hex mask in the kernel's 32-bit groups."""
    if not is_hex(key):
        return str(cpus)
    number = sum(1 << c for c in cpus)
    digits = "%x" % number
    groups = []
    while len(digits) > 8:
        groups.insert(0, digits[-8:])
        digits = digits[:-8]
    return ",".join([digits] + groups)


def irq_of(key):
    """N for irq/N, else None."""
    if key.startswith("irq/") and key != "irq/default":
        return key[4:]
    return None


def empty_record():
    return {"saved": {}, "applied": {}, "managed": {}}


class Plan:
    """What update() should do, in this order: give back `restores` ([(key, saved
    text)]), record `originals` ({key: text}) before anything is written, write `writes`
    ([(key, text)]). `kept` {key: CPUs}: masks that would be empty without the held
    CPUs, left as they are; `gone`: recorded keys the host no longer has; `drift`
    [(key, now, wanted)]: a change of ours undone that is not to be repaired; `probes`
    [(key, its own text)]: IRQs kept on held CPUs, written their own mask again to learn
    whether the kernel manages them (the write fails) or not (nothing changes)."""

    __slots__ = ("held", "restores", "originals", "writes", "kept", "gone", "drift", "managed", "probes")

    def __init__(self, held):
        self.held = held
        self.restores, self.originals, self.writes, self.probes = [], {}, [], []
        self.kept, self.gone, self.drift = {}, [], []
        self.managed = {}

    def changes(self):
        return bool(self.restores or self.writes or self.gone)


def plan(values, held, record, repair=True):
    """The Plan that keeps `held` (a CpuSet; empty: give everything back) quiet.

    An IRQ or kernel thread is moved only while its mask reaches a held CPU or is still
    what we wrote (irqbalance may place it anywhere else: that is its job); the sysfs masks must equal the
    original without the held CPUs. A mask that would be empty keeps its own. An IRQ the
    kernel manages (record["managed"]: its write failed) is not tried again while held.
    An IRQ registered while ours was the default got our default: its original is the
    saved default (recorded as such, so that it gets it back). Without `repair`, a change
    of ours that was undone is only drift."""
    saved, applied = record["saved"], record["applied"]
    managed = record.get("managed", {})
    p = Plan(held)
    default = parse("irq/default", saved["irq/default"]) if "irq/default" in saved else None
    for key in sorted(set(saved) - set(values)):
        p.gone.append(key)
    for key in sorted(values):
        text = values[key]
        current = parse(key, text)
        adopted = False
        if key in saved:
            base, original = parse(key, saved[key]), saved[key]
        else:
            base, original = current, text
            if irq_of(key) is not None and default is not None and held and current == default - held:
                base, original, adopted = default, render(key, default) + "\n", True
        if not held or not base & held:
            if key in saved:
                p.restores.append((key, saved[key]))
            continue
        irq = irq_of(key)
        if irq is not None and irq in managed:
            p.managed[irq] = managed[irq]
            continue
        target = base - held
        if not target:
            p.kept[key] = base
            if key in saved:
                p.restores.append((key, saved[key]))
            elif irq is not None:
                p.probes.append((key, text.strip()))
            continue
        # Still as we wrote it for other held CPUs (a set stopped, another runs): the
        # CPUs freed are given back.
        ours = key in applied and parse(key, applied[key]) == current
        needed = adopted or (current != target if is_hex(key) or ours else bool(current & held))
        if not needed:
            continue
        if key in applied and not repair:
            p.drift.append((key, text.strip(), render(key, target)))
            continue
        if key not in saved:
            p.originals[key] = original
        p.writes.append((key, render(key, target)))
    return p


def irqbalance_env(admin, isolated, held):
    """The environment file that keeps irqbalance off `held` as well as off what it
    avoids now: the admin's IRQBALANCE_BANNED_CPULIST (or the deprecated hex
    IRQBALANCE_BANNED_CPUS), else, as irqbalance itself does without either, the
    isolated and adaptive-ticks CPUs (`isolated`). irqbalance reads BANNED_CPUS first
    when it is not empty, so ours is emptied."""
    own = CpuSet()
    if admin.get("IRQBALANCE_BANNED_CPUS"):
        own = parse("irq/default", admin["IRQBALANCE_BANNED_CPUS"])
    elif admin.get("IRQBALANCE_BANNED_CPULIST"):
        own = CpuSet.parse(admin["IRQBALANCE_BANNED_CPULIST"])
    else:
        own = isolated
    return "IRQBALANCE_BANNED_CPUS=\nIRQBALANCE_BANNED_CPULIST=%s\n" % (own | held)
