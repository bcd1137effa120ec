"""One policy on every driver with hooks: what each driver's libvirt can put in force,
the plan per driver, the adapter's calls, and policyctl on LXC and Xen domains.

The LXC fakes below behave as libvirt 9.0's LXC driver measured on the real daemon (its
pin calls fail with "this function is not supported by the connection driver"); the
libxl ones as libvirt's libxl driver reads (scheduler parameters only with flags 0 and
only under Xen's credit scheduler). Xen cannot run on this machine kind.
"""

import io
import xml.etree.ElementTree as ET

import libvirt
import pytest
from unit_helpers import policy, store

from policyhook import mapping, virt
from policyhook.api import PolicyManager
from policyhook.cli import show
from policyhook.cli.main import main as policyctl
from policyhook.cpuset import CpuSet
from policyhook.cputune import left_out, with_cputune
from policyhook.describe import note_lines, unsupported_lines, virsh_steps
from policyhook.domxml import DomainFacts
from policyhook.errors import CONFLICT, PolicyError
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.planner import Lost, Plan, plan
from policyhook.registry import Registry

HOST4 = CpuSet.parse("0-3")
LXC_PINS = {"vcpupin": "libvirt's LXC driver cannot pin", "emulatorpin": "libvirt's LXC driver cannot pin",
            "iothreadpin": "libvirt's LXC driver cannot pin", "vcpusched": "a container has no vCPU threads"}
XEN_PINS = {"emulatorpin": "libvirt's libxl driver cannot pin the emulator",
            "iothreadpin": "libvirt's libxl driver cannot pin IOThreads",
            "vcpusched": "Xen schedules its vCPUs itself; libvirt's libxl driver has no <vcpusched>"}
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
LXC_CANNOT = "libvirt's LXC driver cannot pin"
RTDS = "weight and cap are Xen's credit and credit2 schedulers'; this host runs rtds"


def facts(driver, vcpus=2, scheduler=None, name="vm"):
    return DomainFacts(name, driver, vcpus, scheduler=scheduler, iothreads=())


def said(outcome):
    out = io.StringIO()
    show.outcome(outcome, out)
    return out.getvalue().splitlines()


# ---- what each driver can do (mapping) ------------------------------------------------------


@pytest.mark.parametrize("driver,scheduler,expected", [
    ("qemu", None, {}),
    ("lxc", None, LXC_PINS),
    ("libxl", None, XEN_PINS),
    ("libxl", "credit", XEN_PINS),
    ("libxl", "credit2", XEN_PINS),
    ("libxl", "rtds", dict(XEN_PINS, weight=RTDS, cap=RTDS)),
    ("lxc", "rtds", LXC_PINS),
])
def test_unsupported_per_driver(driver, scheduler, expected):
    assert mapping.unsupported(driver, scheduler) == expected


def test_unsupported_is_grouped_by_reason():
    lost = [Lost("vcpupin", "a"), Lost("weight", "b"), Lost("emulatorpin", "a"), Lost("vcpupin", "a"),
            Lost("vcpupin", "a", CpuSet.parse("1-2")), Lost("iothreadpin", "a", CpuSet.parse("1-2"))]
    assert unsupported_lines(lost) == [
        "vCPU pins, emulator pin, vCPUs and IOThreads kept off CPUs 1-2 (cpuoccupy) (a)", "weight (b)"]
    assert unsupported_lines([]) == []


def test_libvirt_parameter_names_per_driver():
    assert mapping.sched_params("lxc", 1, 512, 50) == {
        "cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": 50000}
    assert mapping.sched_params("qemu", 1, 512, 50) == {
        "cpu_shares": 2048, "global_period": 100000, "global_quota": 50000}
    assert mapping.sched_params("libxl", 1, 512, 50) == {"weight": 512, "cap": 50}
    for driver, params in (("qemu", {"cpu_shares": 1, "global_quota": 1}),
                           ("lxc", {"cpu_shares": 1, "vcpu_quota": 1}),
                           ("libxl", {"weight": 1, "cap": 1})):
        assert mapping.sets(driver, "weight", params) and mapping.sets(driver, "cap", params)
        assert not mapping.sets(driver, "weight", {}) and not mapping.sets(driver, "cap", {})
    assert not mapping.sets("lxc", "cap", {"global_quota": 1})
    assert mapping.LIVE_SCHED_FLAG == {"qemu": True, "lxc": True, "libxl": False}


