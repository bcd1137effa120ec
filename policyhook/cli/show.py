"""How policyctl puts the API's records into words. Text for people; --json for scripts."""

import json
import time

from ..describe import (
    auto_pins_words,
    cpus_phrase,
    drift_line,
    elsewhere_line,
    note_lines,
    placement_lines,
    plan_line,
    unsupported_lines,
    virsh_steps,
)
from ..mapping import CAP_KEYS, LABEL, WEIGHT_KEY, is_quota, quota_is_unlimited
from ..results import Status
from ..tunables import PIN, PINS, SCHED, SCHED_BY_KEY, VCPUSCHED


def dump_json(doc, out):
    out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _dash(value):
    return "-" if value is None or value == "" else str(value)


def libvirt_warning(error, saved=True):
    if not error:
        return None
    return "%s; the change is saved but not applied live" % error if saved else error


# ---- a change ------------------------------------------------------------------------


def change_words(change):
    """'vCPU 0 pinned to 2-3', 'weight unset (default 256)': what an edit does."""
    if change.op == "remove":
        return "policy removed"
    if change.op == "remove-broken":
        return "unreadable policy file removed"
    if change.op == "rename":
        return "policy moved to '%s'" % change.value
    if change.op == "rebind":
        return "policy bound to this domain (UUID %s)" % change.value
    if change.op == "auto":
        return auto_pins_words(change.value)
    if change.setting in SCHED_BY_KEY:
        return SCHED_BY_KEY[change.setting].words(change.value if change.op == "set" else None)
    if change.setting == VCPUSCHED.key:
        if change.op == "set":
            return ", ".join(VCPUSCHED.words(i, change.value) for i in change.index)
        return ", ".join(VCPUSCHED.words(i, None) for i in change.index) if change.index \
            else VCPUSCHED.words(None, None)
    row = next(r for r in PINS if r.key == change.setting)
    if change.op == "set":
        return "%s pinned to %s" % (row.name(change.index or 0), change.value)
    if row.indexed and change.index is None:
        return "%s removed" % row.what
    return "%s pin removed" % row.name(change.index or 0)


STATUS = {
    Status.APPLIED: "applied live",
    Status.NOT_RUNNING: "applies at next start (domain is not running)",
    Status.NOT_DEFINED: "applies at next start (libvirt does not know the domain yet)",
}


def _where(status, libvirt_error):
    if status in STATUS:
        return STATUS[status]
    return "not applied live (%s)" % ("libvirt unreachable" if libvirt_error else "--offline")


def outcome(o, out):
    what = change_words(o.change)
    if o.status is Status.DRY_RUN:
        out.write("%s: %s: would be saved (dry run)\n" % (o.domain, what))
        if o.plan is not None:
            out.write("plan: %s\n" % plan_line(o.plan))
    elif o.change.op == "remove-broken":
        out.write("%s: %s: saved; nothing to undo live (run 'policyctl apply %s' to put libvirt's "
                  "defaults back on a running domain)\n" % (o.domain, what, o.domain))
    elif o.change.op == "rename":
        out.write("%s: %s: saved\n" % (o.domain, what))
    else:
        out.write("%s: %s: saved; %s%s\n" % (o.domain, what, _where(o.status, o.libvirt_error),
                                             "; written into its definition" if o.definition else ""))
    for step in virsh_steps(o.applied) if o.applied is not None else ():
        out.write("  %s\n" % step)
    for text in unsupported_lines(o.plan.unsupported) if o.plan is not None else ():
        out.write("  unsupported: %s\n" % text)
    if o.memory_node is not None and o.memory_error is None:
        out.write("  memory bound to NUMA node %d (%s)\n" % (o.memory_node, _memory_where(o)))


def memory_line(m):
    """cpupolicy's words for [occupancy] memory = follow (report._memory)."""
    if m["node"] is None:
        text = "not bound by policyhook (memory = follow: its vCPUs are not all pinned within one NUMA node)"
    else:
        text = "bound to NUMA node %d (memory = follow)" % m["node"]
    seen = ["%s %s" % (where, m[where] or "none") for where in ("definition", "live") if m[where] is not None]
    return text + ("; %s" % ", ".join(seen) if seen else "")


