"""Shared helpers for the unit tests (layers 1 and 2): temporary registries, snapshots."""

import errno
import os

from policyhook.cpuset import CpuSet
from policyhook.model import DomainPolicy, HostPolicy
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.results import Writes

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
DATA = os.path.join(TESTS, "data")


def policy(name, pins=None, emulator=None, weight=None, cap=None, uuid=None, iothreads=None):
    """A DomainPolicy from plain values: pins as {vcpu: "cpulist"}, emulator as "cpulist",
    IOThread pins as {id: "cpulist"}."""
    found = {("vcpu", v): CpuSet.parse(c) for v, c in (pins or {}).items()}
    found.update((("iothread", i), CpuSet.parse(c)) for i, c in (iothreads or {}).items())
    if emulator is not None:
        found[("emulator", 0)] = CpuSet.parse(emulator)
    sched = {k: v for k, v in (("weight", weight), ("cap", cap)) if v is not None}
    return DomainPolicy(name, found, sched, uuid)


def make_registry(root, policies=(), occupancy=None):
    """A registry under `root` holding `policies` and, when given, host.json's occupancy."""
    paths = Paths(str(root))
    store(Registry(paths), policies, HostPolicy(occupancy) if occupancy else None)
    os.makedirs(paths.domains, exist_ok=True)
    return paths


def store(reg, policies=(), host=None):
    """Save `policies` (and `host`, when given) in one transaction of Registry `reg`."""
    return reg.transact(lambda _snap: Writes(domains=policies, host=host))


def write_raw(path, data, mode=0o644):
    """Write `data` (bytes or str) as a hand-edited file would be, bypassing the registry."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def snapshot(root):
    """{relative path: bytes, or 'dir'/'link -> target'} of everything under `root`."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for d in dirnames:
            path = os.path.join(dirpath, d)
            found[os.path.relpath(path, str(root))] = "dir"
        for f in filenames:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, str(root))
            if os.path.islink(path):
                found[rel] = "link -> " + os.readlink(path)
            else:
                with open(path, "rb") as fh:
                    found[rel] = (fh.read(), os.stat(path).st_mode)
    return found


def snapshot_policy_files(root):
    """Like snapshot(), but without the lock file, which taking the lock may create."""
    lock = os.path.relpath(Paths(str(root)).lock, str(root))
    return {k: v for k, v in snapshot(root).items() if k != lock}


def pinned(name, vcpupin=None, emulatorpin=None, weight=None, cap=None, uuid=None, iothreadpin=None):
    """A DomainPolicy from CpuSets: vcpupin and iothreadpin as {index: CpuSet}."""
    found = {("vcpu", v): c for v, c in (vcpupin or {}).items()}
    found.update((("iothread", i), c) for i, c in (iothreadpin or {}).items())
    if emulatorpin is not None:
        found[("emulator", 0)] = emulatorpin
    sched = {k: v for k, v in (("weight", weight), ("cap", cap)) if v is not None}
    return DomainPolicy(name, found, sched, uuid)


class FakeThreads:
    """A host (vcputhreads.Host) with one QEMU (pid 100) of domain `name` in cgroup v2 or
    v1 layout, vCPU N's thread 200+N, and sched_setscheduler that refuses real-time for
    the threads in `refuse`."""

    def __init__(self, tmp_path, version=2, vcpus=2, refuse=(), name="vm"):
        tmp_path = self.base = tmp_path / "threads"
        tmp_path.mkdir()
        self.policy = {}
        self.refuse = set(refuse)
        self.calls = []
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / (name + ".pid")).write_text("100\n")
        proc = tmp_path / "proc" / "100"
        proc.mkdir(parents=True)
        scope = "machine.slice/machine-qemu\\x2d1\\x2d%s.scope" % name
        if version == 2:
            (proc / "cgroup").write_text("0::/%s/libvirt/emulator\n" % scope)
            base, listing = tmp_path / "cg" / scope / "libvirt", "cgroup.threads"
        else:
            (proc / "cgroup").write_text("4:memory:/x\n3:cpu,cpuacct:/%s/emulator\n0::/\n" % scope)
            base, listing = tmp_path / "cg" / "cpu,cpuacct" / scope, "tasks"
        for n in range(vcpus):
            d = base / ("vcpu%d" % n)
            d.mkdir(parents=True)
            (d / listing).write_text("%d\n" % (200 + n))
            (d / "cpu.rt_runtime_us").write_text("0\n")
            self.policy[200 + n] = (os.SCHED_OTHER, 0)
        (base / "emulator").mkdir()
        from policyhook import vcputhreads

        self.host = vcputhreads.Host(str(run_dir), str(tmp_path / "proc"), str(tmp_path / "cg"),
                                     self.getscheduler, self.getparam, self.setscheduler)

    def getscheduler(self, tid):
        return self.policy[tid][0]

    def getparam(self, tid):
        return os.sched_param(self.policy[tid][1])

    def setscheduler(self, tid, policy, param):
        self.calls.append((tid, policy, param.sched_priority))
        if tid in self.refuse and policy != os.SCHED_OTHER:
            raise OSError(errno.EPERM, os.strerror(errno.EPERM))
        self.policy[tid] = (policy, param.sched_priority)
