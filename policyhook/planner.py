"""The planner: policy + host + domain facts -> the concrete pins and parameters.

Pure: no files, no libvirt, no words but a refusal's. A refusal is a CONFLICT error
whose message says why; everything else comes back as records (Plan, Note, Lost,
Drift) that the CLI, the log and `cpupolicy` put into words (describe.py).

Effective pins (doc/design.md "Semantics"), for every kind of pin in tunables.PINS: a
thread's base set is its policy pin, else the pin already in the domain's XML, else
every host CPU; its effective set is the base minus the CPUs occupied by sets the
domain is not part of. So an occupant keeps its own pins, and an occupant with no
pins runs on its occupied CPUs plus the shared ones. When nothing is occupied by
others, the plan pins only what the policy pins and libvirt's own placement stands.

What the domain's driver cannot put in force (mapping.unsupported: pins on LXC, the
emulator and IOThread pins on libxl, weight and cap under a Xen scheduler other than
credit) is left out of the plan and listed in Plan.unsupported, never dropped
silently; it is not checked against the domain or the host either, since it never
takes effect.
"""

from __future__ import annotations

from .cpuset import CpuSet
from .errors import conflict
from .limits import count_phrase
from .mapping import is_quota, quota_is_unlimited, sched_params, sets, unsupported
from .tunables import PIN, PIN_BY_KEY, PINS, SCHED, VCPUSCHED, pin_order, pins_doc

# For the checker alone: the hook imports this module, and `typing` costs ~10 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from .domxml import DomainFacts
    from .model import DomainPolicy, HostPolicy
    from .tunables import PinKey, PinKind


