"""Policy values and their strict, standard-library loader.

The hook reads policy files with `domain_from_doc` / `host_from_doc` rather than
jsonschema, which costs ~75 ms to import on every hook call. These loaders accept
exactly the documents `schema.py` accepts; tests/test_schema_agreement.py holds
them to that on random documents. Messages are JSON-path prefixed like
jsonschema's, so an admin sees the same kind of error either way.
"""

from __future__ import annotations

from .cpuset import CpuSet
from .errors import PolicyError, invalid, quote
from .limits import MAX_CPU, SCHEMA_VERSION, index_problem
from .names import name_problem
from .tunables import PINS, SCHED, VCPUSCHED, pin_order, pins_doc

# For the checker alone: the hook imports this module, and `typing` costs ~10 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import NoReturn

    from typing_extensions import TypeGuard

    from .tunables import PinKey


class DomainPolicy:
    """One domain's stored policy: pins keyed (kind, index) (tunables.PINS; the emulator's
    index is 0), scheduler settings keyed by name (tunables.SCHED) and the vCPU threads'
    scheduling policies keyed by vCPU (tunables.VCPUSCHED)."""

    __slots__ = ("domain", "pins", "sched", "uuid", "vcpusched")

    def __init__(self, domain: str, pins: Mapping[PinKey, CpuSet] | None = None,
                 sched: Mapping[str, int] | None = None, uuid: str | None = None,
                 vcpusched: Mapping[int, str] | None = None) -> None:
        self.domain = domain
        self.pins = dict(pins or {})    # (kind, index) -> CpuSet
        self.sched = dict(sched or {})  # "weight" / "cap" -> int
        self.uuid = uuid
        self.vcpusched = dict(vcpusched or {})  # vCPU -> "fifo:10", "rr:1", "other"

    def pins_of(self, kind: str) -> dict[int, CpuSet]:
        """{index: CpuSet} of one kind of pin."""
        return {i: c for (k, i), c in self.pins.items() if k == kind}

    def is_empty(self) -> bool:
        return not self.pins and not self.sched and not self.vcpusched

    def bound_elsewhere(self, uuid: str | None) -> bool:
        """True when this policy was recorded for a domain with another UUID than `uuid`
        (a different domain that took the name): it must not be applied to it."""
        return bool(self.uuid and uuid and self.uuid.lower() != uuid.lower())

    def to_doc(self) -> dict[str, object]:
        doc: dict[str, object] = {"version": SCHEMA_VERSION, "domain": self.domain}
        if self.uuid:
            doc["uuid"] = self.uuid
        doc.update(pins_doc(self.pins, omit_empty=True))
        for row in SCHED:
            if row.key in self.sched:
                doc[row.key] = self.sched[row.key]
        if self.vcpusched:
            doc[VCPUSCHED.key] = {str(i): self.vcpusched[i] for i in sorted(self.vcpusched)}
        return doc

    def copy(self) -> DomainPolicy:
        return DomainPolicy(self.domain, self.pins, self.sched, self.uuid, self.vcpusched)

    def sorted_pins(self) -> list[tuple[PinKey, CpuSet]]:
        return sorted(self.pins.items(), key=lambda kv: pin_order(kv[0]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DomainPolicy) and self.to_doc() == other.to_doc()

    def __repr__(self) -> str:
        return "DomainPolicy(%r)" % (self.to_doc(),)


class HostPolicy:
    """Host-wide policy: which domains own which physical CPUs exclusively."""

    __slots__ = ("occupancy",)

    def __init__(self, occupancy: Mapping[int, Iterable[str]] | None = None) -> None:
        # pCPU -> tuple of domain names, kept sorted for stable output.
        self.occupancy = {int(c): tuple(sorted(set(d))) for c, d in (occupancy or {}).items()}

    def occupied(self) -> CpuSet:
        return CpuSet(self.occupancy)

    def occupied_by_others(self, name: str) -> CpuSet:
        """pCPUs `name` must stay off: occupied by sets it is not part of."""
        return CpuSet(c for c, doms in self.occupancy.items() if name not in doms)

    def occupies(self, name: str) -> list[int]:
        return sorted(c for c, doms in self.occupancy.items() if name in doms)

    def active(self, running: Iterable[str]) -> HostPolicy:
        """The sets with at least one of `running` in them ([occupancy] mode = running:
        CPUs are kept from others only while one of their occupants runs)."""
        names = set(running)
        return HostPolicy({c: doms for c, doms in self.occupancy.items() if names & set(doms)})

    def is_empty(self) -> bool:
        return not self.occupancy

    def replacing(self, name: str, stand_in: str) -> HostPolicy:
        """This occupancy with `stand_in` for `name` in every set: for a domain that only
        shares the name of the one the sets were meant for (another UUID), which must be
        kept off their CPUs as any other domain."""
        return HostPolicy({c: [stand_in if d == name else d for d in doms]
                           for c, doms in self.occupancy.items()})

    def renamed(self, old: str, new: str) -> HostPolicy:
        return HostPolicy({c: [new if d == old else d for d in doms] for c, doms in self.occupancy.items()})

    def to_doc(self) -> dict[str, object]:
        return {"version": SCHEMA_VERSION,
                "cpuoccupy": {str(c): list(self.occupancy[c]) for c in sorted(self.occupancy)}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostPolicy) and self.occupancy == other.occupancy

    def __repr__(self) -> str:
        return "HostPolicy(%r)" % (self.occupancy,)


# ---- strict loader ---------------------------------------------------------

def _fail(path: str, message: str) -> NoReturn:
    raise invalid("%s: %s" % (path, message))


def _integer(value: object, path: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(path, "%s is not an integer" % _show(value))
    if not lo <= value <= hi:
        _fail(path, "%d is not in %d..%d" % (value, lo, hi))
    return value


# Canonical cpulists already seen: a registry of many files repeats a few ("0", "0-1"),
# and CpuSet is immutable, so one parse serves them all. Bounded, for hostile input.
_CANONICAL: dict[str, CpuSet] = {}


def _cpulist(value: object, path: str) -> CpuSet:
    if not isinstance(value, str):
        _fail(path, "%s is not a cpulist string" % _show(value))
    cached = _CANONICAL.get(value)
    if cached is not None:
        return cached
    try:
        cpus = CpuSet.parse(value)
    except PolicyError as e:
        _fail(path, str(e))
    if str(cpus) != value:
        _fail(path, "%s is not in canonical form (write '%s')" % (_show(value), cpus))
    if len(_CANONICAL) < 4096:
        _CANONICAL[value] = cpus
    return cpus


def _object(value: object, path: str, allowed: Iterable[str],
            required: Iterable[str]) -> dict[str, object]:
    """`value` as a JSON object with only `allowed` keys and every `required` one."""
    if not isinstance(value, dict):
        _fail(path, "%s is not an object" % _show(value))
    for key in value:
        if key not in allowed:
            _fail(path, "unknown key %s" % _show(key))
    for key in required:
        if key not in value:
            _fail(path, "'%s' is required" % key)
    return value


def _version(doc: Mapping[str, object]) -> None:
    version = doc["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != SCHEMA_VERSION:
        _fail("$.version", "%s is not a supported version (this policyhook reads %d)"
              % (_show(doc["version"]), SCHEMA_VERSION))


def _show(value: object) -> str:
    shown: str = quote(value)
    return shown


DOMAIN_KEYS = ("version", "domain", "uuid") + tuple(r.key for r in PINS) + tuple(r.key for r in SCHED) \
    + (VCPUSCHED.key,)


def domain_from_doc(doc: object) -> DomainPolicy:
    """A DomainPolicy from a parsed document, or INVALID naming what is wrong."""
    doc = _object(doc, "$", DOMAIN_KEYS, ("version", "domain"))
    _version(doc)
    name = doc["domain"]
    problem = name_problem(name)
    if problem or not isinstance(name, str):   # name_problem refuses every non-string
        _fail("$.domain", "%s is not a valid domain name: %s" % (_show(name), problem))
    uuid: str | None = None
    if "uuid" in doc:
        given = doc["uuid"]
        if not _is_uuid(given):
            _fail("$.uuid", "%s is not a UUID" % _show(given))
        uuid = given
    pins = {}
    for row in PINS:
        if row.key not in doc:
            continue
        raw = doc[row.key]
        path = "$." + row.key
        if not row.indexed:
            pins[(row.kind, 0)] = _cpulist(raw, path)
            continue
        if not isinstance(raw, dict):
            _fail(path, "%s is not an object" % _show(raw))
        for key, value in raw.items():
            problem = index_problem(key, row.max_index, row.first)
            if problem:
                _fail(path, "%s is not %s number (%s)" % (_show(key), _article(row.label), problem))
            pins[(row.kind, int(key))] = _cpulist(value, "%s.%s" % (path, key))
    sched = {row.key: _integer(doc[row.key], "$." + row.key, row.lo, row.hi)
             for row in SCHED if row.key in doc}
    return DomainPolicy(name, pins, sched, uuid, _vcpusched(doc))


def _vcpusched(doc: Mapping[str, object]) -> dict[int, str]:
    row = VCPUSCHED
    path = "$." + row.key
    raw = doc.get(row.key, {})
    if not isinstance(raw, dict):
        _fail(path, "%s is not an object" % _show(raw))
    found = {}
    for key, value in raw.items():
        problem = index_problem(key, row.max_index)
        if problem:
            _fail(path, "%s is not a vCPU number (%s)" % (_show(key), problem))
        problem = row.problem(value)
        if problem:
            _fail("%s.%s" % (path, key), "%s is not a vCPU scheduler (%s)" % (_show(value), problem))
        found[int(key)] = value
    return found


def _article(label: str) -> str:
    return ("an " if label[:1] in "aeiouAEIO" else "a ") + label


def host_from_doc(doc: object) -> HostPolicy:
    """A HostPolicy from a parsed document, or INVALID naming what is wrong."""
    doc = _object(doc, "$", ("version", "cpuoccupy"), ("version",))
    _version(doc)
    occupancy = {}
    raw = doc.get("cpuoccupy", {})
    if not isinstance(raw, dict):
        _fail("$.cpuoccupy", "%s is not an object" % _show(raw))
    for key, names in raw.items():
        problem = index_problem(key, MAX_CPU)
        if problem:
            _fail("$.cpuoccupy", "%s is not a CPU number (%s)" % (_show(key), problem))
        path = "$.cpuoccupy.%s" % key
        if not isinstance(names, list) or not names:
            _fail(path, "%s is not a non-empty list of domain names" % _show(names))
        seen = set()
        for i, name in enumerate(names):
            problem = name_problem(name)
            if problem:
                _fail("%s[%d]" % (path, i), "%s is not a valid domain name: %s" % (_show(name), problem))
            if name in seen:
                _fail(path, "%s is listed twice" % _show(name))
            seen.add(name)
        occupancy[int(key)] = names
    return HostPolicy(occupancy)


_HEX = frozenset("0123456789abcdefABCDEF")


def _is_uuid(value: object) -> TypeGuard[str]:
    if not isinstance(value, str) or len(value) != 36:
        return False
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(set(p) <= _HEX for p in parts)
