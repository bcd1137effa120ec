"""The one way a stored policy is put in force on a running domain.

policyctl (a change, `apply`, cpuoccupy's re-pinning), the detached applier and the
watcher all come here. The lock discipline (doc/design.md "Lock discipline"): the registry
lock covers reading (and the caller's planning and saving: Registry.transact) only; every
libvirt call is made with no lock held, since one can wait up to libvirt's job timeout
(about 30 s) on a busy domain while a starting domain's hook gives up on the lock after
0.5 s. After the libvirt calls the stored policy is read again, and planned and applied
again when it changed meanwhile (bounded), as kubelet's reconcile does.
"""

import time

from . import state
from .errors import PolicyError, StepFailed
from .planner import Plan, differences, pins_only, plan, restores
from .results import Enforced


class Target:
    """A running domain as libvirt shows it: its handle, facts and host."""

    __slots__ = ("name", "dom", "facts", "host", "cgroup_version", "view")

    def __init__(self, name, dom, facts, host, cgroup_version, view=None):
        self.name = name
        self.dom = dom
        self.facts = facts
        self.host = host                  # virt.HostFacts
        self.cgroup_version = cgroup_version
        self.view = view                  # host policy -> the sets in force ([occupancy] mode)

    def plan(self, policy, host_policy):
        if self.view is not None:
            host_policy = self.view(host_policy)
        return plan(policy, host_policy, self.facts, self.host.cpus, self.cgroup_version)


def reader(registry, name):
    """read() for enforce(): (policy, host policy) read under the registry lock
    (registry.Registry.read)."""
    def read():
        return registry.read(lambda snap: (snap.domain(name), snap.host()))
    return read


def enforce(target, read, first=None, previous=None, scope="all", rounds=3, apply=None,
            live=True, define=None, compare=None, remember=None):
    """Put the stored policy in force on `target`; returns Enforced.

    read(): (policy, host policy) under the registry lock; `first`: that pair when the
    caller has just saved it (no need to read it again); `previous`: the plan in force
    before (its settings that the new plan drops go back to libvirt's defaults);
    scope="pins": scheduler parameters are left alone and a domain whose pins do not
    change is not called (cpuoccupy). `apply(dom, plan, cpumap_len)` is
    virt.apply_plan; `live=False` leaves the running domain alone (it does not run);
    `define(plan)` also writes the plan into the persistent definition (persistent
    mode); `compare(dom)` reads the live values first, so that only what differs is
    applied (the applier: a definition may have put it all in force already);
    `remember(plan)` runs before a plan is applied live (rememberer()). Raises
    PolicyError (LIBVIRT) naming the step libvirt refused."""
    if apply is None and live:
        from .virt import apply_plan as apply
    stored = first if first is not None else read()
    applied = None
    defined = False
    for n in range(1, rounds + 1):
        effective = target.plan(*stored)
        if live:
            now = effective if previous is None else restores(
                effective, previous, target.facts, target.host.cpus, target.cgroup_version)
            if scope == "pins":
                now = pins_only(now)
                if previous is not None and now.pins == previous.pins \
                        and now.vcpusched == previous.vcpusched:
                    now = None
            if now is not None and compare is not None:
                now = differences(now, compare(target.dom))
            if now is not None and not now.is_empty():
                if remember is not None:
                    remember(now)
                try:
                    apply(target.dom, now, target.host.cpumap_len)
                except StepFailed as e:
                    from .describe import step_failed
                    raise PolicyError(step_failed(e), e.code) from None
                applied = now
        if define is not None:
            defined = define(effective) or defined
        previous = effective
        again = read()
        if again == stored:
            return Enforced(effective, applied, n, True, defined)
        stored = again
    return Enforced(effective, applied, rounds, False, defined)


def rememberer(registry, dom, name, uuid, driver):
    """remember() for enforce(): the originals of a domain whose only definition is its
    live one (transient; Xen's dom0), saved before live changes first alter it
    (originals.remember); nothing for a domain whose persistent definition keeps its own
    values, or a name no file can carry. libvirt is asked only when something is
    applied, with no lock held, and whether the domain has a definition of its own only
    once (enforce() may apply in several rounds)."""
    from .names import name_problem

    if name_problem(name) is not None:
        return None
    own = None

    def remember(plan):
        nonlocal own
        from . import originals, virt
        from .cputune import find_cputune

        if own is None:
            own = virt.has_own_definition(dom, driver)
        if not own:
            cputune = find_cputune(virt.definition_xml(dom))
            registry.transact(lambda snap: originals.remember(snap, name, uuid, cputune, plan))
    return remember


def record(registry, name, source, enforced=None, error=None, **fields):
    """The runtime state of a domain after enforce(): what was applied, or the error
    (none for a name no file can carry); a registry transaction."""
    from .names import name_problem
    from .results import Writes

    if name_problem(name) is not None:
        return None
    if error is not None:
        fields.update(result="failed", error=error, source=source)
    else:
        applied = enforced.applied or Plan(name, enforced.plan.driver)
        fields.update(plan=enforced.plan.to_doc(), applied=applied.to_doc(), result="applied",
                      applied_at=time.time(), source=source, error=None)
    return registry.transact(lambda _snap: Writes(state={name: fields}))


def previous_plan(paths, name):
    """The plan recorded as in force on a running domain, or None."""
    doc = (state.read(paths, name) or {}).get("plan")
    if not doc:
        return None
    try:
        return Plan.from_doc(doc)
    except (KeyError, TypeError, ValueError, PolicyError):
        return None  # written by an older policyhook: nothing to restore from it
