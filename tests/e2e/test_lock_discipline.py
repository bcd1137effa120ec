"""The registry lock is never held across a libvirt call (doc/design.md "Lock discipline").

A busy domain X: its QEMU frozen (SIGSTOP) with a monitor command pending, so libvirt's
job lock on X is held and any change to X waits on libvirt (up to its 30 s job timeout).
While `policyctl schedweight X` waits there, an unrelated domain Y starts: its `prepare`
hook must get the registry lock within its 0.5 s and admit Y, and Y's policy must be put
in force. Once X's QEMU runs again, the change to X is put in force too.
"""

import json
import os
import signal
import subprocess
import time

import lab


def _qemu_pid(name):
    with open("/run/libvirt/qemu/%s.pid" % name) as f:
        return int(f.read().split()[0])


def test_a_busy_domain_does_not_block_another_start(domains):
    x, y = domains("-x"), domains("-y")
    lab.virsh("start", x)
    assert lab.policyctl("vcpupin", y, "0", "1").returncode == 0
    log_path = lab.paths().log
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    pid = _qemu_pid(x)
    os.kill(pid, signal.SIGSTOP)
    monitor = change = None
    try:
        # libvirt's job on X, held until QEMU answers.
        monitor = subprocess.Popen(["virsh", "-c", lab.URI, "qemu-monitor-command", x,
                                    '{"execute": "query-status"}'],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        assert monitor.poll() is None, "the monitor command did not wait for the frozen QEMU"
        change = subprocess.Popen(lab.policyctl_argv("schedweight", x, "300"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Saved; now it waits on libvirt for X.
        path = lab.paths().domain_file(x)
        lab.wait_for(lambda: os.path.exists(path) and json.load(open(path)).get("weight") == 300, 10,
                     "the change to %s to be saved" % x)
        time.sleep(0.3)
        assert change.poll() is None, "policyctl did not wait on libvirt: %s" % (change.communicate(),)

        t0 = time.monotonic()
        lab.virsh("start", y)
        started = time.monotonic() - t0
        state = lab.state(y)
        assert state is not None and state["event"] in ("start/begin", "started/begin"), state
        with open(log_path) as f:
            f.seek(offset)
            log = f.read()
        assert "qemu %s prepare/begin: admitted; plan vCPU 0 -> 1" % y in log
        assert "qemu %s prepare/begin: policy not checked" % y not in log
        lab.wait_for(lambda: lab.vcpupin(y).get(0) == "1", 15, "the policy of %s to be in force" % y)
        assert change.poll() is None, "the change to %s finished while QEMU was frozen" % x
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = monitor.communicate(timeout=30)
    assert monitor.returncode == 0, err
    out, err = change.communicate(timeout=30)
    assert change.returncode == 0, err
    assert out == "%s: weight 300: saved; applied live\n  schedinfo cpu_shares=1200\n" % x
    assert lab.schedinfo(x)["cpu_shares"] == "1200"
    print("%s started in %.2f s while a change to %s waited on libvirt" % (y, started, x))
