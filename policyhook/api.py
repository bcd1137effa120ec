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

from . import enforce, occupancy, placement, state
from .cpuset import MAX_CPU, CpuSet
from .describe import auto_pin_refusal, elsewhere_line, placement_missing
from .errors import CONFLICT, LIBVIRT, REGISTRY, PolicyError, conflict, invalid, quote
from .inputs import parse_domains, parse_int
from .limits import count_phrase
from .mapping import LABEL, unsupported
from .model import DomainPolicy
from .names import check_name
from .results import ApplyResult, AutoPins, Change, OccupancyOutcome, Outcome, Status, Writes
from .session import Context, Session, unknown_domain
from .tunables import EMULATOR, PIN, SCHED_BY_KEY, SETTINGS, VCPU, VCPUSCHED


class PolicyManager(Session):
    """Edits, reports and applies policies (the session: session.py)."""

    # ---- editing one domain --------------------------------------------

    def _edit(self, text, change, mutate, dry_run=False, undefined=False, with_host=False):
        """An edit of one domain's policy: libvirt asked first (the domain, what runs),
        then `mutate(policy, ctx)` (pure; `with_host`: mutate(policy, ctx, host policy)) in
        one registry transaction, then the result put in force with no lock held."""
        ctx = self.context(text)
        name = ctx.name
        if ctx.dom is None:     # a domain libvirt knows needs no look at the registry here
            self.known(ctx, self.registry.load(name), undefined)
        asked = self.connection() is not None
        view = self.viewer()
        uri = self.uri

        def edit(snap):
            host = snap.host()
            stored = snap.domain(name)
            if asked and ctx.dom is None and stored is None and not undefined:
                raise unknown_domain(name, uri, undefined=undefined)     # its policy was removed meanwhile
            if stored is not None and stored.bound_elsewhere(ctx.facts.uuid) \
                    and change.op not in ("remove", "rebind"):
                raise conflict(elsewhere_line(name, stored.uuid, ctx.facts.uuid, "nothing saved"))
            old = stored or DomainPolicy(name)
            new = old.copy()
            mutate(new, ctx, host) if with_host else mutate(new, ctx)
            _check_realtime(old, new, host, ctx)
            if ctx.facts.uuid and not new.is_empty():
                new.uuid = ctx.facts.uuid  # bound to this domain, not to whatever takes its name
            new_plan = self.plan_for(new, host, ctx, view)
            return Writes(domains=() if dry_run else [new], result=(host, old, new, new_plan))

        host, old, new, new_plan = self.registry.transact(edit)
        if dry_run:
            return Outcome(name, change, Status.DRY_RUN, new_plan, libvirt_error=self.libvirt_error,
                           policy=None if new.is_empty() else new)
        define = self.definer(ctx)
        stored = None if new.is_empty() else new
        if not ctx.running:
            node = None
            if define is not None:
                self.enforce_on(ctx, "policyctl", first=(stored, host), define=define)
                node = self.memory_node(ctx, new_plan)
            return Outcome(name, change, self.not_live(ctx), new_plan, libvirt_error=self.libvirt_error,
                           definition=define is not None, policy=stored, memory_node=node)
        try:
            previous = self.plan_for(old, host, ctx, view)
        except PolicyError as e:
            if e.code != CONFLICT:
                raise
            previous = None  # the old policy no longer fits the domain: nothing to restore
        done = self.enforce_on(ctx, "policyctl", first=(stored, host), previous=previous, define=define)
        node, refused = done.memory or (None, None)
        return Outcome(name, change, Status.APPLIED, done.plan, done.applied, rounds=done.rounds,
                       definition=define is not None, policy=stored, memory_node=node, memory_error=refused)

    def set_pin(self, name, kind, index, cpulist, dry_run=False, undefined=False):
        """Pin one thread: kind "vcpu" or "iothread" with its index, or "emulator"."""
        row = PIN[kind]
        index = parse_int(index, row.index_word, row.first, row.max_index) if row.indexed else 0
        cpus = CpuSet.parse(cpulist)

        def mutate(policy, ctx):
            _check_pin(row, index, cpus, ctx)
            policy.pins[(row.kind, index)] = cpus
        return self._edit(name, Change("set", row.key, index if row.indexed else None, cpus),
                          mutate, dry_run, undefined)

    def pin_auto(self, name, dry_run=False, undefined=False):
        """vcpupin --auto: each vCPU pinned to a CPU of its own among those the domain
        occupies (a guest's thread pairs on host sibling pairs), the emulator to the CPUs
        of the same NUMA node outside every occupancy set (placement.py)."""
        topo = self.topology()
        # What the guest's own definition says (<cpu><topology threads=...>), asked before.
        change = Change("auto", VCPU.key)

        def mutate(policy, ctx, host):
            held = CpuSet(host.occupies(ctx.name))
            vcpus = ctx.facts.vcpus
            if vcpus is None:
                raise invalid("vcpupin --auto needs the vCPU count of '%s' from libvirt (it cannot "
                              "work --offline, nor for a domain libvirt does not know)" % ctx.name)
            if len(held) < vcpus:
                raise conflict(auto_pin_refusal(ctx.name, vcpus, held))
            pins = placement.vcpu_pins(topo, held, vcpus, ctx.facts.threads)
            for key in [k for k in policy.pins if k[0] == VCPU.kind]:
                del policy.pins[key]
            for index, cpus in enumerate(pins):
                _check_pin(VCPU, index, cpus, ctx)
                policy.pins[(VCPU.kind, index)] = cpus
            emulator = placement.emulator_cpus(topo, held, host.occupied())
            if emulator and not unsupported(ctx.facts.driver, ctx.facts.scheduler).get(EMULATOR.key):
                policy.pins[(EMULATOR.kind, 0)] = emulator
            change.value = AutoPins(held, pins, emulator or None, placement.node_of(topo, held))
        return self._edit(name, change, mutate, dry_run, undefined, with_host=True)

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
                raise invalid("domain '%s' has no pin for %s" % (policy.domain, row.name(index)))
            else:
                del policy.pins[(row.kind, index)]
        return self._edit(name, Change("unset", row.key, index if row.indexed else None),
                          mutate, dry_run, None)

    def set_sched(self, name, key, value, dry_run=False, undefined=False):
        """Set a scheduler setting: "weight" or "cap" (tunables.SCHED)."""
        row = SCHED_BY_KEY[key]
        value = parse_int(value, row.label, row.lo, row.hi)

        def mutate(policy, ctx):
            _check_sched(row, value, ctx)
            policy.sched[row.key] = value
        return self._edit(name, Change("set", row.key, value=value), mutate, dry_run, undefined)

    def unset_sched(self, name, key, dry_run=False):
        row = SCHED_BY_KEY[key]

        def mutate(policy, _ctx):
            policy.sched.pop(row.key, None)
        return self._edit(name, Change("unset", row.key), mutate, dry_run, None)

    def set_vcpusched(self, name, vcpus, policy, priority=None, dry_run=False, undefined=False):
        """Schedule vCPUs `vcpus` ("0-1") with `policy` ("fifo", "rr", "other") and, for
        the real-time two, `priority` 1..99. Real-time only where every one of those
        vCPUs is pinned inside the CPUs the domain occupies (INVALID otherwise)."""
        row = VCPUSCHED
        indexes = parse_vcpus(vcpus)
        value = vcpusched_value(policy, priority)

        def mutate(stored, ctx):
            _check_driver(row.key, ctx)
            if ctx.dom is not None and not ctx.host.local:
                raise conflict("a vCPU's scheduling policy is set on its threads, and '%s' runs on "
                               "another host (libvirt has no call for it); nothing saved" % ctx.name)
            for index in indexes:
                _check_index(VCPU, index, ctx)
                stored.vcpusched[index] = value
        return self._edit(name, Change("set", row.key, list(indexes), value), mutate, dry_run, undefined)

    def unset_vcpusched(self, name, vcpus=None, dry_run=False):
        """Drop the scheduling policy of `vcpus` ("0-1"), or of every vCPU when None: the
        vCPUs go back to the kernel's default (other)."""
        indexes = None if vcpus is None else parse_vcpus(vcpus)

        def mutate(stored, _ctx):
            for index in (sorted(stored.vcpusched) if indexes is None else indexes):
                if index not in stored.vcpusched:
                    raise invalid("domain '%s' has no scheduling policy for vCPU %d" % (stored.domain, index))
                del stored.vcpusched[index]
        return self._edit(name, Change("unset", VCPUSCHED.key, indexes),
                          mutate, dry_run, None)

    def put(self, name, pins=None, sched=None, exclusive=False, dry_run=False, undefined=False):
        """Set several settings of one domain's policy in one change: all are checked
        before anything is saved, so a bad value leaves the file as it was. `pins` is
        {(kind, index): cpulist}, the emulator's index 0; `sched` {key: value}. With
        `exclusive`, the settings not given are dropped. The Outcome's `policy` is the
        policy as saved (or, with dry_run, as it would be)."""
        wanted_pins = {}
        for (kind, index), cpulist in sorted((pins or {}).items(), key=lambda kv: (PIN[kv[0][0]].order,
                                                                                    str(kv[0][1]))):
            row = PIN[kind]
            index = parse_int(index, row.index_word, row.first, row.max_index) if row.indexed else 0
            wanted_pins[(row.kind, index)] = (row, CpuSet.parse(cpulist) if isinstance(cpulist, str)
                                              else cpulist)
        wanted_sched = {}
        for key, value in (sched or {}).items():
            row = SCHED_BY_KEY[key]
            wanted_sched[row.key] = (row, parse_int(value, row.label, row.lo, row.hi))

        def mutate(policy, ctx):
            if exclusive:
                policy.pins.clear()
                policy.sched.clear()
            for key, (row, cpus) in wanted_pins.items():
                _check_pin(row, key[1], cpus, ctx)
                policy.pins[key] = cpus
            for key, (row, value) in wanted_sched.items():
                _check_sched(row, value, ctx)
                policy.sched[key] = value
        return self._edit(name, Change("put"), mutate, dry_run, undefined)

    def remove(self, name, dry_run=False):
        def mutate(policy, _ctx):
            policy.pins.clear()
            policy.sched.clear()
            policy.vcpusched.clear()
            policy.uuid = None
        name = self.context(name).name
        try:
            stored = self.registry.load(name)
        except PolicyError as e:
            if e.code != REGISTRY:
                raise
            return self._remove_broken(name, dry_run)
        if stored is None:
            raise invalid("domain '%s' has no policy" % name)
        return self._edit(name, Change("remove"), mutate, dry_run)

    def rebind(self, name, dry_run=False):
        """Bind a stored policy to the domain now defined under its name (another UUID)."""
        ctx = self.context(name)
        if ctx.dom is None:
            raise invalid("domain '%s' is not defined in libvirt (%s); rebind binds a policy to a "
                          "defined domain" % (ctx.name, self.uri))
        if self.registry.load(ctx.name) is None:
            raise invalid("domain '%s' has no policy" % ctx.name)

        def mutate(policy, ctx):
            policy.uuid = ctx.facts.uuid
        return self._edit(ctx.name, Change("rebind", value=ctx.facts.uuid), mutate, dry_run)

    def rename(self, old, new, dry_run=False, undefined=False):
        """Move the policy of `old`, and its occupancy memberships, to `new` (after
        `virsh domrename`: a domain keeps its UUID when renamed)."""
        check_name(old)
        ctx = self.context(new)
        if ctx.name != old:
            self.known(ctx, None, undefined)
        change = Change("rename", value=ctx.name)
        asked = self.connection() is not None
        uri = self.uri

        def move(snap):
            host = snap.host()
            policy = snap.domain(old)
            if policy is None and not host.occupies(old):
                raise invalid("domain '%s' has no policy" % old)
            if ctx.name == old:
                raise invalid("'%s' is the name the policy has already" % old)
            if snap.domain(ctx.name) is not None:
                raise invalid("domain '%s' has a policy already; remove it first (policyctl remove %s)"
                              % (ctx.name, ctx.name))
            if asked and ctx.dom is None and not undefined:
                raise unknown_domain(ctx.name, uri)
            if policy is not None and policy.bound_elsewhere(ctx.facts.uuid):
                raise conflict("the policy of '%s' was recorded for the domain with UUID %s, but '%s' "
                               "has UUID %s: not the same domain; nothing saved"
                               % (old, policy.uuid, ctx.name, ctx.facts.uuid))
            if dry_run:
                return Writes()
            moved = []
            if policy is not None:
                moved = [policy.copy()]
                moved[0].domain = ctx.name
                moved[0].uuid = ctx.facts.uuid or policy.uuid
            return Writes(domains=moved, remove=[old],
                          host=host.renamed(old, ctx.name) if host.occupies(old) else None)

        self.registry.transact(move)
        if dry_run:
            return Outcome(old, change, Status.DRY_RUN, libvirt_error=self.libvirt_error)
        state.rename(self.paths, old, ctx.name)
        return Outcome(old, change, self.not_live(ctx) if not ctx.running else Status.APPLIED,
                       libvirt_error=self.libvirt_error)

    def _remove_broken(self, name, dry_run):
        """A corrupt or unsafe policy file can always be removed (nothing to undo live)."""
        change = Change("remove-broken")
        if dry_run:
            return Outcome(name, change, Status.DRY_RUN)
        self.registry.transact(lambda _snap: Writes(remove=[name]))
        return Outcome(name, change, Status.OFFLINE)

    def occupy(self, cpus, names, dry_run=False, undefined=False, whole_cores=False):
        """cpuoccupy: `names` become the only occupants of `cpus`; None frees them.
        Checked (occupancy.py) and saved under the lock, then every running domain whose
        pins it moves is re-pinned, with no lock held. An OccupancyOutcome; its
        failures name the domains libvirt did not re-pin."""
        cpus = CpuSet.parse(cpus) if isinstance(cpus, str) else cpus
        if names is not None:
            names = [ctx.name for ctx in self._occupants(names, undefined)]
        host = self.host_facts()
        occupancy.check_cpus(cpus, host.cpus)
        topo = self.topology()
        added = None
        if whole_cores and names is not None:
            added = topo.whole_cores(cpus) - cpus
            cpus = cpus | added
        return self._occupy(lambda _old, _running, _view: (cpus, None), names, topo, dry_run, added)

    def occupy_auto(self, count, names, dry_run=False, undefined=False):
        """cpuoccupy --auto: `count` CPUs chosen by placement.choose (the host's topology,
        [occupancy] reserved, the occupancy map, the running domains' pins, the domains'
        <numatune>), then occupied as occupy() does. CONFLICT saying what was missing, and
        the best partial choice, when nothing fits."""
        count = parse_int(count, "CPU count", 1, MAX_CPU + 1)
        contexts = self._occupants(names, undefined)
        names = [ctx.name for ctx in contexts]
        bound = {ctx.name: ctx.facts.memory_nodes for ctx in contexts if ctx.facts.memory_nodes is not None}
        memory_nodes = None
        for nodes in bound.values():
            memory_nodes = nodes if memory_nodes is None else memory_nodes & nodes
        if bound and not memory_nodes:
            raise conflict("the memory of %s is bound by <numatune> to NUMA nodes with none in common "
                           "(%s); no one node fits them all" % (", ".join(sorted(bound)), "; ".join(
                               "%s: %s" % (n, bound[n]) for n in sorted(bound))))
        topo = self.topology()
        reserved = self.settings.reserved
        every = self.host_facts().cpus

        def pick(old_host, running, view):
            # Pins narrower than what occupancy leaves a domain: its own, not occupancy's.
            pinned = {}
            in_force = view(old_host)
            for r in running:
                if r.ctx.name in names or not r.ctx.running:
                    continue
                allowed = every - in_force.occupied_by_others(r.ctx.name)
                for cpus in r.live_pins.values():
                    if cpus and not allowed.issubset(cpus):
                        for cpu in cpus:
                            pinned.setdefault(cpu, []).append(r.ctx.name)
            chosen = placement.choose(topo, count, reserved, old_host.occupied(), pinned, memory_nodes)
            if not chosen.fits:
                raise conflict(placement_missing(chosen, names))
            return chosen.cpus, chosen
        return self._occupy(pick, names, topo, dry_run)

    def _occupants(self, names, undefined):
        """The Contexts of the domains in `names` ('vm1,vm2'), each known to libvirt (or
        with --undefined)."""
        contexts = []
        for text in parse_domains(names):
            ctx = self.context(text)
            self.known(ctx, self.registry.load(ctx.name), undefined)
            contexts.append(ctx)
        parse_domains([ctx.name for ctx in contexts])   # the same domain twice, by two names
        return contexts

    def _occupy(self, pick, names, topo, dry_run, added=None):
        """occupy()'s and occupy_auto()'s common part: `pick(old host policy, [Running],
        viewer)` gives (CPUs, Placement or None), purely, under the lock."""
        host = self.host_facts()
        running = self.running(defined=self.settings.persistent)
        view = self.viewer()

        def occupy(snap):
            old_host = snap.host()
            cpus, chosen = pick(old_host, running, view)
            new_host = occupancy.occupied(old_host, cpus, names)
            policies = {p.domain: p for p in snap.policies()}
            for r in running:
                r.policy = policies.get(r.ctx.name)
            occupancy.check(old_host, new_host, host.cpus, policies, running)
            # Under [occupancy] mode = running, only sets with a running occupant move anyone.
            moves, cannot = occupancy.repins(view(old_host), view(new_host), running)
            return Writes(host=None if dry_run else new_host, result=(cpus, chosen, new_host, moves, cannot))

        cpus, chosen, new_host, moves, cannot = self.registry.transact(occupy)
        # Hyperthread siblings of the occupied CPUs that these domains do not hold too.
        open_siblings = topo.open_siblings(cpus) if names is not None else {}
        if dry_run:
            live_moves = [(r.ctx.name, live) for r, _old, live in moves if r.ctx.running]
            definitions = [r.ctx.name for r, _old, _live in moves if not r.ctx.running]
            return OccupancyOutcome(cpus, names, Status.DRY_RUN, live_moves, (), cannot,
                                    self.libvirt_error, definitions, added, open_siblings, placement=chosen)
        if self.connection() is None:
            return OccupancyOutcome(cpus, names, Status.OFFLINE, libvirt_error=self.libvirt_error,
                                    added=added, open_siblings=open_siblings, placement=chosen)
        repinned, failures, defined = [], [], []
        for r, old, live in moves:
            try:
                done = self.enforce_on(r.ctx, "policyctl cpuoccupy", hint=False, first=(r.policy, new_host),
                                       previous=old, scope="pins", define=self.definer(r.ctx))
                if r.ctx.running:
                    repinned.append((r.ctx.name, done.applied or live))
                if done.defined:
                    defined.append(r.ctx.name)
            except PolicyError as e:
                failures.append((r.ctx.name, str(e)))
        isolated = self.update_host([r.ctx.name for r in running if r.ctx.running])
        return OccupancyOutcome(cpus, names, Status.FAILED if failures else Status.APPLIED, repinned,
                                failures, cannot, self.libvirt_error, defined, added, open_siblings, isolated,
                                placement=chosen)

    def update_host(self, running=None, repair=True):
        """Host isolation ([occupancy] isolate_host) and quiet CPUs (housekeeping) for the
        domains running now (or `running`): an isolation.Isolation, or None when there is
        nothing to do. Without `repair`, quiet CPUs' drift is reported, not put back."""
        from . import effects

        if self.connection() is None or not effects.pending(self.paths, self.settings):
            return None
        found, complete = self.running_everywhere()
        if running is not None:   # this connection's, just listed: the others' from there
            found = sorted(set(running) | set(found))
        return effects.update_host(self.paths, self.settings, found, self.host_facts().cpus,
                                   registry=self.registry, systemd=self.systemd, complete=complete,
                                   repair=repair)

    # ---- reading ----------------------------------------------------------

    def list(self):
        """([(policy, CPUs it occupies)] of every readable policy, [problem] of each file
        that cannot be read): one broken file hides nothing else."""
        return self.registry.listing()

    def check(self):
        return self.registry.check()

    def host(self):
        return self.registry.load_host()

    def report(self, name):
        """`cpupolicy DOM`: stored policy, effective plan, live values and drift."""
        from .report import report
        return report(self, name)

    def host_map(self):
        """`policyctl occupancy`: topology, occupancy and pins per CPU (report.host_map)."""
        from .report import host_map
        return host_map(self)

    def verify(self, names=None):
        """Whether the policies are in force on the running domains: [report.Verified]."""
        from .report import verify
        return verify(self, names)

    # ---- putting the registry in force ------------------------------------

    def apply(self, names=None, config=False):
        """Put the stored policy in force on running domains now: [ApplyResult]. With
        `config`, into the persistent definitions of defined domains instead (persistent
        mode; otherwise what policyhook wrote there is given back)."""
        conn = self.connection()
        if conn is None and self.offline:
            raise invalid("apply puts the policy in force through libvirt; it cannot work --offline")
        if conn is None:
            raise PolicyError(self.libvirt_error, LIBVIRT)
        from . import virt
        if names is None:
            listed = virt.defined_domains(conn) if config else virt.running_domains(conn)
            contexts = sorted((self.context(d.name()) for d in listed), key=lambda c: c.name)
        else:
            contexts = [self.context(text) for text in names]
            for ctx in contexts:
                self.known(ctx, self.recorded(ctx.name), None)
        return [self._apply_config(ctx) if config else self._apply_live(ctx) for ctx in contexts]

    def _apply_live(self, ctx):
        if not ctx.running:
            return ApplyResult(ctx.name, Status.NOT_RUNNING)
        try:
            previous = enforce.previous_plan(self.paths, ctx.name)
            done = self.enforce_on(ctx, "policyctl apply", previous=previous)
        except PolicyError as e:
            return ApplyResult(ctx.name, Status.FAILED, error=str(e))
        return ApplyResult(ctx.name, Status.APPLIED, done.plan, done.applied)

    def _apply_config(self, ctx):
        define = self.definer(ctx, always=True)
        if define is None:
            return ApplyResult(ctx.name, Status.NOT_DEFINED)
        try:
            done = self.enforce_on(ctx, "policyctl apply --config", live=False, define=define)
        except PolicyError as e:
            return ApplyResult(ctx.name, Status.FAILED, error=str(e))
        return ApplyResult(ctx.name, Status.APPLIED, done.plan, definition=done.defined)


