"""What the Python API returns: records, never sentences (DESIGN.md "Results are data").

policyctl (cli/show.py) and the log turn them into words; `to_doc()` is their --json.
"""

import enum


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
        return {"op": self.op, "setting": self.setting, "index": self.index,
                "value": value if value is None or isinstance(value, int) else str(value)}


class Outcome:
    """The result of one edit of one domain's policy."""

    __slots__ = ("domain", "change", "status", "plan", "applied", "libvirt_error", "rounds", "definition")

    def __init__(self, domain, change, status, plan=None, applied=None, libvirt_error=None,
                 rounds=0, definition=False):
        self.domain = domain
        self.change = change
        self.status = status
        self.plan = plan                    # the effective plan of the new policy
        self.applied = applied              # the Plan sent to libvirt, when running
        self.libvirt_error = libvirt_error  # why libvirt was not used, when it was not
        self.rounds = rounds                # times applied (more than 1: changed meanwhile)
        self.definition = definition        # also written into the persistent definition

    @property
    def saved(self):
        return self.status is not Status.DRY_RUN

    def to_doc(self):
        return {"domain": self.domain, "change": self.change.to_doc(), "status": self.status.value,
                "saved": self.saved, "plan": self.plan.to_doc() if self.plan else None,
                "applied": self.applied.to_doc() if self.applied else None,
                "libvirt_error": self.libvirt_error, "definition": self.definition}


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
                 "added", "open_siblings", "isolation")

    def __init__(self, cpus, domains, status, repinned=(), failures=(), cannot=(), libvirt_error=None,
                 defined=(), added=None, open_siblings=None, isolation=None):
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
                "host_isolation": self.isolation.to_doc() if self.isolation else None}


class Writes:
    """What a transaction's function asks to be saved, and what the caller gets back.

    `domains`: DomainPolicy to save (an empty one removes its file); `remove`: names
    whose policy file goes; `host`: the new HostPolicy, or None to leave it; `originals`:
    originals.Originals to save (none saved any more: the file goes); `isolation`: the
    new isolation record, or None; `state`: {name: fields merged into its runtime
    state}; `result`: what transact() returns."""

    __slots__ = ("domains", "remove", "host", "originals", "isolation", "state", "result")

    def __init__(self, domains=(), remove=(), host=None, originals=(), isolation=None, state=None,
                 result=None):
        self.domains = list(domains)
        self.remove = list(remove)
        self.host = host
        self.originals = list(originals)
        self.isolation = isolation
        self.state = dict(state or {})
        self.result = result