# ---- the plan per driver ----------------------------------------------------------------------


def test_lxc_plan_has_weight_and_cap_and_reports_pins():
    p = plan(policy("ct", {0: "1"}, emulator="0", weight=512, cap=50), HostPolicy(), facts("lxc"), HOST4)
    assert p.pins == {}
    assert p.sched == {"cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": 50000}
    assert unsupported_lines(p.unsupported) == ["vCPU pins, emulator pin (%s)" % LXC_CANNOT]
    assert not p.is_empty()


def test_lxc_plan_of_pins_alone_is_empty_but_says_why():
    p = plan(policy("ct", {5: "9"}), HostPolicy(), facts("lxc"), HOST4)
    assert p.is_empty()
    assert unsupported_lines(p.unsupported) == ["vCPU pins (%s)" % LXC_CANNOT]


def test_lxc_outside_an_occupancy_set_cannot_be_kept_off():
    p = plan(None, HostPolicy({1: ["a"], 2: ["a"]}), facts("lxc"), HOST4)
    assert (p.pins, p.notes) == ({}, [])
    assert unsupported_lines(p.unsupported) == [
        "vCPUs and emulator kept off CPUs 1-2 (cpuoccupy) (%s)" % LXC_CANNOT]
    # An occupant is not kept off anything: nothing to report.
    assert plan(None, HostPolicy({1: ["vm"]}), facts("lxc"), HOST4).unsupported == []


def test_libxl_plan_pins_vcpus_but_not_the_emulator():
    p = plan(policy("xen", {1: "2"}, emulator="3", weight=7, cap=0), HostPolicy({0: ["a"]}),
             facts("libxl"), HOST4)
    assert p.to_doc()["vcpupin"] == {"0": "1-3", "1": "2"}
    assert ("emulator", 0) not in p.pins
    assert p.sched == {"weight": 7, "cap": 0}
    assert note_lines(p) == ["CPU 0 is occupied by other domains (cpuoccupy); kept off it"]
    assert unsupported_lines(p.unsupported) == [
        "emulator pin, emulator kept off CPU 0 (cpuoccupy) (libvirt's libxl driver cannot pin the emulator)"]


def test_libxl_without_weight_and_cap_keeps_pins_and_reports_them():
    p = plan(policy("xen", {0: "1"}, weight=512, cap=50), HostPolicy(), facts("libxl", scheduler="rtds"),
             HOST4)
    assert p.to_doc()["vcpupin"] == {"0": "1"}
    assert p.sched == {}
    assert unsupported_lines(p.unsupported) == ["weight, cap (%s)" % RTDS]
    # credit2 has them, as credit does (measured with libvirt 11.3 and Xen 4.20).
    p = plan(policy("xen", {0: "1"}, weight=512, cap=50), HostPolicy(), facts("libxl", scheduler="credit2"),
             HOST4)
    assert (p.sched, p.unsupported) == ({"weight": 512, "cap": 50}, [])
    # Unknown scheduler (the hook at prepare): planned for credit; the applier knows better.
    assert plan(policy("xen", weight=512), HostPolicy(), facts("libxl"), HOST4).sched == {"weight": 512}


def test_plan_doc_round_trip_keeps_unsupported_and_reads_old_docs():
    p = plan(policy("ct", {0: "1"}, weight=3), HostPolicy(), facts("lxc"), HOST4)
    assert Plan.from_doc(p.to_doc()) == p
    doc = p.to_doc()
    del doc["unsupported"]          # a state file written before drivers were told apart
    assert Plan.from_doc(doc).unsupported == []
    assert [u.to_doc() for u in p.unsupported] == [
        {"setting": "vcpupin", "reason": LXC_CANNOT, "kept_off": None}]


