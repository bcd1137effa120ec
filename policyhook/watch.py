"""policyctl watch: keeps the policies in force without the hook (policyhook-watch.service).

One process, one thread, libvirt's own event loop. For every configured connection
([libvirt] uri, lxc_uri, libxl_uri) it subscribes to lifecycle events and to
VIR_DOMAIN_EVENT_ID_TUNABLE (libvirt sends one whenever pins or scheduler parameters
change, virsh's included), and:
- a domain that started is checked [watch] settle seconds later: a policy no hook put in
  force (the hook did not run: SELinux, an image without it) is applied;
- a tunable that moves away from the plan is drift: reported (log, runtime state,
  metrics) or, with [watch] on_drift = repair, put back;
- every [watch] interval seconds every running domain is reconciled the same way;
- a connection that goes away is tried again with backoff, and reconciled once back.
It applies through the same path as policyctl and the applier (enforce.py): the
registry lock covers reading only. Events only note what to look at; the libvirt calls
are made between two turns of the loop, never inside libvirt's callbacks. It sleeps in
poll() until an event, a due check or a signal comes: SIGTERM and SIGINT end it at once.
"""

import heapq
import os
import signal
import time

from . import state
from .errors import PolicyError
from .log import log
from .report import Verified, verify_one
from .results import Writes

BACKOFF = (0.5, 1, 2, 5, 10, 30)
REPAIRS = 3     # repairs of one domain per [watch] interval; past that, drift is only reported


class Counters:
    """What the metrics file says: the last reconcile's figures and running totals."""

    def __init__(self):
        self.domains = self.in_force = self.drifted = 0
        self.repairs = self.applied = self.errors = 0
        self.last_reconcile = 0.0

    def text(self):
        rows = [
            ("policyhook_domains", "gauge", "Running domains with a policy", self.domains),
            ("policyhook_domains_in_force", "gauge", "Of those, with the policy in force", self.in_force),
            ("policyhook_domains_drifted", "gauge", "Of those, drifted from their policy", self.drifted),
            ("policyhook_repairs_total", "counter", "Drifts the watcher put back", self.repairs),
            ("policyhook_applied_total", "counter", "Policies the watcher applied that no hook had",
             self.applied),
            ("policyhook_errors_total", "counter", "Checks or applies that failed", self.errors),
            ("policyhook_last_reconcile_timestamp_seconds", "gauge", "When every domain was last checked",
             self.last_reconcile),
        ]
        return "".join("# HELP %s %s\n# TYPE %s %s\n%s %s\n" % (n, h, n, t, n, v) for n, t, h, v in rows)


