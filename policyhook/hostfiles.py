"""Quiet CPUs, the host's side: reading and writing the masks housekeeping.py plans,
under a /proc and a /sys root (tests give fake trees), and irqbalance's run-time
configuration. Only this module writes /proc/irq, the workqueue masks and kernel
threads' affinity; it is called by the detached applier and updater, policyctl and the
watcher (through effects.update_host), never by the hook.

Movable kernel threads are recognised from /proc/PID/stat's flags: PF_KTHREAD set and
PF_NO_SETAFFINITY clear. The kernel sets PF_NO_SETAFFINITY on every thread bound to a
CPU (kthread_bind: the per-CPU ksoftirqd, migration, cpuhp, kworker/N) and on workqueue
workers (whose CPUs the workqueue masks decide), and refuses sched_setaffinity() on
them; every other kernel thread may move.
"""

import errno
import os

PF_KTHREAD = 0x00200000
PF_NO_SETAFFINITY = 0x04000000
DROPIN_DIR = "irqbalance.service.d"
DROPIN = "50-policyhook.conf"
ENVFILE = "50-policyhook.env"
IRQBALANCE_UNIT = "irqbalance.service"
# Where distributions keep irqbalance's environment file (Debian/Ubuntu, Fedora/RHEL).
IRQBALANCE_FILES = ("etc/default/irqbalance", "etc/sysconfig/irqbalance")
# Errors that mean "the kernel manages this IRQ's affinity itself": EIO from
# irq_can_set_affinity_usr() on older kernels, EPERM on newer.
MANAGED = (errno.EPERM, errno.EIO)


class Snapshot:
    """What the host holds now: `values` {key: text as read}, and for the words:
    `names` {key: what it is (an IRQ's actions, a thread's comm)}, `effective` {irq: CPUs
    the IRQ is delivered to}, `missing` {path: why it cannot be read}."""

    __slots__ = ("values", "names", "effective", "missing", "isolated")

    def __init__(self):
        self.values, self.names, self.effective, self.missing = {}, {}, {}, {}
        self.isolated = ""


def _read(path):
    with open(path, "rb") as f:
        return f.read(65536).decode("ascii", "replace")