def test_cputune_per_driver():
    xml = "<domain type='xen'><name>x</name><vcpu>2</vcpu></domain>"
    p = plan(policy("x", {1: "0"}, weight=512, cap=50), HostPolicy(), facts("libxl"), HOST4)
    tune = ET.fromstring(with_cputune(xml, p)).find("cputune")
    assert [(e.tag, e.text, dict(e.attrib)) for e in tune] == [
        ("shares", "512", {}), ("vcpupin", None, {"vcpu": "1", "cpuset": "0"})]
    assert left_out(p) == {"cap": 50}
    only_cap = plan(policy("x", cap=50), HostPolicy(), facts("libxl"), HOST4)
    assert with_cputune(xml, only_cap) == ""
    q = plan(policy("q", weight=512, cap=50), HostPolicy(), facts("qemu"), HOST4)
    assert left_out(q) == {}


# ---- the adapter's calls ---------------------------------------------------------------------


class Unsupported(libvirt.libvirtError):
    """The error libvirt's LXC driver gives for a call it lacks."""

    def __init__(self, api):
        msg = "this function is not supported by the connection driver: %s" % api
        Exception.__init__(self, msg)
        self.err = (libvirt.VIR_ERR_NO_SUPPORT, 0, msg, 2, None, None, None, 0, 0)


class NoDomain(libvirt.libvirtError):
    def __init__(self, name):
        msg = "Domain not found: no domain with matching name '%s'" % name
        Exception.__init__(self, msg)
        self.err = (libvirt.VIR_ERR_NO_DOMAIN, 0, msg, 2, None, None, None, 0, 0)


class FakeDomain:
    """A running LXC container or Xen domain, as far as policyhook asks."""

    XML = {"lxc": "<domain type='lxc'><name>{0}</name><vcpu>2</vcpu><os><type>exe</type></os></domain>",
           "libxl": "<domain type='xen'><name>{0}</name><vcpu>2</vcpu></domain>"}

    def __init__(self, name, driver, running=True, scheduler="credit"):
        self._name = name
        self.driver = driver
        self.running = running
        self.scheduler = scheduler
        self.calls = []
        self.sched = ({"cpu_shares": 1024, "vcpu_period": 100000, "vcpu_quota": -1} if driver == "lxc"
                      else {"weight": 256, "cap": 0})

    def name(self):
        return self._name

    def isActive(self):
        return self.running

    def isPersistent(self):
        return True

    def ID(self):
        return 7 if self.running else -1

    def XMLDesc(self, flags=0):
        return self.XML[self.driver].format(self._name)

    def schedulerType(self):
        if self.driver == "lxc":
            return ("posix", 3)
        return (self.scheduler, 2 if self.scheduler == "credit" else 0)

    def pinVcpuFlags(self, vcpu, cpumap, flags):
        if self.driver == "lxc":
            raise Unsupported("virDomainPinVcpuFlags")
        self.calls.append(("pinVcpuFlags", vcpu, tuple(cpumap), flags))

    def pinEmulator(self, cpumap, flags):
        raise Unsupported("virDomainPinEmulator")

    def vcpuPinInfo(self, flags):
        if self.driver == "lxc":
            raise Unsupported("virDomainGetVcpuPinInfo")
        return [(True, True, True, True), (True, True, True, True)]

    def emulatorPinInfo(self, flags):
        raise Unsupported("virDomainGetEmulatorPinInfo")

    def vcpus(self):
        return [(0, 1, 0, 0), (1, 1, 0, 1)], [(True,) * 4] * 2

    def vcpusFlags(self, flags):
        return 2

    def UUIDString(self):
        return "6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e99"

    def setSchedulerParametersFlags(self, params, flags):
        if self.driver == "libxl" and flags != 0:
            raise libvirt.libvirtError("unsupported flags (0x%x) in function "
                                       "libxlDomainSetSchedulerParametersFlags" % flags)
        self.calls.append(("setSchedulerParametersFlags", dict(params), flags))
        self.sched.update(params)

    def schedulerParametersFlags(self, flags):
        if self.driver == "libxl":
            raise libvirt.libvirtError("unsupported flags (0x%x)" % flags)
        return dict(self.sched)

    def schedulerParameters(self):
        return dict(self.sched)


class FakeConn:
    def __init__(self, kind, *domains):
        self.kind = kind
        self.domains = {d.name(): d for d in domains}

    def getType(self):
        return self.kind

    def getCapabilities(self):
        return "<capabilities><host><topology><cells num='0'/></topology></host></capabilities>"

    def getURI(self):
        return {"LXC": "lxc:///system", "Xen": "xen:///system"}.get(self.kind, "qemu:///system")

    def getCPUMap(self):
        return (4, [True] * 4, 4)

    def lookupByName(self, name):
        if name not in self.domains:
            raise NoDomain(name)
        return self.domains[name]

    def listAllDomains(self, flags=0):
        return [d for d in self.domains.values() if d.running]


