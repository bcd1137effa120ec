"""The planner: policy + host + domain facts -> the concrete pins and parameters.

Pure: no files, no libvirt. A refusal is a CONFLICT error whose message says why.

Effective pins (DESIGN.md "Semantics"): a vCPU's base set is its policy pin, else
the pin already in the domain's XML, else every host CPU; its effective set is the
base minus the CPUs occupied by sets the domain is not part of. So an occupant keeps
its own pins, and an occupant with no pins runs on its occupied CPUs plus the shared
ones. When nothing is pinned and nothing is occupied by others, the plan pins
nothing and libvirt's own placement stands.

What the domain's driver cannot put in force (mapping.unsupported: pins on LXC, the
emulator pin on libxl, weight and cap under a Xen scheduler other than credit) is
left out of the plan and listed in Plan.unsupported, never dropped silently; it is
not checked against the domain or the host either, since it never takes effect.
"""

from .cpuset import CpuSet
from .errors import conflict
from .limits import vcpu_range
from .mapping import group_unsupported, sched_params, unsupported


class Plan:
    """What to put in force on one domain."""

    __slots__ = ("domain", "driver", "vcpupin", "emulatorpin", "sched", "notes", "unsupported")

    def __init__(self, domain, driver, vcpupin=None, emulatorpin=None, sched=None, notes=None,
                 unsupported=None):
        self.domain = domain
        self.driver = driver
        self.vcpupin = dict(vcpupin or {})   # vCPU -> CpuSet
        self.emulatorpin = emulatorpin       # CpuSet or None (leave alone)
        self.sched = dict(sched or {})       # libvirt scheduler parameters
        self.notes = list(notes or [])       # why an effective set differs from the stored one
        self.unsupported = list(unsupported or [])  # what the driver cannot do, and why

    def is_empty(self):
        return not self.vcpupin and self.emulatorpin is None and not self.sched

    def to_doc(self):
        return {
            "domain": self.domain,
            "driver": self.driver,
            "vcpupin": {str(v): str(c) for v, c in sorted(self.vcpupin.items())},
            "emulatorpin": None if self.emulatorpin is None else str(self.emulatorpin),
            "sched": dict(sorted(self.sched.items())),
            "notes": self.notes,
            "unsupported": self.unsupported,
        }

    @classmethod
    def from_doc(cls, doc):
        return cls(doc["domain"], doc["driver"],
                   {int(v): CpuSet.parse(c) for v, c in doc["vcpupin"].items()},
                   None if doc["emulatorpin"] is None else CpuSet.parse(doc["emulatorpin"]),
                   doc["sched"], doc.get("notes"), doc.get("unsupported"))

    def describe(self, empty="nothing to apply"):
        """One line for logs and policyctl: 'vCPU 0 -> 1, emulator -> 0, cpu_shares=2048'."""
        parts = ["vCPU %d -> %s" % (v, c) for v, c in sorted(self.vcpupin.items())]
        if self.emulatorpin is not None:
            parts.append("emulator -> %s" % self.emulatorpin)
        parts += ["%s=%s" % kv for kv in sorted(self.sched.items())]
        return ", ".join(parts) or empty

    def __eq__(self, other):
        return isinstance(other, Plan) and self.to_doc() == other.to_doc()

    def __repr__(self):
        return "Plan(%r)" % (self.to_doc(),)


def _owners(host, cpus):
    names = sorted({d for c in cpus for d in host.occupancy.get(c, ())})
    return ", ".join(names)