class HostFiles:
    """The masks under `proc` and `sys`; `setaffinity(pid, cpus)` in place of
    os.sched_setaffinity (tests)."""

    def __init__(self, proc="/proc", sys="/sys", setaffinity=None):
        self.proc = proc
        self.sys = sys
        self._setaffinity = setaffinity or os.sched_setaffinity

    def path(self, key):
        """The file a key's mask lives in (a kernel thread: its status file)."""
        if key == "irq/default":
            return os.path.join(self.proc, "irq", "default_smp_affinity")
        if key.startswith("irq/"):
            return os.path.join(self.proc, "irq", key[4:], "smp_affinity_list")
        if key == "workqueue":
            return os.path.join(self.sys, "devices", "virtual", "workqueue", "cpumask")
        if key == "workqueue/writeback":
            return os.path.join(self.sys, "bus", "workqueue", "devices", "writeback", "cpumask")
        if key.startswith("kthread/"):
            return os.path.join(self.proc, key.split("/")[1], "status")
        raise ValueError("unknown key %r" % key)

    def snapshot(self):
        s = Snapshot()
        for key in ("irq/default", "workqueue", "workqueue/writeback"):
            self._value(s, key)
        irq_dir = os.path.join(self.proc, "irq")
        try:
            irqs = sorted((n for n in os.listdir(irq_dir) if n.isdigit()), key=int)
        except OSError as e:
            s.missing[irq_dir] = e.strerror
            irqs = []
        names = self._irq_names()
        for n in irqs:
            if self._value(s, "irq/" + n):
                s.names["irq/" + n] = names.get(n, "")
                try:
                    s.effective[n] = _read(os.path.join(irq_dir, n, "effective_affinity_list")).strip()
                except OSError:
                    pass
        for pid, start, comm, allowed in self._kthreads(s):
            key = "kthread/%s/%s" % (pid, start)
            s.values[key] = allowed
            s.names[key] = comm
        cpu = os.path.join(self.sys, "devices", "system", "cpu")
        for name in ("isolated", "nohz_full"):
            try:
                text = _read(os.path.join(cpu, name)).strip()
            except OSError:
                continue
            if text and text != "(null)":
                s.isolated = ",".join(x for x in (s.isolated, text) if x)
        return s

    def _value(self, s, key):
        path = self.path(key)
        try:
            s.values[key] = _read(path)
            return True
        except OSError as e:
            s.missing[path] = e.strerror
            return False

    def _irq_names(self):
        """{irq: its actions' names} from /proc/interrupts (the last column)."""
        found = {}
        try:
            lines = _read(os.path.join(self.proc, "interrupts")).splitlines()
        except OSError:
            return found
        ncpu = len(lines[0].split()) if lines else 0
        for line in lines[1:]:
            head, _, rest = line.partition(":")
            if head.strip().isdigit():
                found[head.strip()] = " ".join(rest.split()[ncpu + 2:] or rest.split()[ncpu:])
        return found

    def _kthreads(self, s):
        """(pid, start time, comm, Cpus_allowed_list) of each movable kernel thread; an
        irqbalance process seen on the way goes into the snapshot's names."""
        try:
            pids = [n for n in os.listdir(self.proc) if n.isdigit()]
        except OSError:
            return []
        found = []
        for pid in sorted(pids, key=int):
            stat = self._stat(pid)
            if stat is None:
                continue
            comm, flags, start = stat
            if comm == "irqbalance" and not flags & PF_KTHREAD:
                s.names["irqbalance-pid"] = pid
            if not flags & PF_KTHREAD or flags & PF_NO_SETAFFINITY:
                continue
            try:
                status = _read(os.path.join(self.proc, pid, "status"))
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    found.append((pid, start, comm, line.split(":", 1)[1].strip() + "\n"))
        return found

    def _stat(self, pid):
        """(comm, flags, start time) from /proc/PID/stat, or None."""
        try:
            text = _read(os.path.join(self.proc, pid, "stat"))
        except OSError:
            return None
        # comm may hold spaces and parentheses: the fields follow its last ')'.
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        if len(fields) < 20:
            return None
        # After comm: state(3) ppid pgrp session tty_nr tpgid flags(9) ... starttime(22)
        return head.partition("(")[2], int(fields[6]), fields[19]

    def write(self, key, text):
        """Write a mask; OSError as the kernel answered. A kernel thread is written only
        while its PID is still the thread recorded (same start time)."""
        if key.startswith("kthread/"):
            _, pid, start = key.split("/")
            stat = self._stat(pid)
            if stat is None or stat[2] != start:
                raise OSError(errno.ESRCH, os.strerror(errno.ESRCH))
            from .housekeeping import parse
            self._setaffinity(int(pid), set(parse(key, text)))
            return
        # O_TRUNC as a shell's `>`: the kernel's files ignore it, a plain file needs it.
        fd = os.open(self.path(key), os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.write(fd, text.strip().encode("ascii") + b"\n")
        finally:
            os.close(fd)


class IrqBalance:
    """irqbalance's banned CPUs at run time: a drop-in for its unit under /run (gone at
    reboot, as the masks' changes are) naming an environment file of ours, read after
    the admin's own (/etc/default/irqbalance or /etc/sysconfig/irqbalance), which is
    never written. `root` is where /etc and /run are; systemctl through `systemd`."""

    def __init__(self, systemd, root="/"):
        self.systemd = systemd
        self.root = root
        self.dir = os.path.join(root, "run", "systemd", "system", DROPIN_DIR)

    def running(self):
        """True when systemd runs irqbalance here."""
        return self.systemd.present() and self.systemd.is_active(IRQBALANCE_UNIT)

    def admin(self):
        """{variable: value} of the admin's environment file (the first that exists)."""
        for rel in IRQBALANCE_FILES:
            try:
                text = _read(os.path.join(self.root, rel))
            except OSError:
                continue
            found = {}
            for line in text.splitlines():
                name, sep, value = line.strip().partition("=")
                if sep and not name.startswith("#"):
                    found[name.strip()] = value.strip().strip("\"'")
            return found
        return {}

    def ours(self):
        """Our environment file's text, or None."""
        try:
            return _read(os.path.join(self.dir, ENVFILE))
        except OSError:
            return None

    def set(self, env):
        """Write our drop-in and environment file, and restart irqbalance with them."""
        from . import safeio
        safeio.ensure_dir(self.dir)
        safeio.write_atomic(os.path.join(self.dir, ENVFILE), env.encode("ascii"))
        safeio.write_atomic(os.path.join(self.dir, DROPIN), (
            "# policyhook ([occupancy] housekeeping): irqbalance kept off occupied CPUs\n"
            "[Service]\nEnvironmentFile=-%s\n" % os.path.join("/run/systemd/system", DROPIN_DIR, ENVFILE)
        ).encode("ascii"))
        self._restart()

    def clear(self):
        """Remove ours (if there) and restart irqbalance with the admin's settings."""
        from . import safeio
        removed = safeio.remove(os.path.join(self.dir, DROPIN))
        removed = safeio.remove(os.path.join(self.dir, ENVFILE)) or removed
        try:
            os.rmdir(self.dir)
        except OSError:
            pass
        if removed and self.systemd.present():
            self._restart()

    def _restart(self):
        self.systemd.daemon_reload()
        self.systemd.try_restart(IRQBALANCE_UNIT)
