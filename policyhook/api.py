"""The Python API that policyctl is a thin layer over.

    from policyhook.api import PolicyManager
    from policyhook.paths import Paths
    pm = PolicyManager(Paths("/"), uri="qemu:///system")
    print(pm.set_vcpupin("vm1", 0, "0-1").message())

Each change is computed first (validated, planned against the host, the domain and
the CPU occupancy), then saved under the registry lock and, when the domain runs,
applied live through libvirt. `dry_run=True` stops after computing.

A setting the domain's driver cannot put in force (vCPU and emulator pins on LXC, the
emulator pin on libxl, weight and cap under a Xen scheduler other than credit) is
refused, CONFLICT, nothing saved: the driver is known from libvirt (the domain, or
for a domain libvirt does not know, the connection). With libvirt unreachable or
--offline the driver is unknown and the setting is saved; the hook and `cpupolicy`
then report it as unsupported for a domain that turns out to be LXC or Xen.
"""

import time

from . import state
from .cpuset import CpuSet
from .domxml import DomainFacts
from .errors import CONFLICT, LIBVIRT, REGISTRY, PolicyError, conflict, invalid, quote
from .hostinfo import online_cpus
from .limits import CAP_MAX, MAX_VCPU, WEIGHT_DEFAULT, WEIGHT_MAX, WEIGHT_MIN, vcpu_range
from .mapping import (
    LABEL,
    SETTINGS,
    from_live,
    is_quota,
    local_cgroup_version,
    quota_is_unlimited,
    reset_params,
    sets_cap,
    sets_weight,
    unsupported,
)
from .model import DomainPolicy, HostPolicy
from .names import check_name
from .planner import Plan, plan
from .registry import Registry
from .settings import Settings

# Where a change stands, as policyctl reports it.
APPLIED = "applied live"
NOT_RUNNING = "applies at next start (domain is not running)"
NOT_DEFINED = "applies at next start (libvirt does not know the domain yet)"
DRY_RUN = "not saved (dry run)"


class Outcome:
    """The result of one change."""

    def __init__(self, domain, what, saved, live, plan=None, steps=None, warning=None):
        self.domain = domain
        self.what = what
        self.saved = saved
        self.live = live
        self.plan = plan
        self.steps = steps or []
        self.warning = warning

    def message(self):
        if self.live == DRY_RUN:
            return "%s: %s: would be saved (dry run)" % (self.domain, self.what)
        return "%s: %s: saved; %s" % (self.domain, self.what, self.live)

    def to_doc(self):
        return {"domain": self.domain, "change": self.what, "saved": self.saved,
                "live": self.live, "steps": self.steps, "warning": self.warning,
                "plan": self.plan.to_doc() if self.plan else None}


def parse_int(text, what, lo, hi):
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.isascii() and text.strip().isdigit():
        digits = text.strip().lstrip("0") or "0"
        if len(digits) > len(str(hi)):  # out of range; and int() refuses over 4300 digits
            raise invalid("invalid %s %s: must be %d..%d"
                          % (what, digits if len(digits) <= 20 else digits[:17] + "...", lo, hi))
        value = int(digits)
    else:
        raise invalid("invalid %s %s: not a whole number" % (what, quote(text)))
    if not lo <= value <= hi:
        raise invalid("invalid %s %d: must be %d..%d" % (what, value, lo, hi))
    return value


def parse_domains(text):
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    if not names or any(not n for n in names):
        raise invalid("invalid domain list %s: empty name" % quote(text))
    for name in names:
        check_name(name)
    if len(set(names)) != len(names):
        raise invalid("invalid domain list %s: a domain is listed twice" % quote(text))
    return names


class _Context:
    """What libvirt (or the local host) says about one domain, gathered before locking."""

    def __init__(self, name, host_cpus, cpumap_len, facts=None, dom=None, running=False):
        self.name = name
        self.host_cpus = host_cpus
        self.cpumap_len = cpumap_len
        self.facts = facts or DomainFacts(name)
        self.dom = dom
        self.running = running


