"""The table of tunables: every setting a policy can hold, declared once.

Pins are one map keyed by (kind, index). Each kind of pin is one row of PINS: its key
in a policy file, its libvirt setter and getter, its <cputune> element, its label in
messages, which drivers cannot put it in force. The scheduler settings, weight and cap,
are rows of SCHED. The model, the schema, the planner, the libvirt adapter, the
<cputune> writer and reader, drift, the CLI and `cpupolicy` iterate these rows: a new
tunable is a row and its tests (doc/design.md "One table of tunables").

Pure data and standard library only: the hook imports it.
"""

from __future__ import annotations

from .limits import CAP_MAX, MAX_IOTHREAD, MAX_VCPU, WEIGHT_DEFAULT, WEIGHT_MAX, WEIGHT_MIN

# For the checker alone: the hook imports this module, and `typing` costs ~10 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    from .cpuset import CpuSet

    class DomainFacts(Protocol):
        """What a row asks of a domain's facts (domxml.DomainFacts), named here so the
        table, below domxml, need not import it."""

        indexes: dict[str, tuple[int, ...]]

    # A pin's key: (kind, index), the emulator's index 0.
    PinKey = tuple[str, int]
    # One document's pins as JSON: {"0": "1-2"} for an indexed kind, "1-2" or None for one
    # per domain.
    PinsDoc = dict[str, "dict[str, str] | str | None"]


class PinKind:
    """One kind of thread libvirt can pin."""

    __slots__ = ("kind", "key", "command", "label", "what", "plural", "indexed", "first",
                 "max_index", "index_name", "index_word", "element", "attr", "setter", "getter",
                 "cannot", "order")

    def __init__(self, kind: str, key: str, label: str, what: str, plural: str, element: str,
                 setter: str, getter: str, cannot: dict[str, str], index_name: str | None = None,
                 attr: str | None = None, first: int = 0, max_index: int = 0) -> None:
        self.kind = kind              # "vcpu": the first half of a pin's key
        self.key = key                # "vcpupin": policy files, CLI command, `unset` word
        self.command = key
        self.label = label            # "vCPU": "vCPU 0", "emulator", "IOThread 1"
        self.what = what              # "vCPU pins": what a driver leaves out
        self.plural = plural          # "vCPUs": what is kept off occupied CPUs
        self.indexed = index_name is not None
        self.index_name = index_name  # "VCPU": the CLI's metavar; None for one per domain
        self.index_word = label if kind == "vcpu" else label + " ID"  # "invalid vCPU 5"
        self.first = first            # the lowest index (IOThread IDs start at 1)
        self.max_index = max_index
        self.element = element        # <cputune><vcpupin vcpu='0' cpuset='1'/>
        self.attr = attr
        self.setter = setter          # virDomainPinVcpuFlags (index, cpumap, flags)
        self.getter = getter          # and how it reads back: see virt.py
        self.cannot = cannot          # {driver: why libvirt's driver cannot put it in force}
        self.order = 0

    def name(self, index: int) -> str:
        """'vCPU 0', 'emulator', 'IOThread 1': one pin in messages."""
        return "%s %d" % (self.label, index) if self.indexed else self.label

    def subject(self, index: int, domain: str) -> str:
        """"vCPU 0 of 'vm'", "the emulator of 'vm'": a pin as the subject of a sentence."""
        return ("%s of '%s'" if self.indexed else "the %s of '%s'") % (self.name(index), domain)

    def indexes(self, facts: DomainFacts) -> tuple[int, ...] | None:
        """The indexes this kind has on a domain, or None when its XML is not known."""
        if not self.indexed:
            return (0,)
        known: tuple[int, ...] | None = facts.indexes.get(self.kind)
        return known

    def __repr__(self) -> str:
        return "PinKind(%r)" % self.kind


# What libvirt's drivers cannot pin (libvirt 9.0's LXC driver, measured: every pin call
# fails with "this function is not supported by the connection driver"; a container has
# no vCPU threads. libvirt's libxl driver implements neither virDomainPinEmulator nor
# virDomainPinIOThread.)
_LXC = "libvirt's LXC driver cannot pin"

