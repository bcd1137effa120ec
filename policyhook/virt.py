"""The libvirt adapter: the only module that imports libvirt.

It reads facts and live values and executes plans, iterating the table of tunables
(tunables.PINS: each row names its libvirt setter and getter). Never imported by the
hook itself, only by policyctl, the detached applier and the watcher.
"""

import libvirt

from .cpuset import CpuSet
from .domxml import parse_domain_xml
from .errors import LIBVIRT, PolicyError, StepFailed
from .mapping import LIVE_SCHED_FLAG, cgroup_version_of, driver_of, local_cgroup_version, unsupported
from .planner import Live
from .tunables import PIN, PINS

AFFECT_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
AFFECT_CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG

# libvirt prints errors to stderr unless a handler is set; we report them ourselves.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

# How each getter of tunables.PINS answers, as [(index, cpumap)].
_READ = {
    "vcpuPinInfo": lambda answer: enumerate(answer),         # one cpumap per vCPU
    "emulatorPinInfo": lambda answer: [(0, answer)],          # one cpumap
    "ioThreadInfo": lambda answer: [(i, m) for i, m in answer],  # (IOThread ID, cpumap)
}


def error_text(e):
    return (e.get_error_message() if isinstance(e, libvirt.libvirtError) else str(e)) or str(e)


# What libvirt answers when the URI itself is wrong (no such driver, a path the driver
# does not know), as against a daemon that does not answer (VIR_ERR_SYSTEM_ERROR from
# the RPC layer: no socket, connection refused, ssh failed) or refuses us.
_BAD_URI = (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT,
            libvirt.VIR_ERR_CONFIG_UNSUPPORTED)


def connect(uri):
    """A connection to `uri`. LIBVIRT when it fails; the error's `unreachable` is True
    when the daemon did not answer (policyctl saves and warns) and False when the URI
    or its driver is wrong (policyctl stops, nothing saved)."""
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as e:
        code, domain = e.get_error_code(), e.get_error_domain()
        error = PolicyError("cannot connect to %s: %s" % (uri, error_text(e)), LIBVIRT)
        error.unreachable = not (code in _BAD_URI or (code == libvirt.VIR_ERR_INTERNAL_ERROR
                                                      and domain != libvirt.VIR_FROM_RPC))
        raise error from None


def driver(conn):
    kind = conn.getType()  # "QEMU", "LXC", "Xen" for libxl
    return driver_of({"xen": "libxl"}.get(kind.lower(), kind))


class HostFacts:
    """What the connection's host is: its online CPUs, the length of a cpumap, and its
    cgroup version when known (this machine's for a local URI; for another host it is
    read from each running domain's parameters, see cgroup_version())."""

    __slots__ = ("cpus", "cpumap_len", "cgroup_version", "local")

    def __init__(self, cpus, cpumap_len, cgroup_version=None, local=True):
        self.cpus = cpus
        self.cpumap_len = cpumap_len
        self.cgroup_version = cgroup_version
        self.local = local


def capabilities(conn):
    try:
        return conn.getCapabilities()
    except libvirt.libvirtError as e:
        raise PolicyError("cannot read the host's capabilities: %s" % error_text(e), LIBVIRT) from None


def is_local(conn):
    """True when the connection's host is this machine (no host in its URI)."""
    try:
        host = uri_host(conn.getURI())
    except libvirt.libvirtError:
        return True
    return host in (None, "", "localhost")


