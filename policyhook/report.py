"""`cpupolicy DOM` as a record: the stored policy, the effective plan, what is live now
and where it drifted. policyctl's show.py puts it into words; to_doc() is its --json."""

from . import state
from .cpuset import CpuSet
from .errors import CONFLICT, PolicyError
from .mapping import from_live
from .model import DomainPolicy
from .planner import drift
from .results import Report, Verified, live_row, policy_row  # noqa: F401 - importable from here too


def report(pm, text):
    """The Report of the domain `text` names, through PolicyManager `pm`."""
    r = Report()
    ctx = pm.context(text)
    name = ctx.name
    stored = pm.registry.load(name)
    host = pm.registry.load_host()
    # A member of an occupancy set with no policy of its own is known to policyhook too.
    pm.known(ctx, stored if stored is not None else (host.occupies(name) or None), None)
    r.domain = name
    r.uuid = ctx.facts.uuid
    r.policy = stored or DomainPolicy(name)
    r.occupies = host.occupies(name)
    r.stored = stored is not None
    r.asked = pm.connection() is not None
    r.defined = ctx.dom is not None if r.asked else None
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
    r.numa = numa_spans(pm.topology(), r.effective, r.occupies)
    # The persistent definition, and in persistent mode where it differs from the plan.
    r.persistent = pm.settings.persistent
    r.config, r.config_drift = None, []
    if ctx.dom is not None:
        from . import virt
        try:
            r.config = virt.live_values(ctx.dom, ctx.facts.driver, virt.AFFECT_CONFIG)
        except PolicyError:
            r.config = None
        if r.config is not None and r.persistent and r.effective is not None:
            r.config_drift = drift(r.effective, r.config)
    r.memory = _memory(pm, ctx, r.effective)
    if ctx.running:
        from . import virt
        r.live = virt.live_values(ctx.dom, ctx.facts.driver, threads=pm.threads)
        r.live_weight, r.live_cap = from_live(ctx.facts.driver, ctx.cgroup_version, r.live.sched)
        if r.effective is not None:
            r.drift = drift(r.effective, r.live)
    return r


def verify(pm, names=None):
    """[Verified] for the running domains with a policy, or an effective plan under the
    occupancy (names=None), or the domains named."""
    from . import virt

    conn = pm.connection()
    if conn is None:
        from .errors import LIBVIRT, invalid
        if pm.offline:
            raise invalid("verify reads the live values from libvirt; it cannot work --offline")
        raise PolicyError(pm.libvirt_error, LIBVIRT)
    host = pm.registry.load_host()
    stored = set(pm.registry.names())
    if names is None:
        contexts = [pm.context(d.name()) for d in virt.running_domains(conn)]
    else:
        contexts = []
        for text in names:
            ctx = pm.context(text)
            pm.known(ctx, pm.recorded(ctx.name), None)
            contexts.append(ctx)
    found = []
    for ctx in sorted(contexts, key=lambda c: c.name):
        policy = pm.registry.load(ctx.name) if ctx.name in stored else None
        result = verify_one(pm, ctx, policy, host, everything=names is not None)
        if result is not None:
            found.append(result)
    return found


def verify_one(pm, ctx, policy, host, everything=True):
    """Verified for one domain (of Context `ctx`), or None when nothing is asked of it
    (no policy, an empty plan) and not `everything`."""
    from . import virt

    if not ctx.running:
        return Verified(ctx.name, Verified.NOT_RUNNING)
    try:
        effective = pm.plan_for(policy, host, ctx)
    except PolicyError as e:
        if e.code != CONFLICT:
            raise
        return Verified(ctx.name, Verified.CONFLICT, error=str(e))
    if policy is None and effective.is_empty() and not everything:
        return None
    try:
        drifted = drift(effective, virt.live_values(ctx.dom, ctx.facts.driver, threads=pm.threads))
    except PolicyError as e:
        return Verified(ctx.name, Verified.FAILED, error=str(e))
    if effective.elsewhere:
        return Verified(ctx.name, Verified.ELSEWHERE, drifted, uuid=(effective.elsewhere, ctx.facts.uuid))
    return Verified(ctx.name, Verified.DRIFT if drifted else Verified.IN_FORCE, drifted)


def _memory(pm, ctx, effective):
    """[occupancy] memory = follow: the node the plan binds memory to (None: its vCPUs are
    not all pinned within one), and the nodeset in the definition and live ('' for none;
    None where libvirt cannot say or is not asked). None with memory = leave."""
    if pm.settings.memory != "follow":
        return None
    found = {"node": pm.memory_node(ctx, effective) if effective is not None else None,
             "definition": None, "live": None}
    if ctx.dom is not None:
        from . import virt
        found["definition"] = virt.memory_nodes(ctx.dom, virt.AFFECT_CONFIG)
        if ctx.running:
            found["live"] = virt.memory_nodes(ctx.dom)
    return found


def host_map(pm):
    """`policyctl occupancy`: the host's NUMA nodes, sockets, cores and CPUs, each CPU with
    the domains that occupy it and the running domains pinned to it (a pin narrower than
    every host CPU); `housekeeping`: whether [occupancy] housekeeping keeps the host's own
    work on the CPUs no set occupies. A dict: its own --json, and what show.occupancy_map
    draws."""
    topo = pm.topology()
    host = pm.registry.load_host()
    pinned = {}
    conn = pm.connection()
    if conn is not None:
        from . import virt
        every = pm.host_facts().cpus
        for dom in virt.running_domains(conn):
            try:
                live = virt.live_values(dom, virt.facts(dom).driver, offline=False)
            except PolicyError:
                continue
            for cpus in live.pins.values():
                if cpus != every:
                    for cpu in cpus:
                        pinned.setdefault(cpu, set()).add(dom.name())
    from .quietcpus import managed_by_cpu
    managed = managed_by_cpu(pm.paths)    # [occupancy] housekeeping: IRQs that stay on held CPUs
    nodes = {}
    for node, socket, core, cpus in topo.layout():
        sockets = nodes.setdefault(node, {})
        cores = sockets.setdefault(socket, [])
        cores.append({"core": core, "cpus": [
            {"cpu": c, "occupied_by": list(host.occupancy.get(c, ())), "pinned": sorted(pinned.get(c, ())),
             "managed_irqs": [{"irq": i, "name": n} for i, n in managed.get(c, ())]}
            for c in cpus]})
    return {"asked_libvirt": conn is not None, "housekeeping": pm.settings.housekeeping, "nodes": [
        {"node": n, "cpus": str(CpuSet(c["cpu"] for s in socks.values() for k in s for c in k["cpus"])),
         "sockets": [{"socket": s, "cores": cores} for s, cores in sorted(socks.items())]}
        for n, socks in sorted(nodes.items())]}


def numa_spans(topo, effective, occupies):
    """[(pin key, {node: CPUs}) for each effective pin that spans NUMA nodes, and
    (None, {node: CPUs}) when the CPUs the domain occupies do]: memory far from some of
    the CPUs a thread may run on."""
    found = []
    for key, cpus in (effective.sorted_pins() if effective else ()):
        nodes = topo.nodes_of(cpus)
        if len(nodes) > 1:
            found.append((key, nodes))
    if occupies:
        nodes = topo.nodes_of(CpuSet(occupies))
        if len(nodes) > 1:
            found.append((None, nodes))
    return found
