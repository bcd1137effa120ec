"""Log lines to syslog (the journal under systemd) and to policyhook's own log file.

The file is the record on hosts with no syslog daemon; both are best effort: logging
must never make the hook fail.
"""

import os
import time


def log(paths, message, level="info"):
    line = "%s policyhook[%d]: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.getpid(), message)
    try:
        import syslog
        priority = syslog.LOG_ERR if level == "error" else (
            syslog.LOG_WARNING if level == "warning" else syslog.LOG_INFO)
        syslog.openlog("policyhook", syslog.LOG_PID, syslog.LOG_DAEMON)
        syslog.syslog(priority, message)
    except Exception:  # noqa: BLE001 - logging is best effort by design
        pass
    try:
        os.makedirs(os.path.dirname(paths.log), mode=0o755, exist_ok=True)
        fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o640)
        try:
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass
