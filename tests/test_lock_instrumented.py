"""The registry lock covers read, plan and save only: never a libvirt, systemd or host
call while it is held (a starting domain's hook gives up on the lock after 0.5 s, and one
libvirt call can wait 30 s on a busy domain).

Every policyctl command, both occupancy modes, persistent mode, host isolation, the
applier, its updater and the watcher run on libvirt's test driver with three things
instrumented through their constructor arguments (no patching): the registry lock (a
counter of holders around the real flock), the libvirt connection and every domain it
hands out, and systemctl. A call on either while a holder is counted is a violation.
"""

import io
import os
import pathlib
import shutil

import libvirt
import pytest
from testdriver import URI, RecordingConn, RecordingDomain
from unit_helpers import FakeThreads, policy, store, write_raw

from policyhook import applier, state
from policyhook.api import PolicyManager
from policyhook.cli.main import main
from policyhook.locking import FlockLock
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.settings import load_settings
from policyhook.systemd import Systemd
from policyhook.watch import Watcher

OTHER = "99999999-2222-3333-4444-555555555555"


class Guard:
    """Counts the holders of the registry lock; notes every outside call made meanwhile."""

    def __init__(self):
        self.held = 0
        self.taken = 0
        self.calls = 0
        self.violations = []

    def lock(self, path, timeout):
        """The registry lock factory (registry.Registry's `lock`)."""
        return Held(self, FlockLock(path, timeout))

    def check(self, what):
        self.calls += 1
        if self.held:
            self.violations.append(what)

    def wrap(self, value, what):
        if isinstance(value, (libvirt.virDomain, RecordingDomain)):
            return Watched(value, self, "virDomain")
        if isinstance(value, list):
            return [self.wrap(v, what) for v in value]
        return value

    def connect(self, conn):
        """connect(uri) for the session: the one test-driver connection, watched."""
        watched = Watched(conn, self, "virConnect")

        def connect(uri):
            self.check("connect %s" % uri)
            return watched
        return connect

    def systemd(self, root):
        """systemctl that sets and shows AllowedCPUs in memory."""
        allowed = {}

        class Done:
            returncode = 0
            stderr = ""

        def run(argv):
            self.check(" ".join(argv))
            r = Done()
            r.stdout = ""
            if argv[1] == "show":
                r.stdout = allowed.get(argv[-1], "") + "\n"
            elif argv[1] == "set-property":
                allowed[argv[4]] = argv[5].split("=", 1)[1]
            return r
        return Systemd(run, root)


class Held:
    def __init__(self, guard, lock):
        self.guard = guard
        self.lock = lock

    def __enter__(self):
        self.lock.__enter__()
        self.guard.held += 1
        self.guard.taken += 1
        return self

    def __exit__(self, *exc):
        self.guard.held -= 1
        return self.lock.__exit__(*exc)


class Watched:
    """A libvirt object whose every method call is checked against the lock."""

    def __init__(self, obj, guard, what):
        self._obj = obj
        self._guard = guard
        self._what = what

    def __getattr__(self, attr):
        value = getattr(self._obj, attr)
        if not callable(value):
            return value

        def call(*args, **kw):
            self._guard.check("%s.%s" % (self._what, attr))
            return self._guard.wrap(value(*args, **kw), attr)
        return call


CONFIGS = {
    "static": "[occupancy]\nmode = static\nisolate_host = yes\n",
    "running": "[occupancy]\nmode = running\nisolate_host = yes\n",
    "persistent": "[libvirt]\npersistent = yes\n[occupancy]\nmode = running\nisolate_host = yes\n"
                  "memory = follow\n",
}


@pytest.fixture(params=sorted(CONFIGS))
def lab(request, tmp_path):
    """A registry with policies, an occupancy set and systemd, and the guard."""
    paths = Paths(str(tmp_path))
    os.makedirs(paths.domains)
    os.makedirs(paths.run)
    os.makedirs(os.path.join(str(tmp_path), "run", "systemd", "system"))
    write_raw(paths.conf, CONFIGS[request.param])
    store(Registry(paths), [policy("running2", {0: "0"}, weight=300), policy("oldname", weight=5),
                            policy("pinned1", emulator="2", uuid=OTHER)],
          HostPolicy({0: ("running2",)}))
    state.update(paths, "running2", result="applied")
    c = libvirt.open(URI)
    guard = Guard()
    yield paths, RecordingConn(c), guard
    c.close()


