"""The hook run as libvirtd runs it, for every event, good and bad policies."""

import fcntl
import os
import time

import oracle
import pytest
from hookrun import domain_xml, log_text, run_hook, save, state
from unit_helpers import pinned

from policyhook.cpuset import CpuSet
from policyhook.model import HostPolicy
from policyhook.paths import Paths

# The host the hook plans against, read from sysfs by the test (not through the hook's code).
HOST = oracle.cpulist_text(oracle.host_cpus())
LAST = oracle.host_cpus()[-1]


@pytest.fixture
def root(tmp_path):
    paths = Paths(str(tmp_path))
    os.makedirs(paths.domains)
    # The applier must never reach the machine's libvirtd from these tests.
    write_conf(paths, "[libvirt]\nuri = test:///default\n[applier]\ntimeout = 10\n")
    return tmp_path


def write_conf(paths, text):
    with open(paths.conf, "w") as f:
        f.write(text)


EVENTS_IGNORED = [("prepare", "end"), ("started", "end"), ("stopped", "begin"),
                  ("attach", "begin"), ("shutdown", "begin"), ("bogus", "x")]


@pytest.mark.parametrize("op,sub", EVENTS_IGNORED)
def test_other_events_exit_zero_silently(root, op, sub):
    save(root, pinned("vm1", {0: CpuSet([0])}))
    r = run_hook(root, "vm1", op, sub)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert state(root, "vm1") is None


@pytest.mark.parametrize("op,sub", [("prepare", "begin"), ("start", "begin"), ("started", "begin"),
                                    ("reconnect", "begin"), ("migrate", "begin"),
                                    ("restore", "begin"), ("stopped", "end"), ("release", "end")])
def test_no_policy_is_a_no_op(root, op, sub):
    r = run_hook(root, "nopolicy", op, sub)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert not os.path.exists(Paths(str(root)).state)


def test_too_few_arguments(root):
    import subprocess
    import sys

    from hookrun import HOOK, REPO
    r = subprocess.run([sys.executable, HOOK, "vm1"], env={"PYTHONPATH": REPO},
                       capture_output=True, timeout=20)
    assert (r.returncode, r.stderr) == (0, b"")