def uri_host(uri):
    """The host a libvirt URI names (driver[+transport]://[user@]host[:port]/path), in
    lower case, or None: urllib.parse.urlsplit(uri).hostname without importing
    urllib.parse (and ipaddress), which a quick policyctl command would pay for."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme or "/" in scheme:
        return None
    netloc = rest
    for end in "/?#":
        netloc = netloc.partition(end)[0]
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    else:
        host = host.partition(":")[0]
    return host.lower() or None


def host_facts(conn):
    local = is_local(conn)
    try:
        total, cpumap, _online = conn.getCPUMap()
        cpus = CpuSet.from_bools(cpumap)
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        # libvirt's libxl driver has no virNodeGetCPUMap; virsh counts the CPUs with
        # virNodeGetInfo then, and so do we (Xen's physical CPUs, all online).
        total, cpus = _node_cpus(conn)
    return HostFacts(cpus, total, local_cgroup_version() if local else None, local)


def _node_cpus(conn):
    """(cpumap length, CpuSet) from virNodeGetInfo: its CPU count, and the length of
    a map as virsh sizes it (nodes x sockets x cores x threads, when larger)."""
    _model, _memory, count, _mhz, nodes, sockets, cores, threads = conn.getInfo()
    return max(count, nodes * sockets * cores * threads), CpuSet.range(count)


# libvirt-python sizes the cpumaps of pinVcpuFlags and vcpuPinInfo with virNodeGetCPUMap,
# so on libvirt's libxl driver, which lacks it, both fail with VIR_ERR_NO_SUPPORT before
# the driver is asked (virsh falls back to virNodeGetInfo; the binding does not). The
# same C functions of the libvirt the binding has loaded work there, given the length.
_C = {}


def _no_cpumap(e):
    """True when the binding could not size a cpumap, as against a driver without the
    call itself: the unsupported function libvirt names (str2) is virNodeGetCPUMap."""
    return e.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT and e.get_str2() == "virNodeGetCPUMap"


def _c_api():
    if not _C:
        import ctypes
        lib = ctypes.CDLL("libvirt.so.0")
        cpumap = ctypes.POINTER(ctypes.c_ubyte)
        for name in ("virDomainPinVcpuFlags", "virDomainGetVcpuPinInfo"):
            getattr(lib, name).restype = ctypes.c_int
        lib.virDomainPinVcpuFlags.argtypes = (ctypes.c_void_p, ctypes.c_uint, cpumap, ctypes.c_int,
                                              ctypes.c_uint)
        lib.virDomainGetVcpuPinInfo.argtypes = (ctypes.c_void_p, ctypes.c_int, cpumap, ctypes.c_int,
                                                ctypes.c_uint)
        pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
            ("PyCapsule_GetPointer", ctypes.pythonapi))
        _C.update(lib=lib, ctypes=ctypes, domain=lambda dom: pointer(dom._o, b"virDomainPtr"))
    return _C


def _pin_vcpu(dom, vcpu, bools, flags):
    try:
        return dom.pinVcpuFlags(vcpu, bools, flags)
    except libvirt.libvirtError as e:
        if not _no_cpumap(e):
            raise
    c = _c_api()
    maplen = (len(bools) + 7) // 8
    cpumap = (c["ctypes"].c_ubyte * maplen)()
    for cpu, on in enumerate(bools):
        if on:
            cpumap[cpu // 8] |= 1 << (cpu % 8)
    if c["lib"].virDomainPinVcpuFlags(c["domain"](dom), vcpu, cpumap, maplen, flags) < 0:
        raise libvirt.libvirtError("virDomainPinVcpuFlags() failed")
    return 0


def _vcpu_pin_info(dom, flags):
    try:
        return dom.vcpuPinInfo(flags)
    except libvirt.libvirtError as e:
        if not _no_cpumap(e):
            raise
    c = _c_api()
    length, _cpus = _node_cpus(dom.connect())
    maplen = (length + 7) // 8
    count = dom.vcpusFlags(flags | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    cpumaps = (c["ctypes"].c_ubyte * (count * maplen))()
    got = c["lib"].virDomainGetVcpuPinInfo(c["domain"](dom), count, cpumaps, maplen, flags)
    if got < 0:
        raise libvirt.libvirtError("virDomainGetVcpuPinInfo() failed")
    return [tuple(bool(cpumaps[v * maplen + cpu // 8] & (1 << (cpu % 8))) for cpu in range(length))
            for v in range(got)]


# The setters and getters of tunables.PINS that need the above where the binding fails.
_SETTERS = {"pinVcpuFlags": _pin_vcpu}
_GETTERS = {"vcpuPinInfo": _vcpu_pin_info}


def cgroup_version(host, domain_driver, live):
    """The cgroup version the domain's scheduler parameters mean: the local host's, or
    what the live parameters show; cgroup v2 when nothing tells (every current distribution)."""
    if host.cgroup_version is not None:
        return host.cgroup_version
    return cgroup_version_of(domain_driver, live.sched if live is not None else {}) or 2


def lookup(conn, name):
    """The domain called `name`, or None when libvirt does not know it."""
    return _lookup(conn.lookupByName, name)


def _lookup(how, text):
    try:
        return how(text)
    except libvirt.libvirtError as e:
        if e.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG):
            return None
        raise PolicyError("cannot look up domain '%s': %s" % (text, error_text(e)), LIBVIRT) from None


def resolve(conn, text):
    """The domain `text` names as virsh resolves it: an Id, then a UUID, then a name;
    None when libvirt knows no such domain."""
    dom = None
    if text.isascii() and text.isdigit() and len(text) < 10:
        dom = _lookup(conn.lookupByID, int(text))
    if dom is None and len(text) in (32, 36) and all(c in "0123456789abcdefABCDEF-" for c in text):
        dom = _lookup(conn.lookupByUUIDString, text)
    return dom if dom is not None else _lookup(conn.lookupByName, text)


def domain_names(conn):
    """Every domain libvirt knows, running or not (for 'did you mean')."""
    try:
        return sorted(d.name() for d in conn.listAllDomains(0))
    except libvirt.libvirtError:
        return []


def is_running(dom):
    """True while the domain has live vCPUs (running or paused)."""
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return False


def facts(dom, name=None):
    """DomainFacts from the persistent definition (the admin's own <cputune>, not ours);
    for a running Xen domain also the host's scheduler (weight and cap need credit)."""
    try:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot read the XML of '%s': %s" % (dom.name(), error_text(e)),
                          LIBVIRT) from None
    found = parse_domain_xml(xml)
    if name is not None:
        found.name = name
    if found.driver == "libxl" and is_running(dom):
        try:
            found.scheduler = dom.schedulerType()[0]
        except libvirt.libvirtError:
            found.scheduler = None
    return found


