"""Faults: writers killed with SIGKILL mid-storm, a registry lock held forever, a full disk
and a read-only registry. Nothing is lost, nothing hangs, every error is one line.

The storms are `make stress` (pytest -m stress); the rest is quick. The tmpfs cases need
root (mount); they unmount in a finally.
"""

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import oracle
import pytest
from hookrun import REPO, domain_xml, run_hook
from unit_helpers import make_registry, policy, snapshot_policy_files, store, write_raw

from policyhook import errors, jsondoc
from policyhook.model import domain_from_doc, host_from_doc
from policyhook.paths import Paths

HOST = oracle.host_cpus()   # read from sysfs by the test
LAST = HOST[-1]
ENV = dict(os.environ, PYTHONPATH=REPO)
CONF = "[libvirt]\nuri = test:///default\n[applier]\ntimeout = 2\n"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def policyctl(root, *argv):
    return [sys.executable, "-m", "policyhook.cli", "--root", str(root), "--offline"] + list(argv)


def run(cmd, timeout=60):
    r = subprocess.run(cmd, capture_output=True, env=ENV, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def temp_files(paths):
    """Writers' temp files (hidden: names start with '.') in the registry's directories."""
    found = []
    for d in (paths.etc, paths.domains):
        if os.path.isdir(d):
            found += [os.path.join(d, e) for e in os.listdir(d) if e.startswith(".")]
    return sorted(found)


def assert_valid(root):
    code, out, err = run(policyctl(root, "check"))
    assert (code, out, err) == (0, "%s: the registry is valid\n" % Paths(str(root)).etc, "")


# ---- kill -9 during a storm of writes ----------------------------------------------------

DOMAINS = ["vm%d" % i for i in range(4)]
OLD_WEIGHT, OLD_CAP = 256, 0


class Storm:
    """Random policyctl changes, and for each domain every value any of them could leave."""

    def __init__(self, root, rng):
        self.root = str(root)
        self.rng = rng
        self.weights = {d: {OLD_WEIGHT} for d in DOMAINS}
        self.caps = {d: {OLD_CAP} for d in DOMAINS}
        self.pins = {d: {None} for d in DOMAINS}     # vCPU 1's pin; vCPU 0 stays on 0
        self.occupants = [None]                      # host.json: CPU LAST -> these, or none
        self.serial = 0

    def build(self):
        make_registry(self.root, [policy(d, {0: "0"}, weight=OLD_WEIGHT, cap=OLD_CAP)
                                  for d in DOMAINS])
        write_raw(Paths(self.root).conf, CONF)

    def command(self):
        """argv after `policyctl --root R --offline`; records what it may write."""
        self.serial += 1
        dom = self.rng.choice(DOMAINS)
        kind = self.rng.randrange(10)
        if kind < 4:
            weight = 1000 + self.serial
            self.weights[dom].add(weight)
            return ["schedweight", dom, str(weight)]
        if kind < 7:
            cap = 1 + self.serial % 100
            self.caps[dom].add(cap)
            return ["schedcap", dom, str(cap)]
        if kind < 9:
            cpu = self.rng.choice(HOST)
            self.pins[dom].add(str(cpu))
            return ["vcpupin", dom, "1", str(cpu)]
        occupant = self.rng.choice(DOMAINS)
        self.occupants.append(occupant)
        return ["cpuoccupy", str(LAST), occupant]

    def verify(self):
        """Every file whole (exactly the bytes a save writes), valid, and holding values
        some writer wrote: the old policy or a new one, never a mix or a torn file."""
        paths = Paths(self.root)
        assert_valid(self.root)
        code, out, err = run(policyctl(self.root, "list", "--json"))
        assert (code, err) == (0, "")
        assert [row["domain"] for row in json.loads(out)] == DOMAINS
        for dom in DOMAINS:
            with open(paths.domain_file(dom), "rb") as f:
                data = f.read()
            doc = jsondoc.parse(data)
            assert data == jsondoc.dumps(doc), dom
            stored = domain_from_doc(doc)
            assert stored.domain == dom
            assert stored.sched.get("weight") in self.weights[dom], (dom, stored)
            assert stored.sched.get("cap") in self.caps[dom], (dom, stored)
            assert str(stored.pins_of("vcpu")[0]) == "0", (dom, stored)
            pin = stored.pins_of("vcpu").get(1)
            assert (None if pin is None else str(pin)) in self.pins[dom], (dom, stored)
            assert set(stored.pins_of("vcpu")) <= {0, 1}
        if os.path.exists(paths.host_file):
            with open(paths.host_file, "rb") as f:
                data = f.read()
            doc = jsondoc.parse(data)
            assert data == jsondoc.dumps(doc)
            occupancy = host_from_doc(doc).occupancy
            assert list(occupancy) == [LAST] and len(occupancy[LAST]) == 1
            assert occupancy[LAST][0] in self.occupants
        return temp_files(paths)


def _kill_at(procs, delays):
    """SIGKILL each process at its delay unless it has finished; the killed ones."""
    t0 = time.monotonic()
    killed = []
    for proc, delay in sorted(zip(procs, delays), key=lambda pd: pd[1]):
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed.append(proc)
    for proc in procs:
        proc.wait(timeout=60)
    return killed


def _seed():
    seed = int(os.environ.get("POLICYHOOK_STRESS_SEED") or random.randrange(1 << 30))
    print("\nPOLICYHOOK_STRESS_SEED=%d" % seed)
    return seed


def _tally(procs, killed):
    codes = {}
    for p in procs:
        if p not in killed:
            codes[p.returncode] = codes.get(p.returncode, 0) + 1
    return codes


@pytest.mark.stress
def test_kill_9_during_a_storm_of_policyctl_processes(tmp_path):
    """Waves of concurrent policyctl processes, each SIGKILLed at a random moment of its
    life (the delays span a whole run under this load, so kills land in start-up, in
    planning, waiting for the lock and inside the write)."""
    rng = random.Random(_seed())
    storm = Storm(tmp_path, rng)
    storm.build()
    wave, waves = 8, 30
    # How long one wave takes when nothing is killed, on this machine, now.
    t0 = time.monotonic()
    procs = [subprocess.Popen(policyctl(tmp_path, *storm.command()), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(wave)]
    for p in procs:
        assert p.wait(timeout=60) in (0, errors.CONFLICT), p.stderr.read()
    span = time.monotonic() - t0
    all_procs, all_killed = [], []
    for _ in range(waves):
        procs = [subprocess.Popen(policyctl(tmp_path, *storm.command()), env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(wave)]
        all_killed += _kill_at(procs, [rng.uniform(0, span) for _ in procs])
        all_procs += procs
    codes = _tally(all_procs, all_killed)
    left = storm.verify()
    print("storm: %d policyctl processes, %d killed with SIGKILL, finished: %s; %d temp files "
          "left by killed writers (hidden from list and check)"
          % (len(all_procs), len(all_killed), codes, len(left)))
    assert len(all_killed) >= len(all_procs) // 4
    # A finished writer either saved (0) or refused a conflict with occupancy (3).
    assert set(codes) <= {0, errors.CONFLICT}, codes


WRITER_LOOP = """\
import json, sys
from policyhook.cli import main
root, commands = sys.argv[1], json.load(sys.stdin)
null = open("/dev/null", "w")
for argv in commands:
    code = main(["--root", root, "--offline"] + argv, stdout=null, stderr=null)
    if code not in (0, 3):
        sys.exit("unexpected exit %d from %r" % (code, argv))
"""


@pytest.mark.stress
def test_kill_9_of_writers_looping_inside_the_registry_code(tmp_path):
    """Processes that run policyctl's main() over and over, killed after a random time:
    almost every kill lands inside a change (lock, read, plan, temp file, fsync, rename)."""
    rng = random.Random(_seed())
    storm = Storm(tmp_path, rng)
    storm.build()
    rounds, writers = 15, 4
    all_procs, all_killed = [], []
    for _ in range(rounds):
        procs = []
        for _ in range(writers):
            commands = [storm.command() for _ in range(400)]
            p = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(tmp_path)], env=ENV,
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            p.stdin.write(json.dumps(commands).encode())
            p.stdin.close()
            procs.append(p)
        all_killed += _kill_at(procs, [rng.uniform(0.3, 1.5) for _ in procs])
        for p in procs:
            if p not in all_killed:
                assert p.returncode == 0, p.stderr.read()
        all_procs += procs
    left = storm.verify()
    print("writer loops: %d processes, %d killed with SIGKILL mid-loop; %d temp files left "
          "by killed writers (hidden from list and check)" % (len(all_procs), len(all_killed), len(left)))
    assert len(all_killed) >= len(all_procs) // 2


def test_a_temp_file_left_by_a_killed_writer_is_hidden_and_harmless(tmp_path):
    """What SIGKILL between creating the temp file and the rename leaves: a dot file that
    list and check ignore, and that does not stop the next save, even by a process that
    got the dead writer's pid."""
    paths = make_registry(tmp_path, [policy("vm1", weight=300)])
    write_raw(paths.conf, CONF)
    stale = os.path.join(paths.domains, ".vm1.json.%d.tmp" % os.getpid())
    write_raw(stale, b'{"version": 1, "dom')
    assert_valid(tmp_path)
    code, out, err = run(policyctl(tmp_path, "list"))
    assert (code, err) == (0, "") and out.count("\n") == 2
    from policyhook.registry import Registry

    reg = Registry(paths)
    store(reg, [policy("vm1", weight=400)])   # this very pid: its temp name is taken
    assert reg.load("vm1").sched.get("weight") == 400


def test_a_reader_that_goes_away_is_no_error(tmp_path):
    """`policyctl list | head`: the pipe closes under policyctl; it stops quietly (141, as
    a shell shows for ls there), not with an internal error."""
    paths = make_registry(tmp_path, [policy("vm1", weight=300)])
    for i in range(3000):   # more output than a pipe holds
        doc = policy("vm%05d" % i, {0: "0"}, weight=300).to_doc()
        write_raw(paths.domain_file(doc["domain"]), jsondoc.dumps(doc))
    proc = subprocess.Popen(policyctl(tmp_path, "list"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    assert proc.stdout.readline().startswith(b"DOMAIN")
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(timeout=60), err) == (141, b"")


# ---- a writer holding the registry lock forever ------------------------------------------

HOLDER = ("import filelock, sys, time\n"
          "lock = filelock.FileLock(sys.argv[1]); lock.acquire()\n"
          "print('locked', flush=True); time.sleep(3600)\n")


@pytest.fixture
def locked_root(tmp_path):
    """A registry with vm1's policy whose lock another process holds until the test ends.
    Yields (root, holder pid, holder command line as the messages show it)."""
    paths = make_registry(tmp_path, [policy("vm1", {0: "0"}, weight=300)])
    write_raw(paths.conf, CONF)
    argv = [sys.executable, "-c", HOLDER, paths.lock]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=ENV)
    try:
        assert proc.stdout.readline() == b"locked\n"
        # Control characters in another process's command line are escaped: one line.
        yield tmp_path, proc.pid, " ".join(argv).replace("\n", "\\n")[:80]
    finally:
        proc.kill()
        proc.wait()


def _held(paths, pid, cmdline, timeout):
    return "registry lock %s is held by pid %d (%s); gave up after %ss" % (paths.lock, pid, cmdline,
                                                                         timeout)


def _hook_state(root):
    path = Paths(str(root)).state_file("vm1")
    with open(path) as f:
        return json.load(f)


def _log(root):
    with open(Paths(str(root)).log) as f:
        return f.read()


@pytest.mark.parametrize("timeout", ["0.5", "0.1"])
def test_held_lock_the_hook_gives_up_in_time_and_the_domain_starts(locked_root, timeout):
    root, pid, cmdline = locked_root
    paths = Paths(str(root))
    if timeout != "0.5":
        write_raw(paths.conf, CONF + "[hook]\nlock_timeout = %s\n" % timeout)
    t0 = time.monotonic()
    r = run_hook(root, "vm1", "prepare", "begin", timeout=10)
    took = time.monotonic() - t0
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert took < float(timeout) + 3, took
    message = _held(paths, pid, cmdline, timeout)
    assert _hook_state(root)["error"] == message
    assert "qemu vm1 prepare/begin: policy not checked: %s\n" % message in _log(root)


@pytest.mark.parametrize("op,verb", [("prepare", "to start"), ("migrate", "to migrate"),
                                     ("restore", "to restore")])
def test_held_lock_the_hook_refuses_when_on_error_is_refuse(locked_root, op, verb):
    root, pid, cmdline = locked_root
    paths = Paths(str(root))
    write_raw(paths.conf, CONF + "[hook]\non_error = refuse\n")
    t0 = time.monotonic()
    r = run_hook(root, "vm1", op, "begin", timeout=10)
    assert time.monotonic() - t0 < 3.5
    assert (r.returncode, r.stdout) == (1, b"")
    assert r.stderr.decode() == "policyhook: refusing %s 'vm1': %s\n" \
        % (verb, _held(paths, pid, cmdline, "0.5"))


@pytest.mark.parametrize("op,sub", [("migrate", "begin"), ("restore", "begin"), ("start", "begin"),
                                    ("reconnect", "begin"), ("started", "begin"), ("release", "end")])
def test_held_lock_other_events_return_at_once_with_exit_0(locked_root, op, sub):
    """migrate/restore print no XML (libvirt keeps its own) under on_error = start;
    start/reconnect fork the applier and return; reconnect must never fail (libvirt
    would kill the guest), even under on_error = refuse."""
    root, _pid, _cmdline = locked_root
    for on_error in (("start", "refuse") if op in ("start", "reconnect", "started", "release")
                     else ("start",)):
        write_raw(Paths(str(root)).conf, CONF + "[hook]\non_error = %s\n" % on_error)
        t0 = time.monotonic()
        r = run_hook(root, "vm1", op, sub, timeout=10)
        assert time.monotonic() - t0 < 3.5
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), on_error


def test_held_lock_policyctl_names_the_holder_and_exits_5(locked_root):
    root, pid, cmdline = locked_root
    paths = Paths(str(root))
    write_raw(paths.conf, CONF + "[policyctl]\nlock_timeout = 0.3\n")
    before = snapshot_policy_files(root)
    for argv in (["schedweight", "vm1", "512"], ["vcpupin", "vm2", "0", "0"],
                 ["cpuoccupy", str(LAST), "vm1"], ["remove", "vm1"]):
        t0 = time.monotonic()
        code, out, err = run(policyctl(root, *argv))
        assert time.monotonic() - t0 < 5
        assert (code, out) == (errors.LOCKED, ""), argv
        assert err == "Error: %s\n" % _held(paths, pid, cmdline, "0.3")
    assert snapshot_policy_files(root) == before
    # Readers take no lock.
    for argv in (["list"], ["check"], ["cpupolicy", "vm1"], ["occupancy"]):
        code, _out, err = run(policyctl(root, *argv))
        assert (code, err) == (0, ""), argv


def test_the_lock_file_is_private_so_no_other_user_can_hold_it(tmp_path):
    """Whoever can open the lock file can flock it (a read-only descriptor will do) and so
    block every change and every hook. It is created mode 0600, and an older, looser one
    is tightened the next time the lock is taken."""
    from policyhook.locking import FlockLock
    from policyhook.registry import Registry

    paths = Paths(str(tmp_path))
    reg = Registry(paths)
    reg.read(lambda _snap: None)
    assert os.stat(paths.lock).st_mode & 0o777 == 0o600
    os.chmod(paths.lock, 0o644)
    with FlockLock(paths.lock, 1):
        pass
    assert os.stat(paths.lock).st_mode & 0o777 == 0o600
    os.chmod(paths.lock, 0o666)
    reg.read(lambda _snap: None)
    assert os.stat(paths.lock).st_mode & 0o777 == 0o600


# ---- a full disk and a read-only registry (tmpfs) -----------------------------------------

@contextlib.contextmanager
def tmpfs(path, size="256k"):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", str(path)],
                   check=True, capture_output=True)
    try:
        yield str(path)
    finally:
        r = subprocess.run(["umount", str(path)], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def remount_ro(path):
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)


