"""What the Python API returns: records, never sentences (doc/design.md "Results are data").

policyctl (cli/show.py) and the log turn them into words; `to_doc()` is their --json.
"""

import enum

from .cpuset import CpuSet
from .tunables import SCHED, pins_doc


class Status(enum.Enum):
    """Where a change stands once policyctl is done with it."""

    APPLIED = "applied"                     # saved, and put in force on the running domain
    NOT_RUNNING = "saved-not-running"       # saved; applies at the next start
    NOT_DEFINED = "not-defined"             # saved; libvirt does not know the domain yet
    OFFLINE = "offline"                     # saved; libvirt not asked (--offline) or unreachable
    DRY_RUN = "dry-run"                     # nothing saved
    FAILED = "failed"                       # libvirt refused (apply, cpuoccupy re-pinning)


class Change:
    """What an edit does: op is set, unset or remove; `setting` a tunables key."""

    __slots__ = ("op", "setting", "index", "value")

    def __init__(self, op, setting=None, index=None, value=None):
        self.op = op
        self.setting = setting
        self.index = index
        self.value = value

    def to_doc(self):
        value = self.value
        if hasattr(value, "to_doc"):
            value = value.to_doc()
        elif value is not None and not isinstance(value, int):
            value = str(value)
        return {"op": self.op, "setting": self.setting, "index": self.index, "value": value}


class AutoPins:
    """vcpupin --auto's pins (the value of its Change): the CPUs the domain occupies, each
    vCPU's CPU, the emulator's CPUs (None: none outside every occupancy, pin left as it
    was) and the NUMA node they lie in (None: several)."""

    __slots__ = ("held", "vcpus", "emulator", "node")

    def __init__(self, held, vcpus, emulator, node):
        self.held = held
        self.vcpus = list(vcpus)
        self.emulator = emulator
        self.node = node

    def to_doc(self):
        return {"occupied": str(self.held), "vcpus": [str(c) for c in self.vcpus],
                "emulator": None if self.emulator is None else str(self.emulator), "node": self.node}


class Outcome:
    """The result of one edit of one domain's policy."""

    __slots__ = ("domain", "change", "status", "plan", "applied", "libvirt_error", "rounds", "definition",
                 "policy", "memory_node", "memory_error")

    def __init__(self, domain, change, status, plan=None, applied=None, libvirt_error=None,
                 rounds=0, definition=False, policy=None, memory_node=None, memory_error=None):
        self.domain = domain
        self.change = change
        self.status = status
        self.plan = plan                    # the effective plan of the new policy
        self.applied = applied              # the Plan sent to libvirt, when running
        self.libvirt_error = libvirt_error  # why libvirt was not used, when it was not
        self.rounds = rounds                # times applied (more than 1: changed meanwhile)
        self.definition = definition        # also written into the persistent definition
        self.policy = policy                # the DomainPolicy saved (or, dry run, to save); None: none
        self.memory_node = memory_node      # [occupancy] memory = follow: the NUMA node memory is bound to
        self.memory_error = memory_error    # why libvirt did not bind it live, or None

    @property
    def saved(self):
        return self.status is not Status.DRY_RUN

    def to_doc(self):
        return {"domain": self.domain, "change": self.change.to_doc(), "status": self.status.value,
                "saved": self.saved, "plan": self.plan.to_doc() if self.plan else None,
                "applied": self.applied.to_doc() if self.applied else None,
                "libvirt_error": self.libvirt_error, "definition": self.definition,
                "memory_node": self.memory_node, "memory_error": self.memory_error}


class ApplyResult:
    """`policyctl apply`, one domain: applied, not running, or failed with `error`."""

    __slots__ = ("domain", "status", "plan", "applied", "error", "definition")

    def __init__(self, domain, status, plan=None, applied=None, error=None, definition=None):
        self.domain = domain
        self.status = status
        self.plan = plan
        self.applied = applied
        self.error = error
        self.definition = definition    # apply --config: True when the definition changed

    def to_doc(self):
        return {"domain": self.domain, "status": self.status.value,
                "plan": self.plan.to_doc() if self.plan else None,
                "applied": self.applied.to_doc() if self.applied else None, "error": self.error,
                "definition_changed": self.definition}