class PolicyManager:
    def __init__(self, paths, uri=None, settings=None, connect=None, offline=False,
                 cgroup_version=None):
        """`connect(uri) -> conn` defaults to libvirt; `offline` never connects."""
        self.paths = paths
        self.settings = settings or Settings()
        self.uri = uri or self.settings.uri
        self.registry = Registry(paths, self.settings.lock_timeout)
        self._connect = connect
        self._offline = offline
        self._conn = None
        self.warning = None   # why libvirt was not used, when it was not
        self.unsupported = {}  # apply(): domain -> what its driver cannot put in force
        self.cgroup_version = cgroup_version or local_cgroup_version()

    # ---- libvirt --------------------------------------------------------

    def conn(self):
        """The libvirt connection, or None (with self.warning saying why)."""
        if self._conn is None and not self._offline and self.warning is None:
            try:
                if self._connect is None:
                    from . import virt
                    self._connect = virt.connect
                self._conn = self._connect(self.uri)
            except PolicyError as e:
                self.warning = "%s; the change is saved but not applied live" % e
        return self._conn

    @staticmethod
    def _virt():
        from . import virt
        return virt

    def context(self, name):
        check_name(name)
        conn = self.conn()
        if conn is None:
            cpus = online_cpus()
            return _Context(name, cpus, (cpus.max() or 0) + 1)
        virt = self._virt()
        cpumap_len, cpus = virt.host_cpus(conn)
        dom = virt.lookup(conn, name)
        if dom is None:
            # A driver we have no mapping for plans as QEMU, as parse_domain_xml() does.
            return _Context(name, cpus, cpumap_len, DomainFacts(name, virt.driver(conn) or "qemu"))
        facts = virt.facts(dom)
        facts.name = name
        return _Context(name, cpus, cpumap_len, facts, dom, virt.is_running(dom))

    # ---- editing one domain --------------------------------------------

    def _edit(self, name, what, mutate, dry_run=False):
        ctx = self.context(name)
        with self.registry.lock():
            host = self.registry.load_host()
            old = self.registry.load(name) or DomainPolicy(name)
            new = old.copy()
            mutate(new, ctx)
            new_plan = plan(new, host, ctx.facts, ctx.host_cpus, self.cgroup_version)
            if dry_run:
                return Outcome(name, what, False, DRY_RUN, new_plan, warning=self.warning)
            self.registry.save(new)
            if not ctx.running:
                live = NOT_DEFINED if ctx.dom is None and self.conn() is not None else NOT_RUNNING
                if self.conn() is None:
                    live = "not applied live (%s)" % (
                        "--offline" if self._offline else "libvirt unreachable")
                return Outcome(name, what, True, live, new_plan, warning=self.warning)
            old_plan = plan(old, host, ctx.facts, ctx.host_cpus, self.cgroup_version)
            live_plan = with_restores(new_plan, old_plan, ctx, self.cgroup_version)
            steps = self._apply(ctx, live_plan, "policyctl")
            return Outcome(name, what, True, APPLIED, new_plan, steps, self.warning)

    def _apply(self, ctx, live_plan, source):
        virt = self._virt()
        try:
            steps = virt.apply_plan(ctx.dom, live_plan, ctx.cpumap_len)
        except PolicyError as e:
            state.update(self.paths, ctx.name, result="failed", error=str(e), source=source)
            raise PolicyError("%s (the policy is saved; run 'policyctl apply %s' to retry)"
                              % (e, ctx.name), LIBVIRT) from None
        state.update(self.paths, ctx.name, plan=live_plan.to_doc(), result="applied",
                     applied_at=time.time(), steps=steps, source=source, error=None,
                     after_start_ms=None)
        return steps

    def set_vcpupin(self, name, vcpu, cpulist, dry_run=False):
        vcpu = parse_int(vcpu, "vCPU", 0, MAX_VCPU)
        cpus = CpuSet.parse(cpulist)

        def mutate(policy, ctx):
            _check_driver("vcpupin", ctx)
            if ctx.facts.vcpus is not None and vcpu >= ctx.facts.vcpus:
                raise invalid("invalid vCPU %d: domain '%s' has %s"
                              % (vcpu, name, vcpu_range(ctx.facts.vcpus)))
            _check_host(cpus, ctx)
            policy.vcpupin[vcpu] = cpus
        return self._edit(name, "vCPU %d pinned to %s" % (vcpu, cpus), mutate, dry_run)

    def unset_vcpupin(self, name, vcpu, dry_run=False):
        vcpu = parse_int(vcpu, "vCPU", 0, MAX_VCPU) if vcpu is not None else None

        def mutate(policy, _ctx):
            if vcpu is None:
                policy.vcpupin.clear()
            elif vcpu not in policy.vcpupin:
                raise invalid("domain '%s' has no pin for vCPU %d" % (name, vcpu))
            else:
                del policy.vcpupin[vcpu]
        what = "vCPU pins removed" if vcpu is None else "vCPU %d pin removed" % vcpu
        return self._edit(name, what, mutate, dry_run)

    def set_emulatorpin(self, name, cpulist, dry_run=False):
        cpus = CpuSet.parse(cpulist)

        def mutate(policy, ctx):
            _check_driver("emulatorpin", ctx)
            _check_host(cpus, ctx)
            policy.emulatorpin = cpus
        return self._edit(name, "emulator pinned to %s" % cpus, mutate, dry_run)

    def unset_emulatorpin(self, name, dry_run=False):
        def mutate(policy, _ctx):
            policy.emulatorpin = None
        return self._edit(name, "emulator pin removed", mutate, dry_run)

    def set_weight(self, name, weight, dry_run=False):
        weight = parse_int(weight, "weight", WEIGHT_MIN, WEIGHT_MAX)

        def mutate(policy, ctx):
            _check_driver("weight", ctx)
            policy.weight = weight
        return self._edit(name, "weight %d" % weight, mutate, dry_run)

    def unset_weight(self, name, dry_run=False):
        def mutate(policy, _ctx):
            policy.weight = None
        return self._edit(name, "weight unset (default %d)" % WEIGHT_DEFAULT, mutate, dry_run)

    def set_cap(self, name, cap, dry_run=False):
        cap = parse_int(cap, "cap", 0, CAP_MAX)

        def mutate(policy, ctx):
            _check_driver("cap", ctx)
            limit = 100 * len(ctx.host_cpus)
            if cap > limit:
                raise invalid("invalid cap %d: above %d (100 x %d host CPUs)"
                              % (cap, limit, len(ctx.host_cpus)))
            policy.cap = cap
        what = "cap %d%% of one CPU" % cap if cap else "cap 0 (no cap)"
        return self._edit(name, what, mutate, dry_run)

    def unset_cap(self, name, dry_run=False):
        def mutate(policy, _ctx):
            policy.cap = None
        return self._edit(name, "cap unset (no cap)", mutate, dry_run)

    def remove(self, name, dry_run=False):
        def mutate(policy, _ctx):
            policy.vcpupin.clear()
            policy.emulatorpin = policy.weight = policy.cap = policy.uuid = None
        try:
            stored = self.registry.load(check_name(name))
        except PolicyError as e:
            if e.code != REGISTRY:
                raise
            return self._remove_broken(name, dry_run)
        if stored is None:
            raise invalid("domain '%s' has no policy" % name)
        return self._edit(name, "policy removed", mutate, dry_run)

    def _remove_broken(self, name, dry_run):
        """A corrupt or unsafe policy file can always be removed (nothing to undo live)."""
        what = "unreadable policy file removed"
        if dry_run:
            return Outcome(name, what, False, DRY_RUN)
        with self.registry.lock():
            self.registry.remove(name)
        return Outcome(name, what, True, "nothing to undo live (run 'policyctl apply %s' "
                       "to put libvirt's defaults back on a running domain)" % name)

    # ---- reading ----------------------------------------------------------

    def list(self):
        host = self.registry.load_host()
        return [_row(policy, host) for policy in self.registry.policies()]

    def check(self):
        return self.registry.check()

    def host(self):
        return self.registry.load_host()

    def report(self, name):
        """Stored policy, effective plan, live values and drift: `cpupolicy DOM`."""
        check_name(name)
        policy = self.registry.load(name)
        host = self.registry.load_host()
        ctx = self.context(name)
        doc = _row(policy or DomainPolicy(name), host)
        doc["stored"] = policy is not None
        doc["defined"] = ctx.dom is not None
        doc["running"] = ctx.running
        doc["driver"] = ctx.facts.driver
        doc["host_cpus"] = str(ctx.host_cpus)
        doc["warning"] = self.warning
        try:
            effective = plan(policy, host, ctx.facts, ctx.host_cpus, self.cgroup_version)
            doc["effective"] = effective.to_doc()
            doc["conflict"] = None
        except PolicyError as e:
            if e.code != CONFLICT:
                raise
            effective = None
            doc["effective"] = None
            doc["conflict"] = str(e)
        doc["live"] = None
        doc["drift"] = []
        doc["runtime"] = state.read(self.paths, name)
        if ctx.running:
            live = self._virt().live_values(ctx.dom, ctx.facts.driver)
            weight, cap = from_live(ctx.facts.driver, self.cgroup_version, live["sched"])
            doc["live"] = {
                "vcpupin": {str(v): str(c) for v, c in sorted(live["vcpupin"].items())},
                "emulatorpin": str(live["emulatorpin"]) if live["emulatorpin"] else None,
                "sched": live["sched"],
                "weight": weight, "cap": cap,
            }
            if effective is not None:
                doc["drift"] = drift(effective, live)
        return doc

    # ---- putting the registry in force ------------------------------------

    def apply(self, names=None):
        """Apply the stored policy to running domains now. Returns [(name, steps|error)]."""
        conn = self.conn()
        if conn is None and self._offline:
            raise invalid("apply puts the policy in force through libvirt; it cannot work --offline")
        if conn is None:
            raise PolicyError(self.warning.split(";")[0], LIBVIRT)
        virt = self._virt()
        if names is None:
            names = sorted(d.name() for d in virt.running_domains(conn))
        results = []
        self.unsupported = {}
        host = self.registry.load_host()
        for name in names:
            ctx = self.context(name)
            if not ctx.running:
                results.append((name, None, "not running"))
                continue
            try:
                policy = self.registry.load(name)
                p = plan(policy, host, ctx.facts, ctx.host_cpus, self.cgroup_version)
                if p.unsupported:
                    self.unsupported[name] = p.unsupported
                results.append((name, self._apply(ctx, p, "policyctl apply"), None))
            except PolicyError as e:
                results.append((name, None, str(e)))
        return results


