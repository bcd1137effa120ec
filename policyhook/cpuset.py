"""CpuSet: a set of physical CPU numbers with virsh's cpulist syntax.

Syntax (as `virsh vcpupin` takes it): comma-separated items, each a CPU number
`N`, a range `N-M` (N <= M), or an exclusion `^N` / `^N-M` that removes CPUs named
before it. Parsing is strict: empty items, reversed ranges, stray characters,
numbers beyond MAX_CPU and a result with no CPU are errors, never an empty set.
"""

from __future__ import annotations

from .errors import PolicyError, invalid, quote

# The types are for the checker alone: the hook imports this module, and `typing` would
# cost it about 10 ms at every domain start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# libvirt's VIR_DOMAIN_CPUMASK_LEN is 8192 bits.
MAX_CPU = 8191


def _number(text: str, whole: str, what: str = "cpulist") -> int:
    if not text.isdigit() or not text.isascii():
        raise invalid("invalid %s %s: %s is not a CPU number" % (what, quote(whole), quote(text)))
    if len(text) > 1 and text[0] == "0":
        raise invalid("invalid %s %s: %s has a leading zero" % (what, quote(whole), quote(text)))
    # Compare lengths first: int() refuses strings of more than 4300 digits (ValueError).
    if len(text) > len(str(MAX_CPU)) or int(text) > MAX_CPU:
        raise invalid("invalid %s %s: CPU %s is above the maximum %d"
                      % (what, quote(whole), text if len(text) <= 20 else text[:17] + "...", MAX_CPU))
    return int(text)


def ranges(numbers: Iterable[int]) -> str:
    """'0-2,5': sorted numbers as ranges, as cpulists are written."""
    ordered = sorted(numbers)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else "%d-%d" % (ordered[i], ordered[j]))
        i = j + 1
    return ",".join(parts)


class CpuSet:
    """An immutable set of CPU numbers."""

    __slots__ = ("_cpus",)

    def __init__(self, cpus: Iterable[int] = ()) -> None:
        frozen = frozenset(cpus)
        for cpu in frozen:
            if not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu <= MAX_CPU:
                raise invalid("CPU %r is not a number from 0 to %d" % (cpu, MAX_CPU))
        self._cpus = frozen

    @classmethod
    def parse(cls, text: object, what: str = "cpulist") -> CpuSet:
        """The CPUs a cpulist names (virsh syntax: '0-3,^2,8'); INVALID saying what is
        wrong, the argument called `what` ('cpulist', or 'VCPUS' for a list of vCPUs)."""
        if not isinstance(text, str):
            raise invalid("invalid %s %s: not a string" % (what, quote(text)))
        whole = text
        text = text.strip()
        if not text:
            raise invalid("invalid %s %s: it is empty" % (what, quote(whole)))
        cpus: set[int] = set()
        items = text.split(",")
        for index, item in enumerate(items):
            item = item.strip()
            if not item:
                where = ("leading comma" if index == 0 else "trailing comma"
                         if index == len(items) - 1 else "empty item between commas")
                raise invalid("invalid %s %s: %s" % (what, quote(whole), where))
            named = item
            exclude = item.startswith("^")
            if exclude:
                item = item[1:]
            first, sep, last = item.partition("-")
            if not first.strip() or (sep and not last.strip()):
                raise invalid("invalid %s %s: %s is missing a CPU number"
                              % (what, quote(whole), quote(named)))
            lo = _number(first.strip(), whole, what)
            hi = _number(last.strip(), whole, what) if sep else lo
            if hi < lo:
                raise invalid("invalid %s %s: range %d-%d is reversed" % (what, quote(whole), lo, hi))
            span = range(lo, hi + 1)
            if exclude:
                cpus.difference_update(span)
            else:
                cpus.update(span)
        if not cpus:
            raise invalid("invalid %s %s: it names no CPU" % (what, quote(whole)))
        return cls(cpus)

    @classmethod
    def from_bools(cls, flags: Iterable[object]) -> CpuSet:
        """From a libvirt cpumap tuple such as vcpuPinInfo() returns."""
        return cls(i for i, on in enumerate(flags) if on)

    @classmethod
    def range(cls, count: int) -> CpuSet:
        return cls(range(count))

    def to_bools(self, length: int) -> tuple[bool, ...]:
        """A libvirt cpumap tuple of `length` entries."""
        if self._cpus and max(self._cpus) >= length:
            raise invalid("CPU %d does not exist (host has %d CPUs)" % (max(self._cpus), length))
        return tuple(i in self._cpus for i in range(length))

    def __str__(self) -> str:
        return ranges(self._cpus)

    def __repr__(self) -> str:
        return "CpuSet(%r)" % str(self)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._cpus))

    def __len__(self) -> int:
        return len(self._cpus)

    def __contains__(self, cpu: object) -> bool:
        return cpu in self._cpus

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CpuSet) and self._cpus == other._cpus

    def __hash__(self) -> int:
        return hash(self._cpus)

    def __bool__(self) -> bool:
        return bool(self._cpus)

    def __or__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus | other._cpus)

    def __and__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus & other._cpus)

    def __sub__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus - other._cpus)

    def issubset(self, other: CpuSet) -> bool:
        return self._cpus <= other._cpus

    def max(self) -> int | None:
        return max(self._cpus) if self._cpus else None


def is_canonical(text: object) -> bool:
    """True when `text` is a cpulist in the form we store (what str() gives)."""
    try:
        return str(CpuSet.parse(text)) == text
    except PolicyError:
        return False
