"""Xen credit-scheduler weight and cap, mapped onto each libvirt driver's parameters,
and what each driver can put in force at all.

The one place that knows libvirt's scheduler parameter names and the drivers'
capabilities (measured on libvirt 9.0's QEMU and LXC drivers, and on libvirt 11.3's
libxl driver with Xen 4.20 in the lab's Xen guest; doc/drivers.md has the table).

- weight: 1..65535, default 256, relative (Xen credit).
  QEMU/LXC on cgroup v1: cpu_shares = 4 * weight (default 1024 = cpu.shares' default).
  QEMU/LXC on cgroup v2: libvirt writes cpu_shares into cpu.weight unchanged, whose
  range is 1..10000 with default 100, so cpu_shares = clamp(round(weight * 100 / 256)).
  libxl: `weight` as it is.
- cap: percent of one physical CPU for the whole domain, 0 = none (Xen credit).
  QEMU: CFS bandwidth on the domain's cgroup: global_period = 100000 us,
  global_quota = cap * 1000 us (-1 = unlimited).
  LXC: the container is one cgroup, and libvirt's LXC driver accepts only cpu_shares,
  vcpu_period and vcpu_quota, which it writes to that cgroup: vcpu_period = 100000 us,
  vcpu_quota = cap * 1000 us (-1 = unlimited) is the same limit for the whole domain.
  libxl: `cap` as it is.

Xen's schedulers. policyhook's weight and cap are the credit scheduler's (`xl
sched-credit -w -c`). credit2, Xen's default since 4.12, has the same two with the
same ranges and meaning in Xen's documentation (weight 1..65535, default 256,
relative; cap in percent of one CPU, since Xen 4.10), and libvirt's libxl driver reads
and sets both under either scheduler (measured: `xl sched-credit2` shows what
setSchedulerParametersFlags set). credit2 weighs a vCPU against the others on its
runqueue (one per socket by default) and balances load between runqueues, so its
proportions hold host-wide as closely as that balancing keeps them. Under any other
scheduler (rtds, null, arinc653) there is no weight and cap: when the domain's
scheduler is known and is one of those, they are reported as unsupported for it;
vCPU pins still apply.

What a driver cannot do (`unsupported`) is data here; the planner leaves it out of
the plan and says so, and policyctl refuses to record it for such a domain.
"""

from __future__ import annotations

from .tunables import cannot as _cannot

# For the checker alone: the hook imports this module, and `typing` costs ~10 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

PERIOD_US = 100000
# libvirt's largest CFS quota (VIR_CGROUP_CPU_QUOTA_MAX). No limit reads back as -1 on
# cgroup v1 and as this very value on cgroup v2 (cpu.max "max").
QUOTA_MAX = 17592186044415
CGROUP_DRIVERS = ("qemu", "lxc")
DRIVERS = ("qemu", "lxc", "libxl")

# libvirt's scheduler parameter for each policy value, per driver: weight, then the
# cap's quota (or the cap itself), with its period on the cgroup drivers.
WEIGHT_KEY = {"qemu": "cpu_shares", "lxc": "cpu_shares", "libxl": "weight"}
QUOTA_KEY = {"qemu": "global_quota", "lxc": "vcpu_quota", "libxl": "cap"}
PERIOD_KEY = {"qemu": "global_period", "lxc": "vcpu_period"}
CAP_KEYS = {driver: (PERIOD_KEY.get(driver), QUOTA_KEY[driver]) for driver in DRIVERS}

# What libvirt's drivers cannot pin, with the reason: from the table (tunables.PINS).
CANNOT = {driver: _cannot(driver) for driver in DRIVERS}
# The Xen schedulers with a weight and a cap, which libvirt's libxl driver sets.
LIBXL_SCHEDULERS = ("credit", "credit2")
# libvirt's libxl driver takes scheduler parameters only with flags 0 (the running
# domain); VIR_DOMAIN_AFFECT_LIVE is refused as an unsupported flag.
LIVE_SCHED_FLAG = {"qemu": True, "lxc": True, "libxl": False}
# The libvirt connection of each driver's applier (settings may name others).
URI = {"qemu": "qemu:///system", "lxc": "lxc:///system", "libxl": "xen:///system"}
# Driver names as people know them.
LABEL = {"qemu": "QEMU", "lxc": "LXC", "libxl": "libxl (Xen)"}


def shares(weight: int, cgroup_version: int) -> int:
    if cgroup_version == 2:
        return max(1, min(10000, int(round(weight * 100.0 / 256))))
    return 4 * weight


