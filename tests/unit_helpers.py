"""Shared helpers for the unit tests (layers 1 and 2): temporary registries, snapshots."""

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
