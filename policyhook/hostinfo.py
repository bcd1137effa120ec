"""The local host's online CPUs, read from sysfs (no libvirt)."""

import os

from .cpuset import CpuSet
from .errors import PolicyError


def online_cpus(sysfs="/sys/devices/system/cpu"):
    try:
        with open(os.path.join(sysfs, "online")) as f:
            return CpuSet.parse(f.read().strip())
    except (OSError, PolicyError):
        return CpuSet.range(os.cpu_count() or 1)