def definition_xml(dom):
    """The persistent definition as libvirt would define it again (secrets included, so
    that redefining it loses nothing)."""
    try:
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot read the definition of '%s': %s" % (dom.name(), error_text(e)),
                          LIBVIRT) from None


def define(conn, name, xml):
    try:
        conn.defineXML(xml)
    except libvirt.libvirtError as e:
        raise PolicyError("%s: cannot define the new definition: %s" % (name, error_text(e)),
                          LIBVIRT) from None


def has_own_definition(dom, driver):
    """True when the domain has a persistent definition apart from its live one, which
    live changes leave alone. A transient domain has none; nor has Xen's dom0, which
    libvirt's libxl driver shows as persistent though its one definition is the live one
    (measured in the lab's dom0: `virsh dominfo Domain-0` says "Persistent: yes", and
    `virsh dumpxml --inactive Domain-0` shows the pins set live)."""
    try:
        if not dom.isPersistent():
            return False
        return not (driver == "libxl" and dom.ID() == 0)
    except libvirt.libvirtError:
        return True   # as if it had: nothing is recorded or defined on a guess


def defined_domains(conn):
    """Every domain with a persistent definition, running or not."""
    try:
        return conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot list domains: %s" % error_text(e), LIBVIRT) from None


def running_domains(conn):
    try:
        return conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    except libvirt.libvirtError as e:
        raise PolicyError("cannot list domains: %s" % error_text(e), LIBVIRT) from None


def apply_plan(dom, plan, cpumap_len, flags=AFFECT_LIVE, threads=None):
    """Put `plan` in force. Raises LIBVIRT naming the step that failed. libvirt's libxl
    driver takes scheduler parameters only with flags 0, which means the running
    domain (mapping.LIVE_SCHED_FLAG).

    The scheduler parameters go first: a guest that has just started runs every vCPU
    flat out, and once capped it leaves libvirtd the CPU time to pin its threads (one
    call each): measured at 64 vCPUs under TCG on 2 host CPUs, it shortens the whole.
    The vCPUs' scheduling policies go last, once each vCPU is on its own CPUs: a
    real-time vCPU never runs on a shared one (vcputhreads.py sets them; `threads` is
    its vcputhreads.Host, for tests)."""
    sched_flags = flags if LIVE_SCHED_FLAG.get(plan.driver, True) else flags & ~AFFECT_LIVE
    step = None
    try:
        if plan.sched:
            dom.setSchedulerParametersFlags(plan.sched, sched_flags)
        for (kind, index), cpus in plan.sorted_pins():
            step = (kind, index)
            row = PIN[kind]
            args = (index,) if row.indexed else ()
            args += (cpus.to_bools(cpumap_len), flags)
            if row.setter in _SETTERS:
                _SETTERS[row.setter](dom, *args)
            else:
                getattr(dom, row.setter)(*args)
    except (libvirt.libvirtError, LookupError) as e:
        # LookupError: the binding's own "Attribute name ... could not be recognized".
        raise StepFailed(plan, step, error_text(e)) from None
    if plan.vcpusched and flags & AFFECT_LIVE:
        _apply_vcpusched(dom, plan, threads)