class OccupancyOutcome:
    """The result of cpuoccupy: the change, and per running domain what was re-pinned,
    what failed and what its driver cannot keep off the occupied CPUs."""

    __slots__ = ("cpus", "domains", "status", "repinned", "failures", "cannot", "libvirt_error", "defined",
                 "added", "open_siblings", "isolation", "placement")

    def __init__(self, cpus, domains, status, repinned=(), failures=(), cannot=(), libvirt_error=None,
                 defined=(), added=None, open_siblings=None, isolation=None, placement=None):
        self.cpus = cpus                    # CpuSet
        self.domains = domains              # the occupants, or None: the CPUs are freed
        self.status = status
        self.repinned = list(repinned)      # [(domain, Plan)] applied, or to apply (dry run)
        self.failures = list(failures)      # [(domain, error)]
        self.cannot = list(cannot)          # [(domain, [Lost])]
        self.libvirt_error = libvirt_error
        self.defined = list(defined)        # [domain] whose persistent definition was rewritten
        self.added = added                  # CpuSet --whole-cores added, or None
        self.open_siblings = dict(open_siblings or {})  # {occupied CPU: its siblings left open}
        self.isolation = isolation          # isolation.Isolation, when host isolation acted
        self.placement = placement          # Placement, with --auto

    def to_doc(self):
        return {"cpus": str(self.cpus), "definitions": self.defined, "domains": self.domains,
                "status": self.status.value,
                "saved": self.status is not Status.DRY_RUN,
                "repinned": [{"domain": d, "plan": p.to_doc()} for d, p in self.repinned],
                "failures": [{"domain": d, "error": e} for d, e in self.failures],
                "unsupported": [{"domain": d, "unsupported": [u.to_doc() for u in lost]}
                                for d, lost in self.cannot],
                "libvirt_error": self.libvirt_error,
                "whole_cores_added": None if self.added is None else str(self.added),
                "open_siblings": {str(c): str(s) for c, s in sorted(self.open_siblings.items())},
                "host_isolation": self.isolation.to_doc() if self.isolation else None,
                "placement": self.placement.to_doc() if self.placement else None}


class Placement:
    """cpuoccupy --auto's choice (placement.choose): the CPUs, and what each rule found.
    `fits` False: no NUMA node has room, and `cpus` is the best partial choice."""

    __slots__ = ("asked", "cpus", "fits", "node", "smt", "reserved", "memory_nodes", "free_by_node",
                 "llc", "llcs", "llc_split", "cores", "pinned")

    def __init__(self, asked, cpus=None, fits=False, node=None, smt=False, reserved=None, memory_nodes=None,
                 free_by_node=None):
        self.asked = asked                  # N as given
        self.cpus = cpus or CpuSet()        # CpuSet chosen
        self.fits = fits
        self.node = node                    # the NUMA node chosen, or None
        self.smt = smt                      # the host has SMT: whole cores taken
        self.reserved = reserved or CpuSet()  # [occupancy] reserved (those online)
        self.memory_nodes = memory_nodes    # CpuSet of nodes <numatune> binds the domains to, or None
        self.free_by_node = dict(free_by_node or {})  # {node: [CpuSet of each free whole core]}
        self.llc = None                     # CpuSet sharing the one L3 chosen, where the node has several
        self.llcs = 1                       # L3 caches on the node
        self.llc_split = False              # the node has several and none held them all
        self.cores = []                     # [CpuSet]: the cores (or CPUs) taken
        self.pinned = {}                    # {cpu chosen: running domains pinned there}

    @property
    def rounded(self):
        return self.fits and len(self.cpus) > self.asked

    def to_doc(self):
        return {"asked": self.asked, "cpus": str(self.cpus), "fits": self.fits, "node": self.node,
                "whole_cores": self.smt, "reserved": str(self.reserved),
                "memory_nodes": None if self.memory_nodes is None else str(self.memory_nodes),
                "free_whole_cores": {str(n): [str(c) for c in cores]
                                     for n, cores in sorted(self.free_by_node.items())},
                "llc": None if self.llc is None else str(self.llc), "llc_split": self.llc_split,
                "cores": [str(c) for c in self.cores],
                "pinned": {str(c): sorted(d) for c, d in sorted(self.pinned.items())}}