VCPU = PinKind("vcpu", "vcpupin", "vCPU", "vCPU pins", "vCPUs", "vcpupin", "pinVcpuFlags",
               "vcpuPinInfo", {"lxc": _LXC}, index_name="VCPU", attr="vcpu", max_index=MAX_VCPU)
EMULATOR = PinKind("emulator", "emulatorpin", "emulator", "emulator pin", "emulator",
                   "emulatorpin", "pinEmulator", "emulatorPinInfo",
                   {"lxc": _LXC, "libxl": "libvirt's libxl driver cannot pin the emulator"})
IOTHREAD = PinKind("iothread", "iothreadpin", "IOThread", "IOThread pins", "IOThreads",
                   "iothreadpin", "pinIOThread", "ioThreadInfo",
                   {"lxc": _LXC, "libxl": "libvirt's libxl driver cannot pin IOThreads"},
                   index_name="IOTHREAD", attr="iothread", first=1, max_index=MAX_IOTHREAD)

PINS = (VCPU, EMULATOR, IOTHREAD)
for _i, _row in enumerate(PINS):
    _row.order = _i
PIN = {row.kind: row for row in PINS}
PIN_BY_KEY = {row.key: row for row in PINS}


def pin_order(key: PinKey) -> tuple[int, int]:
    """Sort key of a pin (kind, index): table order, then index."""
    return PIN[key[0]].order, key[1]


class SchedSetting:
    """One scheduler setting, with Xen credit semantics (mapping.py turns it into each
    driver's parameters). It carries its words: policyctl's help and what a change says."""

    __slots__ = ("key", "command", "label", "what", "lo", "hi", "default", "metavar", "per_host_cpu",
                 "help", "arg_help", "set_words", "unset_words")

    def __init__(self, key: str, command: str, label: str, lo: int, hi: int, default: int,
                 metavar: str, help: str, arg_help: str, set_words: str, unset_words: str,
                 per_host_cpu: bool = False) -> None:
        self.key = key              # "weight": policy files, `unset` word, sched_params()
        self.command = command      # "schedweight"
        self.label = label
        self.what = label           # what a driver leaves out, as for pins
        self.lo, self.hi = lo, hi
        self.default = default      # the value that puts libvirt's default back
        self.metavar = metavar
        self.per_host_cpu = per_host_cpu  # at most 100 per host CPU (the cap)
        self.help = help            # policyctl's one line for the command
        self.arg_help = arg_help    # and for its value
        self.set_words = set_words  # "weight %d": what a change says, {0: ...} for 0's own words
        self.unset_words = unset_words

    def words(self, value: int | None) -> str:
        """'weight 512', 'cap 50% of one CPU', 'cap 0 (no cap)'; None: the unset words."""
        if value is None:
            return self.unset_words
        if value == 0 and self.lo == 0:
            return "%s 0 (no %s)" % (self.label, self.label)
        return self.set_words % value

    def __repr__(self) -> str:
        return "SchedSetting(%r)" % self.key


WEIGHT = SchedSetting("weight", "schedweight", "weight", WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT,
                      "WEIGHT", "set a domain's CPU weight (Xen credit: %d-%d, default %d)"
                      % (WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT),
                      "relative weight, %d-%d; 512 gets twice the CPU time of 256 under contention"
                      % (WEIGHT_MIN, WEIGHT_MAX),
                      "weight %d", "weight unset (default %d)" % WEIGHT_DEFAULT)
CAP = SchedSetting("cap", "schedcap", "cap", 0, CAP_MAX, 0, "CAP",
                   "cap a domain's CPU time (percent of one physical CPU, 0 = none)",
                   "50 = half a CPU, 400 = four CPUs, 0 = no cap",
                   "cap %d%% of one CPU", "cap unset (no cap)", per_host_cpu=True)
SCHED = (WEIGHT, CAP)
SCHED_BY_KEY = {row.key: row for row in SCHED}


