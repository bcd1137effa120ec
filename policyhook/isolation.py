"""Host isolation ([occupancy] isolate_host = yes): while at least one occupant of an
occupancy set runs, the host's own units (system.slice, user.slice, init.scope: the
setting [occupancy] host_units) get AllowedCPUs without the CPUs that set occupies, so
the host's processes stay off them too; when the last occupant stops they get back
what they had.

What a unit had is recorded (/run/policyhook/isolation.json) before it is changed, and
the record dropped only once everything is given back, so a crash or a kill -9 at any
point leaves a record that the next update (a start, a stop, policyctl apply --all,
the watcher) completes or undoes. /run: --runtime properties end with the boot, and so
does the record.
"""

import json

from . import safeio
from .cpuset import CpuSet
from .errors import PolicyError
from .results import Isolation

RECORD = "isolation.json"


def held_cpus(host, running):
    """The occupied CPUs of the sets with at least one running occupant."""
    running = set(running)
    return CpuSet(c for c, doms in host.occupancy.items() if running & set(doms))


def _path(paths):
    import os
    return os.path.join(paths.run, RECORD)


def load(paths):
    data = safeio.read_file(_path(paths), 1 << 20)
    if data is None:
        return {"saved": {}, "applied": {}}
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc.get("saved"), dict) or not isinstance(doc.get("applied"), dict):
            raise ValueError("saved and applied are not maps")
        return doc
    except (ValueError, AttributeError) as e:
        raise PolicyError("%s: not an isolation record: %s" % (_path(paths), e), 4) from None


def save(paths, doc):
    if not doc["saved"]:
        return safeio.remove(_path(paths))
    safeio.ensure_dir(paths.run)
    safeio.write_atomic(_path(paths), (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return True


def update(registry, systemd, host_cpus, held, units):
    """Make the host's `units` keep off `held` (a CpuSet; empty: give everything back).
    The record is read and written in registry transactions (registry.Registry), each
    a pure function of what it read; systemctl runs between them, with no lock held."""
    result = Isolation(held)
    if not systemd.present():
        result.skipped = "systemd does not run this host: nothing to isolate the host's processes with"
        return result
    from .systemd import SystemdError

    record = registry.read(lambda snap: snap.isolation())
    wanted = set(units) if held else set()
    # Give back what no longer needs keeping off: a unit dropped from the list, or all.
    for unit in sorted(set(record["saved"]) - wanted):
        try:
            systemd.set_allowed_cpus(unit, record["saved"][unit])
        except SystemdError as e:
            result.problems.append(str(e))
            continue
        result.restored[unit] = record["saved"][unit]
        record = registry.transact(lambda snap, unit=unit: _recorded(snap, forget=unit))
    for unit in sorted(wanted):
        try:
            if unit not in record["saved"]:
                original = systemd.allowed_cpus(unit)
                # recorded before it is changed
                record = registry.transact(lambda snap, unit=unit, original=original:
                                           _recorded(snap, saved=(unit, original)))
            base = CpuSet.parse(record["saved"][unit]) if record["saved"][unit] else host_cpus
        except (SystemdError, PolicyError) as e:
            result.problems.append(str(e))
            continue
        keep = base - held
        if not keep:
            result.problems.append("%s: every CPU it may use (%s) is occupied; left as it is" % (unit, base))
            continue
        try:
            if record["applied"].get(unit) == str(keep) and systemd.allowed_cpus(unit) == str(keep):
                continue
            systemd.set_allowed_cpus(unit, str(keep))
        except SystemdError as e:
            result.problems.append(str(e))
            continue
        result.changed[unit] = str(keep)
        done = (unit, str(keep))
        record = registry.transact(lambda snap, done=done: _recorded(snap, applied=done))
    return result


def _recorded(snap, forget=None, saved=None, applied=None):
    """The isolation record read in `snap` with one change: `forget` a unit given back,
    the original AllowedCPUs of a unit (`saved`: (unit, cpulist), kept when one is on
    record), or what a unit was given (`applied`). Pure, for Registry.transact()."""
    from .results import Writes

    found = snap.isolation()
    doc = dict(found, saved=dict(found["saved"]), applied=dict(found["applied"]))
    if forget is not None:
        doc["saved"].pop(forget, None)
        doc["applied"].pop(forget, None)
    if saved is not None:
        doc["saved"].setdefault(*saved)
    if applied is not None:
        doc["applied"][applied[0]] = applied[1]
    return Writes(isolation=doc, result=doc)