class Writes:
    """What a transaction's function asks to be saved, and what the caller gets back.

    `domains`: DomainPolicy to save (an empty one removes its file); `remove`: names
    whose policy file goes; `host`: the new HostPolicy, or None to leave it; `originals`:
    originals.Originals to save (none saved any more: the file goes); `isolation`: the
    new isolation record, or None; `housekeeping`: the new quiet-CPUs record
    (quietcpus.py), or None; `state`: {name: fields merged into its runtime state};
    `result`: what transact() returns."""

    __slots__ = ("domains", "remove", "host", "originals", "isolation", "housekeeping", "state", "result")

    def __init__(self, domains=(), remove=(), host=None, originals=(), isolation=None, state=None,
                 result=None, housekeeping=None):
        self.domains = list(domains)
        self.remove = list(remove)
        self.host = host
        self.originals = list(originals)
        self.isolation = isolation
        self.housekeeping = housekeeping
        self.state = dict(state or {})
        self.result = result


def policy_row(policy, occupies):
    """A stored policy as JSON, every setting of the table present (None / {} when unset),
    and the CPUs the domain occupies."""
    doc = {"domain": policy.domain}
    doc.update(pins_doc(policy.pins))
    for row in SCHED:
        doc[row.key] = policy.sched.get(row.key)
    doc["vcpusched"] = {str(i): policy.vcpusched[i] for i in sorted(policy.vcpusched)}
    doc["occupies"] = list(occupies)
    return doc


def live_row(live, weight, cap):
    doc = pins_doc(live.pins)
    doc.update(sched=live.sched, weight=weight, cap=cap,
               offline=sorted("%s %d" % k for k in live.offline),
               vcpusched=None if live.vcpusched is None
               else {str(i): v for i, v in sorted(live.vcpusched.items())})
    return doc


class Report:
    __slots__ = ("domain", "policy", "occupies", "stored", "defined", "running", "driver",
                 "host_cpus", "effective", "conflict", "live", "live_weight", "live_cap",
                 "drift", "runtime", "libvirt_error", "asked", "uuid", "config", "config_drift",
                 "persistent", "numa", "memory")

    def to_doc(self):
        doc = policy_row(self.policy, self.occupies)
        doc.update(
            stored=self.stored, defined=self.defined, uuid=self.uuid, running=self.running,
            driver=self.driver,
            host_cpus=str(self.host_cpus), libvirt_error=self.libvirt_error, asked_libvirt=self.asked,
            effective=self.effective.to_doc() if self.effective else None, conflict=self.conflict,
            live=live_row(self.live, self.live_weight, self.live_cap) if self.live else None,
            drift=[d.to_doc() for d in self.drift], runtime=self.runtime, persistent=self.persistent,
            config=live_row(self.config, None, None) if self.config else None,
            config_drift=[d.to_doc() for d in self.config_drift],
            numa=[{"pin": None if key is None else list(key),
                   "nodes": {str(n): str(c) for n, c in nodes.items()}} for key, nodes in self.numa],
            memory=self.memory)
        return doc


