"""Words for the planner's records: one place for the log (hook, applier) and policyctl.

Nothing parses these words back; the records they come from are the data.
"""

from .housekeeping import irq_of
from .tunables import PIN, SETTINGS, VCPUSCHED


def cpus_phrase(cpus):
    """'CPU 1', 'CPUs 1-2'."""
    return ("CPUs %s" if len(cpus) > 1 else "CPU %s") % cpus


def plan_steps(plan):
    """['vCPU 0 -> 1', 'emulator -> 0', 'cpu_shares=2048']: a plan, one item per setting."""
    parts = ["%s -> %s" % (PIN[kind].name(index), cpus) for (kind, index), cpus in plan.sorted_pins()]
    return parts + ["%s=%s" % kv for kv in sorted(plan.sched.items())] + [
        "vCPU %d %s" % kv for kv in sorted(plan.vcpusched.items())]


def plan_line(plan, empty="nothing to apply"):
    """One line for logs and policyctl: 'vCPU 0 -> 1, emulator -> 0, cpu_shares=2048'."""
    return ", ".join(plan_steps(plan)) or empty


def _steps(plan):
    """[(step key, words)] of virsh_steps: a pin's (kind, index), None for the scheduler
    parameters, ("vcpusched", vCPU) for a vCPU's policy (no virsh command: policyctl's)."""
    steps = []
    for (kind, index), cpus in plan.sorted_pins():
        row = PIN[kind]
        steps.append(((kind, index), "%s %d %s" % (row.key, index, cpus) if row.indexed
                      else "%s %s" % (row.key, cpus)))
    if plan.sched:
        steps.append((None, "schedinfo " + " ".join("%s=%s" % kv for kv in sorted(plan.sched.items()))))
    for index, value in sorted(plan.vcpusched.items()):
        policy, priority = VCPUSCHED.split(value)
        steps.append(((VCPUSCHED.key, index), "%s %d %s%s" % (VCPUSCHED.command, index, policy,
                                                              "" if priority is None else " %d" % priority)))
    return steps


def virsh_steps(plan):
    """What applying `plan` does, as the virsh commands that would do it:
    ['vcpupin 0 1', 'emulatorpin 0', 'iothreadpin 1 2', 'schedinfo cpu_shares=2048'];
    a vCPU's scheduling policy, which virsh cannot change live, as 'vcpusched 0 fifo 10'."""
    return [words for _key, words in _steps(plan)]


def step_failed(error):
    """errors.StepFailed as one line: 'vm1: vcpupin 0 1 failed: <libvirt's words>'."""
    steps = dict(_steps(error.plan))
    step = steps.get(error.step) or virsh_steps(error.plan)[-1]
    return "%s: %s failed: %s" % (error.plan.domain, step, error.detail)


def note_lines(plan):
    """Why effective pins differ from the stored ones (cpuoccupy)."""
    lines = []
    if plan.kept_off:
        lines.append("%s %s occupied by other domains (cpuoccupy); kept off %s"
                     % (cpus_phrase(plan.kept_off), "are" if len(plan.kept_off) > 1 else "is",
                        "them" if len(plan.kept_off) > 1 else "it"))
    for note in plan.notes:
        kind, index = note.pin
        lines.append("%s: %s minus %s occupied by %s" % (PIN[kind].name(index), note.base,
                                                         note.removed, ", ".join(note.owners)))
    return lines


def _and(words):
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def unsupported_lines(lost):
    """[Lost] as lines, one per reason: 'vCPU pins, emulator pin (reason)'; threads that
    cannot be kept off occupied CPUs as 'vCPUs and emulator kept off CPU 1 (cpuoccupy)'."""
    reasons = []
    found = {}
    for item in lost:
        if item.reason not in found:
            reasons.append(item.reason)
            found[item.reason] = ([], [])
        plain, kept = found[item.reason]
        if item.kept_off is None:
            what = SETTINGS[item.setting].what
            if what not in plain:
                plain.append(what)
        else:
            kept.append(item)
    lines = []
    for reason in reasons:
        plain, kept = found[reason]
        words = list(plain)
        if kept:
            words.append("%s kept off %s (cpuoccupy)"
                         % (_and([SETTINGS[k.setting].plural for k in kept]), cpus_phrase(kept[0].kept_off)))
        lines.append("%s (%s)" % (", ".join(words), reason))
    return lines


