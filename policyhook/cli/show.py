"""How policyctl prints reports. Text for people; --json for scripts."""

import json
import time

from ..mapping import LABEL, is_quota, quota_is_unlimited

WEIGHT_KEYS = ("cpu_shares", "weight")
CAP_KEYS = ("global_quota", "vcpu_quota", "cap")


def dump_json(doc, out):
    out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _dash(value):
    return "-" if value is None or value == "" else str(value)


def policy_report(doc, out):
    state = "running" if doc["running"] else "defined, not running" if doc["defined"] \
        else "not defined in libvirt"
    driver = doc.get("driver")
    if driver and driver != "qemu" and (doc["defined"] or doc["running"]):
        state += ", " + LABEL.get(driver, driver)
    out.write("Domain:      %s (%s)\n" % (doc["domain"], state))
    if not doc["stored"]:
        out.write("Policy:      none stored\n")
    out.write("Host CPUs:   %s\n" % doc["host_cpus"])
    if doc["occupies"]:
        out.write("Occupies:    %s (cpuoccupy)\n" % ",".join(map(str, doc["occupies"])))
    eff = doc["effective"] or {"vcpupin": {}, "emulatorpin": None, "sched": {}, "notes": []}
    live = doc["live"]
    rows = [("", "stored", "effective", "live")]
    vcpus = sorted(set(map(int, doc["vcpupin"])) | set(map(int, eff["vcpupin"]))
                   | set(map(int, (live or {}).get("vcpupin", {}))))
    for v in vcpus:
        key = str(v)
        rows.append(("vCPU %d" % v, _dash(doc["vcpupin"].get(key)),
                     _dash(eff["vcpupin"].get(key)),
                     _dash(live["vcpupin"].get(key)) if live else ""))
    rows.append(("emulator", _dash(doc["emulatorpin"]), _dash(eff["emulatorpin"]),
                 _dash(live["emulatorpin"]) if live else ""))
    rows.append(("weight", _dash(doc["weight"]), _sched(eff["sched"], WEIGHT_KEYS),
                 _sched(live["sched"], WEIGHT_KEYS) if live else ""))
    rows.append(("cap", _dash(doc["cap"]), _sched(eff["sched"], CAP_KEYS),
                 _sched(live["sched"], CAP_KEYS) if live else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out.write("\n")
    for r in rows:
        out.write(("  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() + "\n")
    if doc["conflict"]:
        out.write("\nConflict:    %s\n" % doc["conflict"])
    for note in eff.get("notes") or []:
        out.write("Note:        %s\n" % note)
    for text in eff.get("unsupported") or []:
        out.write("Unsupported: %s\n" % text)
    if doc["running"]:
        if doc["drift"]:
            for line in doc["drift"]:
                out.write("Drift:       %s\n" % line)
            out.write("             (run 'policyctl apply %s' to put the policy back in force)\n"
                      % doc["domain"])
        else:
            out.write("Drift:       none; the live values match the policy\n")
    rt = doc.get("runtime")
    if rt:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rt.get("updated", 0)))
        line = "Last apply:  %s by %s at %s" % (rt.get("result", "?"), rt.get("source", "?"), when)
        if rt.get("after_start_ms") is not None:
            line += ", %d ms after the started hook" % rt["after_start_ms"]
        out.write(line + "\n")
        if rt.get("error"):
            out.write("             %s\n" % rt["error"])


def _sched(params, keys):
    for key in keys:
        if key in params:
            value = params[key]
            if is_quota(key) and quota_is_unlimited(value):
                value = "none"
            return "%s=%s" % (key, value)
    return "-"


def policy_list(rows, out):
    if not rows:
        out.write("No domain has a policy.\n")
        return
    table = [("DOMAIN", "VCPUPIN", "EMULATOR", "WEIGHT", "CAP", "OCCUPIES")]
    for r in rows:
        pins = " ".join("%s:%s" % kv for kv in sorted(r["vcpupin"].items(), key=lambda kv: int(kv[0])))
        table.append((r["domain"], pins or "-", _dash(r["emulatorpin"]), _dash(r["weight"]),
                      _dash(r["cap"]), ",".join(map(str, r["occupies"])) or "-"))
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        out.write(("  ".join(c.ljust(w) for c, w in zip(t, widths))).rstrip() + "\n")


def occupancy(host, out):
    if host.is_empty():
        out.write("No CPU is occupied.\n")
        return
    out.write("PCPU  DOMAINS\n")
    for cpu in sorted(host.occupancy):
        out.write("%-4d  %s\n" % (cpu, ",".join(host.occupancy[cpu])))