def _memory_where(o):
    """Where [occupancy] memory = follow bound a domain's memory."""
    if o.status is Status.APPLIED:
        return "live, and in its definition" if o.definition else "live"
    return "in its definition: from the next start"


def sibling_warnings(o):
    """One line per occupied CPU whose hyperthread sibling these domains do not hold."""
    return ["CPU %d's hyperthread sibling %s stays open to other domains (--whole-cores occupies "
            "whole cores)" % (cpu, cpus_phrase(open_)) for cpu, open_ in sorted(o.open_siblings.items())]


def occupancy_outcome(o, out):
    for line in placement_lines(o.placement) if o.placement is not None else ():
        out.write(line + "\n")
    if o.added:
        out.write("whole cores: added %s\n" % cpus_phrase(o.added))
    plural = "s" if len(o.cpus) > 1 else ""
    if o.domains is None:
        what = "CPU%s %s no longer occupied" % (plural, o.cpus)
    else:
        what = "CPU%s %s occupied by %s" % (plural, o.cpus, ", ".join(o.domains))
    if o.status is Status.DRY_RUN:
        out.write("%s: would be saved (dry run)\n" % what)
    elif o.status is Status.OFFLINE:
        out.write("%s: saved; %s\n" % (what, _where(o.status, o.libvirt_error)))
    else:
        n = len(o.repinned)
        out.write("%s: saved; applied live to %d running domain%s\n" % (what, n, "" if n == 1 else "s"))
    verb = "would be re-pinned" if o.status is Status.DRY_RUN else "re-pinned live"
    for name, p in o.repinned:
        out.write("  %s: %s: %s\n" % (name, verb, plan_line(p, "no change")))
    for name in o.defined:
        out.write("  %s: definition %s\n" % (name, "would be rewritten" if o.status is Status.DRY_RUN
                                             else "rewritten"))
    for name, error in o.failures:
        out.write("  %s: FAILED: %s\n" % (name, error))
    for name, lost in o.cannot:
        for text in unsupported_lines(lost):
            out.write("  %s: unsupported: %s\n" % (name, text))


def apply_results(results, out, persistent=True):
    for r in results:
        if r.definition is not None and r.status is Status.APPLIED:
            out.write("%s: definition %s%s\n" % (
                r.domain, "holds the policy" if persistent else "has its own <cputune> back",
                "" if r.definition else " (unchanged)"))
        elif r.status is Status.NOT_DEFINED:
            out.write("%s: no persistent definition; nothing to write\n" % r.domain)
        elif r.status is Status.APPLIED:
            out.write("%s: applied live%s\n" % (r.domain, "" if r.applied else " (nothing to apply)"))
            for step in virsh_steps(r.applied) if r.applied else ():
                out.write("  %s\n" % step)
        elif r.status is Status.NOT_RUNNING:
            out.write("%s: not running; applies at next start\n" % r.domain)
        else:
            out.write("%s: FAILED: %s\n" % (r.domain, r.error))
        for text in unsupported_lines(r.plan.unsupported) if r.plan else ():
            out.write("  unsupported: %s\n" % text)


# ---- cpupolicy -----------------------------------------------------------------------


def _sched(params, keys):
    for key in keys:
        if key in params:
            value = params[key]
            if is_quota(key) and quota_is_unlimited(value):
                value = "none"
            return "%s=%s" % (key, value)
    return "-"


_SCHED_KEYS = {"weight": tuple(sorted(set(WEIGHT_KEY.values()))),
               "cap": tuple(sorted({quota for _period, quota in CAP_KEYS.values()}))}