def plan(policy, host, facts, host_cpus, cgroup_version=1):
    """The Plan for one domain, or a CONFLICT error.

    policy: DomainPolicy or None; host: HostPolicy; facts: DomainFacts (name,
    driver, vCPU count when known, pins from its XML); host_cpus: CpuSet online.
    """
    name = facts.name
    stored = dict(policy.vcpupin) if policy else {}
    emulator = policy.emulatorpin if policy else None
    cannot = unsupported(facts.driver, facts.scheduler)
    lost = []   # (what, why) the driver cannot put in force
    if "vcpupin" in cannot and stored:
        lost.append(("vCPU pins", cannot["vcpupin"]))
        stored = {}
    if "emulatorpin" in cannot and emulator is not None:
        lost.append(("emulator pin", cannot["emulatorpin"]))
        emulator = None
    if facts.vcpus is not None:
        for vcpu in sorted(stored):
            if vcpu >= facts.vcpus:
                raise conflict("vCPU %d of '%s' has a pin, but the domain has %s"
                               % (vcpu, name, vcpu_range(facts.vcpus)))
    for vcpu, cpus in sorted(stored.items()):
        if not cpus.issubset(host_cpus):
            raise conflict("vCPU %d of '%s' is pinned to %s, but the host's CPUs are %s"
                           % (vcpu, name, cpus, host_cpus))
    if emulator is not None and not emulator.issubset(host_cpus):
        raise conflict("the emulator of '%s' is pinned to %s, but the host's CPUs are %s"
                       % (name, emulator, host_cpus))

    taken = host.occupied_by_others(name) & host_cpus
    if taken:
        kept_off = "kept off %s (cpuoccupy)" % ("CPUs %s" % taken if len(taken) > 1 else "CPU %s" % taken)
        if cannot.get("vcpupin") and cannot.get("vcpupin") == cannot.get("emulatorpin"):
            lost.append(("vCPUs and emulator " + kept_off, cannot["vcpupin"]))
        else:
            for setting, what in (("vcpupin", "vCPUs"), ("emulatorpin", "emulator")):
                if setting in cannot:
                    lost.append(("%s %s" % (what, kept_off), cannot[setting]))
    pin_taken = CpuSet() if "vcpupin" in cannot else taken
    emulator_taken = CpuSet() if "emulatorpin" in cannot else taken
    notes = []
    pins = {}
    vcpus = sorted(stored) if facts.vcpus is None else range(facts.vcpus)
    for vcpu in vcpus:
        base = stored.get(vcpu) or facts.vcpupin.get(vcpu)
        source = "policy" if vcpu in stored else "domain XML" if base is not None else None
        if not pin_taken:
            if vcpu in stored:
                pins[vcpu] = base
            continue
        base = base if base is not None else host_cpus
        effective = base - pin_taken
        lost_cpus = base & pin_taken
        if not effective and source is None:
            raise conflict("vCPU %d of '%s' has no pin, and every host CPU (%s) is occupied by %s "
                           "(cpuoccupy); it would have no CPU left"
                           % (vcpu, name, base, _owners(host, lost_cpus)))
        if not effective:
            raise conflict("vCPU %d of '%s' is pinned to %s (%s), which is occupied by %s "
                           "(cpuoccupy); it would have no CPU left"
                           % (vcpu, name, base, source, _owners(host, lost_cpus)))
        if lost_cpus and source:
            notes.append("vCPU %d: %s minus %s occupied by %s"
                         % (vcpu, base, lost_cpus, _owners(host, lost_cpus)))
        pins[vcpu] = effective

    base = emulator if emulator is not None else facts.emulatorpin
    if emulator_taken:
        base = base if base is not None else host_cpus
        effective = base - emulator_taken
        if not effective and emulator is None and facts.emulatorpin is None:
            raise conflict("the emulator of '%s' has no pin, and every host CPU (%s) is occupied by %s "
                           "(cpuoccupy); it would have no CPU left"
                           % (name, base, _owners(host, base & emulator_taken)))
        if not effective:
            raise conflict("the emulator of '%s' is pinned to %s, which is occupied by %s "
                           "(cpuoccupy); it would have no CPU left"
                           % (name, base, _owners(host, base & emulator_taken)))
        if base & emulator_taken and (emulator is not None or facts.emulatorpin is not None):
            notes.append("emulator: %s minus %s occupied by %s"
                         % (base, base & emulator_taken, _owners(host, base & emulator_taken)))
        emulator = effective
    if pin_taken or emulator_taken:
        subject = "CPUs %s are" % taken if len(taken) > 1 else "CPU %s is" % taken
        notes.insert(0, "%s occupied by other domains (cpuoccupy); kept off %s"
                     % (subject, "them" if len(taken) > 1 else "it"))

    sched = {}
    if policy is not None:
        weight, cap = policy.weight, policy.cap
        if weight is not None and "weight" in cannot:
            lost.append(("weight", cannot["weight"]))
            weight = None
        if cap is not None and "cap" in cannot:
            lost.append(("cap", cannot["cap"]))
            cap = None
        sched = sched_params(facts.driver, cgroup_version, weight, cap)
    return Plan(name, facts.driver, pins, emulator, sched, notes, group_unsupported(lost))