def test_libxl_scheduler_parameters_go_with_flags_0_and_pins_live():
    dom = FakeDomain("xen", "libxl")
    p = plan(policy("xen", {0: "1"}, weight=512, cap=50), HostPolicy(), facts("libxl"), HOST4)
    virt.apply_plan(dom, p, 4)
    assert virsh_steps(p) == ["vcpupin 0 1", "schedinfo cap=50 weight=512"]
    # The cap first: a capped guest leaves libvirtd the CPU time to pin it.
    assert dom.calls == [("setSchedulerParametersFlags", {"cap": 50, "weight": 512}, 0),
                         ("pinVcpuFlags", 0, (False, True, False, False), LIVE)]


def test_lxc_live_values_ask_for_no_pins():
    dom = FakeDomain("ct", "lxc")
    live = virt.live_values(dom, "lxc")
    assert (live.pins, live.sched) == ({}, {"cpu_shares": 1024, "vcpu_period": 100000, "vcpu_quota": -1})
    with pytest.raises(PolicyError) as info:
        virt.live_values(dom, "qemu")
    assert str(info.value) == ("cannot read the pins of 'ct': this function is not supported by the "
                               "connection driver: virDomainGetVcpuPinInfo")


def test_libxl_live_values_fall_back_to_the_unflagged_call():
    live = virt.live_values(FakeDomain("xen", "libxl"), "libxl")
    assert live.sched == {"weight": 256, "cap": 0}
    assert live.pins == {("vcpu", 0): HOST4, ("vcpu", 1): HOST4}


def test_facts_know_the_xen_scheduler_of_a_running_domain():
    assert virt.facts(FakeDomain("xen", "libxl", scheduler="credit2")).scheduler == "credit2"
    assert virt.facts(FakeDomain("xen", "libxl", running=False)).scheduler is None
    assert virt.facts(FakeDomain("ct", "lxc")).scheduler is None
    assert virt.driver(FakeConn("Xen")) == "libxl"
    assert virt.driver(FakeConn("LXC")) == "lxc"


# ---- policyctl on a container and a Xen domain ------------------------------------------------


@pytest.fixture
def paths(tmp_path):
    return Paths(str(tmp_path))


def manager(paths, conn):
    return PolicyManager(paths, uri="lxc:///system", connect=lambda uri: conn, cgroup_version=1)


@pytest.mark.parametrize("call,what", [
    (lambda pm: pm.set_pin("ct", "vcpu", 0, "1"), "vCPU pins"),
    (lambda pm: pm.set_pin("ct", "emulator", None, "1"), "emulator pin"),
    (lambda pm: pm.set_pin("ct", "iothread", 1, "1"), "IOThread pins"),
    (lambda pm: pm.set_pin("ct", "vcpu", 0, "1", dry_run=True), "vCPU pins"),
    # not defined: the connection's driver
    (lambda pm: pm.set_pin("newct", "vcpu", 0, "1", undefined=True), "vCPU pins"),
])
def test_pins_on_lxc_are_refused_and_nothing_is_saved(paths, call, what):
    pm = manager(paths, FakeConn("LXC", FakeDomain("ct", "lxc")))
    with pytest.raises(PolicyError) as info:
        call(pm)
    name = "newct" if "newct" in str(info.value) else "ct"
    assert (info.value.code, str(info.value)) == (
        CONFLICT, "%s cannot be put in force on '%s' (LXC): %s; nothing saved" % (what, name, LXC_CANNOT))
    assert Registry(paths).names() == []


