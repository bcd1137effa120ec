"""What a start, a stop or an occupancy change does beyond the domain: host isolation
(isolation.py) for the domains running now. Called by the detached applier and
updater, policyctl (cpuoccupy, apply --all) and the watcher; never by the hook."""

from . import isolation, quietcpus
from .cpuset import CpuSet
from .errors import PolicyError
from .registry import Registry


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


def pending(paths, settings):
    """Whether update_host() has anything to do: host isolation or quiet CPUs on, or a
    record of either still to give back."""
    return bool(settings.isolate_host or isolation.load(paths)["saved"] or quietcpus.pending(paths, settings))


def update_host(paths, settings, running, host_cpus, registry=None, systemd=None, complete=True,
                repair=True):
    """Host isolation (_isolate) and quiet CPUs (quietcpus.py, [occupancy] housekeeping):
    an isolation.Isolation carrying the latter in .quiet, or None when neither acts.
    Without `repair`, quiet CPUs' drift is reported, not put back."""
    if registry is None:
        registry = Registry(paths, 5.0)
    quiet = quietcpus.update_for(paths, settings, running, registry, systemd, complete, repair)
    return quietcpus.attach(_isolate(paths, settings, running, host_cpus, registry, systemd, complete), quiet)


def _isolate(paths, settings, running, host_cpus, registry, systemd=None, complete=True):
    """Keep the host's units off the CPUs of the occupancy sets one of `running` (domain
    names) belongs to, per [occupancy] isolate_host; with it off, give back whatever an
    earlier run recorded. An isolation.Isolation, or None when there is nothing to do.
    Not `complete` (a connection did not answer): nothing is given back. `registry`
    (registry.Registry) reads the host policy and keeps the record; systemctl runs with
    no lock held."""
    recorded = isolation.load(paths)["saved"]
    if not settings.isolate_host and not recorded:
        return None
    if not complete and recorded:
        result = isolation.Isolation(CpuSet())
        result.skipped = "not every libvirt connection answered: left as it is"
        return result
    host = registry.read(lambda snap: snap.host())
    held = isolation.held_cpus(host, running) if settings.isolate_host else CpuSet()
    if systemd is None:
        from .systemd import Systemd
        systemd = Systemd()
    return isolation.update(registry, systemd, host_cpus, held, settings.host_units)
