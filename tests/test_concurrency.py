"""Many policyctl processes at once lose no update; a held registry lock makes policyctl
give up after its timeout with exit 5 and the holder's pid."""

import os
import subprocess
import sys
import time

import oracle
import pytest
from unit_helpers import REPO, make_registry, policy, snapshot_policy_files, store, write_raw

from policyhook import errors
from policyhook.errors import PolicyError
from policyhook.locking import FlockLock
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.schema import DOMAIN_SCHEMA, problems

HOST = oracle.host_cpus()   # read from sysfs by the test
ENV = dict(os.environ, PYTHONPATH=REPO)


def policyctl(root, *argv):
    return [sys.executable, "-m", "policyhook.cli", "--root", root, "--offline"] + list(argv)


def run_all(commands, timeout=60):
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
             for cmd in commands]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out.decode(), err.decode()))
    return results


def test_concurrent_changes_lose_no_update(tmp_path):
    root = str(tmp_path)
    make_registry(root, [policy("other", weight=7)])
    cpus = list(HOST)
    n = 8
    pins = {k: str(cpus[k % len(cpus)]) for k in range(n)}
    commands = [policyctl(root, "vcpupin", "dom", str(k), pins[k]) for k in range(n)]
    commands.append(policyctl(root, "schedweight", "dom", "512"))
    commands.append(policyctl(root, "schedcap", "dom", "50"))
    commands.append(policyctl(root, "emulatorpin", "dom", str(cpus[-1])))
    results = run_all(commands)
    for (code, out, err), cmd in zip(results, commands):
        assert (code, err) == (0, ""), cmd
        assert out.endswith(": saved; not applied live (--offline)\n"), out
    reg = Registry(Paths(root))
    stored = reg.load("dom")
    assert {v: str(c) for v, c in stored.pins_of("vcpu").items()} == pins
    assert stored.sched == {"weight": 512, "cap": 50}
    assert str(stored.pins[("emulator", 0)]) == str(cpus[-1])
    assert problems(stored.to_doc(), DOMAIN_SCHEMA) == []
    assert reg.check() == []
    assert reg.load("other") == policy("other", weight=7)
    # No temp file is left behind by any writer.
    assert sorted(os.listdir(Paths(root).domains)) == ["dom.json", "other.json"]


def test_concurrent_changes_to_many_domains_and_the_host(tmp_path):
    root = str(tmp_path)
    make_registry(root, [])
    last = HOST[-1]
    commands = [policyctl(root, "schedweight", "vm%d" % i, str(100 + i)) for i in range(6)]
    commands += [policyctl(root, "unset", "vm0", "cap")]           # may run before or after vm0 exists
    commands += [policyctl(root, "cpuoccupy", str(last), "vm1,vm2")]
    results = run_all(commands)
    codes = [r[0] for r in results]
    assert codes[:6] == [0] * 6 and codes[7] == 0, results
    # 'unset vm0 cap' either found vm0 or not: both leave the weight in place.
    assert codes[6] == 0, results[6]
    reg = Registry(Paths(root))
    assert [reg.load("vm%d" % i).sched.get("weight") for i in range(6)] == [100 + i for i in range(6)]
    assert reg.load_host().occupancy == {last: ("vm1", "vm2")}
    assert reg.check() == []


@pytest.fixture
def holder(tmp_path):
    """Another process holding the registry lock with filelock, as a slow policyctl would."""
    paths = Paths(str(tmp_path))
    os.makedirs(paths.run)
    argv = [sys.executable, "-c",
            "import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
            "print('locked', flush=True); time.sleep(60)",
            paths.lock]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=ENV)
    try:
        assert proc.stdout.readline() == b"locked\n"
        yield proc, " ".join(argv)[:80]
    finally:
        proc.kill()
        proc.wait()


def test_held_lock_makes_policyctl_exit_5_naming_the_holder(tmp_path, holder):
    proc, cmdline = holder
    root = str(tmp_path)
    paths = Paths(root)
    make_registry_without_lock(paths)
    write_raw(paths.conf, "[policyctl]\nlock_timeout = 0.5\n")
    before = snapshot_policy_files(root)   # policyctl may tighten the lock file's mode
    started = time.monotonic()
    [(code, out, err)] = run_all([policyctl(root, "schedweight", "vm1", "5")])
    waited = time.monotonic() - started
    assert (code, out) == (errors.LOCKED, "")
    assert err == "Error: registry lock %s is held by pid %d (%s); gave up after 0.5s\n" \
        % (paths.lock, proc.pid, cmdline)
    assert err.count("\n") == 1
    assert waited >= 0.5
    assert snapshot_policy_files(root) == before
    # Reading needs no lock.
    [(code, out, err)] = run_all([policyctl(root, "list")])
    assert (code, err) == (0, "")


def test_hook_flock_and_policyctl_filelock_exclude_each_other(tmp_path, holder):
    proc, cmdline = holder
    paths = Paths(str(tmp_path))
    with pytest.raises(PolicyError) as info:
        with FlockLock(paths.lock, 0.2):
            pass
    assert info.value.code == errors.LOCKED
    assert str(info.value) == "registry lock %s is held by pid %d (%s); gave up after 0.2s" \
        % (paths.lock, proc.pid, cmdline)


def test_lock_free_again_after_the_holder_exits(tmp_path, holder):
    proc, _ = holder
    paths = Paths(str(tmp_path))
    proc.kill()
    proc.wait()
    with FlockLock(paths.lock, 1):
        pass
    reg = Registry(paths, lock_timeout=1)
    store(reg, [policy("vm1", weight=5)])
    assert reg.load("vm1").sched.get("weight") == 5


def make_registry_without_lock(paths):
    """A policy file written by hand: taking the registry lock here would wait on the holder."""
    write_raw(paths.domain_file("vm1"), '{\n  "version": 1,\n  "domain": "vm1",\n  "weight": 300\n}\n')