class Watcher:
    def __init__(self, paths, settings, uris, open_manager, say=None):
        """`open_manager(uri)`: a PolicyManager connected to `uri`, or PolicyError;
        `say(message, level)` the log (the journal and policyhook's log file)."""
        self.paths = paths
        self.settings = settings
        self.open_manager = open_manager
        self.say = say or (lambda message, level="info": log(paths, "watch: " + message, level))
        self.links = {uri: None for uri in uris}     # uri -> PolicyManager while connected
        self.failures = {uri: 0 for uri in uris}
        self.due = []                                # heap of (when, seq, what, uri, name)
        self.seq = 0
        self.counters = Counters()
        self.stop = False
        self._callbacks = {}
        self.reported = {}                           # domain -> the drift last reported
        self.last_isolation = None
        self.pending = set()                         # (what, uri, name) due and not run yet
        self.repairs = {}                            # domain -> [when] of its recent repairs

    # ---- what to do when -------------------------------------------------------------

    def later(self, delay, what, uri=None, name=None):
        """Do `what` in `delay` seconds, once: events of a burst (one per pin the applier
        sets) make one check."""
        if name is not None:
            if (what, uri, name) in self.pending:
                return
            self.pending.add((what, uri, name))
        self.seq += 1
        heapq.heappush(self.due, (time.monotonic() + delay, self.seq, what, uri, name))

    def next_delay(self):
        return max(0.0, self.due[0][0] - time.monotonic()) if self.due else None

    def run_due(self):
        now = time.monotonic()
        while self.due and self.due[0][0] <= now and not self.stop:
            _, _, what, uri, name = heapq.heappop(self.due)
            self.pending.discard((what, uri, name))
            try:
                if what == "connect":
                    self.connect(uri)
                elif what == "reconcile":
                    self.reconcile()
                elif what in ("started", "tunable") and self.links.get(uri) is not None:
                    self.check(uri, name, what)
            except Exception as e:  # noqa: BLE001 - one failure must not end the watch
                self.counters.errors += 1
                self.say("%s%s: %s: %s: %s" % (uri or "", " " + name if name else "", what,
                                               type(e).__name__, e), "error")
                if uri is not None and self.links.get(uri) is not None:
                    self.lost(uri, "after an error")
            finally:
                if what == "reconcile":
                    self.later(self.settings.watch_interval, "reconcile")

    # ---- connections -------------------------------------------------------------------

    def connect(self, uri):
        try:
            pm = self.open_manager(uri)
            conn = pm.connection()
        except PolicyError as e:
            if not getattr(e, "unreachable", True):
                self.say("%s: not watched: %s" % (uri, e), "warning")
                del self.links[uri]
                return
            delay = BACKOFF[min(self.failures[uri], len(BACKOFF) - 1)]
            self.failures[uri] += 1
            if self.failures[uri] in (1, len(BACKOFF)):
                self.say("%s: %s; trying again every %gs at most" % (uri, e, BACKOFF[-1]), "warning")
            self.later(delay, "connect", uri)
            return
        import libvirt

        try:
            ids = [conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                               self._lifecycle, uri),
                   conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_TUNABLE,
                                               self._tunable, uri)]
            conn.registerCloseCallback(self._closed, uri)
            conn.setKeepAlive(5, 3)
        except libvirt.libvirtError as e:
            self.say("%s: cannot subscribe to events: %s; trying again" % (uri, e), "warning")
            self.later(BACKOFF[min(self.failures[uri], len(BACKOFF) - 1)], "connect", uri)
            self.failures[uri] += 1
            return
        was_down = self.failures[uri] > 0
        self.failures[uri] = 0
        self.links[uri] = pm
        self._callbacks[uri] = (conn, ids)
        checked = self.reconcile(uri)
        self.say("%s: watching%s; %d running domain%s with a policy checked" % (
            uri, " again" if was_down else "", checked, "" if checked == 1 else "s"))

    def _closed(self, _conn, reason, uri):
        # Inside libvirt's loop: only note it; the new connection is made between turns.
        if self.links.get(uri) is not None:
            self.lost(uri, "(reason %d)" % reason)

    def lost(self, uri, why):
        self.links[uri] = None
        self._callbacks.pop(uri, None)
        self.say("%s: connection lost %s; reconnecting" % (uri, why), "warning")
        self.failures[uri] = 1
        self.later(BACKOFF[0], "connect", uri)

    def _lifecycle(self, _conn, dom, event, _detail, uri):
        import libvirt

        if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
            self.later(self.settings.watch_settle, "started", uri, dom.name())

    def _tunable(self, _conn, dom, _params, uri):
        self.later(0, "tunable", uri, dom.name())

    def close(self):
        for conn, ids in self._callbacks.values():
            for cb in ids:
                try:
                    conn.domainEventDeregisterAny(cb)
                except Exception:  # noqa: BLE001 - a connection already gone
                    pass
            try:
                conn.unregisterCloseCallback()
                conn.close()
            except Exception:  # noqa: BLE001 - likewise
                pass
        self._callbacks.clear()

    # ---- checking and putting right ------------------------------------------------------

    def reconcile(self, only=None):
        """Check every running domain of every connection (or of `only`)."""
        totals = Counters()
        for uri, pm in list(self.links.items()):
            if pm is None or (only is not None and uri != only):
                continue
            from . import virt
            try:
                names = sorted(d.name() for d in virt.running_domains(pm.connection()))
            except PolicyError as e:
                self.say("%s: %s" % (uri, e), "error")
                self.counters.errors += 1
                continue
            for name in names:
                verdict = self.check(uri, name, "reconcile")
                if verdict is not None:
                    totals.domains += 1
                    totals.in_force += verdict == Verified.IN_FORCE
                    totals.drifted += verdict == Verified.DRIFT
        if only is None:   # the gauges are those of a pass over every connection
            c = self.counters
            c.domains, c.in_force, c.drifted = totals.domains, totals.in_force, totals.drifted
            c.last_reconcile = time.time()
            self.write_metrics()
        self.isolate()
        return totals.domains

    def isolate(self):
        """Host isolation for what runs now (it completes or undoes a crashed update)."""
        from .describe import isolation_line as describe

        for pm in self.links.values():
            if pm is not None and pm.uri == self.settings.uri:
                try:
                    result = pm.update_host(repair=self.settings.on_drift == "repair")
                    done = result.to_doc() if result else None
                    text = describe(result)
                except PolicyError as e:
                    done = text = "host isolation: %s" % e
                if text and done != self.last_isolation:
                    self.say(text)
                self.last_isolation = done

    def check(self, uri, name, why):
        """Verify one domain and act as the settings say; its final status, "deferred"
        (its applier is still at work: checked again later), or None (nothing is asked
        of it)."""
        pm = self.links.get(uri)
        pm.forget_running()   # [occupancy] mode = running: the sets in force are today's
        try:
            ctx = pm.context(name)
            policy = pm.registry.load(ctx.name)
            v = verify_one(pm, ctx, policy, pm.registry.load_host(), everything=False)
            if v is None or v.status in Verified.OK:
                if v is not None and self.reported.pop(ctx.name, None):
                    self.say("%s: in force again" % name)
                return None if v is None or v.status == Verified.NOT_RUNNING else v.status
            if v.status != Verified.DRIFT:
                self.say("%s: %s: %s" % (name, v.status, v.error or "policy recorded for UUID %s"
                                         % (v.uuid[0] if v.uuid else "?")), "error")
                self.counters.errors += v.status == Verified.FAILED
                return v.status
            from .describe import drift_line

            text = "; ".join(drift_line(d) for d in v.drift)
            record = state.read(self.paths, ctx.name) or {}
            result = record.get("result")
            started = time.time() - record.get("updated", 0)
            if result == "applying" and started < self.settings.applier_timeout:
                # The hook's applier is still at work: look again once it should be done
                # (an applier killed meanwhile leaves "applying" behind: then we apply).
                self.later(self.settings.watch_settle or 1.0, why, uri, name)
                return "deferred"
            ours = result == "applied"
            docs = [d.to_doc() for d in v.drift]
            now = time.monotonic()
            recent = [t for t in self.repairs.get(ctx.name, ()) if now - t < self.settings.watch_interval]
            self.repairs[ctx.name] = recent
            if ours and (self.settings.on_drift != "repair" or len(recent) >= REPAIRS):
                if self.reported.get(ctx.name) != docs:   # once per drift, not at every reconcile
                    self.reported[ctx.name] = docs
                    more = "" if self.settings.on_drift != "repair" else \
                        " (repaired %d times in %gs: it keeps coming back; not repaired until then)" \
                        % (len(recent), self.settings.watch_interval)
                    self.say("%s: drift (%s): %s%s" % (name, why, text, more), "warning")
                    fields = {"drift": docs, "drift_at": time.time()}
                    pm.registry.transact(lambda _snap: Writes(state={ctx.name: fields}))
                return v.status
            self.reported.pop(ctx.name, None)
            from .enforce import previous_plan

            pm.enforce_on(ctx, "watch", previous=previous_plan(self.paths, ctx.name))
            if ours:
                self.repairs[ctx.name].append(now)
                self.counters.repairs += 1
                self.say("%s: drift (%s) repaired: %s" % (name, why, text), "warning")
            else:
                self.counters.applied += 1
                self.say("%s: policy not in force (%s; no hook put it there): applied" % (name, why),
                         "warning")
            return Verified.IN_FORCE
        except Exception as e:  # noqa: BLE001 - libvirt's own errors too: report, go on
            self.counters.errors += 1
            self.say("%s: %s" % (name, e if isinstance(e, PolicyError) else "%s: %s" % (type(e).__name__, e)),
                     "error")
            return Verified.FAILED
        finally:
            if why != "reconcile":
                self.write_metrics()

    def write_metrics(self):
        path = self.settings.metrics_file
        if not path:
            return
        from .safeio import write_atomic

        try:
            write_atomic(path, self.counters.text().encode("ascii"))
        except PolicyError as e:
            self.say("metrics: %s" % e, "error")


