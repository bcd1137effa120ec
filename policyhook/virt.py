"""The libvirt adapter: the only module that imports libvirt.

It executes plans and reads live values. Never imported by the hook itself, only by
policyctl and the detached applier.
"""

import libvirt

from .cpuset import CpuSet
from .domxml import parse_domain_xml
from .errors import LIBVIRT, PolicyError
from .mapping import CANNOT, LIVE_SCHED_FLAG, driver_of

AFFECT_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE

# libvirt prints errors to stderr unless a handler is set; we report them ourselves.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def error_text(e):
    return (e.get_error_message() if isinstance(e, libvirt.libvirtError) else str(e)) or str(e)


def connect(uri):
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot connect to %s: %s" % (uri, error_text(e)), LIBVIRT) from None


def driver(conn):
    kind = conn.getType()  # "QEMU", "LXC", "Xen" for libxl
    return driver_of({"xen": "libxl"}.get(kind.lower(), kind))


def host_cpus(conn):
    """(length of a cpumap, online CPUs) as libvirt sees the host."""
    total, cpumap, _online = conn.getCPUMap()
    return total, CpuSet.from_bools(cpumap)


def lookup(conn, name):
    """The domain called `name`, or None when libvirt does not know it."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise PolicyError("cannot look up domain '%s': %s" % (name, error_text(e)), LIBVIRT) from None


def is_running(dom):
    """True while the domain has live vCPUs (running or paused)."""
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return False


def facts(dom):
    """DomainFacts from the persistent definition (the admin's own <cputune>, not ours);
    for a running Xen domain also the host's scheduler (weight and cap need credit)."""
    try:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot read the XML of '%s': %s" % (dom.name(), error_text(e)),
                          LIBVIRT) from None
    found = parse_domain_xml(xml)
    if found.driver == "libxl" and is_running(dom):
        try:
            found.scheduler = dom.schedulerType()[0]
        except libvirt.libvirtError:
            found.scheduler = None
    return found


def running_domains(conn):
    try:
        return conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot list domains: %s" % error_text(e), LIBVIRT) from None


def apply_plan(dom, plan, cpumap_len, flags=AFFECT_LIVE):
    """Put `plan` in force; returns the steps done. Raises LIBVIRT naming the step.
    libvirt's libxl driver takes scheduler parameters only with flags 0, which means
    the running domain (mapping.LIVE_SCHED_FLAG)."""
    sched_flags = flags if LIVE_SCHED_FLAG.get(plan.driver, True) else flags & ~AFFECT_LIVE
    done = []
    step = None
    try:
        for vcpu, cpus in sorted(plan.vcpupin.items()):
            step = "vcpupin %d %s" % (vcpu, cpus)
            dom.pinVcpuFlags(vcpu, cpus.to_bools(cpumap_len), flags)
            done.append(step)
        if plan.emulatorpin is not None:
            step = "emulatorpin %s" % plan.emulatorpin
            dom.pinEmulator(plan.emulatorpin.to_bools(cpumap_len), flags)
            done.append(step)
        if plan.sched:
            step = "schedinfo " + " ".join("%s=%s" % kv for kv in sorted(plan.sched.items()))
            dom.setSchedulerParametersFlags(plan.sched, sched_flags)
            done.append(step)
    except (libvirt.libvirtError, LookupError) as e:
        # LookupError: the binding's own "Attribute name ... could not be recognized".
        raise PolicyError("%s: %s failed: %s" % (plan.domain, step, error_text(e)), LIBVIRT) from None
    return done


def live_values(dom, driver="qemu"):
    """What is in force now: {'vcpupin': {v: CpuSet}, 'emulatorpin': CpuSet, 'sched': {}}.
    Pins the driver cannot set are not asked for (LXC has neither call)."""
    values = {"vcpupin": {}, "emulatorpin": None, "sched": {}}
    cannot = CANNOT.get(driver, {})
    try:
        if "vcpupin" not in cannot:
            for vcpu, flags in enumerate(dom.vcpuPinInfo(AFFECT_LIVE)):
                values["vcpupin"][vcpu] = CpuSet.from_bools(flags)
        if "emulatorpin" not in cannot:
            values["emulatorpin"] = CpuSet.from_bools(dom.emulatorPinInfo(AFFECT_LIVE))
    except libvirt.libvirtError as e:
        raise PolicyError("cannot read the pins of '%s': %s" % (dom.name(), error_text(e)),
                          LIBVIRT) from None
    try:
        values["sched"] = dom.schedulerParametersFlags(AFFECT_LIVE)
    except libvirt.libvirtError:
        try:
            values["sched"] = dom.schedulerParameters()
        except libvirt.libvirtError:
            values["sched"] = {}
    return values
