"""Faults and scale on the real daemon (`make stress`)."""

import json
import os
import subprocess
import threading
import time

import lab
import pytest

pytestmark = pytest.mark.stress


@pytest.fixture
def short_applier_timeout(installed):
    """[applier] timeout = 3 in the installed configuration, restored afterwards."""
    with open(lab.paths().conf, "rb") as f:
        saved = f.read()
    with open(lab.paths().conf, "w") as f:
        f.write("[applier]\ntimeout = 3\n")
    yield 3
    with open(lab.paths().conf, "wb") as f:
        f.write(saved)


def _log_since(offset):
    with open(lab.paths().log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


@pytest.mark.restarts_libvirtd
def test_libvirtd_down_the_applier_gives_up_then_reconnect_applies(domains, short_applier_timeout):
    name = domains()
    assert lab.policyctl("vcpupin", name, "0", "0").returncode == 0
    lab.virsh("start", name)
    lab.wait_for(lambda: lab.vcpupin(name)[0] == "0", 15, "the first policy")
    xml = lab.virsh("dumpxml", name).stdout
    offset = os.path.getsize(lab.paths().log)
    lab.stop_daemon()
    try:
        assert lab.policyctl("--offline", "vcpupin", name, "0", "1").returncode == 0
        # libvirtd's own call, made by hand while it is down: the applier cannot connect.
        t0 = time.monotonic()
        r = subprocess.run([lab.HOOK, name, "reconnect", "begin", "-"], input=xml, text=True,
                           capture_output=True, timeout=30, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        gave_up = lab.wait_for(lambda: "gave up after 3s" in _log_since(offset) and _log_since(offset),
                               20, "the applier to give up")
        assert time.monotonic() - t0 < 15
        assert "%s applier (reconnect/begin): gave up after 3s: cannot connect to qemu:///system" \
            % name in gave_up
        with open(lab.paths().state_file(name)) as f:
            assert json.load(f)["result"] == "gave-up"
        assert not lab.appliers()
    finally:
        lab.start_daemon()
    # libvirtd's reconnect runs the hook for the running domain: the new policy applies.
    lab.wait_for(lambda: lab.vcpupin(name)[0] == "1", 20, "reconnect to apply the new policy")


def test_twenty_domains_started_at_once(installed):
    names = ["%sscale-%02d" % (lab.PREFIX, i) for i in range(20)]
    try:
        for i, name in enumerate(names):
            lab.define(name, 2)
            for args in (("vcpupin", name, "0", str(i % 2)), ("vcpupin", name, "1", str(1 - i % 2)),
                         ("schedweight", name, str(100 + i))):
                r = lab.policyctl(*args)
                assert r.returncode == 0, r.stderr
        errors = []

        def start(name):
            r = lab.virsh("start", name, check=False, timeout=120)
            if r.returncode:
                errors.append((name, r.stderr))
        threads = [threading.Thread(target=start, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for i, name in enumerate(names):
            want = {0: str(i % 2), 1: str(1 - i % 2)}
            lab.wait_for(lambda n=name, w=want: lab.vcpupin(n) == w, 30, "%s's pins" % name)
            assert lab.schedinfo(name)["cpu_shares"] == str(4 * (100 + i))
        lab.wait_for(lambda: not lab.appliers(), 30, "every applier to exit")
    finally:
        for name in names:
            lab.undefine(name)
            lab.policyctl("remove", name)
