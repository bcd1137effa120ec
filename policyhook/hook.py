"""The libvirt hook: libvirtd runs it at every domain lifecycle event.

    /etc/libvirt/hooks/qemu.d/policyhook DOMAIN OPERATION SUB-OPERATION EXTRA < domain.xml

The same code serves each libvirt driver with hooks. One file is installed (SBINDIR/
policyhook) and linked from /etc/libvirt/hooks/qemu.d, lxc.d and libxl.d; run_as()
tells the driver from the directory libvirtd ran it from (hooks/qemu, hooks/lxc and
hooks/libxl in the source tree link to hooks/policyhook and are told by their name),
and OPERATIONS says which events each driver has (libvirt's src/util/virhook.c,
docs/hooks.rst).

Rules (doc/design.md "Hook events" and "libvirt facts"): standard library only on the
hot path; never call libvirt (the domain is locked while we run, and enumerating
domains hangs); never wait on the registry lock longer than [hook] lock_timeout;
never exit non-zero where libvirt would kill a running guest (reconnect) or where it
is ignored anyway (stopped, release). libvirt shows our stderr in virsh's error.
"""

import os
import sys
import time

from .errors import CONFLICT, PolicyError, printable
from .paths import Paths

REFUSE = 1


class Call:
    """One hook invocation: argv, the XML on stdin (read lazily), the root."""

    def __init__(self, driver, name, op, sub, stdin, paths, stdout, stderr):
        self.driver = driver
        self.name = name
        self.op = op
        self.sub = sub
        self._stdin = stdin
        self._xml = None
        self.paths = paths
        self.stdout = stdout
        self.stderr = stderr
        self.t0 = time.time()

    @property
    def xml(self):
        if self._xml is None:
            data = self._stdin.read()
            self._xml = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return self._xml

    def has_policy(self):
        """True when a policy file or the host policy could concern this domain."""
        from .names import name_problem

        if name_problem(self.name) is None and os.path.lexists(self.paths.domain_file(self.name)):
            return True
        return os.path.lexists(self.paths.host_file)

    def log(self, message, level="info"):
        from .log import log
        # A domain name may hold any character but '/': one line per entry, whatever it is.
        log(self.paths, printable("%s %s %s/%s: %s" % (self.driver, self.name, self.op, self.sub,
                                                       message)), level)


def _settings(call):
    from .settings import load_settings
    return load_settings(call.paths)


def _plan(call, settings):
    """Plan from the registry and the XML on stdin, under the registry lock."""
    from . import planner
    from .domxml import parse_domain_xml
    from .hostinfo import host_cpus
    from .mapping import local_cgroup_version
    from .names import name_problem

    facts = parse_domain_xml(call.xml)
    facts.name = call.name
    safe = name_problem(call.name) is None
    running = settings.occupancy_mode == "running"
    mine = safe and os.path.lexists(call.paths.originals_file(call.name))

    def read(snap):
        policy = snap.domain(call.name) if safe else None
        host = snap.host()
        if running and not host.is_empty():
            # The sets with an occupant running (or this one starting): runtime state
            # files are kept for every domain while it runs, once occupancy exists.
            host = host.active(set(snap.state_names()) | {call.name})
        # Persistent mode: plan from the domain's own pins, not from what we wrote.
        return policy, host, snap.originals(call.name, facts.uuid) if mine else None

    policy, host, own = _registry(call, settings).read(read)
    if own is not None:
        from . import originals
        originals.own_pins(facts, own)
    return planner.plan(policy, host, facts, host_cpus(call.driver, call.paths.host_sysfs()),
                        local_cgroup_version())


VERBS = {"prepare": "to start", "migrate": "to migrate", "restore": "to restore"}


def _refuse(call, error):
    call.stderr.write(printable("policyhook: refusing %s '%s': %s"
                                % (VERBS.get(call.op, "to start"), call.name, error)) + "\n")
    return REFUSE


def _failed(call, settings, error, what):
    """Our own failure: log it, then refuse or let the domain go on, as configured."""
    call.log("%s: %s" % (what, error), "error")
    _record(call, result="error", error=str(error))
    if settings is not None and settings.on_error == "refuse":
        return _refuse(call, error)
    return 0


def _admit(call):
    """(plan, settings, None), or (None, settings, exit code) after a conflict or a
    failure of our own, each handled as the settings say."""
    settings = None
    try:
        settings = _settings(call)
        plan = _plan(call, settings)
        if plan.elsewhere:
            from .describe import elsewhere_line
            call.log(elsewhere_line(call.name, plan.elsewhere, _uuid(call)), "error")
        return plan, settings, None
    except PolicyError as e:
        if e.code != CONFLICT:
            return None, settings, _failed(call, settings, e, "policy not checked")
        if settings.on_conflict == "refuse":
            call.log("refused: %s" % e, "warning")
            _record(call, result="refused", error=str(e))
            return None, settings, _refuse(call, e)
        call.log("conflict, going on anyway (on_conflict = start): %s" % e, "warning")
        _record(call, result="conflict", error=str(e))
        return None, settings, 0
    except Exception as e:  # noqa: BLE001 - a bug of ours must not decide a start by accident
        return None, settings, _failed(call, settings, "%s: %s" % (type(e).__name__, e),
                                       "internal error")


def _record(call, **fields):
    from . import state
    from .names import name_problem

    if name_problem(call.name) is not None:
        return
    try:
        state.update(call.paths, call.name, driver=call.driver, event="%s/%s" % (call.op, call.sub),
                     **fields)
    except PolicyError as e:
        call.log("cannot record runtime state: %s" % e, "warning")


def on_prepare(call):
    """Admission: refuse a start whose policy cannot be satisfied (per on_conflict)."""
    if not call.has_policy():
        return 0
    plan, _, code = _admit(call)
    if plan is None:
        return code
    from .describe import plan_summary

    call.log("admitted; plan %s" % plan_summary(plan), "warning" if plan.unsupported else "info")
    _record(call, result="admitted", plan=plan.to_doc(), error=None, started_at=None)
    return 0


def _uuid(call):
    from .domxml import parse_domain_xml
    return parse_domain_xml(call.xml).uuid


def on_start(call):
    """Fork the detached applier now, at `start begin`: QEMU takes ~0.4 s to get to
    `started`, so by then the applier has imported libvirt and connected, and its first
    call waits for libvirtd to release the domain and runs the moment it does."""
    if not call.has_policy():
        return 0
    try:
        _record(call, result="applying", error=None, started_at=None)
        pid = spawn_applier(call)
        call.log("applier started (pid %d)" % pid)
    except Exception as e:  # noqa: BLE001 - never fail a start for our sake here
        call.log("cannot start the applier: %s: %s" % (type(e).__name__, e), "error")
    return 0


def on_started(call):
    """QEMU runs: note the time, so the applier can say how long after it acted."""
    if not call.has_policy():
        return 0
    from . import state
    from .names import name_problem

    try:
        if name_problem(call.name) is None and state.read(call.paths, call.name) is not None:
            _record(call, started_at=call.t0)
    except Exception as e:  # noqa: BLE001 - the guest runs already; never fail it
        call.log("cannot record the start: %s" % e, "warning")
    return 0


def on_migrate_or_restore(call):
    """Print the domain XML with the policy in <cputune>, so it holds from the start."""
    if not call.has_policy():
        return 0
    plan, settings, code = _admit(call)
    if plan is None:
        return code
    from .cputune import left_out, with_cputune
    from .describe import plan_summary

    try:
        xml = with_cputune(call.xml, plan)
        node = _memory_node(call, settings, plan)
        if node is not None:
            from .numatune import with_numatune
            xml = with_numatune(xml or call.xml, node)
        call.stdout.write(xml)
    except Exception as e:  # noqa: BLE001 - a failure of ours; on_error decides
        return _failed(call, settings, "%s: %s" % (type(e).__name__, e),
                       "policy not written into the XML")
    later = left_out(plan)
    call.log("wrote the policy into <cputune>: %s%s%s" % (
        plan_summary(plan), "; %s has no <cputune> element, the applier sets it at start"
        % ", ".join("%s=%s" % kv for kv in sorted(later.items())) if later else "",
        "; memory bound to NUMA node %d in <numatune>" % node if node is not None else ""))
    return 0


def _memory_node(call, settings, plan):
    """[occupancy] memory = follow: the NUMA node of this host (sysfs) every vCPU of the
    plan is pinned within, else None."""
    if settings.memory != "follow":
        return None
    from .domxml import parse_domain_xml
    from .numatune import memory_node
    from .topology import from_sysfs

    return memory_node(from_sysfs(call.paths.host_sysfs()), plan, parse_domain_xml(call.xml))


def on_stopped(call):
    """The domain is gone: drop its runtime state. Idempotent; never fails."""
    from . import state
    from .names import name_problem

    try:
        if name_problem(call.name) is None and state.drop(call.paths, call.name):
            call.log("runtime state dropped")
    except Exception as e:  # noqa: BLE001 - libvirt ignores our exit code here anyway
        call.log("cannot drop runtime state: %s" % e, "warning")
    return 0


def on_release(call):
    """As on_stopped; and when the host's units may be kept off CPUs for this domain
    (host isolation) or, with [occupancy] mode = running, it occupies CPUs, a detached
    updater gives them back if it was the last occupant running: neither systemd nor
    libvirt is called from the hook itself."""
    on_stopped(call)
    try:
        records = ("isolation.json", "housekeeping.json")   # host isolation, quiet CPUs
        if any(os.path.lexists(os.path.join(call.paths.run, f)) for f in records) or _frees_a_set(call):
            pid = spawn_applier(call, "host")
            call.log("updater started (pid %d)" % pid)
    except Exception as e:  # noqa: BLE001 - never fail a release for our sake
        call.log("cannot start the updater: %s: %s" % (type(e).__name__, e), "error")
    return 0


def _frees_a_set(call):
    """[occupancy] mode = running and this domain occupies CPUs: others may get them back."""
    if not os.path.lexists(call.paths.host_file):
        return False
    settings = _settings(call)
    if settings.occupancy_mode != "running":
        return False
    return bool(_registry(call, settings).read(lambda snap: snap.host().occupies(call.name)))


def _registry(call, settings):
    """The registry as the hook reads it, its lock waited on [hook] lock_timeout at most."""
    from .registry import Registry

    return Registry(call.paths, settings.hook_lock_timeout)


HANDLERS = {
    ("prepare", "begin"): on_prepare,
    ("start", "begin"): on_start,
    ("started", "begin"): on_started,
    ("reconnect", "begin"): on_start,
    ("migrate", "begin"): on_migrate_or_restore,
    ("restore", "begin"): on_migrate_or_restore,
    ("stopped", "end"): on_stopped,
    ("release", "end"): on_release,
}

# The events each driver's hook receives. LXC has no migrate and no restore; libxl has
# migrate (a filter of the incoming XML, as QEMU's) but no restore. Xen re-creates a
# domain on a guest reboot, so there the whole cycle runs again (prepare ... release,
# then prepare, start, started) and the policy is planned and applied anew.
OPERATIONS = {
    "qemu": HANDLERS,
    "lxc": {k: v for k, v in HANDLERS.items() if k[0] not in ("migrate", "restore")},
    "libxl": {k: v for k, v in HANDLERS.items() if k[0] != "restore"},
}


def spawn_applier(call, job="apply"):
    """Fork a fully detached applier: new session, stdio to /dev/null and the log,
    no inherited descriptors (libvirtd waits for EOF on the hook's pipes)."""
    log_path = call.paths.log
    rfd, wfd = os.pipe()  # the first child tells us the applier's pid, for the log
    pid = os.fork()
    if pid:
        os.close(wfd)
        os.waitpid(pid, 0)  # the first child exits at once
        with os.fdopen(rfd, "rb") as r:
            answer = r.read(32)
        return int(answer) if answer.isdigit() else pid
    try:
        os.close(rfd)
        os.setsid()
        applier = os.fork()
        if applier:
            os.write(wfd, b"%d" % applier)
            os._exit(0)
        os.close(wfd)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.makedirs(os.path.dirname(log_path), mode=0o755, exist_ok=True)
            out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
        except OSError:
            out = null
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.chdir("/")
        from . import applier
        event = "%s/%s" % (call.op, call.sub)
        if job == "host":
            code = applier.run_host(call.driver, call.name, call.paths, event)
        else:
            code = applier.run(call.driver, call.name, call.paths, call.t0, event)
    except BaseException as e:  # noqa: BLE001 - the detached child must always exit here
        import traceback
        traceback.print_exc()
        try:   # stderr may be /dev/null (a log that cannot be opened): say it in syslog too
            call.log("the %s process failed: %s: %s" % (job, type(e).__name__, e), "error")
        except Exception:  # noqa: BLE001 - nothing more can be done
            pass
        code = 1
    os._exit(code)


def driver_of(path):
    """The libvirt driver a hook run as `path` serves: DRIVER for .../DRIVER.d/NAME (how
    libvirtd runs it, through the link), else the file's own name (hooks/qemu); None
    when neither names a driver with hooks."""
    parent = os.path.basename(os.path.dirname(path))
    name = parent[:-2] if parent.endswith(".d") else os.path.basename(path)
    return name if name in OPERATIONS else None


def run_as(argv=None, stderr=None):
    """The hook's entry point: main() for the driver its path names."""
    argv = sys.argv if argv is None else argv
    driver = driver_of(argv[0]) if argv else None
    if driver is None:
        (stderr or sys.stderr).write(
            "policyhook: %s is libvirtd's hook; it runs as /etc/libvirt/hooks/DRIVER.d/policyhook "
            "(DRIVER: %s), see policyhook(8)\n" % (printable(argv[0] if argv else "policyhook"),
                                                   ", ".join(OPERATIONS)))
        return 2
    return main(driver, argv)


def main(driver, argv=None, stdin=None, stdout=None, stderr=None, environ=None):
    argv = sys.argv if argv is None else argv
    if len(argv) < 4:
        return 0
    handler = OPERATIONS.get(driver, {}).get((argv[2], argv[3]))
    if handler is None:
        return 0
    call = Call(driver, argv[1], argv[2], argv[3],
                stdin if stdin is not None else sys.stdin.buffer,
                Paths.from_env(environ), stdout or sys.stdout, stderr or sys.stderr)
    code = handler(call)
    # libvirt kills the guest for a non-zero exit at reconnect; stopped/release are ignored.
    return code if call.op in ("prepare", "migrate", "restore") else 0
