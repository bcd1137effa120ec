"""The registry lock, seen from the hook: fcntl.flock with a short, polled timeout.

filelock (used by policyctl) takes the same kind of lock on the same file, so the
two exclude each other without the hook paying filelock's import cost.
"""

import errno
import fcntl
import os
import time

from .errors import LOCKED, PolicyError


def holder(path):
    """The pid holding a flock on `path`, from /proc/locks, or None."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not the holder
            continue
        try:
            kind, pid, ident = fields[1], int(fields[4]), fields[5]
        except (IndexError, ValueError):
            continue
        if kind != "FLOCK":
            continue
        try:
            if int(ident.rsplit(":", 1)[1]) == st.st_ino:
                return pid
        except (IndexError, ValueError):
            continue
    return None


def locked_message(path, timeout):
    pid = holder(path)
    who = ("held by pid %d (%s)" % (pid, _cmdline(pid))) if pid else "held by another process"
    return "registry lock %s is %s; gave up after %gs" % (path, who, timeout)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            words = f.read().split(b"\0")
        return " ".join(w.decode("utf-8", "replace") for w in words if w)[:80] or "?"
    except OSError:
        return "?"


class FlockLock:
    """Exclusive flock on `path`, waiting at most `timeout` seconds."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        deadline = time.monotonic() + self.timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return self
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise PolicyError(locked_message(self.path, self.timeout), LOCKED)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