def _check_driver(setting, ctx):
    """CONFLICT when the domain's driver cannot put `setting` in force (mapping.unsupported)."""
    why = unsupported(ctx.facts.driver, ctx.facts.scheduler).get(setting)
    if why:
        raise conflict("%s cannot be put in force on '%s' (%s): %s; nothing saved"
                       % (dict(SETTINGS)[setting], ctx.name,
                          LABEL.get(ctx.facts.driver, ctx.facts.driver), why))


def _check_host(cpus, ctx):
    if not cpus.issubset(ctx.host_cpus):
        raise invalid("invalid cpulist '%s': CPU %s not on this host (host CPUs: %s)"
                      % (cpus, cpus - ctx.host_cpus, ctx.host_cpus))


def _row(policy, host):
    return {
        "domain": policy.domain,
        "vcpupin": {str(v): str(c) for v, c in sorted(policy.vcpupin.items())},
        "emulatorpin": None if policy.emulatorpin is None else str(policy.emulatorpin),
        "weight": policy.weight,
        "cap": policy.cap,
        "occupies": host.occupies(policy.domain),
    }


def with_restores(new_plan, old_plan, ctx, cgroup_version):
    """`new_plan` plus what puts back the defaults for values the old plan set and the
    new one no longer does (an unset pin runs on its XML pin or every host CPU again)."""
    pins = dict(new_plan.vcpupin)
    for vcpu in old_plan.vcpupin:
        if vcpu not in pins:
            pins[vcpu] = ctx.facts.vcpupin.get(vcpu) or ctx.host_cpus
    emulator = new_plan.emulatorpin
    if emulator is None and old_plan.emulatorpin is not None:
        emulator = ctx.facts.emulatorpin or ctx.host_cpus
    sched = dict(reset_params(new_plan.driver, cgroup_version,
                              weight=sets_weight(old_plan.driver, old_plan.sched),
                              cap=sets_cap(old_plan.driver, old_plan.sched)))
    sched.update(new_plan.sched)
    return Plan(new_plan.domain, new_plan.driver, pins, emulator, sched, new_plan.notes,
                new_plan.unsupported)


def drift(effective, live):
    """Lines naming where the live values differ from the effective plan."""
    found = []
    for vcpu, cpus in sorted(effective.vcpupin.items()):
        now = live["vcpupin"].get(vcpu)
        if now != cpus:
            found.append("vCPU %d: policy %s, live %s" % (vcpu, cpus, now))
    if effective.emulatorpin is not None and live["emulatorpin"] != effective.emulatorpin:
        found.append("emulator: policy %s, live %s" % (effective.emulatorpin, live["emulatorpin"]))
    for key, value in sorted(effective.sched.items()):
        now = live["sched"].get(key)
        if now != value and not (is_quota(key) and value < 0
                                 and quota_is_unlimited(-1 if now is None else now)):
            found.append("%s: policy %s, live %s" % (key, value, now))
    return found


__all__ = ["PolicyManager", "Outcome", "HostPolicy"]
