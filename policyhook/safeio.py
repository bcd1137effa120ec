"""File access with the care a root process needs.

Reads never follow symlinks (O_NOFOLLOW on the file, lstat on its directories) and
refuse files and directories that someone other than the owner we expect could have
written, as sshd's StrictModes does. Writes are atomic: a temp file in the same
directory, fsync, os.replace, fsync of the directory.
"""

import errno
import os
import stat

from .errors import registry_error, write_error


def expected_owner():
    # As root, only root may own what we act on; a user (tests, --root trees)
    # may own their own files.
    return os.geteuid()


def check_dir(path, owner=None):
    """Refuse a directory that is a symlink or writable by others."""
    owner = expected_owner() if owner is None else owner
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise registry_error(path, "cannot be read: %s" % e.strerror) from None
    if stat.S_ISLNK(st.st_mode):
        raise registry_error(path, "is a symlink; refusing to follow it")
    if not stat.S_ISDIR(st.st_mode):
        raise registry_error(path, "is not a directory")
    _check_owner_mode(path, st, owner)
    return True


def _check_owner_mode(path, st, owner):
    if st.st_uid != owner and st.st_uid != 0:
        raise registry_error(path, "is owned by uid %d, not %d; refusing it (chown %d %s)"
                             % (st.st_uid, owner, owner, path))
    if st.st_mode & 0o022:
        raise registry_error(path, "is group- or world-writable (mode %04o); refusing it "
                             "(chmod go-w %s)" % (stat.S_IMODE(st.st_mode), path))


def read_file(path, limit, owner=None):
    """The bytes of `path`, or None when it does not exist. Refuses unsafe files."""
    owner = expected_owner() if owner is None else owner
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise registry_error(path, "is a symlink; refusing to follow it") from None
        raise registry_error(path, "cannot be read: %s" % e.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise registry_error(path, "is not a regular file")
        _check_owner_mode(path, st, owner)
        # One read for a file that keeps its size (a short read of a regular file is its
        # end); the loop only for one that grew meanwhile.
        want = min(st.st_size, limit) + 1
        first = os.read(fd, want)
        if len(first) < want:
            return first
        chunks = [first]
        size = len(first)
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise registry_error(path, "cannot be read: %s" % e.strerror) from None
    finally:
        os.close(fd)


def ensure_dir(path, mode=0o755):
    """Create `path` (and parents) if missing; refuse it if unsafe."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as e:
        raise write_error(path, "cannot be created", e) from None
    check_dir(path)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data, mode=0o644, durable=True):
    """Replace `path` with `data` so that readers see the old or the new file, whole;
    `durable`: on disk before this returns (fsync of the file and its directory), for
    what must survive a crash of the machine. A file of runtime state, which the next
    boot starts without (/run), needs only the rename."""
    directory, base = os.path.split(path)
    # Random, not only the pid: a writer killed before its rename leaves its temp file,
    # and a later process may get the same pid.
    tmp = os.path.join(directory, ".%s.%d.%s.tmp" % (base, os.getpid(), os.urandom(4).hex()))
    created = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        created = True
        try:
            os.fchmod(fd, mode)  # not subject to the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable:
            fsync_dir(directory)
    except OSError as e:
        if created:  # never someone else's file
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise write_error(path, "cannot be written", e) from None


def remove(path):
    """Remove `path` durably; False when it was not there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise write_error(path, "cannot be removed", e) from None
    fsync_dir(os.path.dirname(path))
    return True
