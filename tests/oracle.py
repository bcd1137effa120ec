"""What policyhook must do, worked out again from its documentation alone, for tests to
compare against: the cpulist syntax and the weight and cap formulas of
doc/man/policyhook-policy.5.md, the semantics of doc/design.md "Semantics" (base and
effective pins, occupancy), what each driver cannot do (doc/drivers.md), and this
machine's CPUs and cgroup version read plainly from sysfs.

Nothing here imports policyhook: a bug in CpuSet, the mapping or the planner cannot
change what a test expects, nor which tests run.
"""

import os

PERIOD_US = 100000
WEIGHT_RANGE = (1, 65535)
MAX_CPU = 8191              # libvirt's cpumaps are 8192 bits
MAX_VCPU = 16383
MAX_IOTHREAD = 4294967295   # UINT_MAX, as libvirt's <iothread id=...>


# ---- this machine, read plainly ----------------------------------------------------------

def cpulist(text):
    """The CPUs a well-formed cpulist names ("0-3,^2" -> {0, 1, 3}), by the syntax of
    doc/man/policyhook-policy.5.md; for lists the kernel or a test wrote."""
    cpus = set()
    for item in text.strip().split(","):
        exclude = item.startswith("^")
        first, _, last = item.lstrip("^").partition("-")
        span = set(range(int(first), int(last or first) + 1))
        cpus = cpus - span if exclude else cpus | span
    return cpus


def cpulist_text(cpus):
    """The canonical cpulist of a set of CPUs: sorted ranges, "0-2,5"."""
    out, run = [], []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            out.append(_run(run))
        run = [cpu]
    if run:
        out.append(_run(run))
    return ",".join(out)


def _run(run):
    return str(run[0]) if len(run) == 1 else "%d-%d" % (run[0], run[-1])


def host_cpus(sysfs="/sys/devices/system/cpu"):
    """This machine's online CPUs, a sorted list, from sysfs (as the kernel lists them)."""
    try:
        with open(os.path.join(sysfs, "online")) as f:
            return sorted(cpulist(f.read()))
    except OSError:
        return list(range(os.cpu_count() or 1))


def cgroup_version(root="/sys/fs/cgroup"):
    """2 on a unified hierarchy (cgroup.controllers at its root), else 1."""
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


# ---- weight and cap: doc/man/policyhook-policy.5.md "WEIGHT AND CAP" ----------------------

def cpu_shares(weight, cgroup):
    if cgroup == 2:
        return max(1, min(10000, round(weight * 100 / 256)))   # round() halves to even
    return 4 * weight


def sched_params(driver, cgroup, weight=None, cap=None):
    """libvirt's scheduler parameters for a weight and a cap (None: not set), per the
    man page's table."""
    params = {}
    if driver == "libxl":
        if weight is not None:
            params["weight"] = weight
        if cap is not None:
            params["cap"] = cap
        return params
    prefix = {"qemu": "global_", "lxc": "vcpu_"}[driver]
    if weight is not None:
        params["cpu_shares"] = cpu_shares(weight, cgroup)
    if cap is not None:
        params[prefix + "period"] = PERIOD_US
        params[prefix + "quota"] = cap * 1000 if cap > 0 else -1
    return params


def quota_key(driver):
    return {"qemu": "global_quota", "lxc": "vcpu_quota", "libxl": "cap"}[driver]


# What a live quota reads when there is no limit: -1 on cgroup v1; on cgroup v2 libvirt
# reads cpu.max "max" back as its largest quota, 2^44 - 1 (README "Drivers").
UNLIMITED_QUOTA = {1: -1, 2: 17592186044415}

# libvirt's <cputune> element of each scheduler parameter (libvirt's domain XML format;
# its libxl driver reads <shares> as the credit weight and has no element for the cap).
CPUTUNE_TAG = {
    "qemu": {"cpu_shares": "shares", "global_period": "global_period", "global_quota": "global_quota"},
    "lxc": {"cpu_shares": "shares", "vcpu_period": "period", "vcpu_quota": "quota"},
    "libxl": {"weight": "shares"},
}
SCHED_TAGS = {"shares", "global_period", "global_quota", "period", "quota"}

# What each driver cannot pin (doc/drivers.md): left out of the plan and never checked.
CANNOT_PIN = {"qemu": set(), "lxc": {"vcpu", "emulator", "iothread"}, "libxl": {"emulator", "iothread"}}


# ---- the plan: doc/design.md "Semantics" ---------------------------------------------------

class Conflict(Exception):
    """The policy cannot be satisfied; the message is the refusal's."""


KINDS = [  # (kind, policy key, <cputune> element, its index attribute, label)
    ("vcpu", "vcpupin", "vcpupin", "vcpu", "vCPU"),
    ("emulator", "emulatorpin", "emulatorpin", None, "emulator"),
    ("iothread", "iothreadpin", "iothreadpin", "iothread", "IOThread"),
]


def _subject(kind, label, index, name):
    return ("the emulator of '%s'" % name) if kind == "emulator" else "%s %d of '%s'" % (label, index, name)


def _count(label, indexes):
    if not indexes:
        return "no %ss" % label
    return "%d %s%s (%s)" % (len(indexes), label, "" if len(indexes) == 1 else "s", cpulist_text(indexes))


def plan(doc, occupancy, name, driver, uuid, indexes, xml_pins, host, cgroup):
    """({(kind, index): set of CPUs}, {libvirt parameter: value}) for domain `name`, or
    Conflict. `doc`: its policy file as JSON (None: none); `occupancy`: host.json's
    "cpuoccupy" ({"cpu": [names]}); `indexes`: {"vcpu": [...], "iothread": [...]} as its
    XML has them (a kind missing when not known); `xml_pins`: {(kind, index): set} from its
    XML's <cputune>; `host`: the host's CPUs."""
    host = set(host)
    if doc is not None and doc.get("uuid") and uuid and doc["uuid"].lower() != uuid.lower():
        doc = None          # recorded for another domain of this name: a stranger here
        member = set()
    else:
        member = {int(c) for c, names in occupancy.items() if name in names}
    taken = {int(c) for c in occupancy} - member
    taken &= host
    doc = doc or {}
    pins = {}
    for kind, key, _element, _attr, label in KINDS:
        if kind in CANNOT_PIN[driver]:
            continue
        raw = doc.get(key)
        if kind == "emulator":
            stored = {0: cpulist(raw)} if raw is not None else {}
            known = [0]
        else:
            stored = {int(i): cpulist(c) for i, c in (raw or {}).items()}
            known = indexes.get(kind)
        if known is not None:
            for index in sorted(stored):
                if index not in known:
                    raise Conflict("%s has a pin, but the domain has %s"
                                   % (_subject(kind, label, index, name), _count(label, known)))
        for index, cpus in sorted(stored.items()):
            if not cpus <= host:
                raise Conflict("%s is pinned to %s, but the host's CPUs are %s"
                               % (_subject(kind, label, index, name), cpulist_text(cpus),
                                  cpulist_text(host)))
        if not taken:
            pins.update(((kind, i), c) for i, c in stored.items())
            continue
        for index in (sorted(stored) if known is None else known):
            base, source = stored.get(index), "policy"
            if base is None:
                base, source = xml_pins.get((kind, index)), "domain XML"
            effective = (base if base is not None else host) - taken
            if not effective:
                owners = ", ".join(sorted({n for c in (base if base is not None else host) & taken
                                           for n in occupancy[str(c)]}))
                if base is None:
                    raise Conflict("%s has no pin, and every host CPU (%s) is occupied by %s (cpuoccupy); "
                                   "it would have no CPU left"
                                   % (_subject(kind, label, index, name), cpulist_text(host), owners))
                raise Conflict("%s is pinned to %s (%s), which is occupied by %s (cpuoccupy); it would "
                               "have no CPU left" % (_subject(kind, label, index, name), cpulist_text(base),
                                                     source, owners))
            pins[(kind, index)] = effective
    return pins, sched_params(driver, cgroup, doc.get("weight"), doc.get("cap"))


def cputune(pins, params, driver):
    """The <cputune> children a plan writes, as sorted (tag, attributes, text) triples."""
    found = []
    for (kind, index), cpus in pins.items():
        element, attr = {k: (e, a) for k, _key, e, a, _label in KINDS}[kind]
        attrs = {"cpuset": cpulist_text(cpus)}
        if attr:
            attrs[attr] = str(index)
        found.append((element, tuple(sorted(attrs.items())), ""))
    for param, value in params.items():
        if param in CPUTUNE_TAG[driver]:
            found.append((CPUTUNE_TAG[driver][param], (), str(value)))
    return sorted(found)


def element_key(tag, attrs):
    """Which setting a <cputune> child holds: ("vcpupin", "0"), ("shares", None); None for
    children policyhook never writes (<vcpusched>, ...)."""
    for _kind, _key, element, attr, _label in KINDS:
        if tag == element:
            return (tag, dict(attrs).get(attr) if attr else None)
    return (tag, None) if tag in SCHED_TAGS else None