class VcpuSched:
    """Real-time scheduling of a domain's vCPU threads, one value per vCPU: "fifo:10",
    "rr:5" (SCHED_FIFO, SCHED_RR with a priority 1..99) or "other" (the kernel's default,
    which puts a real-time vCPU back). libvirt has <vcpusched> in the definition but no
    live call: live, the policy is set on the vCPU threads themselves (vcputhreads.py)."""

    __slots__ = ("kind", "key", "command", "label", "what", "plural", "element", "cannot",
                 "policies", "realtime", "lo", "hi", "default", "max_index", "index_word",
                 "help", "order")

    def __init__(self) -> None:
        self.kind = "vcpu"
        self.key = self.command = "vcpusched"
        self.label = "vCPU scheduler"
        self.what = "real-time vCPUs"
        self.plural = "vCPUs"
        self.element = "vcpusched"     # <cputune><vcpusched vcpus='0' scheduler='fifo' priority='10'/>
        self.cannot = {"lxc": "a container has no vCPU threads",
                       "libxl": "Xen schedules its vCPUs itself; libvirt's libxl driver has no "
                                "<vcpusched>"}
        self.policies = ("fifo", "rr", "other")
        self.realtime = ("fifo", "rr")
        self.lo, self.hi = 1, 99       # priorities of SCHED_FIFO and SCHED_RR (sched(7))
        self.default = "other"
        self.max_index = MAX_VCPU
        self.index_word = "vCPU"
        self.help = "set the scheduling policy of a domain's vCPU threads (real-time: fifo, rr)"
        self.order = len(PINS)

    def value(self, policy: str, priority: int | None) -> str:
        """The stored form: 'fifo:10', 'other'."""
        return "%s:%d" % (policy, priority) if policy in self.realtime and priority is not None else policy

    def split(self, value: str) -> tuple[str, int | None]:
        """('fifo', 10) from 'fifo:10'; ('other', None) from 'other'."""
        policy, _, priority = value.partition(":")
        return policy, int(priority) if priority else None

    def problem(self, value: object) -> str | None:
        """Why `value` is not a stored vCPU scheduler value, or None."""
        if not isinstance(value, str):
            return "not a string"
        policy, sep, priority = value.partition(":")
        if policy not in self.policies:
            return "the policy is not one of %s" % ", ".join(self.policies)
        if policy not in self.realtime:
            return "'other' takes no priority" if sep else None
        if not (priority.isascii() and priority.isdigit()) or priority != str(int(priority)):
            return "%s needs a priority, %s:%d..%d" % (policy, policy, self.lo, self.hi)
        if not self.lo <= int(priority) <= self.hi:
            return "priority %s is not in %d..%d" % (priority, self.lo, self.hi)
        return None

    def is_realtime(self, value: str) -> bool:
        return self.split(value)[0] in self.realtime

    def words(self, index: int | None, value: str | None) -> str:
        """'vCPU 0 scheduled fifo, priority 10', 'real-time vCPUs unset'."""
        if value is None:
            return ("vCPU %d scheduler unset (other)" % index if index is not None
                    else "vCPU schedulers unset (other)")
        policy, priority = self.split(value)
        return "vCPU %d scheduled %s%s" % (index or 0, policy,
                                           "" if priority is None else ", priority %d" % priority)

    def __repr__(self) -> str:
        return "VcpuSched(%r)" % self.key


VCPUSCHED = VcpuSched()

# Every setting by its key, in the order messages list them.
SETTINGS: dict[str, PinKind | SchedSetting | VcpuSched] = {row.key: row for row in PINS + SCHED}
SETTINGS[VCPUSCHED.key] = VCPUSCHED


def cannot(driver: str) -> dict[str, str]:
    """{setting key: why} for what libvirt's `driver` can never put in force."""
    found = {row.key: row.cannot[driver] for row in PINS if driver in row.cannot}
    if driver in VCPUSCHED.cannot:
        found[VCPUSCHED.key] = VCPUSCHED.cannot[driver]
    return found


def pins_doc(pins: Mapping[PinKey, CpuSet], omit_empty: bool = False) -> PinsDoc:
    """{(kind, index): CpuSet} as JSON, one key per kind of the table: indexed kinds as
    {"index": "cpulist"}, the emulator as "cpulist" (or {} / None when unset, unless
    `omit_empty` leaves those out, as policy files do)."""
    doc: PinsDoc = {}
    for row in PINS:
        mine = {i: c for (k, i), c in pins.items() if k == row.kind}
        if omit_empty and not mine:
            continue
        if row.indexed:
            doc[row.key] = {str(i): str(mine[i]) for i in sorted(mine)}
        else:
            doc[row.key] = str(mine[0]) if mine else None
    return doc