def test_prepare_admits_and_records_the_plan(root):
    save(root, pinned("vm1", {0: CpuSet([LAST])}, weight=512, cap=50))
    r = run_hook(root, "vm1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    st = state(root, "vm1")
    assert st["result"] == "admitted"
    assert st["plan"]["vcpupin"] == {"0": str(LAST)}
    assert st["plan"]["sched"]["global_quota"] == 50000
    assert "admitted; plan vCPU 0 -> %d" % LAST in log_text(root)


CONFLICTS = [
    (pinned("vm1", {3: CpuSet([0])}), None,
     "policyhook: refusing to start 'vm1': vCPU 3 of 'vm1' has a pin, but the domain has "
     "2 vCPUs (0-1)\n"),
    (pinned("vm1", {0: CpuSet([LAST + 1])}), None,
     "policyhook: refusing to start 'vm1': vCPU 0 of 'vm1' is pinned to %d, but the host's "
     "CPUs are %s\n" % (LAST + 1, HOST)),
    (pinned("vm1", {0: CpuSet([0])}), HostPolicy({0: ["other"]}),
     "policyhook: refusing to start 'vm1': vCPU 0 of 'vm1' is pinned to 0 (policy), which is "
     "occupied by other (cpuoccupy); it would have no CPU left\n"),
]


@pytest.mark.parametrize("policy,host,message", CONFLICTS)
def test_prepare_refuses_a_conflict(root, policy, host, message):
    save(root, policy, host)
    r = run_hook(root, "vm1", "prepare", "begin")
    assert r.returncode == 1
    assert r.stderr.decode() == message
    assert state(root, "vm1")["result"] == "refused"


def test_prepare_conflict_starts_when_configured(root):
    write_conf(Paths(str(root)), "[hook]\non_conflict = start\n")
    save(root, pinned("vm1", {3: CpuSet([0])}))
    r = run_hook(root, "vm1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    assert "conflict, going on anyway" in log_text(root)


def _corrupt(root, data=b'{"version": 1, "domain": "vm1", "weight": "lots"}'):
    path = Paths(str(root)).domain_file("vm1")
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_corrupt_policy_lets_the_domain_start_and_is_reported(root):
    path = _corrupt(root)
    r = run_hook(root, "vm1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    st = state(root, "vm1")
    assert st["result"] == "error"
    assert st["error"] == "%s: $.weight: 'lots' is not an integer; fix it or run 'policyctl check'" % path
    assert "policy not checked" in log_text(root)


def test_corrupt_policy_refuses_when_configured(root):
    write_conf(Paths(str(root)), "[hook]\non_error = refuse\n")
    path = _corrupt(root, b"{not json")
    r = run_hook(root, "vm1", "prepare", "begin")
    assert r.returncode == 1
    assert r.stderr.decode() == (
        "policyhook: refusing to start 'vm1': %s: not valid JSON: Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1); fix it or run 'policyctl check'\n" % path)


def test_bad_settings_are_our_failure(root):
    write_conf(Paths(str(root)), "[hook]\non_conflict = maybe\n")
    save(root, pinned("vm1", {0: CpuSet([0])}))
    r = run_hook(root, "vm1", "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    assert "[hook] on_conflict: 'maybe' is not one of refuse, start" in log_text(root)


def test_symlinked_policy_is_refused(root, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "p.json"
    other.write_text('{"version": 1, "domain": "vm1"}')
    path = Paths(str(root)).domain_file("vm1")
    os.symlink(str(other), path)
    r = run_hook(root, "vm1", "prepare", "begin")
    assert r.returncode == 0
    assert state(root, "vm1")["error"] == "%s: is a symlink; refusing to follow it" % path


def test_world_writable_policy_is_refused(root):
    save(root, pinned("vm1", {0: CpuSet([0])}))
    path = Paths(str(root)).domain_file("vm1")
    os.chmod(path, 0o666)
    r = run_hook(root, "vm1", "prepare", "begin")
    assert r.returncode == 0
    assert state(root, "vm1")["error"] == (
        "%s: is group- or world-writable (mode 0666); refusing it (chmod go-w %s)" % (path, path))


def test_lock_held_forever_the_hook_still_returns(root):
    save(root, pinned("vm1", {0: CpuSet([0])}))
    paths = Paths(str(root))
    with open(paths.lock, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        r = run_hook(root, "vm1", "prepare", "begin", timeout=10)
    assert (r.returncode, r.stderr) == (0, b"")
    st = state(root, "vm1")
    assert st["result"] == "error"
    assert st["error"].startswith("registry lock %s is held by pid %d" % (paths.lock, os.getpid()))
    assert st["error"].endswith("gave up after 0.5s")


@pytest.mark.parametrize("op", ["start", "started", "reconnect"])
def test_start_started_and_reconnect_never_fail(root, op):
    _corrupt(root, b"\xff\xfe garbage")
    r = run_hook(root, "vm1", op, "begin")
    assert (r.returncode, r.stderr) == (0, b"")


@pytest.mark.parametrize("op", ["start", "reconnect"])
def test_the_applier_is_detached(root, op):
    """libvirtd waits for EOF on the hook's stdout/stderr: the applier must not hold them.
    The applier here cannot reach libvirt and retries for 10 s; the hook's pipes close
    long before that (run_hook reads them to EOF)."""
    write_conf(Paths(str(root)), "[libvirt]\nuri = qemu+unix:///system?socket=/nonexistent\n"
                                 "[applier]\ntimeout = 10\n")
    save(root, pinned("vm1", {0: CpuSet([0])}))
    t0 = time.monotonic()
    r = run_hook(root, "vm1", op, "begin", timeout=8)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert time.monotonic() - t0 < 8
    assert state(root, "vm1")["result"] == "applying"
    # The log names the applier itself (still retrying), not the short-lived first child.
    pid = int(log_text(root).split("applier started (pid ")[1].split(")")[0])
    os.kill(pid, 0)
    assert os.getsid(pid) != os.getsid(0)  # a session of its own, not the hook's


def test_applier_reports_a_domain_that_is_gone(root):
    save(root, pinned("policyhook-no-such-domain", {0: CpuSet([0])}))
    r = run_hook(root, "policyhook-no-such-domain", "start", "begin")
    assert r.returncode == 0
    for _ in range(200):
        if "nothing to apply" in log_text(root):
            break
        time.sleep(0.05)
    assert "applier (start/begin): domain is gone; nothing to apply" in log_text(root)


def test_started_records_the_time_for_the_applier(root):
    save(root, pinned("vm1", {0: CpuSet([0])}))
    run_hook(root, "vm1", "prepare", "begin")
    r = run_hook(root, "vm1", "started", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    assert state(root, "vm1")["started_at"] > 0


@pytest.mark.parametrize("op", ["stopped", "release"])
def test_stopped_and_release_drop_state_idempotently(root, op):
    save(root, pinned("vm1", {0: CpuSet([0])}))
    run_hook(root, "vm1", "prepare", "begin")
    assert state(root, "vm1") is not None
    for _ in range(2):
        r = run_hook(root, "vm1", op, "end")
        assert (r.returncode, r.stderr) == (0, b"")
        assert state(root, "vm1") is None


@pytest.mark.parametrize("op", ["migrate", "restore"])
def test_migrate_and_restore_write_cputune(root, op):
    save(root, pinned("vm1", {1: CpuSet([0])}, emulatorpin=CpuSet([0]), weight=512, cap=150))
    r = run_hook(root, "vm1", op, "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    out = r.stdout.decode()
    assert "<cputune><shares>2048</shares><global_period>100000</global_period>" \
           "<global_quota>150000</global_quota><vcpupin vcpu=\"1\" cpuset=\"0\" />" \
           "<emulatorpin cpuset=\"0\" /></cputune>" in out
    assert out.startswith("<domain type=\"qemu\">")


def test_migrate_refuses_a_conflict(root):
    save(root, pinned("vm1", {5: CpuSet([0])}))
    r = run_hook(root, "vm1", "migrate", "begin")
    assert r.returncode == 1
    assert r.stdout == b""
    assert r.stderr.decode().startswith("policyhook: refusing to migrate 'vm1': vCPU 5 of 'vm1' has a pin")


def test_bad_xml_on_stdin_is_our_failure(root):
    save(root, pinned("vm1", {0: CpuSet([0])}))
    r = run_hook(root, "vm1", "prepare", "begin", xml="<domain><vcpu>two</vcpu></domain>")
    assert (r.returncode, r.stderr) == (0, b"")
    assert state(root, "vm1")["error"] == "domain XML: <vcpu> 'two' is not a number"


def test_occupancy_alone_concerns_a_domain_without_policy(root):
    save(root, host=HostPolicy({0: ["other"]}))
    r = run_hook(root, "vm9", "prepare", "begin", xml=domain_xml("vm9"))
    assert r.returncode == 0
    plan = state(root, "vm9")["plan"]
    if LAST > 0:
        assert plan["vcpupin"] == {"0": oracle.cpulist_text(oracle.host_cpus()[1:]),
                                     "1": oracle.cpulist_text(oracle.host_cpus()[1:])}
