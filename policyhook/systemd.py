"""The host adapter (doc/design.md "Effects beyond one domain"): what policyhook changes on
the host itself, through systemd. The only module that runs systemctl; called by
policyctl, the detached applier and updater, and the watcher, never by the hook.
Every call is bounded in time."""

import os
import subprocess

TIMEOUT = 10
# A daemon-reload returns once every generator has run again and every unit file is read:
# over 10 s on a loaded host (seen in the TCG lab guest, where irqbalance then kept its
# old banned CPUs). The callers run detached or in policyctl, never in the hook.
TIMEOUTS = {"daemon-reload": 90}


class SystemdError(Exception):
    pass


class Systemd:
    """systemctl, or `run` in its place (tests); `root` is where /run/systemd/system says
    whether systemd runs the host."""

    def __init__(self, run=None, root="/"):
        self._run = run or (lambda argv: subprocess.run(argv, capture_output=True, text=True,
                                                        timeout=TIMEOUTS.get(argv[1], TIMEOUT),
                                                        check=False))
        self._root = root

    def present(self):
        return os.path.isdir(os.path.join(self._root, "run", "systemd", "system"))

    def _systemctl(self, *args):
        try:
            r = self._run(["systemctl"] + list(args))
        except (OSError, subprocess.SubprocessError) as e:
            raise SystemdError("systemctl %s: %s" % (" ".join(args), e)) from None
        if r.returncode != 0:
            why = (r.stderr or r.stdout).strip() or "exit %d" % r.returncode
            raise SystemdError("systemctl %s: %s" % (" ".join(args), why))
        return r.stdout

    def allowed_cpus(self, unit):
        """The unit's AllowedCPUs as a cpulist ("" = not set: every CPU). systemd shows
        "0 2-3"; a cpulist has commas."""
        return ",".join(self._systemctl("show", "--property=AllowedCPUs", "--value", "--", unit).split())

    def set_allowed_cpus(self, unit, cpus):
        """Set (or, with "", clear) AllowedCPUs until the next boot: --runtime."""
        self._systemctl("set-property", "--runtime", "--", unit, "AllowedCPUs=%s" % cpus)

    def is_active(self, unit):
        """True when the unit runs (systemctl is-active exits 0 only then)."""
        try:
            self._systemctl("is-active", "--quiet", "--", unit)
        except SystemdError:
            return False
        return True

    def daemon_reload(self):
        self._systemctl("daemon-reload")

    def try_restart(self, unit):
        """Restart the unit if it runs (a drop-in of ours takes effect): the job is
        queued, not waited for (a restart is the unit's own time)."""
        self._systemctl("try-restart", "--no-block", "--", unit)
