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


def xen_cpus(sysfs="/sys/devices/system/xen_cpu"):
    """Xen's online physical CPUs as dom0's kernel lists them (drivers/xen/pcpu.c: one
    xen_cpuN per physical CPU whose `online` reads 1 or 0; the boot CPU cannot go
    offline and has no such file); None where this is not a Xen dom0."""
    try:
        names = os.listdir(sysfs)
    except OSError:
        return None
    found = []
    for name in names:
        number = name[len("xen_cpu"):]
        if not name.startswith("xen_cpu") or not number.isdigit():
            continue
        try:
            with open(os.path.join(sysfs, name, "online")) as f:
                if f.read().strip() != "1":
                    continue
        except FileNotFoundError:
            pass
        except OSError:
            continue
        found.append(int(number))
    return CpuSet(found) if found else None


def host_cpus(driver, sysfs="/sys/devices/system"):
    """The CPUs a domain of `driver` may be pinned to: this machine's online CPUs, or,
    for Xen (libxl), Xen's physical CPUs: there this machine is dom0, whose own CPUs
    are as many vCPUs as Xen gave it (dom0_max_vcpus), not the host's."""
    if driver == "libxl":
        found = xen_cpus(os.path.join(sysfs, "xen_cpu"))
        if found is not None:
            return found
    return online_cpus(os.path.join(sysfs, "cpu"))
