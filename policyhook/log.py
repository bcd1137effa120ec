"""Log lines to syslog (the journal under systemd) and to policyhook's own log file.

The file is the record on hosts with no syslog daemon; both are best effort: logging
must never make the hook fail, and never make it wait. libc's syslog() sends on a
blocking datagram socket, which blocks while journald's queue is full, so the hook
sends to /dev/log itself with a non-blocking socket and drops the line instead.
"""

import os
import time

DEV_LOG = "/dev/log"
FACILITY_DAEMON = 3
SEVERITY = {"error": 3, "warning": 4, "info": 6}


def syslog_line(message, level="info"):
    """An RFC 3164 datagram for /dev/log (the local form: no host name)."""
    priority = FACILITY_DAEMON * 8 + SEVERITY.get(level, 6)
    return ("<%d>%s policyhook[%d]: %s" % (priority, time.strftime("%b %e %H:%M:%S"), os.getpid(),
                                          message)).encode("utf-8", "replace")


def _send_syslog(data, address=DEV_LOG):
    import _socket  # the C module: `socket` would import enum and more on the hot path

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(data, address)
    finally:
        sock.close()


def log(paths, message, level="info"):
    message = message.replace("\n", "\\n")
    try:
        _send_syslog(syslog_line(message, level))
    except OSError:
        pass  # no syslog daemon, or it is not keeping up: the file below still has it
    line = "%s policyhook[%d]: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.getpid(), message)
    try:
        os.makedirs(os.path.dirname(paths.log), mode=0o755, exist_ok=True)
        fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o640)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass
