"""Policy values and their strict, standard-library loader.

The hook reads policy files with `domain_from_doc` / `host_from_doc` rather than
jsonschema, which costs ~75 ms to import on every hook call. These loaders accept
exactly the documents `schema.py` accepts; tests/test_schema_agreement.py holds
them to that on random documents. Messages are JSON-path prefixed like
jsonschema's, so an admin sees the same kind of error either way.
"""

from .cpuset import CpuSet
from .errors import PolicyError, invalid, quote
from .limits import MAX_CPU, SCHEMA_VERSION, index_problem
from .names import name_problem
from .tunables import PINS, SCHED, pin_order, pins_doc


class DomainPolicy:
    """One domain's stored policy: pins keyed (kind, index) (tunables.PINS; the emulator's
    index is 0) and scheduler settings keyed by name (tunables.SCHED)."""

    __slots__ = ("domain", "pins", "sched", "uuid")

    def __init__(self, domain, pins=None, sched=None, uuid=None):
        self.domain = domain
        self.pins = dict(pins or {})    # (kind, index) -> CpuSet
        self.sched = dict(sched or {})  # "weight" / "cap" -> int
        self.uuid = uuid

    def pins_of(self, kind):
        """{index: CpuSet} of one kind of pin."""
        return {i: c for (k, i), c in self.pins.items() if k == kind}

    def is_empty(self):
        return not self.pins and not self.sched

    def bound_elsewhere(self, uuid):
        """True when this policy was recorded for a domain with another UUID than `uuid`
        (a different domain that took the name): it must not be applied to it."""
        return bool(self.uuid and uuid and self.uuid.lower() != uuid.lower())

    def to_doc(self):
        doc = {"version": SCHEMA_VERSION, "domain": self.domain}
        if self.uuid:
            doc["uuid"] = self.uuid
        doc.update(pins_doc(self.pins, omit_empty=True))
        for row in SCHED:
            if row.key in self.sched:
                doc[row.key] = self.sched[row.key]
        return doc

    def copy(self):
        return DomainPolicy(self.domain, self.pins, self.sched, self.uuid)

    def sorted_pins(self):
        return sorted(self.pins.items(), key=lambda kv: pin_order(kv[0]))

    def __eq__(self, other):
        return isinstance(other, DomainPolicy) and self.to_doc() == other.to_doc()

    def __repr__(self):
        return "DomainPolicy(%r)" % (self.to_doc(),)


class HostPolicy:
    """Host-wide policy: which domains own which physical CPUs exclusively."""

    __slots__ = ("occupancy",)

    def __init__(self, occupancy=None):
        # pCPU -> tuple of domain names, kept sorted for stable output.
        self.occupancy = {int(c): tuple(sorted(set(d))) for c, d in (occupancy or {}).items()}

    def occupied(self):
        return CpuSet(self.occupancy)

    def occupied_by_others(self, name):
        """pCPUs `name` must stay off: occupied by sets it is not part of."""
        return CpuSet(c for c, doms in self.occupancy.items() if name not in doms)

    def occupies(self, name):
        return sorted(c for c, doms in self.occupancy.items() if name in doms)

    def active(self, running):
        """The sets with at least one of `running` in them ([occupancy] mode = running:
        CPUs are kept from others only while one of their occupants runs)."""
        running = set(running)
        return HostPolicy({c: doms for c, doms in self.occupancy.items() if running & set(doms)})

    def is_empty(self):
        return not self.occupancy

    def replacing(self, name, stand_in):
        """This occupancy with `stand_in` for `name` in every set: for a domain that only
        shares the name of the one the sets were meant for (another UUID), which must be
        kept off their CPUs as any other domain."""
        return HostPolicy({c: [stand_in if d == name else d for d in doms]
                           for c, doms in self.occupancy.items()})

    def renamed(self, old, new):
        return HostPolicy({c: [new if d == old else d for d in doms] for c, doms in self.occupancy.items()})

    def to_doc(self):
        return {"version": SCHEMA_VERSION,
                "cpuoccupy": {str(c): list(self.occupancy[c]) for c in sorted(self.occupancy)}}

    def __eq__(self, other):
        return isinstance(other, HostPolicy) and self.occupancy == other.occupancy

    def __repr__(self):
        return "HostPolicy(%r)" % (self.occupancy,)


# ---- strict loader ---------------------------------------------------------

def _fail(path, message):
    raise invalid("%s: %s" % (path, message))


def _integer(value, path, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(path, "%s is not an integer" % _show(value))
    if not lo <= value <= hi:
        _fail(path, "%d is not in %d..%d" % (value, lo, hi))
    return value


# Canonical cpulists already seen: a registry of many files repeats a few ("0", "0-1"),
# and CpuSet is immutable, so one parse serves them all. Bounded, for hostile input.
_CANONICAL = {}


def _cpulist(value, path):
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


def _object(value, path, allowed, required):
    if not isinstance(value, dict):
        _fail(path, "%s is not an object" % _show(value))
    for key in value:
        if key not in allowed:
            _fail(path, "unknown key %s" % _show(key))
    for key in required:
        if key not in value:
            _fail(path, "'%s' is required" % key)


def _version(doc):
    version = doc["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != SCHEMA_VERSION:
        _fail("$.version", "%s is not a supported version (this policyhook reads %d)"
              % (_show(doc["version"]), SCHEMA_VERSION))


def _show(value):
    return quote(value)


DOMAIN_KEYS = ("version", "domain", "uuid") + tuple(r.key for r in PINS) + tuple(r.key for r in SCHED)


def domain_from_doc(doc):
    """A DomainPolicy from a parsed document, or INVALID naming what is wrong."""
    _object(doc, "$", DOMAIN_KEYS, ("version", "domain"))
    _version(doc)
    name = doc["domain"]
    problem = name_problem(name)
    if problem:
        _fail("$.domain", "%s is not a valid domain name: %s" % (_show(name), problem))
    uuid = doc.get("uuid")
    if "uuid" in doc and not _is_uuid(uuid):
        _fail("$.uuid", "%s is not a UUID" % _show(uuid))
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
    return DomainPolicy(name, pins, sched, uuid)


def _article(label):
    return ("an " if label[:1] in "aeiouAEIO" else "a ") + label


def host_from_doc(doc):
    """A HostPolicy from a parsed document, or INVALID naming what is wrong."""
    _object(doc, "$", ("version", "cpuoccupy"), ("version",))
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


def _is_uuid(value):
    if not isinstance(value, str) or len(value) != 36:
        return False
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(set(p) <= _HEX for p in parts)