def drift_line(item):
    """'vCPU 1: policy 0, live 0-1', 'cpu_shares: policy 2048, live 1024'."""
    if item.pin is not None:
        kind, index = item.pin
        return "%s: policy %s, live %s" % (PIN[kind].name(index), item.want,
                                           "-" if item.have is None else item.have)
    if item.param == VCPUSCHED.key:
        return "vCPU %d scheduler: policy %s, live %s" % (item.index, item.want,
                                                          "-" if item.have is None else item.have)
    return "%s: policy %s, live %s" % (item.param, item.want, item.have)


def plan_summary(plan):
    """A plan with what its driver leaves out, for the log."""
    text = plan_line(plan)
    if plan.unsupported:
        text += "; unsupported: %s" % "; ".join(unsupported_lines(plan.unsupported))
    return text


def elsewhere_line(name, recorded, actual, outcome="it is not applied"):
    """Why a stored policy is not applied to a domain that took its name (`outcome`: what
    follows from it here)."""
    return ("the policy of '%s' was recorded for the domain with UUID %s, but this '%s' has UUID %s; "
            "%s (run 'policyctl rebind %s' to keep it for this domain, or "
            "'policyctl remove %s')" % (name, recorded, name, actual or "?", outcome, name, name))


def isolation_line(result):
    """Host isolation (an isolation.Isolation, with quiet CPUs in .quiet) as one line for
    the log or policyctl, or None when nothing happened."""
    if result is None:
        return None
    lines = [_isolation_only(result), quiet_line(getattr(result, "quiet", None))]
    return "; ".join(t for t in lines if t) or None


def _isolation_only(result):
    if result.skipped:
        return "host isolation: %s" % result.skipped
    parts = ["%s AllowedCPUs=%s" % kv for kv in sorted(result.changed.items())]
    parts += ["%s AllowedCPUs=%s (given back)" % (u, v or "all") for u, v in sorted(result.restored.items())]
    parts += result.problems
    return "host isolation: %s" % "; ".join(parts) if parts else None


def moves_line(moved):
    """Session.repin_others' [(name, plan or error)] as one line for the log, or None."""
    if not moved:
        return None
    return "occupancy (running mode): " + "; ".join(
        "%s %s" % (name, "FAILED: " + p if isinstance(p, str) else plan_line(p, "no change"))
        for name, p in moved)


def quiet_line(q):
    """Quiet CPUs (a results.Quiet) as one line for the log or policyctl, or None when
    nothing happened."""
    if q is None:
        return None
    if q.skipped:
        return "quiet CPUs: %s" % q.skipped
    parts = []
    if q.changed:
        parts.append("%d mask%s kept off %s (%s)" % (len(q.changed), "" if len(q.changed) == 1 else "s",
                                                     q.held, _quiet_keys(q.changed)))
    if q.restored:
        parts.append("%d mask%s given back (%s)" % (len(q.restored), "" if len(q.restored) == 1 else "s",
                                                    _quiet_keys(q.restored)))
    if q.irqbalance:
        parts.append("irqbalance %s" % ("given back its own banned CPUs" if q.irqbalance == "given back"
                                        else "banned from %s" % q.irqbalance))
    if q.managed:
        parts.append("kernel-managed IRQs stay: %s" % ", ".join(
            "%s on %s" % (irq, cpus) for irq, cpus in sorted(q.managed.items(), key=lambda kv: int(kv[0]))))
    parts += ["drift not repaired: %s is %s, wanted %s" % d for d in q.drift]
    parts += q.problems
    return "quiet CPUs: %s" % "; ".join(parts) if parts else None


def _quiet_keys(keys, most=10):
    """The first `most` keys, and how many more: a host has hundreds of IRQs and threads."""
    keys = sorted(keys, key=_quiet_order)
    more = " and %d more" % (len(keys) - most) if len(keys) > most else ""
    return ", ".join(keys[:most]) + more


def _quiet_order(key):
    head, _, tail = key.partition("/")
    return (head, int(tail) if tail.isdigit() else 0, tail)


def quiet_what(key, names):
    """Words for a key: 'IRQ 24 (virtio0-config)', 'the workqueue mask'."""
    irq = irq_of(key)
    if irq is not None:
        return "IRQ %s%s" % (irq, " (%s)" % names[key] if names.get(key) else "")
    if key.startswith("kthread/"):
        return "kernel thread %s%s" % (key.split("/")[1], " (%s)" % names[key] if names.get(key) else "")
    return {"irq/default": "/proc/irq/default_smp_affinity", "workqueue": "the unbound workqueues' cpumask",
            "workqueue/writeback": "the writeback workqueue's cpumask"}.get(key, key)


