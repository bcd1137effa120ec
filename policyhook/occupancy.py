"""cpuoccupy: changing which physical CPUs a set of domains owns exclusively.

Checks before it saves (host CPUs, stored policies, the RFC's rule on live pins),
then saves host.json and re-pins every running domain the change affects.
"""

from .api import DRY_RUN, parse_domains, with_restores
from .cpuset import CpuSet
from .domxml import DomainFacts
from .errors import LIBVIRT, PolicyError, conflict, invalid
from .hostinfo import online_cpus
from .model import HostPolicy
from .planner import Plan, plan


class OccupancyOutcome:
    def __init__(self, what, saved, live, changes, failures, warning=None, unsupported=()):
        self.what = what
        self.saved = saved
        self.live = live            # text: where the change stands
        self.changes = changes      # [(domain, text)] per running domain re-pinned
        self.failures = failures    # [(domain, error)]
        self.warning = warning
        self.unsupported = list(unsupported)  # [(domain, text)]: running, cannot be kept off

    def lines(self):
        head = "%s: %s" % (self.what, "would be saved (dry run)" if self.live == DRY_RUN
                           else "saved; " + self.live)
        out = [head]
        out += ["  %s: %s" % c for c in self.changes]
        out += ["  %s: FAILED: %s" % f for f in self.failures]
        out += ["  %s: unsupported: %s" % u for u in self.unsupported]
        return out

    def to_doc(self):
        return {"change": self.what, "saved": self.saved, "live": self.live,
                "domains": [{"domain": d, "change": t} for d, t in self.changes],
                "failures": [{"domain": d, "error": e} for d, e in self.failures],
                "unsupported": [{"domain": d, "what": t} for d, t in self.unsupported],
                "warning": self.warning}


def _running(pm):
    """[(ctx, live pins)] for each running domain, gathered before taking the lock."""
    conn = pm.conn()
    if conn is None:
        return []
    virt = pm._virt()
    found = []
    for dom in virt.running_domains(conn):
        ctx = pm.context(dom.name())
        if ctx.running:
            found.append((ctx, virt.live_values(ctx.dom, ctx.facts.driver)["vcpupin"]))
    return found


def change(pm, cpus, names, dry_run=False):
    """Make `names` the only occupants of `cpus`; names=None clears `cpus`."""
    if isinstance(cpus, str):
        cpus = CpuSet.parse(cpus)
    if names is not None:
        names = parse_domains(names)
    conn = pm.conn()
    host_cpus = pm._virt().host_cpus(conn)[1] if conn is not None else online_cpus()
    if not cpus.issubset(host_cpus):
        raise invalid("invalid cpulist '%s': CPU %s not on this host (host CPUs: %s)"
                      % (cpus, cpus - host_cpus, host_cpus))
    running = _running(pm)
    if names is None:
        what = "CPU%s %s no longer occupied" % ("s" if len(cpus) > 1 else "", cpus)
    else:
        what = "CPU%s %s occupied by %s" % ("s" if len(cpus) > 1 else "", cpus, ", ".join(names))
    with pm.registry.lock():
        old_host = pm.registry.load_host()
        occupancy = dict(old_host.occupancy)
        for cpu in cpus:
            if names is None:
                occupancy.pop(cpu, None)
            else:
                occupancy[cpu] = names
        new_host = HostPolicy(occupancy)
        _check(pm, old_host, new_host, host_cpus, running)
        repins = []
        cannot = []   # running domains whose driver cannot keep them off (LXC)
        for ctx, _live in running:
            policy = pm.registry.load(ctx.name)
            old = plan(policy, old_host, ctx.facts, ctx.host_cpus, pm.cgroup_version)
            new = plan(policy, new_host, ctx.facts, ctx.host_cpus, pm.cgroup_version)
            pins_only = Plan(new.domain, new.driver, new.vcpupin, new.emulatorpin, {}, new.notes)
            old_pins = Plan(old.domain, old.driver, old.vcpupin, old.emulatorpin, {}, old.notes)
            live_plan = with_restores(pins_only, old_pins, ctx, pm.cgroup_version)
            if live_plan.vcpupin != old.vcpupin or live_plan.emulatorpin != old.emulatorpin:
                repins.append((ctx, live_plan))
            cannot += [(ctx.name, t) for t in new.unsupported if " kept off " in t]
        if dry_run:
            return OccupancyOutcome(what, False, DRY_RUN,
                                    [(c.name, "would be re-pinned: " + p.describe("no change"))
                                     for c, p in repins], [], pm.warning, cannot)
        pm.registry.save_host(new_host)
        if conn is None:
            live = "not applied live (%s)" % ("--offline" if pm._offline else "libvirt unreachable")
            return OccupancyOutcome(what, True, live, [], [],
                                    pm.warning)
        changes, failures = [], []
        for ctx, live_plan in repins:
            try:
                pm._apply(ctx, live_plan, "policyctl cpuoccupy")
                changes.append((ctx.name, "re-pinned live: " + live_plan.describe("no change")))
            except PolicyError as e:
                failures.append((ctx.name, str(e).split(" (the policy is saved")[0]))
    live = "applied live to %d running domain%s" % (len(changes), "" if len(changes) == 1 else "s")
    outcome = OccupancyOutcome(what, True, live, changes, failures, pm.warning, cannot)
    if failures:
        raise PartialFailure(outcome)
    return outcome


class PartialFailure(PolicyError):
    def __init__(self, outcome):
        super().__init__("cpuoccupy saved, but %d running domain%s could not be re-pinned; "
                         "run 'policyctl apply --all' to finish"
                         % (len(outcome.failures), "" if len(outcome.failures) == 1 else "s"),
                         LIBVIRT)
        self.outcome = outcome


def _check(pm, old_host, new_host, host_cpus, running):
    free = host_cpus - new_host.occupied()
    if not free:
        raise conflict("cpuoccupy would occupy every host CPU (%s); domains outside the "
                       "occupancy sets would have no CPU left" % host_cpus)
    running_names = {ctx.name for ctx, _ in running}
    # Stored policies of domains that are not running: their pins must keep a CPU.
    for name in pm.registry.names():
        if name in running_names:
            continue
        plan(pm.registry.load(name), new_host, DomainFacts(name), host_cpus, pm.cgroup_version)
    # Running domains: their policy and XML pins through the planner, and the RFC's rule
    # on live pins that the admin set by hand (not ones we put there for occupancy).
    for ctx, live in running:
        policy = pm.registry.load(ctx.name)
        stored = policy.vcpupin if policy else {}
        old = plan(policy, old_host, ctx.facts, ctx.host_cpus, pm.cgroup_version)
        taken = new_host.occupied_by_others(ctx.name)
        for vcpu, cpus in sorted(live.items()):
            if vcpu in stored or vcpu in ctx.facts.vcpupin or old.vcpupin.get(vcpu) == cpus:
                continue
            if cpus and cpus.issubset(taken):
                owners = sorted({d for c in cpus for d in new_host.occupancy.get(c, ())})
                raise conflict("running domain '%s' has vCPU %d pinned only to %s (live); it "
                               "cannot be occupied by %s (unpin it first: virsh vcpupin %s %d "
                               "--live CPULIST)" % (ctx.name, vcpu, cpus, ", ".join(owners),
                                                    ctx.name, vcpu))
        plan(policy, new_host, ctx.facts, ctx.host_cpus, pm.cgroup_version)
