"""The detached applier: puts a domain's plan in force through libvirt after the hook.

The hook forks it at `start begin` and `reconnect begin` and returns at once. Its
first libvirt call about the domain blocks until libvirtd releases the domain (tens
of ms after the hook returns). It tolerates a paused domain, a domain that stopped
meanwhile (another hook failed the start) and a slow or restarting libvirtd, and it
gives up after [applier] timeout seconds, saying so. An alarm bounds every blocking
libvirt call, so it never lingers. What the domain's driver cannot put in force is
logged with the result ("unsupported: ..."), every time.
"""

import signal
import time


class GaveUp(Exception):
    pass


def uri_for(driver, settings):
    """The connection for `driver`'s domains: [libvirt] uri, lxc_uri or libxl_uri."""
    return {"lxc": settings.lxc_uri, "libxl": settings.libxl_uri}.get(driver, settings.uri)


def _unsupported(plan):
    return "; unsupported: %s" % "; ".join(plan.unsupported) if plan.unsupported else ""


def run(driver, name, paths, t_hook, event):
    from . import state
    from .errors import PolicyError
    from .log import log
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
        result = _apply(driver, name, paths, settings, t_hook, time.monotonic() + timeout)
    except GaveUp as e:
        result = ("gave-up", str(e), None)
    except PolicyError as e:
        result = ("failed", str(e), None)
    except Exception as e:  # noqa: BLE001 - the applier reports, it never dies silently
        result = ("failed", "internal error: %s: %s" % (type(e).__name__, e), None)
    finally:
        signal.alarm(0)
    kind, text, fields = result
    level = "info" if kind in ("applied", "stopped") else "error"
    if kind == "applied" and "; unsupported: " in text:
        level = "warning"
    say(text, level)
    try:
        if kind != "stopped":
            state.update(paths, name, result=kind, error=None if kind == "applied" else text,
                         source="hook " + event, **(fields or {}))
    except PolicyError as e:
        say("cannot record runtime state: %s" % e, "warning")
    return 0 if kind in ("applied", "stopped") else 1


def _apply(driver, name, paths, settings, t_hook, deadline):
    from . import planner, registry, state, virt
    from .errors import PolicyError
    from .locking import FlockLock
    from .mapping import local_cgroup_version

    uri = uri_for(driver, settings)
    delay = 0.05
    while True:
        try:
            conn = virt.connect(uri)
            break
        except PolicyError as e:
            if time.monotonic() + delay > deadline:
                raise GaveUp("gave up after %gs: %s" % (settings.applier_timeout, e)) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    # Blocks while libvirtd holds the domain. At `start begin` the domain is already
    # active (paused, starting up); the pin calls below wait for the start job to end.
    dom = virt.lookup(conn, name)
    if dom is None:
        return ("stopped", "domain is gone; nothing to apply", None)
    if not virt.is_running(dom):
        return ("stopped", "domain is not running; nothing to apply", None)
    cpumap_len, host_cpus = virt.host_cpus(conn)
    facts = virt.facts(dom)
    facts.name = name
    with FlockLock(paths.lock, 5.0):
        policy = registry.read_domain(paths, name)
        host = registry.read_host(paths)
    plan = planner.plan(policy, host, facts, host_cpus, local_cgroup_version())
    if plan.is_empty():
        return ("applied", "nothing to apply" + _unsupported(plan),
                {"plan": plan.to_doc(), "steps": []})
    delay = 0.05
    while True:
        try:
            steps = virt.apply_plan(dom, plan, cpumap_len)
            break
        except PolicyError as e:
            if not virt.is_running(dom):
                return ("stopped", "domain stopped while the policy was applied", None)
            if time.monotonic() + delay > deadline:
                raise GaveUp("gave up after %gs: %s" % (settings.applier_timeout, e)) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    done = time.time()
    started = (state.read(paths, name) or {}).get("started_at") or t_hook
    after = int(round((done - started) * 1000))
    return ("applied", "applied %s, %d ms after the started hook%s"
            % ("; ".join(steps), after, _unsupported(plan)),
            {"plan": plan.to_doc(), "steps": steps, "applied_at": done, "after_start_ms": after})