class Verified:
    """`verify`, one domain: in force, or why not (a status and its details)."""

    IN_FORCE, DRIFT, NOT_RUNNING, CONFLICT, ELSEWHERE, FAILED = (
        "in-force", "drift", "not-running", "conflict", "uuid-differs", "failed")
    OK = (IN_FORCE, NOT_RUNNING)

    __slots__ = ("domain", "status", "drift", "error", "uuid")

    def __init__(self, domain, status, drift=(), error=None, uuid=None):
        self.domain = domain
        self.status = status
        self.drift = list(drift)    # [Drift]
        self.error = error          # the conflict, or what libvirt said
        self.uuid = uuid            # with ELSEWHERE: (recorded, the domain's)

    @property
    def ok(self):
        return self.status in self.OK

    def to_doc(self):
        return {"domain": self.domain, "status": self.status, "in_force": self.status == self.IN_FORCE,
                "drift": [d.to_doc() for d in self.drift], "error": self.error,
                "uuid": None if self.uuid is None else {"policy": self.uuid[0], "domain": self.uuid[1]}}


class Enforced:
    """What enforce() did: the effective plan, what was sent to libvirt (None when
    nothing needed to be), and whether the stored policy held still at the end."""

    __slots__ = ("plan", "applied", "rounds", "settled", "defined", "memory")

    def __init__(self, effective, applied, rounds, settled, defined=False):
        self.plan = effective
        self.applied = applied
        self.rounds = rounds
        self.settled = settled
        self.defined = defined      # the persistent definition was changed
        self.memory = None          # [occupancy] memory = follow, live: (node, libvirt's refusal or None)


class Isolation:
    """What update() did: the CPUs kept from the host, the units changed or given back,
    and why nothing was done (no systemd), as data."""

    __slots__ = ("held", "changed", "restored", "skipped", "problems", "quiet")

    def __init__(self, held):
        self.held = held            # CpuSet kept from the host's units
        self.changed = {}           # unit -> AllowedCPUs set
        self.restored = {}          # unit -> AllowedCPUs given back
        self.skipped = None         # why nothing was done
        self.problems = []          # [str] what systemctl refused
        self.quiet = None           # Quiet, when [occupancy] housekeeping acted

    def to_doc(self):
        return {"held": str(self.held) if self.held else "", "changed": self.changed,
                "restored": self.restored, "skipped": self.skipped, "problems": self.problems,
                "quiet_cpus": self.quiet.to_doc() if self.quiet else None}


class ApplierResult:
    """How the applier ended: applied, stopped (nothing to do), failed or gave-up."""

    __slots__ = ("kind", "detail", "enforced", "at", "uuid", "host")

    def __init__(self, kind, detail=None, enforced=None, at=None, uuid=None, host=None):
        self.kind = kind
        self.detail = detail        # why, for stopped, failed and gave-up
        self.enforced = enforced    # Enforced when applied
        self.at = at                # time.time() when applied
        self.uuid = uuid            # the domain's UUID
        self.host = host            # describe.isolation_line() of the host isolation update


class Quiet:
    """What update() did, as data: the CPUs kept quiet; masks written and given back
    ({key: text}); IRQs the kernel manages itself ({irq: CPUs}); masks left alone
    because nothing else would remain ({key: CPUs}); drift not repaired
    ([(key, now, wanted)]); irqbalance's banned CPUs set (a cpulist), given back
    ("given back") or None; files that could not be written (problems); `names`
    {key: what it is}."""

    __slots__ = ("held", "changed", "restored", "managed", "kept", "drift", "irqbalance",
                 "problems", "names", "skipped")

    def __init__(self, held):
        self.held = held
        self.changed, self.restored, self.managed, self.kept = {}, {}, {}, {}
        self.drift, self.problems = [], []
        self.irqbalance = None
        self.names = {}
        self.skipped = None

    def to_doc(self):
        return {"held": str(self.held) if self.held else "", "changed": self.changed,
                "restored": self.restored, "managed": self.managed,
                "kept": {k: str(v) for k, v in self.kept.items()},
                "drift": [{"what": k, "now": n, "wanted": w} for k, n, w in self.drift],
                "irqbalance": self.irqbalance, "problems": self.problems, "skipped": self.skipped}