def _check_driver(setting, ctx):
    """CONFLICT when the domain's driver cannot put `setting` in force (mapping.unsupported)."""
    why = unsupported(ctx.facts.driver, ctx.facts.scheduler).get(setting)
    if why:
        raise conflict("%s cannot be put in force on '%s' (%s): %s; nothing saved"
                       % (SETTINGS[setting].what, ctx.name,
                          LABEL.get(ctx.facts.driver, ctx.facts.driver), why))


def _check_pin(row, index, cpus, ctx):
    """A pin of `row`'s kind at `index` to `cpus` fits the domain's driver, its threads
    and the host, or INVALID/CONFLICT saying why."""
    _check_driver(row.key, ctx)
    _check_index(row, index, ctx)
    _check_host(cpus, ctx)


def _check_index(row, index, ctx):
    """INVALID when the domain has no thread of `row`'s kind at `index` (vCPU 5 of a 2-vCPU
    domain); nothing to check when its XML is not known."""
    indexes = row.indexes(ctx.facts)
    if indexes is not None and index not in indexes:
        raise invalid("invalid %s %d: domain '%s' has %s"
                      % (row.index_word, index, ctx.name, count_phrase(row.label, indexes)))


def _check_realtime(old, new, host, ctx):
    """INVALID when an edit leaves a real-time vCPU whose pin or policy it changed outside
    the CPUs its domain occupies (planner.realtime_problem): a real-time vCPU on a shared
    CPU can starve the host. The edit's own vCPUs only: an older policy that no longer
    fits is the planner's to leave out, not a reason to refuse an unrelated change."""
    from .planner import realtime_problem

    own = CpuSet(host.occupies(ctx.name))
    for index, value in sorted(new.vcpusched.items()):
        if not VCPUSCHED.is_realtime(value):
            continue
        key = ("vcpu", index)
        if old.vcpusched.get(index) == value and old.pins.get(key) == new.pins.get(key):
            continue
        why = realtime_problem(new.pins.get(key) or ctx.facts.pins.get(key), own)
        if why:
            raise invalid("vCPU %d of '%s': %s; nothing saved" % (index, ctx.name, why))