# ---- automatic placement (placement.py) ---------------------------------------------


def _count(n, one, many):
    return "%d %s" % (n, one if n == 1 else many)


def placement_lines(p):
    """cpuoccupy --auto's choice: the node and why (and N rounded up), then one reason
    per CPU."""
    lines = []
    if p.rounded:
        lines.append("rounded up to whole cores: %s asked, %d taken" % (p.asked, len(p.cpus)))
    free = p.free_by_node.get(p.node, [])
    unit = "whole cores" if p.smt else "CPUs"
    if p.memory_nodes is not None:
        why = "<numatune> binds the domains' memory to node%s %s" % (
            "s" if len(p.memory_nodes) > 1 else "", p.memory_nodes)
        if len(p.memory_nodes) > 1:
            why += ", and this one has the most free %s (%d)" % (unit, len(free))
    else:
        others = "".join("; node %d: %d" % (n, len(c)) for n, c in sorted(p.free_by_node.items())
                         if n != p.node)
        why = "the most free %s (%d%s)" % (unit, len(free), others)
    lines.append("NUMA node %d: %s" % (p.node, why))
    if p.llc_split:
        lines.append("L3 caches: %d on node %d, none with room for all; the fullest first" % (p.llcs, p.node))
    for core in p.cores:
        for cpu in core:
            what = "whole core %s free" % core if p.smt and len(core) > 1 else "free"
            cache = "; L3 cache shared with CPUs %s" % p.llc if p.llc is not None else ""
            pinned = p.pinned.get(cpu)
            pins = ("; %s pinned there (no unpinned core left)" % ", ".join(sorted(pinned)) if pinned
                    else "; no running domain pinned there")
            lines.append("  CPU %d: %s%s%s" % (cpu, what, cache, pins))
    return lines


def placement_missing(p, names):
    """Why cpuoccupy --auto found no room: one line, with the best partial choice."""
    unit = "whole core" if p.smt else "free CPU"
    found = "; ".join("node %d: %s" % (n, _count(len(c), "free " + unit if p.smt else unit,
                                                  ("free " + unit if p.smt else unit) + "s"))
                      for n, c in sorted(p.free_by_node.items())) or "no CPU there"
    nodes = ("no NUMA node" if p.memory_nodes is None else
             "no NUMA node the memory of %s is bound to by <numatune> (%s)"
             % (", ".join(names), p.memory_nodes))
    best = ("best partial choice: %s on node %d" % (cpus_phrase(p.cpus), p.node) if p.cpus
            else "no partial choice")
    return ("cannot place %d CPU%s for %s: %s has %d free CPUs%s outside [occupancy] reserved (%s) and "
            "the occupied CPUs (%s); %s; nothing saved"
            % (p.asked, "" if p.asked == 1 else "s", ", ".join(names), nodes, p.asked,
               " in whole cores" if p.smt else "", p.reserved or "none", found, best))


def auto_pin_refusal(name, vcpus, held):
    """vcpupin --auto refused: the domain occupies fewer CPUs than it has vCPUs."""
    has = ("occupies no CPU" if not held else "occupies only %s" % cpus_phrase(held))
    return ("domain '%s' has %s but %s; vcpupin --auto gives each vCPU a CPU of its own: occupy %d %sfirst "
            "(policyctl cpuoccupy --auto %d %s)" % (name, _count(vcpus, "vCPU", "vCPUs"), has,
                                                     vcpus - len(held), "more " if held else "",
                                                     vcpus - len(held), name))


def auto_pins_words(value):
    """vcpupin --auto's change (results.AutoPins) in words."""
    n = len(value.vcpus)
    words = "%s pinned 1:1 to the CPUs it occupies (%s)" % (
        "vCPU 0" if n == 1 else "vCPUs 0-%d" % (n - 1), ", ".join(str(c) for c in value.vcpus))
    node = "node %d" % value.node if value.node is not None else "its nodes"
    if value.emulator is not None:
        return words + "; emulator to %s (%s outside every occupancy)" % (value.emulator, node)
    return words + "; emulator pin left as it was (no CPU of %s outside every occupancy)" % node
