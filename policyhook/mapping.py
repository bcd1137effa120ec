"""Xen credit-scheduler weight and cap, mapped onto each libvirt driver's parameters.

The one place that knows libvirt's scheduler parameter names.

- weight: 1..65535, default 256, relative (Xen credit).
  QEMU/LXC on cgroup v1: cpu_shares = 4 * weight (default 1024 = cpu.shares' default).
  QEMU/LXC on cgroup v2: libvirt writes cpu_shares into cpu.weight unchanged, whose
  range is 1..10000 with default 100, so cpu_shares = clamp(round(weight * 100 / 256)).
  libxl: `weight` as it is.
- cap: percent of one physical CPU for the whole domain, 0 = none (Xen credit).
  QEMU/LXC: CFS bandwidth on the domain's cgroup: global_period = 100000 us,
  global_quota = cap * 1000 us (-1 = unlimited). libxl: `cap` as it is.
"""

from .limits import WEIGHT_DEFAULT

PERIOD_US = 100000
# libvirt's largest CFS quota (VIR_CGROUP_CPU_QUOTA_MAX). No limit reads back as -1 on
# cgroup v1 and as ULLONG_MAX / 1000 on cgroup v2 (cpu.max "max"), above this.
QUOTA_MAX = 17592186044415
CGROUP_DRIVERS = ("qemu", "lxc")
DRIVERS = ("qemu", "lxc", "libxl")


def shares(weight, cgroup_version):
    if cgroup_version == 2:
        return max(1, min(10000, int(round(weight * 100.0 / 256))))
    return 4 * weight


def sched_params(driver, cgroup_version, weight=None, cap=None):
    """libvirt scheduler parameters for the given policy values (None = leave alone)."""
    params = {}
    if driver in CGROUP_DRIVERS:
        if weight is not None:
            params["cpu_shares"] = shares(weight, cgroup_version)
        if cap is not None:
            params["global_period"] = PERIOD_US
            params["global_quota"] = cap * 1000 if cap else -1
    elif driver == "libxl":
        if weight is not None:
            params["weight"] = weight
        if cap is not None:
            params["cap"] = cap
    else:
        raise ValueError("unknown driver %r" % (driver,))
    return params


def reset_params(driver, cgroup_version, weight=False, cap=False):
    """Parameters that put an unset weight or cap back to the default."""
    return sched_params(driver, cgroup_version,
                        WEIGHT_DEFAULT if weight else None, 0 if cap else None)


def from_live(driver, cgroup_version, params):
    """(weight, cap) as the live scheduler parameters express them; None when unknown."""
    weight = cap = None
    if driver in CGROUP_DRIVERS:
        if "cpu_shares" in params:
            value = params["cpu_shares"]
            weight = round(value * 256 / 100.0) if cgroup_version == 2 else value // 4
        quota = params.get("global_quota")
        period = params.get("global_period")
        if quota is not None:
            cap = 0 if quota_is_unlimited(quota) else int(round(quota * 100.0 / (period or PERIOD_US)))
    elif driver == "libxl":
        weight = params.get("weight")
        cap = params.get("cap")
    return weight, cap


def quota_is_unlimited(quota):
    """True when a live global_quota means no cap (cgroup v1 or v2)."""
    return quota <= 0 or quota > QUOTA_MAX


def driver_of(domain_type):
    """Our driver name for a domain XML `type` or a connection URI scheme."""
    domain_type = (domain_type or "").lower()
    if domain_type in ("qemu", "kvm", "hvf", "tcg"):
        return "qemu"
    if domain_type == "lxc":
        return "lxc"
    if domain_type in ("xen", "libxl"):
        return "libxl"
    return None


def local_cgroup_version(sysfs="/sys/fs/cgroup"):
    """2 on a unified (cgroup v2) host, else 1 (v1 or hybrid: libvirt uses v1's cpu)."""
    import os
    return 2 if os.path.exists(os.path.join(sysfs, "cgroup.controllers")) else 1
