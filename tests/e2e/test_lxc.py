"""LXC end to end: containers on the real libvirtd, the lxc hook installed by `make install`.

The same policy puts the same limits in force on a QEMU domain and an LXC container; what
libvirt's LXC driver cannot do (pins) is refused by policyctl and reported by the hook,
the applier and `cpupolicy`.
"""

import os

import lab
import pytest

LXC = lab.LXC_URI
UNIFIED = "/sys/fs/cgroup/unified/cgroup.controllers"


def _unavailable(reason):
    # In CI the LXC tests must run: fail with the reason. Elsewhere, skip and say why.
    if os.environ.get("CI"):
        pytest.fail("LXC lab unavailable: %s" % reason, pytrace=False)
    pytest.skip("LXC lab unavailable: %s" % reason)


@pytest.fixture(scope="module")
def lxc_ready(installed):
    if not lab.daemon_up(LXC):
        _unavailable("libvirtd answers no lxc:///system (install libvirt-daemon-driver-lxc and "
                     "restart libvirtd; scripts/setup-lab.sh does both)")
    if os.path.exists(UNIFIED):
        with open(UNIFIED) as f:
            left = f.read().split()
        if left:
            _unavailable("cgroup2 still holds controllers (%s) on this hybrid layout; libvirt's LXC "
                         "driver then fails to start a container with 'Unable to create directory "
                         "/sys/fs/cgroup/unified' (scripts/setup-lab.sh moves them to cgroup v1)"
                         % " ".join(left))
    if not os.access(lab.LXC_HOOK, os.X_OK):
        pytest.fail("the tests' hook instance %s is not installed" % lab.LXC_HOOK, pytrace=False)


@pytest.fixture
def containers(lxc_ready, request):
    """A factory of throwaway 2-vCPU containers running /bin/sh; all removed after."""
    made = []

    def make(suffix=""):
        name = lab.PREFIX + "lxc-" + request.node.name.replace("test_", "")[:24] + suffix
        lab.define(name, 2, uri=LXC)
        made.append(name)
        return name

    yield make
    for name in made:
        lab.undefine(name, LXC)
        for path in (lab.paths().domain_file(name), lab.paths().state_file(name)):
            if os.path.exists(path):
                os.unlink(path)


def _applied(name):
    return lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied" and lab.state(name),
                        20, "the applier's result for %s" % name)


def _log():
    with open(lab.paths().log) as f:
        return f.read()


def _lxc_sched(name, **want):
    def ok():
        sched = lab.schedinfo(name, uri=LXC)
        return all(sched.get(k) == str(v) for k, v in want.items()) and sched
    return lab.wait_for(ok, 20, "schedinfo %s of %s" % (want, name))