def fill(path):
    """Write zeros to a file under `path` until the filesystem is full."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def registry_on(root):
    paths = make_registry(root, [policy("vm1", {0: "0"}, weight=300, cap=50)],
                          occupancy={LAST: ["vm1"]})
    write_raw(paths.conf, CONF)
    return paths


# The changes tried on a broken filesystem, and which file each must name.
CHANGES = [
    (["schedweight", "vm1", "512"], "vm1.json"),       # replaces an existing file
    (["vcpupin", "vm1", "0", str(LAST)], "vm1.json"),
    (["schedweight", "vm2", "512"], "vm2.json"),        # a new file
    (["cpuoccupy", str(LAST), "vm1,vm2"], "host.json"),
]


def _file(paths, name):
    return paths.host_file if name == "host.json" else os.path.join(paths.domains, name)


@needs_root
def test_full_disk_a_clear_error_and_the_old_files_intact(tmp_path):
    with tmpfs(tmp_path / "fs") as fs:
        root = os.path.join(fs, "root")
        paths = registry_on(root)
        before = snapshot_policy_files(root)
        filler = fill(fs)
        for argv, name in CHANGES:
            code, out, err = run(policyctl(root, *argv))
            assert (code, out) == (errors.REGISTRY, ""), argv
            assert err == "Error: %s: cannot be written: No space left on device\n" % _file(paths, name)
            assert snapshot_policy_files(root) == before
            assert temp_files(paths) == []
        assert_valid(root)
        # The hook still admits the domain: not recording its runtime state is no reason
        # to refuse a start, whatever on_error says.
        for on_error in ("start", "refuse"):
            os.unlink(filler)
            write_raw(paths.conf, CONF + "[hook]\non_error = %s\n" % on_error)
            filler = fill(fs)
            r = run_hook(root, "vm1", "prepare", "begin", xml=domain_xml("vm1"))
            assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
        # Space again: the same change goes through.
        os.unlink(filler)
        code, out, err = run(policyctl(root, "schedweight", "vm1", "512"))
        assert (code, err) == (0, "")
        assert_valid(root)


@needs_root
def test_read_only_registry_a_clear_error_and_the_old_files_intact(tmp_path):
    """/etc read-only (an image-based host), /run writable. chmod would not stop root;
    a read-only mount does."""
    root = tmp_path / "root"
    paths = Paths(str(root))
    os.makedirs(paths.run)
    with tmpfs(root / "etc"):
        registry_on(root)
        before = snapshot_policy_files(root)
        remount_ro(root / "etc")
        for argv, name in CHANGES + [(["remove", "vm1"], "vm1.json")]:
            code, out, err = run(policyctl(root, *argv))
            assert (code, out) == (errors.REGISTRY, ""), argv
            what = "removed" if argv[0] == "remove" else "written"
            assert err == "Error: %s: cannot be %s: Read-only file system\n" % (_file(paths, name), what)
        assert snapshot_policy_files(root) == before
        assert temp_files(paths) == []
        assert_valid(root)
        # Reading and the hook work as before.
        assert run(policyctl(root, "list"))[0] == 0
        r = run_hook(root, "vm1", "prepare", "begin", xml=domain_xml("vm1"))
        assert (r.returncode, r.stderr) == (0, b"")
        assert _hook_state(root)["result"] == "admitted"


@needs_root
def test_read_only_root_the_lock_cannot_be_taken(tmp_path):
    """Everything read-only, /run too: policyctl names the lock file; the hook counts it
    as its own failure and follows on_error."""
    with tmpfs(tmp_path / "fs") as fs:
        root = os.path.join(fs, "root")
        paths = registry_on(root)
        write_raw(paths.conf, CONF + "[hook]\non_error = refuse\n")
        before = snapshot_policy_files(root)
        remount_ro(fs)
        code, out, err = run(policyctl(root, "schedweight", "vm1", "512"))
        assert (code, out) == (errors.REGISTRY, "")
        assert err == "Error: %s: cannot be locked: Read-only file system\n" % paths.lock
        r = run_hook(root, "vm1", "prepare", "begin", xml=domain_xml("vm1"))
        assert (r.returncode, r.stdout) == (1, b"")
        assert r.stderr.decode() == "policyhook: refusing to start 'vm1': %s: cannot be locked: " \
            "Read-only file system\n" % paths.lock
        assert snapshot_policy_files(root) == before
        assert_valid(root)

