"""Numeric bounds shared by the schema, the strict loader and the CLI."""

from .cpuset import MAX_CPU, ranges

SCHEMA_VERSION = 1
MAX_VCPU = 16383          # vCPU numbers 0..16383 (QEMU's ceiling is 4096 today)
MAX_IOTHREAD = 4294967295  # IOThread IDs 1..UINT_MAX, as libvirt's <iothread id=...>
MAX_THREADS = MAX_VCPU + 1  # at most this many vCPUs or IOThreads in a domain XML we plan
WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT = 1, 65535, 256
CAP_MAX = 100 * (MAX_CPU + 1)  # percent of one CPU; 0 means no cap

__all__ = ["SCHEMA_VERSION", "MAX_CPU", "MAX_VCPU", "MAX_IOTHREAD", "MAX_THREADS", "WEIGHT_MIN", "WEIGHT_MAX",
           "WEIGHT_DEFAULT", "CAP_MAX"]


def index_problem(text, maximum, minimum=0):
    """Why `text` is not a decimal index minimum..maximum without leading zeros, or None."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return "not a whole number"
    if len(text) > 1 and text[0] == "0":
        return "leading zero"
    # Length first: int() refuses strings of more than 4300 digits (ValueError).
    if len(text) > len(str(maximum)) or int(text) > maximum:
        return "above %d" % maximum
    if int(text) < minimum:
        return "below %d" % minimum
    return None


def count_phrase(label, indexes):
    """'2 vCPUs (0-1)', '1 IOThread (1)', 'no IOThreads': how messages name a domain's
    threads of one kind."""
    count = len(indexes)
    if not count:
        return "no %ss" % label
    return "%d %s%s (%s)" % (count, label, "" if count == 1 else "s", ranges(indexes))
