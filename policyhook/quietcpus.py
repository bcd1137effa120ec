"""Quiet CPUs ([occupancy] housekeeping = yes): while at least one occupant of a set
runs, the host's movable interrupts, unbound workqueues and movable kernel threads are
kept off the CPUs the running sets occupy, and irqbalance with them; when the last one
stops, everything gets back what it had, byte for byte.

What a mask held is recorded (/run/policyhook/housekeeping.json) before it is first
changed, and dropped only once it is given back, so a crash or a kill -9 at any point
leaves a record that the next update (a start, a stop, policyctl apply --all, the
watcher) completes or undoes. /run: the kernel's masks and the drop-in for irqbalance
end with the boot, and so does the record. The registry lock is held around the record
only, never around a write to the host. housekeeping.py plans; hostfiles.py reads and
writes.
"""

import json
import os

from . import housekeeping, safeio
from .cpuset import CpuSet
from .errors import PolicyError
from .results import Quiet

RECORD = "housekeeping.json"


def record_path(paths):
    return os.path.join(paths.run, RECORD)


def load(paths):
    data = safeio.read_file(record_path(paths), 1 << 22)
    if data is None:
        return housekeeping.empty_record()
    try:
        doc = json.loads(data.decode("utf-8"))
        for part in ("saved", "applied", "managed"):
            if not isinstance(doc.setdefault(part, {}), dict):
                raise ValueError("%s is not a map" % part)
        return doc
    except (ValueError, AttributeError) as e:
        raise PolicyError("%s: not a housekeeping record: %s" % (record_path(paths), e), 4) from None


def save(paths, doc):
    """The record written (registry.transact's Writes.housekeeping); removed once it
    holds nothing to give back."""
    if not doc["saved"] and not doc["managed"] and "irqbalance" not in doc:
        return safeio.remove(record_path(paths))
    safeio.ensure_dir(paths.run)
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    safeio.write_atomic(record_path(paths), text.encode("utf-8"))
    return True


def pending(paths, settings):
    """Whether an update has anything to do: housekeeping on, or a record to finish."""
    return settings.housekeeping or os.path.lexists(record_path(paths))


def host_files(paths):
    """The host's /proc and /sys; under another root, that root's (tests), never the
    machine's own."""
    from .hostfiles import HostFiles
    if paths.root in ("/", ""):
        return HostFiles()
    return HostFiles(os.path.join(paths.root, "proc"), os.path.join(paths.root, "sys"))


class _Failures:
    """Files that could not be written, one problem per error however many files."""

    def __init__(self):
        self.by_error = {}

    def add(self, path, e):
        self.by_error.setdefault(e.strerror or str(e), []).append(path)

    def lines(self):
        out = []
        for why, files in sorted(self.by_error.items()):
            more = " (and %d more like it)" % (len(files) - 1) if len(files) > 1 else ""
            out.append("%s%s: cannot be written: %s; left as it is" % (files[0], more, why))
        return out


def _read(registry):
    """The record, read under the registry lock."""
    return registry.read(lambda _snap: load(registry.paths))


def _change(registry, fn):
    """The record changed by `fn(record) -> record` (pure), in a transaction of the
    registry: only our own file is read and written under its lock."""
    from .results import Writes

    return registry.transact(lambda _snap: Writes(housekeeping=fn(load(registry.paths))))


def update(paths, registry, files, irqbalance, held, repair=True):
    """Keep `held` (a CpuSet; empty: give everything back) quiet. `files` a
    hostfiles.HostFiles, `irqbalance` a hostfiles.IrqBalance or None; the record is
    read and written through `registry`'s transactions, the host's files outside them.
    Without `repair`, a change of ours that was undone is reported as drift, not put
    back."""
    from .hostfiles import MANAGED

    r = Quiet(held)
    snap = files.snapshot()
    r.names = snap.names
    record = _read(registry)
    if not held:
        record["managed"] = {}
    p = housekeeping.plan(snap.values, held, record, repair)
    r.kept, r.drift = p.kept, p.drift
    failed = _Failures()
    if irqbalance is not None:
        _irqbalance(paths, registry, irqbalance, snap, held, record, repair, r, failed)
    given_back = list(p.gone)
    for key, text in p.restores:
        try:
            if snap.values.get(key, "").strip() != text.strip():
                files.write(key, text)
        except OSError as e:
            if key.startswith("kthread/"):
                given_back.append(key)      # the thread is gone or no longer movable
                continue
            failed.add(files.path(key), e)
            continue
        given_back.append(key)
        r.restored[key] = text.strip()
    if p.originals:
        def keep(record):       # recorded before it is changed
            for key, text in p.originals.items():
                record["saved"].setdefault(key, text)
            return record
        _change(registry, keep)
    applied, managed, unchanged = {}, dict(p.managed), []
    for key, text in p.probes:
        try:
            files.write(key, text)
        except OSError as e:
            if e.errno in MANAGED:
                managed[housekeeping.irq_of(key)] = snap.effective.get(housekeeping.irq_of(key)) or text
                r.kept.pop(key, None)
    for key, text in p.writes:
        try:
            files.write(key, text)
        except OSError as e:
            irq = housekeeping.irq_of(key)
            if irq is not None and e.errno in MANAGED:
                managed[irq] = snap.effective.get(irq) or snap.values[key].strip()
            elif key.startswith("kthread/"):
                r.kept[key] = housekeeping.parse(key, snap.values[key])
            else:
                failed.add(files.path(key), e)
            if key in p.originals:
                unchanged.append(key)       # nothing was changed: nothing to give back
            continue
        applied[key] = text
        r.changed[key] = text
    def done(record):
        for key in given_back + unchanged:
            record["saved"].pop(key, None)
            record["applied"].pop(key, None)
        record["applied"].update(applied)
        record["managed"] = managed if held else {}
        record["names"] = {irq: snap.names.get("irq/" + irq, "") for irq in record["managed"]}
        if held:
            record["held"] = str(held)
        else:
            record.pop("held", None)
        return record
    _change(registry, done)
    r.managed = managed
    r.problems += failed.lines()
    return r


def _irqbalance(paths, registry, irqb, snap, held, record, repair, r, failed):
    """irqbalance's banned CPUs: ours while CPUs are held and it runs, the admin's again
    after. Recorded ("irqbalance" in the record) before our drop-in is written."""
    from .systemd import SystemdError

    ours = irqb.ours()
    try:
        running = bool(held) and irqb.running()
    except SystemdError as e:
        r.problems.append("irqbalance: %s" % e)
        return
    if held and running:
        isolated = CpuSet.parse(snap.isolated) if snap.isolated else CpuSet()
        env = housekeeping.irqbalance_env(irqb.admin(), isolated, held)
        if ours == env:
            return
        if ours is not None and not repair and record.get("irqbalance"):
            r.drift.append(("irqbalance", ours.strip(), env.strip()))
            return
        def mark(rec):
            rec.setdefault("irqbalance", "")
            return rec
        _change(registry, mark)
        try:
            irqb.set(env)
        except (OSError, PolicyError, SystemdError) as e:
            r.problems.append("irqbalance: %s" % e)
            return
        def ours_now(rec):
            rec["irqbalance"] = env
            return rec
        _change(registry, ours_now)
        r.irqbalance = env.split("CPULIST=", 1)[1].strip()
        return
    if held and ours is None and snap.names.get("irqbalance-pid"):
        r.problems.append("irqbalance runs (pid %s) but not as a systemd unit: its banned CPUs "
                          "cannot be set at run time; it may move IRQs back onto %s"
                          % (snap.names["irqbalance-pid"], held))
    if ours is not None or "irqbalance" in record:
        try:
            irqb.clear()
        except (OSError, PolicyError, SystemdError) as e:
            r.problems.append("irqbalance: %s" % e)
            return
        def given(rec):
            rec.pop("irqbalance", None)
            return rec
        _change(registry, given)
        r.irqbalance = "given back"


def update_for(paths, settings, running, registry, systemd=None, complete=True, repair=True):
    """effects.update_host's part: keep the CPUs of the sets one of `running` belongs to
    quiet, per [occupancy] housekeeping; with it off, give back whatever an earlier run
    recorded. A Quiet, or None when there is nothing to do. Not `complete` (a connection
    did not answer): nothing is given back."""
    from . import isolation
    from .hostfiles import IrqBalance

    if not pending(paths, settings):
        return None
    if not complete and os.path.lexists(record_path(paths)):
        r = Quiet(CpuSet())
        r.skipped = "not every libvirt connection answered: left as it is"
        return r
    held = CpuSet()
    if settings.housekeeping:
        held = registry.read(lambda snap: isolation.held_cpus(snap.host(), running))
    if not held and not os.path.lexists(record_path(paths)):
        return None     # nothing held, nothing to give back: the host is not even read
    if systemd is None:
        from .systemd import Systemd
        systemd = Systemd(root=paths.root)
    return update(paths, registry, host_files(paths), IrqBalance(systemd, paths.root), held, repair)


def drift(paths, settings, running, registry):
    """`policyctl verify`'s part: [(what, now, wanted)] where the host is not as
    housekeeping left it (an IRQ back on a held CPU, a changed workqueue mask, a mask
    not given back), and the names of what each key is."""
    from . import isolation

    if not pending(paths, settings):
        return [], {}

    def read(snap):
        held = isolation.held_cpus(snap.host(), running) if settings.housekeeping else CpuSet()
        return held, load(paths)
    held, record = registry.read(read)
    snap = host_files(paths).snapshot()
    p = housekeeping.plan(snap.values, held, record, repair=True)
    found = [(k, snap.values[k].strip(), v) for k, v in p.writes if not k.startswith("kthread/")]
    found += [(k, snap.values[k].strip(), v.strip()) for k, v in p.restores
              if snap.values[k].strip() != v.strip() and not k.startswith("kthread/")]
    return found, snap.names


def managed_by_cpu(paths):
    """{cpu: [(irq, name)]} of the kernel-managed IRQs on the CPUs held now, from the record
    (`policyctl occupancy`): the IRQs that stay on occupied CPUs."""
    try:
        record = load(paths)
    except PolicyError:
        return {}
    found, names = {}, record.get("names") or {}
    for irq, cpus in record.get("managed", {}).items():
        try:
            for cpu in CpuSet.parse(cpus):
                found.setdefault(cpu, []).append((irq, names.get(irq, "")))
        except PolicyError:
            continue
    return {cpu: sorted(irqs, key=lambda i: int(i[0])) for cpu, irqs in found.items()}


def attach(isolated, quiet):
    """The isolation.Isolation that effects.update_host returns, carrying `quiet`: one
    result for host isolation and quiet CPUs (an empty one when only the latter acted)."""
    if quiet is None:
        return isolated
    if isolated is None:
        from .isolation import Isolation
        isolated = Isolation(CpuSet())
    isolated.quiet = quiet
    return isolated


def host_drift(pm):
    """`policyctl verify`'s part for PolicyManager `pm`: ([(what, now, wanted)], names),
    or None when housekeeping has nothing to say (off and nothing recorded, no libvirt)."""
    if not pending(pm.paths, pm.settings) or pm.connection() is None:
        return None
    found, _complete = pm.running_everywhere()
    return drift(pm.paths, pm.settings, found, pm.registry)
