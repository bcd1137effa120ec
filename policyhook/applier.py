"""The detached applier: puts a domain's plan in force through libvirt after the hook.

The hook forks it at `start begin` and `reconnect begin` and returns at once. Its
first libvirt call about the domain blocks until libvirtd releases the domain (tens
of ms after the hook returns). It tolerates a paused domain, a domain that stopped
meanwhile (another hook failed the start) and a slow or restarting libvirtd, and it
gives up after [applier] timeout seconds, saying so. An alarm bounds every blocking
libvirt call, so it never lingers. It applies through enforce.py, as policyctl does,
holding the registry lock only to read. What the domain's driver cannot put in force
is logged with the result ("unsupported: ..."), every time.
"""

import signal
import time

from .results import ApplierResult as Result


class GaveUp(Exception):
    pass


def uri_for(driver, settings):
    """The connection for `driver`'s domains: [libvirt] uri, lxc_uri or libxl_uri."""
    return {"lxc": settings.lxc_uri, "libxl": settings.libxl_uri}.get(driver, settings.uri)


def run(driver, name, paths, t_hook, event, connect=None, lock=None, systemd=None):
    """Apply the policy of the domain `name` that has just started (or that libvirtd
    reconnected to); the exit status. `connect(uri)` (virt.connect), `lock(path,
    timeout)` (the registry lock: flock, 5 s) and `systemd` (systemd.Systemd) are
    replaced in tests."""
    from . import state
    from .describe import elsewhere_line, unsupported_lines, virsh_steps
    from .enforce import record
    from .errors import PolicyError
    from .log import log
    from .registry import Registry
    from .results import Writes
    from .settings import Settings, load_settings

    def say(message, level="info"):
        log(paths, "%s %s applier (%s): %s" % (driver, name, event, message), level)

    try:
        settings = load_settings(paths)
    except PolicyError as e:
        say("bad settings, using the defaults: %s" % e, "warning")
        settings = Settings()
    timeout = settings.applier_timeout

    def alarm(_signum, _frame):
        raise GaveUp("gave up after %gs (libvirtd did not answer in time)" % timeout)

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(timeout) + 1)
    try:
        result = _apply(driver, name, paths, settings, time.monotonic() + timeout, event, connect, lock,
                        systemd)
    except GaveUp as e:
        result = Result("gave-up", str(e))
    except PolicyError as e:
        result = Result("failed", str(e))
    except Exception as e:  # noqa: BLE001 - the applier reports, it never dies silently
        result = Result("failed", "internal error: %s: %s" % (type(e).__name__, e))
    finally:
        signal.alarm(0)
    source = "hook " + event
    registry = Registry(paths, LOCK_TIMEOUT, lock)
    try:
        if result.kind == "applied":
            done = result.enforced
            if done.plan.elsewhere:
                say(elsewhere_line(name, done.plan.elsewhere, result.uuid), "error")
            started = (state.read(paths, name) or {}).get("started_at") or t_hook
            after = int(round((result.at - started) * 1000))
            text = ("in force, nothing to apply" if done.applied is None else "applied %s, %d ms after "
                    "the started hook" % ("; ".join(virsh_steps(done.applied)), after))
            lost = done.plan.unsupported
            if lost:
                text += "; unsupported: %s" % "; ".join(unsupported_lines(lost))
            # Logged before it is recorded: whoever sees the record finds the line too.
            say(text, "warning" if lost else "info")
            if result.host:
                say(result.host)
            record(registry, name, source, done, after_start_ms=after)
        elif result.kind == "stopped":
            say(result.detail)
        else:
            say(result.detail, "error")
            fields = {"result": result.kind, "error": result.detail, "source": source}
            registry.transact(lambda _snap: Writes(state={name: fields}))
    except PolicyError as e:
        say("cannot record runtime state: %s" % e, "warning")
    return 0 if result.kind in ("applied", "stopped") else 1


def _retry(deadline, settings, attempt):
    """attempt() until it returns, backing off; GaveUp at the deadline. Only what time
    can mend is tried again (libvirtd away or busy, the lock held): a conflict or a
    broken policy file is the same on the next try."""
    from .errors import LIBVIRT, LOCKED, PolicyError

    delay = 0.05
    while True:
        try:
            return attempt()
        except PolicyError as e:
            if e.code not in (LIBVIRT, LOCKED):
                raise
            if time.monotonic() + delay > deadline:
                raise GaveUp("gave up after %gs: %s" % (settings.applier_timeout, e)) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


class _Stopped(Exception):
    pass


# Seconds the applier and the updater wait for the registry lock: they run beside
# starting domains, whose hooks wait at most [hook] lock_timeout.
LOCK_TIMEOUT = 5.0


def session(driver, paths, settings, conn, connect, lock=None, systemd=None):
    """The Session (session.py) the applier and the updater reach domains through, on
    `conn` (the other connections opened with `connect`)."""
    from .session import Session

    uri = uri_for(driver, settings)
    return Session(paths, uri, settings, connect=lambda u: conn if u == uri else connect(u),
                   lock=lock, lock_timeout=LOCK_TIMEOUT, systemd=systemd)


