"""hooks/lxc and hooks/libxl run as libvirtd runs them: each driver's own events, the same
never-hang rules, what the driver cannot do reported, and Xen's reboot cycle.

Xen cannot run on this machine kind (no Xen hypervisor), so the libxl path is tested here,
at the hook level, and in the mapping and planner tests; LXC also runs end to end
(tests/e2e/test_lxc.py). The appliers these hooks start talk to libvirt's test driver
([libvirt] lxc_uri and libxl_uri), never to the machine's libvirtd.
"""

import os
import time

import oracle
import pytest
from hookrun import HOOKS, domain_xml, log_text, notes, run_hook, save, state, unsupported
from unit_helpers import pinned

from policyhook.cpuset import CpuSet
from policyhook.hook import HANDLERS, OPERATIONS
from policyhook.model import HostPolicy
from policyhook.paths import Paths

LAST = oracle.host_cpus()[-1]   # read from sysfs by the test
CONF = ("[libvirt]\nuri = test:///default\nlxc_uri = test:///default\nlibxl_uri = test:///default\n"
        "[applier]\ntimeout = 10\n")
LXC_PINS = "vCPU pins, emulator pin (libvirt's LXC driver cannot pin)"
XEN_EMULATOR = "emulator pin (libvirt's libxl driver cannot pin the emulator)"


@pytest.fixture
def root(tmp_path):
    paths = Paths(str(tmp_path))
    os.makedirs(paths.domains)
    with open(paths.conf, "w") as f:
        f.write(CONF)
    return tmp_path


def wait_log(root, text, count=1, timeout=15):
    deadline = time.monotonic() + timeout
    while log_text(root).count(text) < count:
        assert time.monotonic() < deadline, "no %d x %r in the log:\n%s" % (count, text, log_text(root))
        time.sleep(0.05)


def hook(driver, root, name, op, sub, vcpus=2, **kw):
    return run_hook(root, name, op, sub, xml=domain_xml(name, vcpus, driver), hook=HOOKS[driver], **kw)


# ---- which events each driver's hook handles (libvirt's virhook.c) ----------------------


def test_each_driver_handles_its_own_operations():
    ops = {driver: sorted("%s %s" % k for k in table) for driver, table in OPERATIONS.items()}
    assert ops == {
        "qemu": ["migrate begin", "prepare begin", "reconnect begin", "release end", "restore begin",
                 "start begin", "started begin", "stopped end"],
        "lxc": ["prepare begin", "reconnect begin", "release end", "start begin", "started begin",
                "stopped end"],
        "libxl": ["migrate begin", "prepare begin", "reconnect begin", "release end", "start begin",
                  "started begin", "stopped end"],
    }
    for table in OPERATIONS.values():
        assert all(HANDLERS[k] is v for k, v in table.items())


@pytest.mark.parametrize("driver,op", [("lxc", "migrate"), ("lxc", "restore"), ("libxl", "restore"),
                                       ("lxc", "attach"), ("libxl", "prepare-end")])
def test_events_a_driver_does_not_have_exit_zero_silently(root, driver, op):
    save(root, pinned("vm1", {0: CpuSet([0])}, weight=512))
    r = hook(driver, root, "vm1", op, "begin")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert state(root, "vm1") is None


@pytest.mark.parametrize("driver", ["lxc", "libxl"])
@pytest.mark.parametrize("op,sub", [("prepare", "begin"), ("start", "begin"), ("started", "begin"),
                                    ("reconnect", "begin"), ("stopped", "end"), ("release", "end")])
def test_no_policy_is_a_no_op(root, driver, op, sub):
    r = hook(driver, root, "nopolicy", op, sub)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert not os.path.exists(Paths(str(root)).state)


@pytest.mark.parametrize("driver", ["lxc", "libxl"])
@pytest.mark.parametrize("op", ["start", "started", "reconnect"])
def test_start_started_and_reconnect_never_fail(root, driver, op):
    with open(Paths(str(root)).domain_file("vm1"), "wb") as f:
        f.write(b"\xff\xfe garbage")
    r = hook(driver, root, "vm1", op, "begin")
    assert (r.returncode, r.stderr) == (0, b"")


@pytest.mark.parametrize("driver", ["lxc", "libxl"])
def test_the_applier_is_detached(root, driver):
    """libvirtd waits for EOF on the hook's pipes: the applier, which cannot reach libvirt
    here and retries for 10 s, must not hold them."""
    with open(Paths(str(root)).conf, "w") as f:
        f.write("[libvirt]\n%s_uri = qemu+unix:///system?socket=/nonexistent\n[applier]\ntimeout = 10\n"
                % driver)
    save(root, pinned("vm1", weight=512))
    t0 = time.monotonic()
    r = hook(driver, root, "vm1", "start", "begin", timeout=8)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert time.monotonic() - t0 < 8
    assert state(root, "vm1")["result"] == "applying"


# ---- LXC: weight and cap as QEMU's, on the container's one cgroup; no pins -----------------


