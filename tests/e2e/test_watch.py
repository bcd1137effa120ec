"""policyctl watch on the real daemon: drift made with `virsh vcpupin --live` reported or
repaired within 500 ms, a domain whose start ran none of our hooks given its policy,
libvirtd stopped and started again, and SIGTERM ending the watcher within a second."""

import os
import re
import signal
import subprocess
import time

import lab
import pytest


class Watch:
    """`policyctl watch` in the background, with [watch] settings of the test's own."""

    def __init__(self, tmp_path, **settings):
        with open(lab.paths().conf) as f:
            self.conf = f.read()
        self.metrics = str(tmp_path / "policyhook.prom")
        values = dict({"settle": "0.5", "metrics_file": self.metrics}, **settings)
        section = "[watch]\n" + "".join("%s = %s\n" % kv for kv in values.items())
        # An installed file older than the [watch] section has none (make install keeps it).
        text = re.sub(r"(?m)^\[watch\]\n", section, self.conf, count=1)
        if text == self.conf:
            text = self.conf + "\n" + section
        with open(lab.paths().conf, "w") as f:
            f.write(text)
        log = lab.paths().log
        self.offset = os.path.getsize(log) if os.path.exists(log) else 0
        self.proc = subprocess.Popen(lab.policyctl_argv("-c", lab.URI, "watch"), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.wait_log("watch: %s: watching; " % lab.URI, 10)

    def log(self):
        with open(lab.paths().log) as f:
            f.seek(self.offset)
            return f.read()

    def wait_log(self, text, timeout):
        return lab.wait_for(lambda: text in self.log(), timeout, "%r in the log" % text)

    def stop(self):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        took = time.monotonic() - t0
        with open(lab.paths().conf, "w") as f:
            f.write(self.conf)
        return code, took


@pytest.fixture
def watcher(installed, tmp_path):
    made = []

    def start(**settings):
        w = Watch(tmp_path, **settings)
        made.append(w)
        return w
    yield start
    for w in made:
        if w.proc.poll() is None:
            w.stop()


def test_drift_is_reported_then_repaired(domains, watcher):
    name = domains()
    assert lab.policyctl("vcpupin", name, "1", "0").returncode == 0
    lab.virsh("start", name)
    lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied", 15, "the applier")

    w = watcher(on_drift="report")
    t0 = time.monotonic()
    lab.virsh("vcpupin", name, "1", "1", "--live")
    w.wait_log("watch: %s: drift (tunable): vCPU 1: policy 0, live 1" % name, 5)
    reported = time.monotonic() - t0
    assert lab.vcpupin(name)[1] == "1"                     # reported, not put back
    assert lab.state(name)["drift"] == [{"setting": "vcpupin", "index": 1, "policy": "0", "live": "1"}]
    code, took = w.stop()
    assert code == 0 and took < 1.0, (code, took)

    w = watcher(on_drift="repair")
    lab.wait_for(lambda: lab.vcpupin(name)[1] == "0", 5, "the reconcile at connect to repair")
    t0 = time.monotonic()
    lab.virsh("vcpupin", name, "1", "1", "--live")
    lab.wait_for(lambda: lab.vcpupin(name)[1] == "0", 5, "the drift to be repaired")
    repaired = time.monotonic() - t0
    w.wait_log("watch: %s: drift (tunable) repaired: vCPU 1: policy 0, live 1" % name, 5)
    with open(w.metrics) as f:
        metrics = f.read()
    assert "policyhook_repairs_total 2\n" in metrics or "policyhook_repairs_total 1\n" in metrics, metrics
    code, took = w.stop()
    assert code == 0 and took < 1.0
    print("drift reported in %.0f ms, repaired in %.0f ms; SIGTERM to exit %.0f ms"
          % (reported * 1000, repaired * 1000, took * 1000))
    assert reported < 0.5 and repaired < 0.5


def test_a_start_no_hook_saw_gets_its_policy(domains, watcher):
    name = domains()
    assert lab.policyctl("vcpupin", name, "0", "1").returncode == 0
    w = watcher()
    os.chmod(lab.HOOK, 0o644)      # libvirt runs no hook that is not executable
    try:
        lab.virsh("start", name)
        t0 = time.monotonic()
        lab.wait_for(lambda: lab.vcpupin(name).get(0) == "1", 10, "the watcher to apply the policy")
        took = time.monotonic() - t0
    finally:
        os.chmod(lab.HOOK, 0o755)
    assert lab.state(name)["source"] == "watch"
    w.wait_log("watch: %s: policy not in force (started; no hook put it there): applied" % name, 5)
    print("policy applied by the watcher %.0f ms after virsh start returned ([watch] settle = 0.5)"
          % (took * 1000))


@pytest.mark.restarts_libvirtd
def test_the_watcher_comes_back_with_libvirtd(domains, watcher):
    name = domains()
    lab.virsh("start", name)
    w = watcher(on_drift="repair")
    lab.stop_daemon()
    try:
        w.wait_log("watch: %s: connection lost" % lab.URI, 10)
        # Changed while libvirtd is away: saved, not applied.
        assert lab.policyctl("vcpupin", name, "0", "1").returncode == 0
    finally:
        lab.start_daemon()
    w.wait_log("watch: %s: watching again; 1 running domain with a policy checked" % lab.URI, 40)
    lab.wait_for(lambda: lab.vcpupin(name).get(0) == "1", 10, "the policy to be in force after reconnect")
    code, took = w.stop()
    assert code == 0 and took < 1.0


def _sched_files(name):
    """The domain cgroup's cpu.shares and cpu.cfs_quota_us (cgroup v1), where libvirt
    writes cpu_shares and global_quota."""
    base = lab.domain_cgroup(name)
    return lab.cgroup_value(base, "cpu.shares"), lab.cgroup_value(base, "cpu.cfs_quota_us")


def _sched_live(name):
    sched = lab.schedinfo(name)
    return (sched["cpu_shares"], sched["global_quota"]) + _sched_files(name)


def test_weight_and_cap_changed_behind_our_back_are_repaired(domains, watcher):
    name = domains()
    for args in (("schedweight", name, "512"), ("schedcap", name, "50")):
        assert lab.policyctl(*args).returncode == 0
    lab.virsh("start", name)
    lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied", 15, "the applier")
    want = ("2048", "50000", "2048", "50000")
    assert _sched_live(name) == want

    # Changed while no watcher runs: put back by the reconcile at connect.
    lab.virsh("schedinfo", name, "--live", "--set", "cpu_shares=1024")
    lab.virsh("schedinfo", name, "--live", "--set", "global_quota=-1")
    assert _sched_live(name) == ("1024", "-1", "1024", "-1")
    w = watcher(on_drift="repair")
    assert lab.settled(lambda: _sched_live(name), want, 5) == want
    w.wait_log("watch: %s: drift (reconcile) repaired: cpu_shares: policy 2048, live 1024; "
               "global_quota: policy 50000, live -1" % name, 5)

    # Changed while it watches: each put back on libvirt's tunable event.
    for change, drift in (("cpu_shares=1024", "cpu_shares: policy 2048, live 1024"),
                          ("global_quota=-1", "global_quota: policy 50000, live -1")):
        t0 = time.monotonic()
        lab.virsh("schedinfo", name, "--live", "--set", change)
        assert lab.settled(lambda: _sched_live(name), want, 5, 0.05) == want
        took = time.monotonic() - t0
        w.wait_log("watch: %s: drift (tunable) repaired: %s" % (name, drift), 5)
        print("%s repaired in %.0f ms" % (change, took * 1000))
    code, took = w.stop()
    assert code == 0 and took < 1.0