def sched_params(driver: str, cgroup_version: int, weight: int | None = None,
                 cap: int | None = None) -> dict[str, int]:
    """libvirt scheduler parameters for the given policy values (None = leave alone)."""
    if driver not in WEIGHT_KEY:
        raise ValueError("unknown driver %r" % (driver,))
    params: dict[str, int] = {}
    if driver in CGROUP_DRIVERS:
        if weight is not None:
            params[WEIGHT_KEY[driver]] = shares(weight, cgroup_version)
        if cap is not None:
            params[PERIOD_KEY[driver]] = PERIOD_US
            params[QUOTA_KEY[driver]] = cap * 1000 if cap else -1
    else:
        if weight is not None:
            params[WEIGHT_KEY[driver]] = weight
        if cap is not None:
            params[QUOTA_KEY[driver]] = cap
    return params


def sets(driver: str, setting: str, params: Mapping[str, int]) -> bool:
    """True when libvirt parameters `params` set `setting` ("weight" or "cap")."""
    if setting == "weight":
        return WEIGHT_KEY.get(driver) in params
    return QUOTA_KEY.get(driver) in params


def from_live(driver: str, cgroup_version: int,
              params: Mapping[str, int]) -> tuple[int | None, int | None]:
    """(weight, cap) as the live scheduler parameters express them; None when unknown."""
    weight: int | None = None
    cap: int | None = None
    if driver in CGROUP_DRIVERS:
        if "cpu_shares" in params:
            value = params["cpu_shares"]
            weight = round(value * 256 / 100.0) if cgroup_version == 2 else value // 4
        quota = params.get(QUOTA_KEY[driver])
        period = params.get(PERIOD_KEY[driver])
        if quota is not None:
            cap = 0 if quota_is_unlimited(quota) else int(round(quota * 100.0 / (period or PERIOD_US)))
    elif driver == "libxl":
        weight = params.get("weight")
        cap = params.get("cap")
    return weight, cap


def quota_is_unlimited(quota: int) -> bool:
    """True when a live CFS quota (global_quota, vcpu_quota) means no cap: -1 on cgroup v1;
    on cgroup v2 libvirt reads cpu.max "max" back as QUOTA_MAX itself (measured on
    libvirt 11.3 in the lab guest: 17592186044415)."""
    return quota <= 0 or quota >= QUOTA_MAX


def is_quota(key: str) -> bool:
    """True for the CFS quota parameters, whose 'no limit' has several spellings."""
    return key in ("global_quota", "vcpu_quota")


def unsupported(driver: str, scheduler: str | None = None) -> dict[str, str]:
    """{setting key: reason} for what `driver` cannot put in force; `scheduler` is the Xen
    scheduler when known (libxl), None when not (the hook at `prepare`)."""
    cannot = _cannot(driver)
    if driver == "libxl" and scheduler is not None and scheduler not in LIBXL_SCHEDULERS:
        why = ("weight and cap are Xen's credit and credit2 schedulers'; this host runs %s"
               % scheduler)
        cannot["weight"] = cannot["cap"] = why
    return cannot


# <cputune> elements for the scheduler parameters, per driver (the migrate and
# restore hooks write the policy into the domain XML). libvirt's libxl driver takes
# <shares> as the credit weight and has no element for the cap.
CPUTUNE = {
    "qemu": {"cpu_shares": "shares", "global_period": "global_period",
             "global_quota": "global_quota"},
    "lxc": {"cpu_shares": "shares", "vcpu_period": "period", "vcpu_quota": "quota"},
    "libxl": {"weight": "shares"},
}


def driver_of(domain_type: str | None) -> str | None:
    """Our driver name for a domain XML `type` or a connection URI scheme."""
    domain_type = (domain_type or "").lower()
    if domain_type in ("qemu", "kvm", "hvf", "tcg"):
        return "qemu"
    if domain_type == "lxc":
        return "lxc"
    if domain_type in ("xen", "libxl"):
        return "libxl"
    return None


def cgroup_version_of(driver: str, params: Mapping[str, int]) -> int | None:
    """1 or 2 as a running domain's live scheduler parameters show it, None when they
    cannot: a quota with no limit reads -1 on cgroup v1 and above QUOTA_MAX on v2
    (doc/design.md "libvirt facts"), and libvirt leaves the vCPU and emulator quotas unlimited
    unless someone set them."""
    if driver not in CGROUP_DRIVERS:
        return None
    for key in ("vcpu_quota", "emulator_quota", "global_quota", "iothread_quota"):
        value = params.get(key)
        if value is None:
            continue
        if value == -1:
            return 1
        if value >= QUOTA_MAX:
            return 2
    return None


def local_cgroup_version(sysfs: str = "/sys/fs/cgroup") -> int:
    """2 on a unified (cgroup v2) host, else 1 (v1 or hybrid: libvirt uses v1's cpu)."""
    import os
    return 2 if os.path.exists(os.path.join(sysfs, "cgroup.controllers")) else 1
