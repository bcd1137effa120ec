"""cpuoccupy's pure part: the new host policy, and the checks it must pass before it is
saved (host CPUs, stored policies, the rule on live pins: doc/design.md "Occupancy"). No libvirt, no files:
PolicyManager.occupy (api.py) gathers the facts, saves and re-pins."""

from .domxml import DomainFacts
from .errors import conflict, invalid
from .model import HostPolicy
from .planner import pins_only, plan, restores
from .tunables import VCPU


class Running:
    """A running domain as cpuoccupy sees it: facts, live vCPU pins, policy, the
    cgroup version its parameters mean."""

    __slots__ = ("ctx", "live_pins", "policy")

    def __init__(self, ctx, live_pins, policy=None):
        self.ctx = ctx
        self.live_pins = live_pins   # {vcpu: CpuSet}
        self.policy = policy


def occupied(old_host, cpus, names):
    """The host policy with `names` the only occupants of `cpus` (None: freed)."""
    occupancy = dict(old_host.occupancy)
    for cpu in cpus:
        if names is None:
            occupancy.pop(cpu, None)
        else:
            occupancy[cpu] = names
    return HostPolicy(occupancy)


def check_cpus(cpus, host_cpus):
    if not cpus.issubset(host_cpus):
        raise invalid("invalid cpulist '%s': CPU %s not on this host (host CPUs: %s)"
                      % (cpus, cpus - host_cpus, host_cpus))


def check(old_host, new_host, host_cpus, policies, running):
    """CONFLICT when the new occupancy cannot hold. `policies`: {name: DomainPolicy} of
    every stored policy; `running`: [Running] with their policies filled in."""
    free = host_cpus - new_host.occupied()
    if not free:
        raise conflict("cpuoccupy would occupy every host CPU (%s); domains outside the "
                       "occupancy sets would have no CPU left" % host_cpus)
    running_names = {r.ctx.name for r in running}
    # Stored policies of domains that are not running: their pins must keep a CPU.
    for name, policy in sorted(policies.items()):
        if name not in running_names:
            plan(policy, new_host, DomainFacts(name), host_cpus)
    # Running domains: their policy and XML pins through the planner, and the rule
    # on live pins that the admin set by hand (not ones we put there for occupancy).
    for r in running:
        ctx = r.ctx
        stored = r.policy.pins_of(VCPU.kind) if r.policy else {}
        old = plan(r.policy, old_host, ctx.facts, ctx.host.cpus, ctx.cgroup_version)
        taken = new_host.occupied_by_others(ctx.name)
        for vcpu, cpus in sorted(r.live_pins.items()):
            if vcpu in stored or (VCPU.kind, vcpu) in ctx.facts.pins \
                    or old.pins.get((VCPU.kind, vcpu)) == cpus:
                continue
            if cpus and cpus.issubset(taken):
                owners = sorted({d for c in cpus for d in new_host.occupancy.get(c, ())})
                raise conflict("running domain '%s' has vCPU %d pinned only to %s (live); it "
                               "cannot be occupied by %s (unpin it first: virsh vcpupin %s %d "
                               "--live CPULIST)" % (ctx.name, vcpu, cpus, ", ".join(owners),
                                                    ctx.name, vcpu))
        plan(r.policy, new_host, ctx.facts, ctx.host.cpus, ctx.cgroup_version)


def repins(old_host, new_host, running):
    """[(Running, previous plan, pins to apply)] for the running domains whose pins the
    change moves, and [(name, [Lost])] for those whose driver cannot be kept off."""
    moves, cannot = [], []
    for r in running:
        ctx = r.ctx
        old = plan(r.policy, old_host, ctx.facts, ctx.host.cpus, ctx.cgroup_version)
        new = plan(r.policy, new_host, ctx.facts, ctx.host.cpus, ctx.cgroup_version)
        live = pins_only(restores(new, old, ctx.facts, ctx.host.cpus, ctx.cgroup_version))
        if live.pins != old.pins:
            moves.append((r, old, live))
        lost = [u for u in new.unsupported if u.kept_off is not None]
        if lost:
            cannot.append((ctx.name, lost))
    return moves, cannot
