"""Layer 2: PolicyManager against libvirt's test driver with our own host XML.

Real API calls, no daemon. The test driver looks domains up, reports their XML, state
and pins, and pins with flags=0; it refuses pinVcpuFlags with AFFECT_LIVE and every
flagged scheduler call (doc/design.md "libvirt facts"). So the live apply is checked through a
thin wrapper around the real connection whose domains record those three calls and
carry them out the way the test driver can (pinVcpu with flags=0; the scheduler
parameters kept in the wrapper). Its getCPUMap() is fixed: 8 entries, CPUs 0,2,4 online,
whatever the <node> says, so those are "the host's CPUs" here.
"""

import io
import os

import libvirt
import pytest
from testdriver import URI, RecordingConn
from unit_helpers import policy, store

from policyhook import errors, state
from policyhook.api import PolicyManager
from policyhook.cli import show
from policyhook.cpuset import CpuSet
from policyhook.describe import drift_line, plan_line, virsh_steps
from policyhook.errors import PolicyError
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.results import Status
from policyhook.settings import Settings

HOST = CpuSet.parse("0,2,4")
UUID = {"running2": "11111111-2222-3333-4444-555555555555", "pinned1": "11111111-2222-3333-4444-666666666666",
        "stopped": "11111111-2222-3333-4444-777777777777"}
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def bools(text, length=8):
    return CpuSet.parse(text).to_bools(length)


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield c
    c.close()


@pytest.fixture
def fake(conn):
    return RecordingConn(conn)


@pytest.fixture
def paths(tmp_path):
    return Paths(str(tmp_path))


def manager(paths, conn):
    return PolicyManager(paths, uri=URI, connect=lambda uri: conn, cgroup_version=1)


def said(outcome):
    """The first line policyctl prints for an outcome."""
    out = io.StringIO()
    if hasattr(outcome, "change"):
        show.outcome(outcome, out)
    else:
        show.occupancy_outcome(outcome, out)
    return out.getvalue().splitlines()


def refused(fn):
    with pytest.raises(PolicyError) as info:
        fn()
    return info.value


# ---- lookups, host CPUs, vCPU counts ----------------------------------------------------


def test_context_of_each_kind_of_domain(paths, conn):
    pm = manager(paths, conn)
    ctx = pm.context("running2")
    assert (ctx.running, ctx.facts.vcpus, ctx.facts.driver) == (True, 2, "qemu")
    assert (ctx.host.cpus, ctx.host.cpumap_len) == (HOST, 8)
    assert ctx.facts.uuid == "11111111-2222-3333-4444-555555555555"
    ctx = pm.context("pinned1")
    assert ctx.facts.pins == {("vcpu", 0): CpuSet.parse("2,4"), ("emulator", 0): CpuSet.parse("4")}
    ctx = pm.context("stopped")
    assert (ctx.running, ctx.facts.vcpus, ctx.dom is not None) == (False, 3, True)
    ctx = pm.context("nosuch")
    assert (ctx.running, ctx.facts.vcpus, ctx.dom) == (False, None, None)


def test_uri_comes_from_the_settings_by_default(paths, conn):
    seen = []
    pm = PolicyManager(paths, connect=lambda uri: seen.append(uri) or conn, cgroup_version=1)
    pm.context("running2")
    assert seen == ["qemu:///system"]


@pytest.mark.parametrize("name,vcpu,message", [
    ("running2", 5, "invalid vCPU 5: domain 'running2' has 2 vCPUs (0-1)"),
    ("running2", 2, "invalid vCPU 2: domain 'running2' has 2 vCPUs (0-1)"),
    ("stopped", 3, "invalid vCPU 3: domain 'stopped' has 3 vCPUs (0-2)"),
])
def test_vcpu_beyond_the_domain(paths, fake, name, vcpu, message):
    e = refused(lambda: manager(paths, fake).set_pin(name, "vcpu", vcpu, "0"))
    assert (e.code, str(e)) == (errors.INVALID, message)
    assert fake.calls == []
    assert Registry(paths).names() == []


