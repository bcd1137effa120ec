"""The registry lock: fcntl.flock with a polled timeout, short for the hook, longer for
policyctl (registry.Registry.lock).

filelock's UnixFileLock takes the same kind of lock on the same file, so a policyhook
that used it (policyctl before this module served it too) and this one exclude each
other.
"""

import errno
import fcntl
import os
import time

from .errors import LOCKED, PolicyError, printable, registry_error, write_error

# Whoever can open the lock file can flock it (a read-only descriptor will do) and so
# block every writer and every hook: only its owner may open it.
LOCK_MODE = 0o600


def open_lock_file(path):
    """A descriptor on the lock file, created mode 0600, or tightened to it when an older
    one is looser. A failure is a REGISTRY error naming the file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, LOCK_MODE)
    except OSError as e:
        raise write_error(path, "cannot be locked", e) from None
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.fchmod(fd, LOCK_MODE)
    except OSError as e:
        os.close(fd)
        raise registry_error(path, "cannot be locked: %s" % e.strerror) from None
    return fd


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
        text = " ".join(w.decode("utf-8", "replace") for w in words if w)
    except OSError:
        return "?"
    # Another process's words: control characters escaped, so the message stays one line.
    return printable(text)[:80] or "?"


class FlockLock:
    """Exclusive flock on `path`, waiting at most `timeout` seconds."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        fd = open_lock_file(self.path)
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
                    raise registry_error(self.path, "cannot be locked: %s" % e.strerror) from None
            if time.monotonic() >= deadline:
                os.close(fd)
                raise PolicyError(locked_message(self.path, self.timeout), LOCKED)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