COMMANDS = [
    ["vcpupin", "running2", "1", "2"],
    ["emulatorpin", "running2", "0,2"],
    ["iothreadpin", "newdom", "1", "4", "--undefined"],
    ["iothreadpin", "running2", "1", "0"],
    ["schedweight", "running2", "500"],
    ["schedcap", "running2", "50"],
    ["schedweight", "running2", "500", "--dry-run"],
    ["cpuoccupy", "2", "running2"],
    ["cpuoccupy", "2", "running2", "--whole-cores"],
    ["cpuoccupy", "0", "--clear"],
    ["cpuoccupy", "2", "stopped", "--dry-run"],
    ["cpuoccupy", "--auto", "1", "running2"],
    ["cpuoccupy", "--auto", "1", "stopped", "--dry-run"],
    ["vcpusched", "running2", "0", "fifo", "5"],
    ["unset", "running2", "weight"],
    ["unset", "running2", "vcpupin"],
    ["remove", "running2"],
    ["remove", "broken"],
    ["rename", "oldname", "stopped"],
    ["rebind", "pinned1"],
    ["apply", "running2"],
    ["apply", "--all"],
    ["apply", "--config", "running2"],
    ["verify"],
    ["cpupolicy", "running2"],
    ["list"],
    ["occupancy"],
    ["check"],
]


def policyctl(lab, argv):
    """(exit code, stderr) of policyctl `argv` on the instrumented lab."""
    paths, conn, guard = lab
    if "broken" in argv:
        write_raw(paths.domain_file("broken"), "{not json")
    err = io.StringIO()
    threads = FakeThreads(pathlib.Path(paths.root), name="running2").host
    code = main(["--root", paths.root, "-c", URI] + argv, io.StringIO(), err, connect=guard.connect(conn),
                environ={}, lock=guard.lock, systemd=guard.systemd(paths.root), threads=threads)
    return code, err.getvalue()


READERS = ("verify", "cpupolicy", "list", "occupancy", "check")


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_no_outside_call_under_the_lock_policyctl(lab, argv):
    guard = lab[2]
    code, err = policyctl(lab, argv)
    assert "internal error" not in err
    assert guard.violations == [], (code, err)
    assert guard.calls > 0 or argv[0] in ("check", "list")   # those two ask libvirt nothing
    if argv[0] not in READERS and "--dry-run" not in argv and argv[:2] != ["iothreadpin", "running2"]:
        # A change that went through: the instrument saw it take the lock.
        assert (code, guard.taken > 0) == (0, True), err


def test_no_outside_call_under_the_lock_vcpupin_auto(lab):
    """vcpupin --auto once the domain occupies a CPU per vCPU (cpuoccupy --auto)."""
    guard = lab[2]
    assert policyctl(lab, ["cpuoccupy", "--auto", "1", "running2"])[0] == 0
    shutil.rmtree(os.path.join(lab[0].root, "threads"))    # policyctl() makes its fake threads anew
    guard.taken = guard.calls = 0
    code, err = policyctl(lab, ["vcpupin", "running2", "--auto"])
    assert (code, err) == (0, "")
    assert guard.taken > 0 and guard.calls > 0
    assert guard.violations == []


def test_no_outside_call_under_the_lock_applier_and_updater(lab):
    paths, conn, guard = lab
    assert applier.run("qemu", "running2", paths, 0.0, "start/begin", connect=guard.connect(conn),
                       lock=guard.lock, systemd=guard.systemd(paths.root)) in (0, 1)
    assert applier.run_host("qemu", "running2", paths, "release/end", connect=guard.connect(conn),
                            lock=guard.lock, systemd=guard.systemd(paths.root)) == 0
    assert guard.taken > 0 and guard.calls > 0
    assert guard.violations == []


@pytest.mark.parametrize("on_drift", ["report", "repair"])
def test_no_outside_call_under_the_lock_watcher(lab, on_drift):
    paths, conn, guard = lab
    settings = load_settings(paths)
    settings.on_drift = on_drift
    connect = guard.connect(conn)
    systemd = guard.systemd(paths.root)

    def open_manager(uri):
        return PolicyManager(paths, uri=uri, settings=settings, connect=connect, lock=guard.lock,
                             systemd=systemd)
    w = Watcher(paths, settings, [URI], open_manager, say=lambda *_a: None)
    w.links[URI] = open_manager(URI)
    w.reconcile()
    w.check(URI, "running2", "tunable")
    assert guard.taken > 0 and guard.calls > 0
    assert guard.violations == []