@pytest.mark.parametrize("call,message", [
    (lambda pm: pm.set_pin("running2", "vcpu", 0, "1"),
     "invalid cpulist '1': CPU 1 not on this host (host CPUs: 0,2,4)"),
    (lambda pm: pm.set_pin("stopped", "emulator", None, "0-2"),
     "invalid cpulist '0-2': CPU 1 not on this host (host CPUs: 0,2,4)"),
    (lambda pm: pm.set_sched("running2", "cap", 301), "invalid cap 301: above 300 (100 x 3 host CPUs)"),
])
def test_cpus_beyond_the_host(paths, fake, call, message):
    e = refused(lambda: call(manager(paths, fake)))
    assert (e.code, str(e)) == (errors.INVALID, message)
    assert fake.calls == []


def test_not_defined_and_not_running(paths, fake):
    pm = manager(paths, fake)
    out = pm.set_sched("nosuch", "weight", 512, undefined=True)
    assert out.status is Status.NOT_DEFINED
    assert said(out) == ["nosuch: weight 512: saved; applies at next start (libvirt does not know the "
                         "domain yet)"]
    out = pm.set_pin("stopped", "vcpu", 2, "4")
    assert out.status is Status.NOT_RUNNING
    assert said(out) == ["stopped: vCPU 2 pinned to 4: saved; applies at next start (domain is not running)"]
    assert fake.calls == []
    assert Registry(paths).load("stopped") == policy("stopped", {2: "4"}, uuid=UUID["stopped"])
    assert Registry(paths).load("nosuch") == policy("nosuch", weight=512)


def test_conflict_with_the_xml_vcpu_count(paths, fake):
    # A stored pin the domain no longer has a vCPU for: cpupolicy reports the conflict.
    reg = Registry(paths)
    store(reg, [policy("running2", {3: "0"})])
    r = manager(paths, fake).report("running2")
    assert r.conflict == "vCPU 3 of 'running2' has a pin, but the domain has 2 vCPUs (0-1)"
    assert r.effective is None
    assert r.to_doc()["effective"] is None


# ---- live apply ------------------------------------------------------------------------


def test_real_test_driver_refuses_live_flags(paths, conn):
    # Without the wrapper: the real pinVcpuFlags(..., AFFECT_LIVE) fails on the test driver, and
    # the error says so, with the policy saved and the failure in the runtime state.
    e = refused(lambda: manager(paths, conn).set_pin("running2", "vcpu", 0, "0"))
    assert e.code == errors.LIBVIRT
    assert str(e) == ("running2: vcpupin 0 0 failed: unsupported flags (0x1) in function "
                      "testDomainPinVcpuFlags (the policy is saved; run 'policyctl apply running2' to retry)")
    assert Registry(paths).load("running2") == policy("running2", {0: "0"}, uuid=UUID["running2"])
    assert state.read(paths, "running2")["result"] == "failed"


def test_vcpupin_applied_live(paths, fake, conn):
    out = manager(paths, fake).set_pin("running2", "vcpu", 1, "2,4")
    assert out.status is Status.APPLIED
    assert said(out) == ["running2: vCPU 1 pinned to 2,4: saved; applied live", "  vcpupin 1 2,4"]
    assert virsh_steps(out.applied) == ["vcpupin 1 2,4"]
    assert fake.calls == [("running2", "pinVcpuFlags", 1, bools("2,4"), LIVE)]
    assert conn.lookupByName("running2").vcpuPinInfo(0)[1] == bools("2,4")
    doc = state.read(paths, "running2")
    assert (doc["result"], doc["source"], doc["applied"]["vcpupin"]) == ("applied", "policyctl", {"1": "2,4"})


def test_emulatorpin_applied_live(paths, fake, conn):
    out = manager(paths, fake).set_pin("running2", "emulator", None, "0")
    assert virsh_steps(out.applied) == ["emulatorpin 0"]
    assert fake.calls == [("running2", "pinEmulator", bools("0"), LIVE)]
    assert conn.lookupByName("running2").emulatorPinInfo(0) == bools("0")


def test_weight_and_cap_applied_live_and_reset(paths, fake):
    pm = manager(paths, fake)
    pm.set_sched("running2", "weight", 512)
    pm.set_sched("running2", "cap", 50)
    pm.unset_sched("running2", "weight")
    pm.unset_sched("running2", "cap")
    assert [c[1:] for c in fake.calls] == [
        ("setSchedulerParametersFlags", {"cpu_shares": 2048}, LIVE),
        ("setSchedulerParametersFlags", {"cpu_shares": 2048, "global_period": 100000, "global_quota": 50000},
         LIVE),
        # unset weight: the default goes back in, the cap stays
        ("setSchedulerParametersFlags", {"cpu_shares": 1024, "global_period": 100000, "global_quota": 50000},
         LIVE),
        # unset cap: no quota
        ("setSchedulerParametersFlags", {"global_period": 100000, "global_quota": -1}, LIVE),
    ]
    assert Registry(paths).load("running2") is None


def test_unset_pin_restores_the_xml_pin_or_every_host_cpu(paths, fake):
    pm = manager(paths, fake)
    pm.set_pin("pinned1", "vcpu", 0, "0")
    pm.set_pin("running2", "vcpu", 0, "0")
    del fake.calls[:]
    pm.unset_pin("pinned1", "vcpu", 0)
    pm.unset_pin("running2", "vcpu", None)
    assert fake.calls == [
        ("pinned1", "pinVcpuFlags", 0, bools("2,4"), LIVE),     # back to its <cputune> pin
        ("running2", "pinVcpuFlags", 0, bools("0,2,4"), LIVE),  # back to every host CPU
    ]


def test_dry_run_touches_nothing(paths, fake):
    out = manager(paths, fake).set_pin("running2", "vcpu", 0, "2", dry_run=True)
    assert said(out) == ["running2: vCPU 0 pinned to 2: would be saved (dry run)", "plan: vCPU 0 -> 2"]
    assert out.plan.pins == {("vcpu", 0): CpuSet.parse("2")}
    assert fake.calls == []
    assert not os.path.exists(paths.domains)


def test_report_shows_live_values_and_drift(paths, fake, conn):
    pm = manager(paths, fake)
    pm.set_pin("running2", "vcpu", 0, "2")
    pm.set_sched("running2", "weight", 512)
    r = pm.report("running2")
    assert (r.running, r.defined, r.stored) == (True, True, True)
    doc = r.to_doc()
    assert doc["live"]["vcpupin"] == {"0": "2", "1": "0-3"}
    assert (doc["live"]["weight"], doc["live"]["cap"]) == (512, None)
    assert r.drift == []
    # Someone pins by hand behind our back: cpupolicy shows the drift, apply puts it back.
    conn.lookupByName("running2").pinVcpu(0, bools("4"))
    assert [drift_line(d) for d in pm.report("running2").drift] == ["vCPU 0: policy 2, live 4"]
    del fake.calls[:]
    results = pm.apply(["running2", "stopped"])
    assert [(r.domain, r.status, r.applied and virsh_steps(r.applied), r.error) for r in results] == [
        ("running2", Status.APPLIED, ["vcpupin 0 2", "schedinfo cpu_shares=2048"], None),
        ("stopped", Status.NOT_RUNNING, None, None),
    ]
    assert pm.report("running2").drift == []


def test_apply_all_running(paths, fake):
    pm = manager(paths, fake)
    reg = Registry(paths)
    store(reg, [policy("pinned1", emulator="2"), policy("stopped", weight=3)])
    results = pm.apply()
    assert [(r.domain, r.status, r.applied and virsh_steps(r.applied)) for r in results] == [
        ("pinned1", Status.APPLIED, ["emulatorpin 2"]), ("running2", Status.APPLIED, None)]
    assert fake.calls == [("pinned1", "pinEmulator", bools("2"), LIVE)]


# ---- cpuoccupy on running domains ----------------------------------------------------------


def test_cpuoccupy_repins_running_domains(paths, fake, conn):
    pm = manager(paths, fake)
    out = pm.occupy("2", "running2")
    assert said(out) == [
        "CPU 2 occupied by running2: saved; applied live to 1 running domain",
        "  pinned1: re-pinned live: vCPU 0 -> 4, emulator -> 4",
    ]
    assert fake.calls == [("pinned1", "pinVcpuFlags", 0, bools("4"), LIVE),
                          ("pinned1", "pinEmulator", bools("4"), LIVE)]
    assert Registry(paths).load_host() == HostPolicy({2: ["running2"]})
    # Clearing the CPU puts pinned1 back on its own <cputune> pins.
    del fake.calls[:]
    out = pm.occupy("2", None)
    assert said(out)[0] == "CPU 2 no longer occupied: saved; applied live to 1 running domain"
    assert fake.calls == [("pinned1", "pinVcpuFlags", 0, bools("2,4"), LIVE),
                          ("pinned1", "pinEmulator", bools("4"), LIVE)]
    assert Registry(paths).load_host() == HostPolicy()