class Note:
    """A pin whose effective set is its base minus CPUs occupied by other domains."""

    __slots__ = ("pin", "base", "removed", "owners")

    def __init__(self, pin: PinKey, base: CpuSet, removed: CpuSet, owners: Iterable[str]) -> None:
        self.pin = pin            # (kind, index)
        self.base = base          # CpuSet: the policy's or the XML's pin
        self.removed = removed    # CpuSet taken out of it
        self.owners = tuple(owners)

    def to_doc(self) -> dict[str, object]:
        kind, index = self.pin
        return {"pin": PIN[kind].key, "index": index if PIN[kind].indexed else None,
                "base": str(self.base), "removed": str(self.removed), "owners": list(self.owners)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Note:
        row = PIN_BY_KEY[doc["pin"]]
        return cls((row.kind, doc["index"] or 0), CpuSet.parse(doc["base"]),
                   CpuSet.parse(doc["removed"]), doc["owners"])


class Lost:
    """A setting the domain's driver cannot put in force; with `kept_off`, the CPUs
    occupied by others that this kind of thread cannot be kept off."""

    __slots__ = ("setting", "reason", "kept_off")

    def __init__(self, setting: str, reason: str, kept_off: CpuSet | None = None) -> None:
        self.setting = setting    # a tunables key: "vcpupin", "weight"
        self.reason = reason
        self.kept_off = kept_off

    def to_doc(self) -> dict[str, object]:
        return {"setting": self.setting, "reason": self.reason,
                "kept_off": None if self.kept_off is None else str(self.kept_off)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Lost:
        return cls(doc["setting"], doc["reason"],
                   None if doc.get("kept_off") is None else CpuSet.parse(doc["kept_off"]))


class Drift:
    """A live value that differs from the plan: a pin (kind, index), a parameter, or a
    vCPU's scheduling policy (param "vcpusched" with the vCPU's `index`)."""

    __slots__ = ("pin", "param", "want", "have", "index")

    def __init__(self, pin: PinKey | None = None, param: str | None = None,
                 want: CpuSet | int | str | None = None, have: CpuSet | int | str | None = None,
                 index: int | None = None) -> None:
        self.pin = pin
        self.param = param
        self.want = want
        self.have = have
        self.index = index

    def to_doc(self) -> dict[str, object]:
        if self.pin is not None:
            row = PIN[self.pin[0]]
            return {"setting": row.key, "index": self.pin[1] if row.indexed else None,
                    "policy": str(self.want), "live": None if self.have is None else str(self.have)}
        return {"setting": self.param, "index": self.index, "policy": self.want, "live": self.have}


class Live:
    """What is in force on a running domain, as libvirt reports it."""

    __slots__ = ("pins", "sched", "offline", "vcpusched")

    def __init__(self, pins: Mapping[PinKey, CpuSet] | None = None, sched: Mapping[str, int] | None = None,
                 offline: Iterable[PinKey] = (), vcpusched: Mapping[int, str] | None = None) -> None:
        self.pins = dict(pins or {})    # (kind, index) -> CpuSet
        self.sched = dict(sched or {})  # libvirt's scheduler parameters
        self.offline = frozenset(offline)  # pins of threads not running now (offline vCPUs)
        # vCPU -> "fifo:10", "other", ... as the vCPU threads have it; None when not known
        # (libvirt cannot tell: vcputhreads.py reads the threads of a local domain only)
        self.vcpusched = None if vcpusched is None else dict(vcpusched)

    def pins_of(self, kind: str) -> dict[int, CpuSet]:
        return {i: c for (k, i), c in self.pins.items() if k == kind}


class Plan:
    """What to put in force on one domain."""

    __slots__ = ("domain", "driver", "pins", "sched", "kept_off", "notes", "unsupported", "elsewhere",
                 "vcpusched")

    def __init__(self, domain: str, driver: str, pins: Mapping[PinKey, CpuSet] | None = None,
                 sched: Mapping[str, int] | None = None, kept_off: CpuSet | None = None,
                 notes: Iterable[Note] | None = None, unsupported: Iterable[Lost] | None = None,
                 elsewhere: str | None = None, vcpusched: Mapping[int, str] | None = None) -> None:
        self.domain = domain
        self.driver = driver
        self.pins = dict(pins or {})         # (kind, index) -> CpuSet
        self.sched = dict(sched or {})       # libvirt scheduler parameters
        self.kept_off = kept_off             # CpuSet occupied by others, kept off; or None
        self.notes = list(notes or [])       # [Note]
        self.unsupported = list(unsupported or [])  # [Lost]
        # The UUID the stored policy was recorded for, when the domain is another one of
        # the same name: the policy is not applied and the domain counts as a stranger.
        self.elsewhere = elsewhere
        self.vcpusched = dict(vcpusched or {})   # vCPU -> "fifo:10", "other" (tunables.VCPUSCHED)

    def is_empty(self) -> bool:
        return not self.pins and not self.sched and not self.vcpusched

    def sorted_pins(self) -> list[tuple[PinKey, CpuSet]]:
        return sorted(self.pins.items(), key=lambda kv: pin_order(kv[0]))

    def pins_of(self, kind: str) -> dict[int, CpuSet]:
        return {i: c for (k, i), c in self.pins.items() if k == kind}

    def to_doc(self) -> dict[str, object]:
        doc: dict[str, object] = {"domain": self.domain, "driver": self.driver}
        doc.update(pins_doc(self.pins))
        doc["sched"] = dict(sorted(self.sched.items()))
        doc["kept_off"] = None if self.kept_off is None else str(self.kept_off)
        doc["notes"] = [n.to_doc() for n in self.notes]
        doc["unsupported"] = [u.to_doc() for u in self.unsupported]
        doc["policy_uuid_differs"] = self.elsewhere
        doc[VCPUSCHED.key] = {str(i): self.vcpusched[i] for i in sorted(self.vcpusched)}
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Plan:
        pins: dict[PinKey, CpuSet] = {}
        for row in PINS:
            value = doc.get(row.key)
            if row.indexed:
                pins.update(((row.kind, int(i)), CpuSet.parse(c)) for i, c in (value or {}).items())
            elif value is not None:
                pins[(row.kind, 0)] = CpuSet.parse(value)
        kept_off = doc.get("kept_off")
        return cls(doc["domain"], doc["driver"], pins, doc["sched"],
                   None if kept_off is None else CpuSet.parse(kept_off),
                   [Note.from_doc(n) for n in doc.get("notes") or ()],
                   [Lost.from_doc(u) for u in doc.get("unsupported") or ()],
                   doc.get("policy_uuid_differs"),
                   {int(i): v for i, v in (doc.get(VCPUSCHED.key) or {}).items()})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plan) and self.to_doc() == other.to_doc()

    def __repr__(self) -> str:
        return "Plan(%r)" % (self.to_doc(),)


def _owners(host: HostPolicy, cpus: Iterable[int]) -> list[str]:
    return sorted({d for c in cpus for d in host.occupancy.get(c, ())})


def _check_stored(row: PinKind, stored: Mapping[int, CpuSet], indexes: tuple[int, ...] | None, name: str,
                  host_cpus: CpuSet) -> None:
    """CONFLICT for a stored pin of a thread the domain does not have, or beyond the host."""
    if indexes is not None:
        for index in sorted(stored):
            if index not in indexes:
                raise conflict("%s has a pin, but the domain has %s"
                               % (row.subject(index, name), count_phrase(row.label, indexes)))
    for index, cpus in sorted(stored.items()):
        if not cpus.issubset(host_cpus):
            raise conflict("%s is pinned to %s, but the host's CPUs are %s"
                           % (row.subject(index, name), cpus, host_cpus))


def _kept_off(row: PinKind, index: int, pinned: CpuSet | None, source: str, taken: CpuSet, host: HostPolicy,
              name: str, host_cpus: CpuSet) -> tuple[CpuSet, Note | None]:
    """The effective set of one pin under occupancy, with a Note when a pin lost CPUs.
    `pinned` is the policy's or the XML's pin, None for a thread with no pin."""
    base = pinned if pinned is not None else host_cpus
    effective = base - taken
    removed = base & taken
    if not effective:
        owners = ", ".join(_owners(host, removed))
        if pinned is None:
            raise conflict("%s has no pin, and every host CPU (%s) is occupied by %s (cpuoccupy); "
                           "it would have no CPU left" % (row.subject(index, name), base, owners))
        raise conflict("%s is pinned to %s (%s), which is occupied by %s (cpuoccupy); it would "
                       "have no CPU left" % (row.subject(index, name), base, source, owners))
    note = Note((row.kind, index), base, removed, _owners(host, removed)) \
        if removed and pinned is not None else None
    return effective, note


def plan(policy: DomainPolicy | None, host: HostPolicy, facts: DomainFacts, host_cpus: CpuSet,
         cgroup_version: int = 1) -> Plan:
    """The Plan for one domain, or a CONFLICT error.

    policy: DomainPolicy or None; host: HostPolicy; facts: DomainFacts (name, driver,
    its threads when known, pins from its XML); host_cpus: CpuSet online.
    """
    name = facts.name
    elsewhere = None
    if policy is not None and policy.bound_elsewhere(facts.uuid):
        elsewhere = policy.uuid
        policy = None
        host = host.replacing(name, "%s (UUID %s)" % (name, elsewhere))
    stored_pins = policy.pins if policy else {}
    cannot = unsupported(facts.driver, facts.scheduler)
    taken = host.occupied_by_others(name) & host_cpus
    lost: list[Lost] = []
    lost_kept_off: list[Lost] = []
    pins: dict[PinKey, CpuSet] = {}
    notes: list[Note] = []
    kept_off = None
    for row in PINS:
        stored = {i: c for (k, i), c in stored_pins.items() if k == row.kind}
        indexes = row.indexes(facts)
        if row.key in cannot:
            if stored:
                lost.append(Lost(row.key, cannot[row.key]))
            if taken and indexes != ():
                lost_kept_off.append(Lost(row.key, cannot[row.key], taken))
            continue
        _check_stored(row, stored, indexes, name, host_cpus)
        if not taken:
            pins.update(((row.kind, i), c) for i, c in stored.items())
            continue
        kept_off = taken
        for index in (sorted(stored) if indexes is None else indexes):
            base = stored.get(index)
            source = "policy"
            if base is None:
                base = facts.pins.get((row.kind, index))
                source = "domain XML"
            effective, note = _kept_off(row, index, base, source, taken, host, name, host_cpus)
            pins[(row.kind, index)] = effective
            if note:
                notes.append(note)
    values: dict[str, int] = {}
    lost_sched: list[Lost] = []
    for setting in SCHED:
        value = policy.sched.get(setting.key) if policy else None
        if value is None:
            continue
        if setting.key in cannot:
            lost_sched.append(Lost(setting.key, cannot[setting.key]))
        else:
            values[setting.key] = value
    sched = sched_params(facts.driver, cgroup_version, **values)
    vcpusched, lost_rt = _vcpusched(policy, host, facts, pins, cannot)
    return Plan(name, facts.driver, pins, sched, kept_off, notes,
                lost + lost_kept_off + lost_sched + lost_rt, elsewhere, vcpusched)


def _vcpusched(policy: DomainPolicy | None, host: HostPolicy, facts: DomainFacts,
               pins: Mapping[PinKey, CpuSet], cannot: Mapping[str, str]) -> tuple[dict[int, str], list[Lost]]:
    """The vCPU scheduling policies to put in force, and what is left out. A real-time
    vCPU only runs on CPUs its domain occupies (cpuoccupy): on a shared CPU it can
    starve the host's own threads and every other domain there. policyctl refuses to
    record anything else; a pin or an occupancy changed since leaves it out here."""
    stored = policy.vcpusched if policy else {}
    row = VCPUSCHED
    if not stored:
        return {}, []
    if row.key in cannot:
        return {}, [Lost(row.key, cannot[row.key])]
    name = facts.name
    indexes = facts.indexes.get("vcpu")
    if indexes is not None:
        for index in sorted(stored):
            if index not in indexes:
                raise conflict("vCPU %d of '%s' has a scheduling policy, but the domain has %s"
                               % (index, name, count_phrase("vCPU", indexes)))
    own = CpuSet(host.occupies(name))
    found: dict[int, str] = {}
    lost: list[Lost] = []
    for index, value in sorted(stored.items()):
        if row.is_realtime(value):
            # `pins` holds the vCPU's stored pin, or under occupancy its effective one.
            cpus = pins.get(("vcpu", index)) or facts.pins.get(("vcpu", index))
            why = realtime_problem(cpus, own)
            if why is not None:
                lost.append(Lost(row.key, "vCPU %d: %s" % (index, why)))
                continue
        found[index] = value
    return found, lost


def realtime_problem(cpus: CpuSet | None, own: CpuSet) -> str | None:
    """Why a real-time vCPU may not run on `cpus` when its domain occupies `own`, or None."""
    if cpus is None:
        return ("real-time needs a vCPU pinned inside the CPUs its domain occupies (cpuoccupy); "
                "it has no pin")
    if not own:
        return ("real-time needs a vCPU pinned inside the CPUs its domain occupies (cpuoccupy); "
                "it occupies none, and %s %s shared" % (cpus, "is" if len(cpus) == 1 else "are"))
    if not cpus.issubset(own):
        return ("real-time needs a vCPU pinned inside the CPUs its domain occupies (%s); "
                "it is pinned to %s" % (own, cpus))
    return None


def restores(new: Plan, old: Plan, facts: DomainFacts, host_cpus: CpuSet, cgroup_version: int) -> Plan:
    """`new` plus what puts libvirt's defaults back for what `old` set and `new` no
    longer does: an unset pin runs on its XML pin or every host CPU again, an unset
    weight or cap goes back to the default."""
    pins = dict(new.pins)
    for key in old.pins:
        if key not in pins:
            pins[key] = facts.pins.get(key) or host_cpus
    defaults = {row.key: row.default for row in SCHED
                if sets(old.driver, row.key, old.sched) and not sets(new.driver, row.key, new.sched)}
    sched = sched_params(new.driver, cgroup_version, **defaults)
    sched.update(new.sched)
    vcpusched = {i: VCPUSCHED.default for i in old.vcpusched}
    vcpusched.update(new.vcpusched)
    return Plan(new.domain, new.driver, pins, sched, new.kept_off, new.notes, new.unsupported,
                new.elsewhere, vcpusched)


def pins_only(p: Plan) -> Plan:
    """`p` without its scheduler parameters (cpuoccupy changes pins only). The vCPUs'
    scheduling policies stay: a real-time vCPU whose CPUs are no longer its domain's
    alone goes back to the default (planner._vcpusched)."""
    return Plan(p.domain, p.driver, p.pins, {}, p.kept_off, p.notes, p.unsupported, p.elsewhere,
                p.vcpusched)


def drift(effective: Plan, live: Live, offline: bool = False) -> list[Drift]:
    """[Drift] where the live values differ from the effective plan. A pin of a thread
    that is not running (an offline vCPU) is not drift: libvirt keeps it and applies it
    when the thread comes online; with `offline`, such pins are listed all the same
    (libvirt cannot tell whether it holds one)."""
    found = []
    for key, cpus in effective.sorted_pins():
        if key in live.offline and not offline:
            continue
        pinned = live.pins.get(key)
        if pinned != cpus:
            found.append(Drift(pin=key, want=cpus, have=pinned))
    for param, value in sorted(effective.sched.items()):
        now = live.sched.get(param)
        if now != value and not (is_quota(param) and value < 0
                                 and quota_is_unlimited(-1 if now is None else now)):
            found.append(Drift(param=param, want=value, have=now))
    for index, policy in sorted(effective.vcpusched.items()):
        if live.vcpusched is None or (("vcpu", index) in live.offline and not offline):
            continue
        running = live.vcpusched.get(index)
        if running != policy:
            found.append(Drift(param=VCPUSCHED.key, want=policy, have=running, index=index))
    return found


def differences(p: Plan, live: Live) -> Plan:
    """`p` reduced to what differs from `live`: what needs applying (the pins of offline
    vCPUs always: libvirt keeps them for hotplug, and does not show them)."""
    keep = drift(p, live, offline=True)
    pins = {d.pin: p.pins[d.pin] for d in keep if d.pin is not None}
    params = {d.param for d in keep if d.param is not None and d.param != VCPUSCHED.key}
    # A scheduler call sets parameters together: a cap's period goes with its quota.
    sched = dict(p.sched) if params else {}
    # Not known live (another host): set them all, as at start.
    vcpusched = dict(p.vcpusched) if live.vcpusched is None else \
        {d.index: p.vcpusched[d.index] for d in keep if d.param == VCPUSCHED.key and d.index is not None}
    return Plan(p.domain, p.driver, pins, sched, p.kept_off, p.notes, p.unsupported, p.elsewhere,
                vcpusched)


__all__ = ["Plan", "Note", "Lost", "Drift", "Live", "plan", "restores", "pins_only", "drift",
           "differences", "realtime_problem"]
