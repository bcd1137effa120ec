"""Numeric bounds shared by the schema, the strict loader and the CLI."""

from .cpuset import MAX_CPU

SCHEMA_VERSION = 1
MAX_VCPU = 16383          # vCPU numbers 0..16383 (QEMU's ceiling is 4096 today)
WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT = 1, 65535, 256
CAP_MAX = 100 * (MAX_CPU + 1)  # percent of one CPU; 0 means no cap

__all__ = ["SCHEMA_VERSION", "MAX_CPU", "MAX_VCPU", "WEIGHT_MIN", "WEIGHT_MAX",
           "WEIGHT_DEFAULT", "CAP_MAX"]


def index_problem(text, maximum):
    """Why `text` is not a decimal index 0..maximum without leading zeros, or None."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return "not a whole number"
    if len(text) > 1 and text[0] == "0":
        return "leading zero"
    # Length first: int() refuses strings of more than 4300 digits (ValueError).
    if len(text) > len(str(maximum)) or int(text) > maximum:
        return "above %d" % maximum
    return None


def vcpu_range(count):
    """'2 vCPUs (0-1)', '1 vCPU (0)': how messages name a domain's vCPUs."""
    return "%d vCPU%s (%s)" % (count, "" if count == 1 else "s",
                                "0" if count == 1 else "0-%d" % (count - 1))