def _apply_vcpusched(dom, plan, threads):
    from . import vcputhreads

    first = ("vcpusched", min(plan.vcpusched))
    if not is_local(dom.connect()):
        raise StepFailed(plan, first, "a vCPU's scheduling policy is set on its threads, and the "
                                      "domain runs on another host (libvirt has no call for it)")
    try:
        vcputhreads.apply(threads or vcputhreads.Host(), dom.name(), plan.vcpusched)
    except vcputhreads.VcpuThreadError as e:
        raise StepFailed(plan, first if e.index is None else ("vcpusched", e.index), e.detail) from None


def live_values(dom, driver="qemu", flags=AFFECT_LIVE, offline=True, threads=None):
    """A planner.Live of what is in force now (flags=AFFECT_CONFIG: the persistent
    definition). Pins the driver cannot set are not asked for (LXC has no such call);
    `offline=False` does not ask which vCPUs are offline (two calls fewer). The vCPUs'
    scheduling policies are read from the threads of a local QEMU domain (`threads`:
    vcputhreads.Host); elsewhere they are not known."""
    cannot = unsupported(driver)
    pins = {}
    try:
        for row in PINS:
            if row.key not in cannot:
                answer = (_GETTERS[row.getter](dom, flags) if row.getter in _GETTERS
                          else getattr(dom, row.getter)(flags))
                pins.update(((row.kind, i), CpuSet.from_bools(m)) for i, m in _READ[row.getter](answer))
    except libvirt.libvirtError as e:
        raise PolicyError("cannot read the pins of '%s': %s" % (dom.name(), error_text(e)),
                          LIBVIRT) from None
    try:
        sched = dom.schedulerParametersFlags(flags)
    except libvirt.libvirtError:
        try:
            sched = dom.schedulerParameters()
        except libvirt.libvirtError:
            sched = {}
    return Live(pins, sched, _offline(dom, driver, flags) if offline else (),
                _live_vcpusched(dom, cannot, flags, threads))


def _live_vcpusched(dom, cannot, flags, threads):
    if flags != AFFECT_LIVE or "vcpusched" in cannot or not is_local(dom.connect()):
        return None
    from . import vcputhreads
    try:
        return vcputhreads.policies(threads or vcputhreads.Host(), dom.name())
    except (vcputhreads.VcpuThreadError, OSError):
        return None


def _offline(dom, driver, flags):
    """The vCPUs of a running domain that are not online now (<vcpu current=...> below
    the maximum, or unplugged): libvirt keeps their pins and applies them at hotplug."""
    if flags != AFFECT_LIVE or "vcpupin" in unsupported(driver):
        return ()
    try:
        online = {info[0] for info in dom.vcpus()[0]}
        count = dom.vcpusFlags(AFFECT_LIVE | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    except libvirt.libvirtError:
        return ()
    return [("vcpu", v) for v in range(count) if v not in online]


def memory_nodes(dom, flags=AFFECT_LIVE):
    """The nodeset the domain's memory is bound to ('' when none), or None when libvirt
    cannot say."""
    try:
        return dom.numaParameters(flags).get(libvirt.VIR_DOMAIN_NUMA_NODESET, "")
    except libvirt.libvirtError:
        return None


def bind_memory(dom, node, flags=AFFECT_LIVE):
    """Bind a running domain's memory to NUMA node `node` (libvirt moves it, in strict
    mode only); PolicyError with libvirt's words where it refuses."""
    try:
        dom.setNumaParameters({libvirt.VIR_DOMAIN_NUMA_NODESET: str(node)}, flags)
    except libvirt.libvirtError as e:
        raise PolicyError("libvirt did not bind the memory of '%s' to NUMA node %d live: %s"
                          % (dom.name(), node, error_text(e)), LIBVIRT) from None
