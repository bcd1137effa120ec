"""A PolicyManager's view of libvirt and the host: the connection, each domain's facts
resolved as virsh resolves them, and the one way to put a plan in force on a running
domain. policyctl, the detached applier and updater (applier.py) and the watcher reach
a domain through a Session. No policy edits here (api.py); no words but errors.

What a registry transaction needs from libvirt (the domain's Context, the running
domains of viewer()) is asked here before the transaction: Registry.transact() runs
only pure functions under the lock."""

import os

from . import enforce, occupancy, originals
from .domxml import DomainFacts
from .errors import LIBVIRT, PolicyError, invalid
from .hostinfo import online_cpus
from .mapping import local_cgroup_version
from .names import check_name, name_problem
from .planner import plan
from .registry import Registry
from .results import Status
from .settings import Settings
from .state import names as state_names
from .tunables import VCPU


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

    def target(self, view=None):
        return enforce.Target(self.name, self.dom, self.facts, self.host, self.cgroup_version, view)


class LocalHost:
    """This machine's CPUs, when libvirt is not asked (--offline, unreachable): from the
    sysfs under --root when that has one (a tree of a host prepared elsewhere, tests)."""

    __slots__ = ("cpus", "cpumap_len", "cgroup_version", "local")

    def __init__(self, cgroup_version, sysfs):
        self.cpus = online_cpus(os.path.join(sysfs, "cpu"))
        self.cpumap_len = (self.cpus.max() or 0) + 1
        self.cgroup_version = cgroup_version
        self.local = True


