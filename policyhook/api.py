"""The Python API that policyctl is a thin layer over.

    from policyhook.api import PolicyManager
    from policyhook.paths import Paths
    pm = PolicyManager(Paths("/"), uri="qemu:///system")
    outcome = pm.set_pin("vm1", "vcpu", 0, "0-1")      # a results.Outcome
    outcome.status                                    # Status.APPLIED

Each change is computed first (validated, planned against the host, the domain and
the CPU occupancy), then saved under the registry lock; the lock is released before
libvirt is called to put it in force on a running domain (enforce.py). `dry_run=True`
stops after computing. Every method returns records (results.py); only policyctl and
the log make words of them.

A setting the domain's driver cannot put in force (vCPU and emulator pins on LXC, the
emulator and IOThread pins on libxl, weight and cap under a Xen scheduler other than
credit) is refused, CONFLICT, nothing saved: the driver is known from libvirt (the
domain, or for a domain libvirt does not know, the connection). With libvirt
unreachable or --offline the driver is unknown and the setting is saved; the hook and
`cpupolicy` then report it as unsupported for a domain that turns out to be LXC or Xen.
"""

from . import enforce, occupancy
from .cpuset import CpuSet
from .domxml import DomainFacts
from .errors import CONFLICT, LIBVIRT, REGISTRY, PolicyError, conflict, invalid
from .hostinfo import online_cpus
from .inputs import parse_domains, parse_int
from .limits import count_phrase
from .mapping import LABEL, local_cgroup_version, unsupported
from .model import DomainPolicy
from .names import check_name
from .planner import plan
from .registry import Registry
from .results import ApplyResult, Change, OccupancyOutcome, Outcome, Status
from .settings import Settings
from .tunables import PIN, SCHED_BY_KEY, SETTINGS, VCPU


class Context:
    """What libvirt (or the local host) says about one domain, gathered before locking."""

    __slots__ = ("name", "host", "facts", "dom", "running", "cgroup_version")

    def __init__(self, name, host, facts=None, dom=None, running=False, cgroup_version=1):
        self.name = name
        self.host = host                  # virt.HostFacts, or LocalHost
        self.facts = facts or DomainFacts(name)
        self.dom = dom
        self.running = running
        self.cgroup_version = cgroup_version

    def target(self):
        return enforce.Target(self.name, self.dom, self.facts, self.host, self.cgroup_version)


class LocalHost:
    """This machine's CPUs, when libvirt is not asked (--offline, unreachable)."""

    __slots__ = ("cpus", "cpumap_len", "cgroup_version", "local")

    def __init__(self, cgroup_version):
        self.cpus = online_cpus()
        self.cpumap_len = (self.cpus.max() or 0) + 1
        self.cgroup_version = cgroup_version
        self.local = True


