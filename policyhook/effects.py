"""What a start, a stop or an occupancy change does beyond the domain: host isolation
(isolation.py) for the domains running now. Called by the detached applier and
updater, policyctl (cpuoccupy, apply --all) and the watcher; never by the hook."""

from . import isolation, quietcpus, registry
from .cpuset import CpuSet
from .errors import PolicyError
from .locking import FlockLock


def running_everywhere(settings, connect, connected=None):
    """(names of the domains running on every configured connection, whether each one
    answered): occupants of one driver must not be taken for stopped because the
    caller is another's. `connected` = {uri: conn} already open; a URI whose driver
    this host does not have holds no domain."""
    from . import virt

    names, complete = set(), True
    for uri in dict.fromkeys([settings.uri, settings.lxc_uri, settings.libxl_uri]):
        try:
            conn = (connected or {}).get(uri) or connect(uri)
            names.update(d.name() for d in virt.running_domains(conn))
        except PolicyError as e:
            if getattr(e, "unreachable", True):
                complete = False
    return sorted(names), complete


def update_host(paths, settings, running, host_cpus, lock=None, systemd=None, complete=True, repair=True):
    """Host isolation (_isolate) and quiet CPUs (quietcpus.py, [occupancy] housekeeping):
    an isolation.Isolation carrying the latter in .quiet, or None when neither acts."""
    if lock is None:
        def lock():
            return FlockLock(paths.lock, 5.0)
    quiet = quietcpus.update_for(paths, settings, running, lock, systemd, complete, repair)
    return quietcpus.attach(_isolate(paths, settings, running, host_cpus, lock, systemd, complete), quiet)


def _isolate(paths, settings, running, host_cpus, lock=None, systemd=None, complete=True):
    """Keep the host's units off the CPUs of the occupancy sets one of `running` (domain
    names) belongs to, per [occupancy] isolate_host; with it off, give back whatever an
    earlier run recorded. An isolation.Isolation, or None when there is nothing to do.
    Not `complete` (a connection did not answer): nothing is given back."""
    if lock is None:
        def lock():
            return FlockLock(paths.lock, 5.0)
    recorded = isolation.load(paths)["saved"]
    if not settings.isolate_host and not recorded:
        return None
    if not complete and recorded:
        result = isolation.Isolation(CpuSet())
        result.skipped = "not every libvirt connection answered: left as it is"
        return result
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
    lines = [_describe_isolation(result), quietcpus.describe(result.quiet)]
    return "; ".join(t for t in lines if t) or None


def _describe_isolation(result):
    if result.skipped:
        return "host isolation: %s" % result.skipped
    parts = ["%s AllowedCPUs=%s" % kv for kv in sorted(result.changed.items())]
    parts += ["%s AllowedCPUs=%s (given back)" % (u, v or "all") for u, v in sorted(result.restored.items())]
    parts += result.problems
    return "host isolation: %s" % "; ".join(parts) if parts else None



def repin_outsiders(paths, settings, uri, conn, before, after, skip=None):
    """Session.repin_others on an open connection ([occupancy] mode = running)."""
    from .session import Session

    if settings.occupancy_mode != "running":
        return []
    return Session(paths, uri, settings, connect=lambda _uri: conn).repin_others(before, after, skip)


def describe_moves(moved):
    """One line for the log, or None."""
    from .describe import plan_line

    if not moved:
        return None
    return "occupancy (running mode): " + "; ".join(
        "%s %s" % (name, "FAILED: " + p if isinstance(p, str) else plan_line(p, "no change"))
        for name, p in moved)