def _table(rows, out):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write(("  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() + "\n")


def policy_report(r, out):
    state = "running" if r.running else "defined, not running" if r.defined \
        else "libvirt not asked: --offline" if r.defined is None else "not defined in libvirt"
    if r.driver and r.driver != "qemu" and (r.defined or r.running):
        state += ", " + LABEL.get(r.driver, r.driver)
    out.write("Domain:      %s (%s)\n" % (r.domain, state))
    if not r.stored:
        out.write("Policy:      %s\n" % ("none of its own; a member of the occupancy set of CPU%s %s "
                                         "(cpuoccupy)" % ("s" if len(r.occupies) > 1 else "",
                                                          ",".join(map(str, r.occupies)))
                                         if r.occupies else "none stored"))
    out.write("Host CPUs:   %s\n" % r.host_cpus)
    if r.occupies:
        out.write("Occupies:    %s (cpuoccupy)\n" % ",".join(map(str, r.occupies)))
    eff = r.effective
    live = r.live
    # The definition's column in persistent mode, or where policyhook wrote into it.
    config = r.config if r.config is not None and (r.persistent or r.config_drift) else None
    head = ("", "stored", "effective") + (("definition",) if config else ()) + ("live",)
    rows = [head]

    def cells(label, stored, effective, defined, now):
        return (label, stored, effective) + ((defined,) if config else ()) + (now,)

    for row in PINS:
        keys = set(k for k in r.policy.pins if k[0] == row.kind)
        keys |= set(k for k in (eff.pins if eff else {}) if k[0] == row.kind)
        keys |= set(k for k in (live.pins if live else {}) if k[0] == row.kind)
        if not row.indexed:
            keys.add((row.kind, 0))
        for key in sorted(keys):
            have = live.pins.get(key) if live else None
            rows.append(cells(row.name(key[1]), _dash(r.policy.pins.get(key)),
                              _dash(eff.pins.get(key) if eff else None),
                              _dash(config.pins.get(key)) if config else "",
                              ("offline" if key in live.offline else _dash(have)) if live else ""))
    for key, keys in _SCHED_KEYS.items():
        rows.append(cells(key, _dash(r.policy.sched.get(key)), _sched(eff.sched, keys) if eff else "-",
                          _sched(config.sched, keys) if config else "",
                          _sched(live.sched, keys) if live else ""))
    indexes = set(r.policy.vcpusched) | set(eff.vcpusched if eff else ())
    indexes |= {i for i, v in ((live.vcpusched or {}).items() if live else ()) if v != VCPUSCHED.default}
    for index in sorted(indexes):
        known = live is not None and live.vcpusched is not None
        rows.append(cells("vCPU %d scheduler" % index, _dash(r.policy.vcpusched.get(index)),
                          _dash(eff.vcpusched.get(index) if eff else None), "",
                          (_dash(live.vcpusched.get(index)) if known else "?") if live else ""))
    out.write("\n")
    _table(rows, out)
    if r.conflict:
        out.write("\nConflict:    %s\n" % r.conflict)
    if eff and eff.elsewhere:
        out.write("Not applied: %s\n" % elsewhere_line(r.domain, eff.elsewhere, r.uuid))
    for note in note_lines(eff) if eff else ():
        out.write("Note:        %s\n" % note)
    for text in unsupported_lines(eff.unsupported) if eff else ():
        out.write("Unsupported: %s\n" % text)
    for key, nodes in r.numa:
        where = ", ".join("%s on node %s" % (c, n) for n, c in sorted(nodes.items()))
        what = ("%s's CPUs" % PIN[key[0]].name(key[1])) if key else "the CPUs it occupies"
        out.write("NUMA:        %s span %d nodes (%s)\n" % (what, len(nodes), where))
    if r.memory is not None:
        out.write("Memory:      %s\n" % memory_line(r.memory))
    for item in r.config_drift:
        out.write("Definition:  %s (policyctl apply --config %s)\n" % (drift_line(item).replace(
            ", live ", ", definition "), r.domain))
    if r.running:
        if r.drift:
            for item in r.drift:
                out.write("Drift:       %s\n" % drift_line(item))
            out.write("             (run 'policyctl apply %s' to put the policy back in force)\n"
                      % r.domain)
        else:
            out.write("Drift:       none; the live values match the policy\n")
    rt = r.runtime
    if rt:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rt.get("updated", 0)))
        line = "Last apply:  %s by %s at %s" % (rt.get("result", "?"), rt.get("source", "?"), when)
        if rt.get("after_start_ms") is not None:
            line += ", %d ms after the started hook" % rt["after_start_ms"]
        out.write(line + "\n")
        if rt.get("error"):
            out.write("             %s\n" % rt["error"])


def quiet_drift(found, names, out):
    """verify: the masks [occupancy] housekeeping keeps that are not as it left them."""
    from ..describe import quiet_what as what

    for key, now, wanted in found:
        out.write("host: DRIFT (quiet CPUs): %s: %s, wanted %s (policyctl apply --all)\n"
                  % (what(key, names), now, wanted))