class Session:
    def __init__(self, paths, uri=None, settings=None, connect=None, offline=False,
                 cgroup_version=None, lock=None, systemd=None, lock_timeout=None, threads=None):
        """`connect(uri) -> conn` defaults to libvirt; `offline` never connects;
        `cgroup_version` overrides what the host is found to have; `lock(path, timeout)`
        makes the registry lock (Registry), waited on `lock_timeout` seconds (the settings'
        lock_timeout by default); `systemd` is the systemd adapter (systemd.Systemd by
        default); `threads` is where vCPU threads are found and changed
        (vcputhreads.Host, this host's by default)."""
        self.paths = paths
        self.threads = threads
        self.settings = settings or Settings()
        self.uri = uri or self.settings.uri
        self.registry = Registry(paths, lock_timeout or self.settings.lock_timeout, lock)
        self.systemd = systemd
        self.offline = offline
        self._connect = connect
        self._conn = None
        self._host = None
        self._cgroup_version = cgroup_version
        self.libvirt_error = None  # why libvirt could not be used, once it could not
        self._running_names = None
        self._topology = None

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
                if not getattr(e, "unreachable", True):
                    raise  # a wrong URI or a driver libvirt does not have: nothing is saved
                self.libvirt_error = str(e)
        return self._conn

    def host_facts(self):
        if self._host is None:
            conn = self.connection()
            if conn is None:
                self._host = LocalHost(self._cgroup_version or local_cgroup_version(),
                                       self.paths.host_sysfs())
            else:
                from . import virt
                self._host = virt.host_facts(conn)
                if self._cgroup_version:
                    self._host.cgroup_version = self._cgroup_version
        return self._host

    def topology(self):
        """The topology of the connection's host (libvirt's capabilities), or of this
        machine (sysfs under --root) without libvirt; a flat one when neither tells."""
        from . import topology

        host = self.host_facts()
        conn = self.connection()
        try:
            if conn is not None:
                from . import virt
                found = topology.from_capabilities(virt.capabilities(conn), host.cpus)
            else:
                found = topology.from_sysfs(self.paths.host_sysfs())
        except PolicyError:
            found = None
        if found is None or found.online() != host.cpus:
            return topology.flat(host.cpus)
        return found

    def context(self, text):
        """What libvirt says of the domain `text` names, resolved as virsh resolves it
        (an Id, a UUID, a name); with no libvirt, `text` is the name."""
        host = self.host_facts()
        conn = self.connection()
        if conn is None:
            return Context(check_name(text), host, cgroup_version=host.cgroup_version)
        from . import virt
        dom = virt.resolve(conn, text)
        if dom is None:
            # A driver we have no mapping for plans as QEMU, as parse_domain_xml() does.
            facts = DomainFacts(check_name(text), virt.driver(conn) or "qemu")
            return Context(text, host, facts, cgroup_version=host.cgroup_version or 2)
        return self.context_of(dom)

    def context_of(self, dom, running=None, live_cgroup=True):
        """The Context of a domain already looked up (the applier's, which waits for it
        to run: `running`). `live_cgroup`: on a remote host, whose cgroup version is not
        this machine's, read it from the running domain's parameters."""
        from . import virt

        host = self.host_facts()
        # A name libvirt allows but no policy file can carry (a leading '.', a control
        # character) has no policy and no originals, but is still planned: kept off
        # occupied CPUs, verified. Storing a policy for it is refused where it is saved.
        name = dom.name()
        facts = virt.facts(dom, name)
        if name_problem(name) is None:
            # The domain's own pins: not those policyhook wrote into its definition.
            originals.own_pins(facts, originals.load(self.paths, name, facts.uuid))
        running = virt.is_running(dom) if running is None else running
        version = host.cgroup_version
        if version is None:
            version = virt.cgroup_version(host, facts.driver, virt.live_values(dom, facts.driver)
                                          if running and live_cgroup else None)
        return Context(name, host, facts, dom, running, version)

    def known(self, ctx, stored, undefined=False, suggest=True):
        """INVALID for a domain libvirt does not know and the registry has no policy of,
        unless `undefined` (a policy recorded ahead of the domain's definition); None
        for a command that cannot record one (a read, unset), whose error then offers no
        --undefined. With `suggest`, the closest name libvirt knows: a listing of every
        domain, so never under the registry lock (it can wait on a starting domain whose
        hook waits on the lock)."""
        conn = self.connection()
        if ctx.dom is not None or conn is None or stored is not None or undefined:
            return
        from difflib import get_close_matches

        from . import virt
        close = get_close_matches(ctx.name, virt.domain_names(conn), 1, 0.75) if suggest else ()
        raise unknown_domain(ctx.name, self.uri, close, undefined)

    def recorded(self, name):
        """What the registry holds of `name`, for known(): its policy, else the CPUs it
        occupies (a member of an occupancy set with no policy of its own), else None."""
        stored = self.registry.load(name)
        return stored if stored is not None else (self.registry.load_host().occupies(name) or None)

    def not_live(self, ctx):
        """The status of a saved change that was not applied live."""
        if self.connection() is None:
            return Status.OFFLINE
        return Status.NOT_DEFINED if ctx.dom is None else Status.NOT_RUNNING

    def plan_for(self, policy, host, ctx, view=None):
        """The plan of `policy` for the domain of `ctx` under `host`, with `view` from
        viewer() (asked for here when not given: not under the registry lock)."""
        return plan(policy, (view or self.viewer())(host), ctx.facts, ctx.host.cpus, ctx.cgroup_version)

    def viewer(self, also=()):
        """host policy -> the occupancy sets in force: all of them, or with [occupancy]
        mode = running those with an occupant running (or in `also`). The running
        domains are listed here, once per session, so that the function it returns is
        pure: what runs inside Registry.transact() asks libvirt nothing."""
        if self.settings.occupancy_mode != "running":
            return _whole
        running = set(self.running_names()) | set(also)
        return lambda host: host.active(running)

    def running_names(self):
        """The domains running on every configured connection (this one's without libvirt:
        the runtime state's), listed once per session."""
        if self._running_names is None:
            if self.connection() is None:
                self._running_names = set(state_names(self.paths))
            else:
                self._running_names = set(self.running_everywhere()[0])
        return self._running_names

    def running_everywhere(self):
        """effects.running_everywhere through this session's connection: (names of the
        domains running on every configured connection, whether each one answered)."""
        from . import effects, virt

        return effects.running_everywhere(self.settings, self._connect or virt.connect,
                                          {self.uri: self.connection()})

    def forget_running(self):
        """A long-lived session (the watcher): what runs may have changed since it was
        listed; the next viewer() lists it again."""
        self._running_names = None

    def definer(self, ctx, always=False):
        """What writes a plan into the domain's persistent definition in persistent mode,
        or None: no such mode, or no definition. `always`: in either mode, the plan in
        persistent mode, everything given back otherwise (apply --config)."""
        if not (self.settings.persistent or always) or ctx.dom is None:
            return None
        from . import definition, virt
        if not virt.has_own_definition(ctx.dom, ctx.facts.driver):
            return None
        conn = self.connection()
        keep = self.settings.persistent
        return lambda p: definition.put(self.registry, virt, conn, ctx.dom, ctx.name,
                                        ctx.facts.uuid, p if keep else None,
                                        node=self.memory_node(ctx, p) if keep else None)

    def memory_node(self, ctx, plan):
        """With [occupancy] memory = follow, the NUMA node every vCPU of `plan` is pinned
        within (numatune.memory_node), else None."""
        if self.settings.memory != "follow":
            return None
        from . import numatune
        if self._topology is None:
            self._topology = self.topology()
        return numatune.memory_node(self._topology, plan, ctx.facts)

    def follow_memory(self, ctx, plan):
        """[occupancy] memory = follow on a running domain: its memory bound live to the
        node its vCPUs are pinned in, where libvirt allows it. (node, libvirt's refusal
        or None), or None when there is nothing to bind."""
        node = self.memory_node(ctx, plan)
        if node is None or ctx.dom is None:
            return None
        from . import virt
        if virt.memory_nodes(ctx.dom) == str(node):
            return node, None
        try:
            virt.bind_memory(ctx.dom, node)
        except PolicyError as e:
            return node, str(e)
        return node, None

    def enforce_on(self, ctx, source, hint=True, **kw):
        """enforce.enforce() on a domain: live when it runs (its runtime state recorded),
        into its definition with define=...; LIBVIRT when libvirt refuses (with `hint`,
        saying how to retry)."""
        read = enforce.reader(self.registry, ctx.name)
        kw.setdefault("live", ctx.running)
        if kw["live"] and self.threads is not None:
            from . import virt
            kw.setdefault("apply", lambda dom, plan, n: virt.apply_plan(dom, plan, n, threads=self.threads))
        if kw["live"] and ctx.dom is not None:
            kw.setdefault("remember", enforce.rememberer(self.registry, ctx.dom, ctx.name, ctx.facts.uuid,
                                                         ctx.facts.driver))
        try:
            done = enforce.enforce(ctx.target(self.viewer()), read, **kw)
        except PolicyError as e:
            if e.code != LIBVIRT:
                raise
            if kw["live"]:
                enforce.record(self.registry, ctx.name, source, error=str(e))
            if not hint:
                raise
            raise PolicyError("%s (the policy is saved; run 'policyctl apply %s%s' to retry)"
                              % (e, "--config " if not kw["live"] else "", ctx.name), LIBVIRT) from None
        if kw["live"]:
            enforce.record(self.registry, ctx.name, source, done, after_start_ms=None)
            done.memory = self.follow_memory(ctx, done.plan)
        return done

    def running(self, defined=False):
        """[occupancy.Running] of every running domain, with `defined` of every domain
        with a definition too (no live pins for those not running); from libvirt, no
        lock held."""
        conn = self.connection()
        if conn is None:
            return []
        from . import virt
        found = []
        doms = virt.running_domains(conn)
        if defined:
            doms = virt.defined_domains(conn) + doms
        seen = set()
        for dom in doms:
            if dom.name() in seen:
                continue
            seen.add(dom.name())
            ctx = self.context(dom.name())
            live = virt.live_values(ctx.dom, ctx.facts.driver) if ctx.running else None
            if ctx.running or defined:
                found.append(occupancy.Running(ctx, live.pins_of(VCPU.kind) if live else {}))
        return found

    def repin_others(self, before, after, skip=None):
        """[occupancy] mode = running: the domains running went from `before` to `after`
        (names), which may put a set in force or free it; the other running domains of
        this connection (all but `skip`) are moved to the pins that gives them. Live
        only, lock held only to read. [(name, pins applied, or the error's text)]."""
        if self.settings.occupancy_mode != "running" or self.connection() is None:
            return []
        host = self.registry.read(lambda snap: snap.host())
        old, new = host.active(before), host.active(after)
        if old == new:
            return []
        running = [r for r in self.running() if r.ctx.name != skip]
        policies = {p.domain: p for p in self.registry.read(lambda snap: snap.policies())}
        for r in running:
            r.policy = policies.get(r.ctx.name)
        moves, _cannot = occupancy.repins(old, new, running)
        self._running_names = set(after)
        moved = []
        for r, previous, live in moves:
            try:
                done = self.enforce_on(r.ctx, "occupancy (running mode)", hint=False,
                                       first=(r.policy, host), previous=previous, scope="pins")
                moved.append((r.ctx.name, done.applied or live))
            except PolicyError as e:
                moved.append((r.ctx.name, str(e)))
        return moved


def _whole(host):
    return host


def unknown_domain(name, uri, close=(), undefined=False):
    """INVALID: libvirt does not know the domain `name` (with the closest name it knows).
    `undefined` None: a command that cannot record a policy (a read, unset), whose error
    then offers no --undefined."""
    suggestion = "; did you mean '%s'?" % close[0] if close else ""
    return invalid("domain '%s' is not defined in libvirt (%s)%s%s" % (
        name, uri, " and has no policy" if undefined is None else "", suggestion) + (
        "" if undefined is None else "; --undefined records a policy for a domain not defined yet"))