def run(paths, settings, uris, open_manager, say=None):
    """Watch until SIGTERM or SIGINT; returns the exit status (0)."""
    import libvirt

    libvirt.virEventRegisterDefaultImpl()
    w = Watcher(paths, settings, uris, open_manager, say)

    def stop(_signum, _frame):
        w.stop = True

    # A signal wakes poll() through this pipe: libvirt's loop would go back to sleep.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    old_fd = signal.set_wakeup_fd(wake_w)
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    handle = libvirt.virEventAddHandle(wake_r, libvirt.VIR_EVENT_HANDLE_READABLE,
                                       lambda *_a: _drain(wake_r), None)
    timer = libvirt.virEventAddTimeout(-1, lambda *_a: None, None)
    w.say("started (%s; on_drift = %s, every %gs)" % (", ".join(uris), settings.on_drift,
                                                       settings.watch_interval))
    for uri in uris:
        w.later(0, "connect", uri)
    w.later(settings.watch_interval, "reconcile")
    try:
        while not w.stop:
            w.run_due()
            if w.stop:
                break
            delay = w.next_delay()
            libvirt.virEventUpdateTimeout(timer, -1 if delay is None else max(1, int(delay * 1000)))
            libvirt.virEventRunDefaultImpl()
    finally:
        w.close()
        libvirt.virEventRemoveTimeout(timer)
        libvirt.virEventRemoveHandle(handle)
        for s, h in old.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_fd)
        os.close(wake_r)
        os.close(wake_w)
        w.say("stopped")
    return 0


def _drain(fd):
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