def test_lxc_prepare_plans_shares_and_quota_and_reports_pins(root):
    save(root, pinned("ct1", {0: CpuSet([LAST])}, emulatorpin=CpuSet([0]), weight=512, cap=50))
    r = hook("lxc", root, "ct1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    st = state(root, "ct1")
    assert st["result"] == "admitted"
    assert st["driver"] == "lxc"
    plan = st["plan"]
    assert (plan["vcpupin"], plan["emulatorpin"]) == ({}, None)
    assert plan["sched"] == {"cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": 50000}
    assert unsupported(plan) == [LXC_PINS]
    assert ("lxc ct1 prepare/begin: admitted; plan cpu_shares=2048, vcpu_period=100000, "
            "vcpu_quota=50000; unsupported: %s" % LXC_PINS) in log_text(root)


def test_lxc_pin_beyond_the_containers_vcpus_does_not_refuse_the_start(root):
    # Pins never take effect on a container, so they are not checked against it either.
    save(root, pinned("ct1", {7: CpuSet([LAST + 1])}))
    r = hook("lxc", root, "ct1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    assert unsupported(state(root, "ct1")["plan"]) == ["vCPU pins (libvirt's LXC driver cannot pin)"]


def test_lxc_container_outside_an_occupancy_set_is_reported(root):
    save(root, host=HostPolicy({0: ["other"]}))
    r = hook("lxc", root, "ct9", "prepare", "begin")
    assert r.returncode == 0
    plan = state(root, "ct9")["plan"]
    assert plan["vcpupin"] == {}
    assert notes(plan) == []
    assert unsupported(plan) == [
        "vCPUs and emulator kept off CPU 0 (cpuoccupy) (libvirt's LXC driver cannot pin)"]


def test_lxc_applier_uses_lxc_uri(root):
    save(root, pinned("ct-gone", weight=512))
    r = hook("lxc", root, "ct-gone", "start", "begin")
    assert r.returncode == 0
    wait_log(root, "lxc ct-gone applier (start/begin): domain is gone; nothing to apply")


# ---- libxl (Xen): weight and cap as they are; pins; no emulator pin --------------------------


def test_libxl_prepare_plans_weight_and_cap_as_they_are(root):
    save(root, pinned("xen1", {1: CpuSet([LAST])}, emulatorpin=CpuSet([0]), weight=512, cap=50))
    r = hook("libxl", root, "xen1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    plan = state(root, "xen1")["plan"]
    assert plan["driver"] == "libxl"
    assert (plan["vcpupin"], plan["emulatorpin"]) == ({"1": str(LAST)}, None)
    assert plan["sched"] == {"cap": 50, "weight": 512}
    assert unsupported(plan) == [XEN_EMULATOR]
    assert ("libxl xen1 prepare/begin: admitted; plan vCPU 1 -> %d, cap=50, weight=512; unsupported: %s"
            % (LAST, XEN_EMULATOR)) in log_text(root)


def test_libxl_prepare_refuses_a_conflict_as_qemu_does(root):
    save(root, pinned("xen1", {5: CpuSet([0])}))
    r = hook("libxl", root, "xen1", "prepare", "begin")
    assert r.returncode == 1
    assert r.stderr.decode() == ("policyhook: refusing to start 'xen1': vCPU 5 of 'xen1' has a pin, "
                                 "but the domain has 2 vCPUs (0-1)\n")


def test_libxl_migrate_writes_weight_as_shares_and_leaves_the_cap_to_the_applier(root):
    save(root, pinned("xen1", {1: CpuSet([0])}, weight=512, cap=150))
    r = hook("libxl", root, "xen1", "migrate", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    out = r.stdout.decode()
    assert out.startswith("<domain type=\"xen\">")
    # libvirt's libxl driver reads <shares> as the credit weight; it has no element for the cap.
    assert "<cputune><shares>512</shares><vcpupin vcpu=\"1\" cpuset=\"0\" /></cputune>" in out
    assert "cap=150 has no <cputune> element, the applier sets it at start" in log_text(root)


def test_libxl_migrate_with_only_a_cap_leaves_the_xml_alone(root):
    save(root, pinned("xen1", cap=150))
    r = hook("libxl", root, "xen1", "migrate", "begin")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_xen_reboot_runs_the_whole_cycle_and_the_policy_is_applied_again(root):
    """On Xen a guest reboot re-creates the domain: libvirt runs the full hook cycle
    (doc/design.md "libvirt facts": QEMU runs none). Each cycle plans the policy again at prepare and
    starts a new applier at start."""
    save(root, pinned("xen1", {0: CpuSet([LAST])}, weight=512, cap=50))
    pids = []
    for cycle in (1, 2):
        r = hook("libxl", root, "xen1", "prepare", "begin")
        assert (r.returncode, r.stderr) == (0, b"")
        st = state(root, "xen1")
        assert st["result"] == "admitted"
        assert st["plan"]["sched"] == {"cap": 50, "weight": 512}
        assert st["plan"]["vcpupin"] == {"0": str(LAST)}
        r = hook("libxl", root, "xen1", "start", "begin")
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
        wait_log(root, "libxl xen1 start/begin: applier started (pid ", cycle)
        # The applier asked libxl_uri for xen1 (the test driver has no such domain).
        wait_log(root, "libxl xen1 applier (start/begin): domain is gone; nothing to apply", cycle)
        r = hook("libxl", root, "xen1", "started", "begin")
        assert r.returncode == 0
        assert state(root, "xen1")["started_at"] > 0
        if cycle == 1:    # the guest reboots: Xen tears the domain down and builds it anew
            for op in ("stopped", "release"):
                assert hook("libxl", root, "xen1", op, "end").returncode == 0
                assert state(root, "xen1") is None
        pids = [line.rsplit("(pid ", 1)[1].rstrip(")") for line in log_text(root).splitlines()
                if "xen1 start/begin: applier started" in line]
    assert len(log_text(root).split("xen1 prepare/begin: admitted; plan ")) == 3
    assert len(pids) == 2 and pids[0] != pids[1]
