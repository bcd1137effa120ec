"""Logging never blocks and never fails the caller."""

import os
import socket

from policyhook import log
from policyhook.paths import Paths


def test_syslog_line_is_rfc3164_daemon_facility():
    line = log.syslog_line("vm1 prepare/begin: admitted", "warning").decode()
    assert line.startswith("<28>")  # daemon (3) * 8 + warning (4)
    assert line.endswith(" policyhook[%d]: vm1 prepare/begin: admitted" % os.getpid())


def test_a_full_syslog_socket_does_not_block(tmp_path):
    address = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    try:
        sent = dropped = 0
        for _ in range(2000):  # nobody reads: the queue fills, then sends are refused
            try:
                log._send_syslog(b"x" * 512, address)
                sent += 1
            except BlockingIOError:
                dropped += 1
        assert sent > 0 and dropped > 0
    finally:
        server.close()


def test_log_goes_to_the_file_even_without_syslog(tmp_path):
    paths = Paths(str(tmp_path))
    log.log(paths, "two\nlines", "error")
    with open(paths.log) as f:
        assert f.read().endswith("policyhook[%d]: two\\nlines\n" % os.getpid())