def _apply(driver, name, paths, settings, deadline, event, connect=None, lock=None, systemd=None):
    from . import virt
    from .enforce import enforce, previous_plan, reader, rememberer
    from .errors import PolicyError

    connect = connect or virt.connect
    conn = _retry(deadline, settings, lambda: connect(uri_for(driver, settings)))
    # Blocks while libvirtd holds the domain. At `start begin` the domain is already
    # active (paused, starting up); the pin calls below wait for the start job to end.
    dom = virt.lookup(conn, name)
    if dom is None:
        return Result("stopped", "domain is gone; nothing to apply")
    if not virt.is_running(dom) and not _built(dom, paths, name, event, deadline):
        return Result("stopped", "domain is not running; nothing to apply")
    pm = session(driver, paths, settings, conn, connect, lock, systemd)
    ctx = pm.context_of(dom, running=True, live_cgroup=False)
    facts = ctx.facts
    running = None
    if settings.occupancy_mode == "running":
        # The sets in force are those with an occupant running, this one included.
        running = set(pm.running_names()) | {name}
    target = ctx.target(pm.viewer(also=[name]) if running is not None else None)
    # A domain that was started before (reconnect) may hold settings of a policy that
    # has since lost them: put libvirt's defaults back for those.
    previous = previous_plan(paths, name)
    read = reader(pm.registry, name)
    remember = rememberer(pm.registry, dom, name, facts.uuid, facts.driver)

    # Only what differs from what runs where a definition may hold it all already
    # (persistent mode) or a domain ran on (reconnect); a fresh start in hook mode
    # needs it all, and the reads would only come first.
    compare = None
    if settings.persistent or not event.startswith("start/"):
        def compare(d):
            return virt.live_values(d, facts.driver, offline=False)

    def attempt():
        try:
            return enforce(target, read, previous=previous, compare=compare, remember=remember)
        except PolicyError:
            if not virt.is_running(dom):
                raise _Stopped() from None
            raise

    try:
        done = _retry(deadline, settings, attempt)
    except _Stopped:
        return Result("stopped", "domain stopped while the policy was applied")
    at = time.time()
    lines = [_host_isolation(pm, ctx.host.cpus)]
    if running is not None:
        lines.append(_outsiders(pm, running - {name}, running, name))
    return Result("applied", enforced=done, at=at, uuid=facts.uuid,
                  host="; ".join(t for t in lines if t) or None)


def _outsiders(pm, before, after, skip=None):
    """Session.repin_others as one line (or None); its failures are its own."""
    from .describe import moves_line
    from .errors import PolicyError

    try:
        return moves_line(pm.repin_others(before, after, skip))
    except PolicyError as e:
        return "occupancy (running mode): %s" % e


def _built(dom, paths, name, event, deadline):
    """True once a domain starting at `start begin` runs. QEMU's is active (paused) when
    its hook runs; libvirt's libxl driver runs the hook before libxl builds the domain
    and marks it active only when built, seconds later under load (measured in the
    lab's Xen dom0). Waits while the runtime state the hook recorded is there: release
    end drops it when the start fails."""
    from . import state, virt

    if event != "start/begin":
        return False
    while time.monotonic() < deadline and state.read(paths, name) is not None:
        time.sleep(0.1)
        if virt.is_running(dom):
            return True
    return False


def _host_isolation(pm, host_cpus):
    """effects.update_host for the domains running now on every connection, as one line
    (or None). Its failures are its own: they never undo what was applied."""
    from . import effects
    from .describe import isolation_line
    from .errors import PolicyError

    settings, paths = pm.settings, pm.paths
    try:
        if not effects.pending(paths, settings):
            return None
        running, complete = pm.running_everywhere()
        return isolation_line(effects.update_host(paths, settings, running, host_cpus, registry=pm.registry,
                                                  systemd=pm.systemd, complete=complete))
    except (GaveUp, PolicyError) as e:
        return "host isolation: %s" % e


def run_host(driver, name, paths, event, connect=None, lock=None, systemd=None):
    """The updater forked at `release end`: the host isolation for the domains still
    running (the one released is not) and, with [occupancy] mode = running, the other
    domains' pins when a set is freed; bounded by [applier] timeout."""
    from . import virt
    from .errors import PolicyError
    from .log import log
    from .settings import Settings, load_settings

    try:
        settings = load_settings(paths)
    except PolicyError:
        settings = Settings()

    def alarm(_signum, _frame):
        raise GaveUp("gave up after %gs" % settings.applier_timeout)

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(settings.applier_timeout) + 1)
    try:
        connect = connect or virt.connect
        conn = _retry(time.monotonic() + settings.applier_timeout, settings,
                      lambda: connect(uri_for(driver, settings)))
        pm = session(driver, paths, settings, conn, connect, lock, systemd)
        text = _host_isolation(pm, pm.host_facts().cpus)
        if settings.occupancy_mode == "running":
            # The domain released no longer runs: sets only it kept in force are freed.
            found = pm.running_names()
            moved = _outsiders(pm, set(found) | {name}, set(found) - {name})
            text = "; ".join(t for t in (text, moved) if t) or None
    except (GaveUp, PolicyError) as e:
        text = "host isolation: %s" % e
    finally:
        signal.alarm(0)
    if text:
        log(paths, "%s %s updater (%s): %s" % (driver, name, event, text))
    return 0
