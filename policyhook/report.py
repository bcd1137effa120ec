"""`cpupolicy DOM` as a record: the stored policy, the effective plan, what is live now
and where it drifted. policyctl's show.py puts it into words; to_doc() is its --json."""

from . import state
from .errors import CONFLICT, PolicyError
from .mapping import from_live
from .model import DomainPolicy
from .names import check_name
from .planner import drift
from .tunables import SCHED, pins_doc


def policy_row(policy, occupies):
    """A stored policy as JSON, every setting of the table present (None / {} when unset),
    and the CPUs the domain occupies."""
    doc = {"domain": policy.domain}
    doc.update(pins_doc(policy.pins))
    for row in SCHED:
        doc[row.key] = policy.sched.get(row.key)
    doc["occupies"] = list(occupies)
    return doc


def live_row(live, weight, cap):
    doc = pins_doc(live.pins)
    doc.update(sched=live.sched, weight=weight, cap=cap,
               offline=sorted("%s %d" % k for k in live.offline))
    return doc


class Report:
    __slots__ = ("domain", "policy", "occupies", "stored", "defined", "running", "driver",
                 "host_cpus", "effective", "conflict", "live", "live_weight", "live_cap",
                 "drift", "runtime", "libvirt_error", "asked")

    def to_doc(self):
        doc = policy_row(self.policy, self.occupies)
        doc.update(
            stored=self.stored, defined=self.defined, running=self.running, driver=self.driver,
            host_cpus=str(self.host_cpus), libvirt_error=self.libvirt_error, asked_libvirt=self.asked,
            effective=self.effective.to_doc() if self.effective else None, conflict=self.conflict,
            live=live_row(self.live, self.live_weight, self.live_cap) if self.live else None,
            drift=[d.to_doc() for d in self.drift], runtime=self.runtime)
        return doc


def report(pm, name):
    """The Report of `name` through PolicyManager `pm`."""
    check_name(name)
    r = Report()
    stored = pm.registry.load(name)
    host = pm.registry.load_host()
    ctx = pm.context(name)
    r.domain = name
    r.policy = stored or DomainPolicy(name)
    r.occupies = host.occupies(name)
    r.stored = stored is not None
    r.asked = pm.connection() is not None
    r.defined = ctx.dom is not None
    r.running = ctx.running
    r.driver = ctx.facts.driver
    r.host_cpus = ctx.host.cpus
    r.libvirt_error = pm.libvirt_error
    try:
        r.effective = pm.plan_for(stored, host, ctx)
        r.conflict = None
    except PolicyError as e:
        if e.code != CONFLICT:
            raise
        r.effective = None
        r.conflict = str(e)
    r.live = None
    r.live_weight = r.live_cap = None
    r.drift = []
    r.runtime = state.read(pm.paths, name)
    if ctx.running:
        from . import virt
        r.live = virt.live_values(ctx.dom, ctx.facts.driver)
        r.live_weight, r.live_cap = from_live(ctx.facts.driver, ctx.cgroup_version, r.live.sched)
        if r.effective is not None:
            r.drift = drift(r.effective, r.live)
    return r