TRANSIENT = """<domain type="test"><name>transient1</name>
<uuid>11111111-2222-3333-4444-888888888888</uuid><memory unit="MiB">64</memory>
<vcpu placement="static">1</vcpu><os><type arch="i686">hvm</type></os></domain>"""


def test_cpuoccupy_gives_a_transient_domain_its_cpus_back(paths, fake, conn):
    # A transient domain (Xen's dom0, virsh create) has no definition but its live one,
    # which the live pins change: what it had is recorded before policyhook first pins
    # it, so clearing the set gives it back (not the pins cpuoccupy gave it).
    conn.createXML(TRANSIENT, 0)
    pm = manager(paths, fake)
    pm.occupy("2", "running2")
    assert ("transient1", "pinVcpuFlags", 0, bools("0,4"), LIVE) in fake.calls
    assert os.path.exists(paths.originals_file("transient1"))
    del fake.calls[:]
    out = pm.occupy("2", None)
    assert said(out)[0] == "CPU 2 no longer occupied: saved; applied live to 2 running domains"
    assert ("transient1", "pinVcpuFlags", 0, bools("0,2,4"), LIVE) in fake.calls
    # A persistent domain's own pins come from its definition, never from a record.
    assert not os.path.exists(paths.originals_file("pinned1"))


class Dom0:
    """Xen's dom0 as libvirt's libxl driver shows it: persistent, ID 0."""

    def isPersistent(self):
        return 1

    def ID(self):
        return 0


def test_xen_dom0_has_no_definition_apart_from_its_live_one(conn):
    from policyhook import virt

    assert not virt.has_own_definition(Dom0(), "libxl")
    assert virt.has_own_definition(Dom0(), "qemu")   # ID 0 means nothing there
    assert virt.has_own_definition(conn.lookupByName("pinned1"), "test")
    dom = conn.createXML(TRANSIENT, 0)
    assert not virt.has_own_definition(dom, "test")


def test_host_policy_active_keeps_the_sets_with_one_running():
    host = HostPolicy({1: ["a", "b"], 2: ["c"]})
    assert host.active({"b", "x"}) == HostPolicy({1: ["a", "b"]})
    assert host.active(()) == HostPolicy()


def test_running_mode_moves_others_only_while_an_occupant_runs(paths, fake):
    # [occupancy] mode = running: 'stopped' occupies CPU 2 but is not running, so
    # pinned1 keeps it; the applier of its start and the updater of its release move
    # the others (Session.repin_others).
    settings = Settings()
    settings.occupancy_mode = "running"
    pm = PolicyManager(paths, uri=URI, settings=settings, connect=lambda uri: fake, cgroup_version=1)
    out = pm.occupy("2", "stopped")
    assert said(out) == ["CPU 2 occupied by stopped: saved; applied live to 0 running domains"]
    assert fake.calls == []
    moved = pm.repin_others(set(), {"stopped"}, skip="stopped")
    assert sorted((name, plan_line(p)) for name, p in moved) == [
        ("pinned1", "vCPU 0 -> 4, emulator -> 4"),
        ("running2", "vCPU 0 -> 0,4, vCPU 1 -> 0,4, emulator -> 0,4")]
    assert ("pinned1", "pinVcpuFlags", 0, bools("4"), LIVE) in fake.calls
    del fake.calls[:]
    assert pm.repin_others({"stopped"}, {"stopped", "running2"}) == []   # nothing freed or taken
    assert fake.calls == []
    moved = pm.repin_others({"stopped"}, set())
    assert sorted((name, plan_line(p)) for name, p in moved) == [
        ("pinned1", "vCPU 0 -> 2,4, emulator -> 4"),
        ("running2", "vCPU 0 -> 0,2,4, vCPU 1 -> 0,2,4, emulator -> 0,2,4")]
    assert ("pinned1", "pinVcpuFlags", 0, bools("2,4"), LIVE) in fake.calls
    # Static mode: never.
    settings.occupancy_mode = "static"
    assert pm.repin_others(set(), {"stopped"}) == []