def test_same_policy_same_limits_on_qemu_and_lxc(domains, containers):
    vm, ct = domains(), containers()
    for name, uri in ((vm, lab.URI), (ct, LXC)):
        for args in (("schedweight", name, "512"), ("schedcap", name, "50")):
            r = lab.policyctl("-c", uri, *args)
            assert r.returncode == 0, r.stderr
            assert "saved; applies at next start (domain is not running)" in r.stdout
    lab.virsh("start", vm)
    lab.virsh("start", ct, uri=LXC)

    assert _lxc_sched(ct, cpu_shares=2048, vcpu_period=100000, vcpu_quota=50000)
    lab.wait_for(lambda: lab.schedinfo(vm).get("global_quota") == "50000", 20, "QEMU's quota")
    assert lab.schedinfo(vm)["cpu_shares"] == "2048"
    assert _applied(ct)["source"] == "hook start/begin"
    assert _applied(vm)["source"] == "hook start/begin"

    # The same limits in the kernel: each domain's own cgroup gets 2048 shares and 50 ms of
    # CPU time per 100 ms, half of one CPU for the whole domain.
    limits = {}
    for name, uri in ((vm, lab.URI), (ct, LXC)):
        cg = lab.domain_cgroup(name, uri)
        limits[name] = tuple(lab.cgroup_value(cg, f) for f in
                             ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"))
    assert limits == {vm: ("2048", "50000", "100000"), ct: ("2048", "50000", "100000")}

    # A live change reaches the container at once, through vcpu_quota.
    r = lab.policyctl("-c", LXC, "schedcap", ct, "25")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "%s: cap 25%% of one CPU: saved; applied live" % ct
    assert "  schedinfo cpu_shares=2048 vcpu_period=100000 vcpu_quota=25000\n" in r.stdout
    assert lab.cgroup_value(lab.domain_cgroup(ct, LXC), "cpu.cfs_quota_us") == "25000"
    r = lab.policyctl("-c", LXC, "cpupolicy", ct)
    assert r.returncode == 0, r.stderr
    assert "Domain:      %s (running, LXC)" % ct in r.stdout
    assert "Drift:       none; the live values match the policy" in r.stdout
    assert "Unsupported" not in r.stdout


def test_pins_on_lxc_are_refused_by_policyctl(containers):
    ct = containers()
    for args, what in ((("vcpupin", ct, "0", "1"), "vCPU pins"), (("emulatorpin", ct, "1"), "emulator pin")):
        r = lab.policyctl("-c", LXC, *args)
        assert r.returncode == 3, (r.stdout, r.stderr)
        assert r.stderr == ("Error: %s cannot be put in force on '%s' (LXC): libvirt's LXC driver "
                            "cannot pin; nothing saved\n" % (what, ct))
    assert not os.path.exists(lab.paths().domain_file(ct))


def test_pins_stored_offline_are_reported_not_dropped(containers):
    ct = containers()
    # Recorded with no libvirt to ask (--offline), so policyctl could not know ct is a container.
    for args in (("vcpupin", ct, "0", "1"), ("schedweight", ct, "512")):
        assert lab.policyctl("--offline", *args).returncode == 0
    lab.virsh("start", ct, uri=LXC)
    _lxc_sched(ct, cpu_shares=2048)
    st = _applied(ct)
    unsupported = "vCPU pins (libvirt's LXC driver cannot pin)"
    assert st["plan"]["unsupported"] == [
        {"setting": "vcpupin", "reason": "libvirt's LXC driver cannot pin", "kept_off": None}]
    log = _log()
    assert "lxc %s prepare/begin: admitted; plan cpu_shares=2048; unsupported: %s" % (ct, unsupported) in log
    assert "lxc %s applier (start/begin): applied schedinfo cpu_shares=2048" % ct in log
    assert "after the started hook; unsupported: %s" % unsupported in log

    r = lab.policyctl("-c", LXC, "cpupolicy", ct)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Unsupported: ") == 1
    assert "Unsupported: %s\n" % unsupported in r.stdout
    assert "Drift:       none; the live values match the policy" in r.stdout
    r = lab.policyctl("-c", LXC, "apply", ct)
    assert (r.returncode, r.stdout) == (0, "%s: applied live\n  schedinfo cpu_shares=2048\n"
                                            "  unsupported: %s\n" % (ct, unsupported))

    # What libvirt itself says, so the reason above is the driver's and not ours.
    r = lab.virsh("vcpupin", ct, "0", "1", "--live", uri=LXC, check=False)
    assert r.returncode == 1
    assert "this function is not supported by the connection driver: virDomainPinVcpuFlags" in r.stderr
    r = lab.virsh("emulatorpin", ct, "1", "--live", uri=LXC, check=False)
    assert r.returncode == 1
    assert "this function is not supported by the connection driver: virDomainPinEmulator" in r.stderr


@pytest.mark.restarts_libvirtd
def test_reconnect_applies_a_change_made_while_libvirtd_was_down(containers):
    ct = containers()
    assert lab.policyctl("-c", LXC, "schedcap", ct, "50").returncode == 0
    lab.virsh("start", ct, uri=LXC)
    _lxc_sched(ct, vcpu_quota=50000)
    lab.stop_daemon()
    try:
        r = lab.policyctl("-c", LXC, "schedcap", ct, "30")
        assert r.returncode == 0
        assert "not applied live (libvirt unreachable)" in r.stdout
    finally:
        lab.start_daemon()
    # libvirtd runs the lxc hook's `reconnect begin` for the running container.
    _lxc_sched(ct, vcpu_quota=30000)
    assert lab.virsh("domstate", ct, uri=LXC).stdout.strip() == "running"
    assert lab.wait_for(lambda: (lab.state(ct) or {}).get("source") == "hook reconnect/begin",
                        20, "the reconnect applier")


def test_container_without_policy_starts_untouched(containers):
    ct = containers()
    lab.virsh("start", ct, uri=LXC)
    sched = lab.schedinfo(ct, uri=LXC)
    assert (sched["cpu_shares"], sched["vcpu_quota"]) == ("1024", "-1")
    assert lab.state(ct) is None