class PolicyManager:
    def __init__(self, paths, uri=None, settings=None, connect=None, offline=False,
                 cgroup_version=None):
        """`connect(uri) -> conn` defaults to libvirt; `offline` never connects;
        `cgroup_version` overrides what the host is found to have."""
        self.paths = paths
        self.settings = settings or Settings()
        self.uri = uri or self.settings.uri
        self.registry = Registry(paths, self.settings.lock_timeout)
        self.offline = offline
        self._connect = connect
        self._conn = None
        self._host = None
        self._cgroup_version = cgroup_version
        self.libvirt_error = None  # why libvirt could not be used, once it could not

    # ---- libvirt --------------------------------------------------------

    def connection(self):
        """The libvirt connection, or None (--offline, or libvirt_error says why)."""
        if self._conn is None and not self.offline and self.libvirt_error is None:
            try:
                if self._connect is None:
                    from . import virt
                    self._connect = virt.connect
                self._conn = self._connect(self.uri)
            except PolicyError as e:
                self.libvirt_error = str(e)
        return self._conn

    def host_facts(self):
        if self._host is None:
            conn = self.connection()
            if conn is None:
                self._host = LocalHost(self._cgroup_version or local_cgroup_version())
            else:
                from . import virt
                self._host = virt.host_facts(conn)
                if self._cgroup_version:
                    self._host.cgroup_version = self._cgroup_version
        return self._host

    def context(self, name):
        check_name(name)
        host = self.host_facts()
        conn = self.connection()
        if conn is None:
            return Context(name, host, cgroup_version=host.cgroup_version)
        from . import virt
        dom = virt.lookup(conn, name)
        if dom is None:
            # A driver we have no mapping for plans as QEMU, as parse_domain_xml() does.
            facts = DomainFacts(name, virt.driver(conn) or "qemu")
            return Context(name, host, facts, cgroup_version=host.cgroup_version or 2)
        facts = virt.facts(dom, name)
        running = virt.is_running(dom)
        version = host.cgroup_version
        if version is None:
            version = virt.cgroup_version(host, facts.driver,
                                          virt.live_values(dom, facts.driver) if running else None)
        return Context(name, host, facts, dom, running, version)

    def _not_live(self, ctx):
        """The status of a saved change that was not applied live."""
        if self.connection() is None:
            return Status.OFFLINE
        return Status.NOT_DEFINED if ctx.dom is None else Status.NOT_RUNNING

    # ---- editing one domain --------------------------------------------

    def _edit(self, name, change, mutate, dry_run=False):
        ctx = self.context(name)
        with self.registry.lock():
            host = self.registry.load_host()
            old = self.registry.load(name) or DomainPolicy(name)
            new = old.copy()
            mutate(new, ctx)
            new_plan = self.plan_for(new, host, ctx)
            if dry_run:
                return Outcome(name, change, Status.DRY_RUN, new_plan, libvirt_error=self.libvirt_error)
            self.registry.save(new)
        if not ctx.running:
            return Outcome(name, change, self._not_live(ctx), new_plan, libvirt_error=self.libvirt_error)
        try:
            previous = self.plan_for(old, host, ctx)
        except PolicyError as e:
            if e.code != CONFLICT:
                raise
            previous = None  # the old policy no longer fits the domain: nothing to restore
        stored = None if new.is_empty() else new
        done = self._enforce(ctx, "policyctl", first=(stored, host), previous=previous)
        return Outcome(name, change, Status.APPLIED, done.plan, done.applied, rounds=done.rounds)

    def plan_for(self, policy, host, ctx):
        """The plan of `policy` for the domain of `ctx` under `host` (pure)."""
        return plan(policy, host, ctx.facts, ctx.host.cpus, ctx.cgroup_version)

    def _enforce(self, ctx, source, hint=True, **kw):
        """enforce.enforce() on a running domain, its runtime state recorded; LIBVIRT
        when libvirt refuses (with `hint`, saying how to retry)."""
        read = enforce.reader(self.paths, ctx.name, self.settings.lock_timeout)
        try:
            done = enforce.enforce(ctx.target(), read, **kw)
        except PolicyError as e:
            if e.code != LIBVIRT:
                raise
            enforce.record(self.paths, ctx.name, source, error=str(e))
            if not hint:
                raise
            raise PolicyError("%s (the policy is saved; run 'policyctl apply %s' to retry)"
                              % (e, ctx.name), LIBVIRT) from None
        enforce.record(self.paths, ctx.name, source, done, after_start_ms=None)
        return done

    def set_pin(self, name, kind, index, cpulist, dry_run=False):
        """Pin one thread: kind "vcpu" or "iothread" with its index, or "emulator"."""
        row = PIN[kind]
        index = parse_int(index, row.index_word, row.first, row.max_index) if row.indexed else 0
        cpus = CpuSet.parse(cpulist)

        def mutate(policy, ctx):
            _check_driver(row.key, ctx)
            indexes = row.indexes(ctx.facts)
            if indexes is not None and index not in indexes:
                raise invalid("invalid %s %d: domain '%s' has %s"
                              % (row.index_word, index, name, count_phrase(row.label, indexes)))
            _check_host(cpus, ctx)
            policy.pins[(row.kind, index)] = cpus
        return self._edit(name, Change("set", row.key, index if row.indexed else None, cpus),
                          mutate, dry_run)

    def unset_pin(self, name, kind, index=None, dry_run=False):
        """Drop one pin, or every pin of `kind` when index is None."""
        row = PIN[kind]
        if index is not None:
            index = parse_int(index, row.index_word, row.first, row.max_index) if row.indexed else 0

        def mutate(policy, _ctx):
            if index is None:
                for key in [k for k in policy.pins if k[0] == row.kind]:
                    del policy.pins[key]
            elif (row.kind, index) not in policy.pins:
                raise invalid("domain '%s' has no pin for %s" % (name, row.name(index)))
            else:
                del policy.pins[(row.kind, index)]
        return self._edit(name, Change("unset", row.key, index if row.indexed else None),
                          mutate, dry_run)

    def set_sched(self, name, key, value, dry_run=False):
        """Set a scheduler setting: "weight" or "cap" (tunables.SCHED)."""
        row = SCHED_BY_KEY[key]
        value = parse_int(value, row.label, row.lo, row.hi)

        def mutate(policy, ctx):
            _check_driver(row.key, ctx)
            if row.per_host_cpu:
                limit = 100 * len(ctx.host.cpus)
                if value > limit:
                    raise invalid("invalid %s %d: above %d (100 x %d host CPUs)"
                                  % (row.label, value, limit, len(ctx.host.cpus)))
            policy.sched[row.key] = value
        return self._edit(name, Change("set", row.key, value=value), mutate, dry_run)

    def unset_sched(self, name, key, dry_run=False):
        row = SCHED_BY_KEY[key]

        def mutate(policy, _ctx):
            policy.sched.pop(row.key, None)
        return self._edit(name, Change("unset", row.key), mutate, dry_run)

    def remove(self, name, dry_run=False):
        def mutate(policy, _ctx):
            policy.pins.clear()
            policy.sched.clear()
            policy.uuid = None
        try:
            stored = self.registry.load(check_name(name))
        except PolicyError as e:
            if e.code != REGISTRY:
                raise
            return self._remove_broken(name, dry_run)
        if stored is None:
            raise invalid("domain '%s' has no policy" % name)
        return self._edit(name, Change("remove"), mutate, dry_run)

    def _remove_broken(self, name, dry_run):
        """A corrupt or unsafe policy file can always be removed (nothing to undo live)."""
        change = Change("remove-broken")
        if dry_run:
            return Outcome(name, change, Status.DRY_RUN)
        with self.registry.lock():
            self.registry.remove(name)
        return Outcome(name, change, Status.OFFLINE)

    def occupy(self, cpus, names, dry_run=False):
        """cpuoccupy: `names` become the only occupants of `cpus`; None frees them.
        Checked (occupancy.py) and saved under the lock, then every running domain whose
        pins it moves is re-pinned, with no lock held. An OccupancyOutcome; its
        failures name the domains libvirt did not re-pin."""
        cpus = CpuSet.parse(cpus) if isinstance(cpus, str) else cpus
        names = parse_domains(names) if names is not None else None
        host = self.host_facts()
        occupancy.check_cpus(cpus, host.cpus)
        running = self._running()
        with self.registry.lock():
            old_host = self.registry.load_host()
            new_host = occupancy.occupied(old_host, cpus, names)
            policies = {p.domain: p for p in self.registry.policies()}
            for r in running:
                r.policy = policies.get(r.ctx.name)
            occupancy.check(old_host, new_host, host.cpus, policies, running)
            moves, cannot = occupancy.repins(old_host, new_host, running)
            if dry_run:
                return OccupancyOutcome(cpus, names, Status.DRY_RUN,
                                        [(r.ctx.name, live) for r, _old, live in moves], (),
                                        cannot, self.libvirt_error)
            self.registry.save_host(new_host)
        if self.connection() is None:
            return OccupancyOutcome(cpus, names, Status.OFFLINE, libvirt_error=self.libvirt_error)
        repinned, failures = [], []
        for r, old, live in moves:
            try:
                done = self._enforce(r.ctx, "policyctl cpuoccupy", hint=False, first=(r.policy, new_host),
                                     previous=old, scope="pins")
                repinned.append((r.ctx.name, done.applied or live))
            except PolicyError as e:
                failures.append((r.ctx.name, str(e)))
        return OccupancyOutcome(cpus, names, Status.FAILED if failures else Status.APPLIED,
                                repinned, failures, cannot, self.libvirt_error)

    def _running(self):
        """[occupancy.Running] of every running domain, from libvirt (no lock held)."""
        conn = self.connection()
        if conn is None:
            return []
        from . import virt
        found = []
        for dom in virt.running_domains(conn):
            ctx = self.context(dom.name())
            if ctx.running:
                live = virt.live_values(ctx.dom, ctx.facts.driver)
                found.append(occupancy.Running(ctx, live.pins_of(VCPU.kind)))
        return found

    # ---- reading ----------------------------------------------------------

    def list(self):
        """[(policy, CPUs it occupies)] of every stored policy."""
        host = self.registry.load_host()
        return [(policy, host.occupies(policy.domain)) for policy in self.registry.policies()]

    def check(self):
        return self.registry.check()

    def host(self):
        return self.registry.load_host()

    def report(self, name):
        """`cpupolicy DOM`: stored policy, effective plan, live values and drift."""
        from .report import report
        return report(self, name)

    # ---- putting the registry in force ------------------------------------

    def apply(self, names=None):
        """Put the stored policy in force on running domains now: [ApplyResult]."""
        conn = self.connection()
        if conn is None and self.offline:
            raise invalid("apply puts the policy in force through libvirt; it cannot work --offline")
        if conn is None:
            raise PolicyError(self.libvirt_error, LIBVIRT)
        from . import virt
        if names is None:
            names = sorted(d.name() for d in virt.running_domains(conn))
        results = []
        for name in names:
            ctx = self.context(name)
            if not ctx.running:
                results.append(ApplyResult(name, Status.NOT_RUNNING))
                continue
            try:
                done = self._enforce(ctx, "policyctl apply",
                                     previous=enforce.previous_plan(self.paths, name))
                results.append(ApplyResult(name, Status.APPLIED, done.plan, done.applied))
            except PolicyError as e:
                results.append(ApplyResult(name, Status.FAILED, error=str(e)))
        return results


def _check_driver(setting, ctx):
    """CONFLICT when the domain's driver cannot put `setting` in force (mapping.unsupported)."""
    why = unsupported(ctx.facts.driver, ctx.facts.scheduler).get(setting)
    if why:
        raise conflict("%s cannot be put in force on '%s' (%s): %s; nothing saved"
                       % (SETTINGS[setting].what, ctx.name,
                          LABEL.get(ctx.facts.driver, ctx.facts.driver), why))


def _check_host(cpus, ctx):
    if not cpus.issubset(ctx.host.cpus):
        raise invalid("invalid cpulist '%s': CPU %s not on this host (host CPUs: %s)"
                      % (cpus, cpus - ctx.host.cpus, ctx.host.cpus))


__all__ = ["PolicyManager", "Context"]
