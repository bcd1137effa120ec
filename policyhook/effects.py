"""What a start, a stop or an occupancy change does beyond the domain: host isolation
(isolation.py) for the domains running now. Called by the detached applier and
updater, policyctl (cpuoccupy, apply --all) and the watcher; never by the hook."""

from . import isolation, registry
from .cpuset import CpuSet
from .locking import FlockLock


def update_host(paths, settings, running, host_cpus, lock=None, systemd=None):
    """Keep the host's units off the CPUs of the occupancy sets one of `running` (domain
    names) belongs to, per [occupancy] isolate_host; with it off, give back whatever an
    earlier run recorded. An isolation.Isolation, or None when there is nothing to do."""
    if lock is None:
        def lock():
            return FlockLock(paths.lock, 5.0)
    if not settings.isolate_host and not isolation.load(paths)["saved"]:
        return None
    with lock():
        host = registry.read_host(paths)
    held = isolation.held_cpus(host, running) if settings.isolate_host else CpuSet()
    if systemd is None:
        from .systemd import Systemd
        systemd = Systemd()
    return isolation.update(paths, lock, systemd, host_cpus, held, settings.host_units)


def describe(result):
    """One line for the log or policyctl, or None when nothing happened."""
    if result is None:
        return None
    if result.skipped:
        return "host isolation: %s" % result.skipped
    parts = ["%s AllowedCPUs=%s" % kv for kv in sorted(result.changed.items())]
    parts += ["%s AllowedCPUs=%s (given back)" % (u, v or "all") for u, v in sorted(result.restored.items())]
    parts += result.problems
    return "host isolation: %s" % "; ".join(parts) if parts else None