def parse_vcpus(text):
    """vCPU numbers from '0-1', '0,2': INVALID naming VCPUS."""
    from .limits import MAX_VCPU

    found = CpuSet.parse(text, "VCPUS") if isinstance(text, str) else CpuSet(text)
    if not found:
        raise invalid("invalid VCPUS %s: empty" % quote(text))
    if found.max() > MAX_VCPU:
        raise invalid("invalid VCPUS %s: vCPU %d is above %d" % (quote(text), found.max(), MAX_VCPU))
    return sorted(found)


def vcpusched_value(policy, priority=None):
    """'fifo:10', 'other' from policyctl's POLICY and PRIORITY; INVALID saying what is wrong."""
    row = VCPUSCHED
    if policy not in row.policies:
        raise invalid("invalid POLICY %s: %s" % (quote(policy), ", ".join(row.policies[:-1]) + " or "
                                                   + row.policies[-1]))
    if policy not in row.realtime:
        if priority is not None:
            raise invalid("%s takes no PRIORITY (only fifo and rr do)" % policy)
        return policy
    if priority is None:
        raise invalid("%s needs a PRIORITY, %d-%d" % (policy, row.lo, row.hi))
    return row.value(policy, parse_int(priority, "PRIORITY", row.lo, row.hi))


def _check_sched(row, value, ctx):
    """A scheduler setting fits the domain's driver and, for the cap, the host's CPUs."""
    _check_driver(row.key, ctx)
    if row.per_host_cpu:
        limit = 100 * len(ctx.host.cpus)
        if value > limit:
            raise invalid("invalid %s %d: above %d (100 x %d host CPUs)"
                          % (row.label, value, limit, len(ctx.host.cpus)))


def _check_host(cpus, ctx):
    if not cpus.issubset(ctx.host.cpus):
        raise invalid("invalid cpulist '%s': CPU %s not on this host (host CPUs: %s)"
                      % (cpus, cpus - ctx.host.cpus, ctx.host.cpus))


__all__ = ["PolicyManager", "Context", "Session"]