def quiet_drift_docs(found, names):
    """verify --json: one entry for the host when its quiet CPUs drifted, none otherwise."""
    if not found:
        return []
    return [{"domain": None, "host": "quiet-cpus", "status": "drift", "in_force": False,
             "drift": [{"what": k, "name": names.get(k, ""), "now": n, "wanted": w} for k, n, w in found],
             "error": None, "uuid": None}]


def verified(results, out, more=False):
    if not results and not more:
        out.write("No running domain has a policy.\n")
        return
    for v in results:
        if v.status == v.IN_FORCE:
            out.write("%s: in force\n" % v.domain)
        elif v.status == v.NOT_RUNNING:
            out.write("%s: not running; applies at next start\n" % v.domain)
        elif v.status == v.DRIFT:
            out.write("%s: DRIFT: %s (policyctl apply %s)\n"
                      % (v.domain, "; ".join(drift_line(d) for d in v.drift), v.domain))
        elif v.status == v.ELSEWHERE:
            out.write("%s: NOT APPLIED: %s\n" % (v.domain, elsewhere_line(v.domain, *v.uuid)))
        else:
            out.write("%s: %s: %s\n" % (v.domain, v.status.upper(), v.error))


# ---- list, occupancy -------------------------------------------------------------------


def policy_list(rows, out):
    if not rows:
        out.write("No domain has a policy.\n")
        return
    table = [("DOMAIN",) + tuple(row.key.upper() if row.indexed else row.label.upper() for row in PINS)
             + tuple(row.key.upper() for row in SCHED) + ("OCCUPIES",)]
    for policy, occupies in rows:
        cells = [policy.domain]
        for row in PINS:
            pins = policy.pins_of(row.kind)
            if row.indexed:
                cells.append(" ".join("%d:%s" % kv for kv in sorted(pins.items())) or "-")
            else:
                cells.append(_dash(pins.get(0)))
        cells += [_dash(policy.sched.get(row.key)) for row in SCHED]
        cells.append(",".join(map(str, occupies)) or "-")
        table.append(tuple(cells))
    _table(table, out)


def occupancy_map(doc, out):
    """The host as lscpu -e draws it, one CPU a row, with who owns and who runs there;
    then each occupied CPU whose hyperthread sibling others may use."""
    asked = doc["asked_libvirt"]   # without libvirt, nothing is known of the running domains
    rows = [("NODE", "SOCKET", "CORE", "CPU", "OCCUPIED BY") + (("PINNED HERE",) if asked else ())]
    shared = []
    for node in doc["nodes"]:
        for socket in node["sockets"]:
            for core in socket["cores"]:
                for c in core["cpus"]:
                    rows.append((str(node["node"]), str(socket["socket"]), str(core["core"]), str(c["cpu"]),
                                 ",".join(c["occupied_by"]) or "-")
                                + ((",".join(c["pinned"]) or "-",) if asked else ()))
                owners = {tuple(c["occupied_by"]) for c in core["cpus"]}
                if len(owners) > 1 and any(c["occupied_by"] for c in core["cpus"]):
                    shared.append("core %d of socket %d: %s" % (core["core"], socket["socket"], ", ".join(
                        "CPU %d %s" % (c["cpu"], "occupied by " + ",".join(c["occupied_by"])
                                       if c["occupied_by"] else "open") for c in core["cpus"])))
    _table(rows, out)
    for line in shared:
        out.write("Shared core: %s\n" % line)
    for node in doc["nodes"]:
        for socket in node["sockets"]:
            for core in socket["cores"]:
                for c in core["cpus"]:
                    irqs = ["%s%s" % (i["irq"], " " + i["name"] if i["name"] else "")
                            for i in c.get("managed_irqs", ())]
                    if irqs:
                        out.write("Kernel-managed IRQs on CPU %d (they stay): %s\n"
                                  % (c["cpu"], ", ".join(irqs)))
    for node in doc["nodes"] if len(doc["nodes"]) > 1 else ():
        out.write("NUMA node %d: CPUs %s\n" % (node["node"], node["cpus"]))