def test_cpuoccupy_refuses_a_hand_pinned_vcpu(paths, fake, conn):
    # The rule on live pins (doc/design.md "Occupancy"): a running domain outside DOMAINS
    # pinned (by hand) only to that pCPU.
    conn.lookupByName("running2").pinVcpu(1, bools("2"))
    e = refused(lambda: manager(paths, fake).occupy("2", "pinned1"))
    assert e.code == errors.CONFLICT
    assert str(e) == ("running domain 'running2' has vCPU 1 pinned only to 2 (live); it cannot be occupied "
                      "by pinned1 (unpin it first: virsh vcpupin running2 1 --live CPULIST)")
    assert fake.calls == []
    assert not os.path.exists(paths.host_file)


def test_cpuoccupy_refuses_an_xml_pin_left_empty(paths, fake):
    e = refused(lambda: manager(paths, fake).occupy("4", "running2"))
    assert e.code == errors.CONFLICT
    assert str(e) == "the emulator of 'pinned1' is pinned to 4 (domain XML), which is occupied by running2 " \
                     "(cpuoccupy); it would have no CPU left"
    assert fake.calls == []


def test_unreachable_libvirt_saves_and_warns(paths):
    def broken(uri):
        raise PolicyError("cannot connect to %s: no daemon" % uri, errors.LIBVIRT)
    pm = PolicyManager(paths, uri=URI, connect=broken, cgroup_version=1)
    out = pm.set_sched("running2", "weight", 5)
    assert out.status is Status.OFFLINE
    assert said(out) == ["running2: weight 5: saved; not applied live (libvirt unreachable)"]
    assert show.libvirt_warning(out.libvirt_error) == \
        "cannot connect to %s: no daemon; the change is saved but not applied live" % URI
    e = refused(lambda: pm.apply(["running2"]))
    assert (e.code, str(e)) == (errors.LIBVIRT, "cannot connect to %s: no daemon" % URI)


# ---- IOThreads --------------------------------------------------------------------------

IO_XML = """<domain type='test'><name>io2</name><memory unit='MiB'>64</memory><vcpu>2</vcpu>
  <iothreads>2</iothreads><os><type arch='i686'>hvm</type></os></domain>"""


@pytest.fixture
def io2(conn):
    dom = conn.defineXML(IO_XML)
    dom.create()
    return dom


def test_iothread_pin_applied_live_and_read_back(paths, fake, io2):
    pm = manager(paths, fake)
    out = pm.set_pin("io2", "iothread", 2, "4")
    assert said(out) == ["io2: IOThread 2 pinned to 4: saved; applied live", "  iothreadpin 2 4"]
    assert fake.calls == [("io2", "pinIOThread", 2, bools("4"), LIVE)]
    assert dict(io2.ioThreadInfo(0))[2] == list(bools("4"))
    r = pm.report("io2")
    assert r.drift == []
    assert r.to_doc()["live"]["iothreadpin"]["2"] == "4"
    assert Registry(paths).load("io2").pins == {("iothread", 2): CpuSet.parse("4")}
    # Unset: back on every host CPU, live.
    del fake.calls[:]
    pm.unset_pin("io2", "iothread", 2)
    assert fake.calls == [("io2", "pinIOThread", 2, bools("0,2,4"), LIVE)]


@pytest.mark.parametrize("name,index,message", [
    ("io2", 3, "invalid IOThread ID 3: domain 'io2' has 2 IOThreads (1-2)"),
    ("running2", 1, "invalid IOThread ID 1: domain 'running2' has no IOThreads"),
])
def test_iothread_beyond_the_domain(paths, fake, io2, name, index, message):
    e = refused(lambda: manager(paths, fake).set_pin(name, "iothread", index, "0"))
    assert (e.code, str(e)) == (errors.INVALID, message)
    assert fake.calls == []


def test_cpuoccupy_keeps_iothreads_off_like_the_emulator(paths, fake, io2):
    pm = manager(paths, fake)
    out = pm.occupy("2", "running2")
    assert "  io2: re-pinned live: vCPU 0 -> 0,4, vCPU 1 -> 0,4, emulator -> 0,4, IOThread 1 -> 0,4, " \
           "IOThread 2 -> 0,4" in said(out)
    assert ("io2", "pinIOThread", 1, bools("0,4"), LIVE) in fake.calls
    assert ("io2", "pinIOThread", 2, bools("0,4"), LIVE) in fake.calls