def test_weight_and_cap_on_lxc_are_applied_live(paths):
    ct = FakeDomain("ct", "lxc")
    pm = manager(paths, FakeConn("LXC", ct))
    out = pm.set_sched("ct", "cap", 50)
    assert said(out) == ["ct: cap 50% of one CPU: saved; applied live",
                         "  schedinfo vcpu_period=100000 vcpu_quota=50000"]
    pm.set_sched("ct", "weight", 512)
    assert ct.calls[-1] == ("setSchedulerParametersFlags",
                            {"cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": 50000}, LIVE)
    pm.unset_sched("ct", "cap")
    assert ct.calls[-1] == ("setSchedulerParametersFlags",
                            {"cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": -1}, LIVE)
    r = pm.report("ct")
    assert (r.driver, r.drift, r.live_weight, r.live_cap) == ("lxc", [], 512, 0)


def test_weight_on_xen_without_weight_and_cap_is_refused(paths):
    pm = manager(paths, FakeConn("Xen", FakeDomain("xen", "libxl", scheduler="rtds")))
    with pytest.raises(PolicyError) as info:
        pm.set_sched("xen", "weight", 512)
    assert str(info.value) == ("weight cannot be put in force on 'xen' (libxl (Xen)): %s; nothing saved"
                               % RTDS)
    # Pins still work there.
    assert virsh_steps(pm.set_pin("xen", "vcpu", 1, "2").applied) == ["vcpupin 1 2"]


def test_weight_and_cap_on_xen_under_credit2_go_with_flags_0(paths):
    dom = FakeDomain("xen", "libxl", scheduler="credit2")
    pm = manager(paths, FakeConn("Xen", dom))
    pm.set_sched("xen", "weight", 512)
    pm.set_sched("xen", "cap", 50)
    assert [c for c in dom.calls if c[0] == "setSchedulerParametersFlags"] == [
        ("setSchedulerParametersFlags", {"weight": 512}, 0),
        ("setSchedulerParametersFlags", {"weight": 512, "cap": 50}, 0)]


def test_cpupolicy_shows_what_the_driver_cannot_do_once(paths):
    ct = FakeDomain("ct", "lxc")
    reg = Registry(paths)
    store(reg, [policy("ct", {0: "1", 1: "2"}, emulator="0", weight=512)])   # as policyctl --offline would
    pm = manager(paths, FakeConn("LXC", ct))
    ct.sched["cpu_shares"] = 2048
    out = io.StringIO()
    show.policy_report(pm.report("ct"), out)
    text = out.getvalue()
    assert text.startswith("Domain:      ct (running, LXC)\n")
    assert text.count("Unsupported:") == 1
    assert "\nUnsupported: vCPU pins, emulator pin (libvirt's LXC driver cannot pin)\n" in text
    assert "weight    512     cpu_shares=2048  cpu_shares=2048\n" in text
    assert "Drift:       none; the live values match the policy\n" in text


def test_policyctl_says_it_on_the_command_line(paths):
    conn = FakeConn("LXC", FakeDomain("ct", "lxc"))
    out, err = io.StringIO(), io.StringIO()
    code = policyctl(["--root", paths.root, "-c", "lxc:///system", "vcpupin", "ct", "0", "1"],
                     out, err, connect=lambda uri: conn)
    assert (code, out.getvalue(), err.getvalue()) == (
        3, "", "Error: vCPU pins cannot be put in force on 'ct' (LXC): libvirt's LXC driver cannot pin; "
               "nothing saved\n")
    # Saved --offline (no driver known), then applied: the apply says what it left out.
    assert policyctl(["--root", paths.root, "--offline", "vcpupin", "ct", "0", "1"], out, err) == 0
    out = io.StringIO()
    code = policyctl(["--root", paths.root, "-c", "lxc:///system", "apply", "ct"], out, err,
                     connect=lambda uri: conn)
    assert (code, out.getvalue()) == (0, "ct: applied live (nothing to apply)\n"
                                         "  unsupported: vCPU pins (%s)\n" % LXC_CANNOT)


def test_cpuoccupy_lists_a_running_container_it_cannot_keep_off(paths):
    ct = FakeDomain("ct", "lxc")
    pm = manager(paths, FakeConn("LXC", ct))
    out = io.StringIO()
    show.occupancy_outcome(pm.occupy("1", "other", undefined=True), out)
    assert out.getvalue().splitlines() == [
        "CPU 1 occupied by other: saved; applied live to 0 running domains",
        "  ct: unsupported: vCPUs and emulator kept off CPU 1 (cpuoccupy) (%s)" % LXC_CANNOT]
    assert ct.calls == []
