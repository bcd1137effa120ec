"""The host's CPU topology: for each online CPU its NUMA node, socket, core,
hyperthread siblings and the CPUs sharing its last-level cache. Read from sysfs (this
machine: the hook's and --offline's view) or from libvirt's capabilities (the
connection's host, which may be another machine).
Pure but for the file reads; the tests give it a fake sysfs tree.
"""

from __future__ import annotations

import os

from .cpuset import CpuSet
from .errors import PolicyError

# For the checker alone (typing costs ~10 ms at import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class Cpu:
    __slots__ = ("id", "node", "socket", "core", "siblings", "llc")

    def __init__(self, cpu: int, node: int, socket: int, core: int, siblings: CpuSet,
                 llc: CpuSet | None = None) -> None:
        self.id = cpu
        self.node = node            # NUMA node, 0 when the host has none
        self.socket = socket        # physical package
        self.core = core            # core id, unique within its socket
        self.siblings = siblings    # CpuSet: the CPUs of its core, itself included
        self.llc = llc              # CpuSet sharing its level 3 cache, None when not known


class Topology:
    def __init__(self, cpus: Iterable[Cpu]) -> None:
        self.cpus = {c.id: c for c in cpus}

    def online(self) -> CpuSet:
        return CpuSet(self.cpus)

    def siblings(self, cpu: int) -> CpuSet:
        found = self.cpus.get(cpu)
        return found.siblings if found is not None else CpuSet([cpu])

    def whole_cores(self, cpus: CpuSet) -> CpuSet:
        """`cpus` with every hyperthread sibling of each."""
        out = set(cpus)
        for cpu in cpus:
            out.update(self.siblings(cpu))
        return CpuSet(out & set(self.cpus)) | cpus

    def open_siblings(self, cpus: CpuSet) -> dict[int, CpuSet]:
        """{cpu: its siblings outside `cpus`} for the CPUs of `cpus` whose core they do
        not hold whole."""
        return {cpu: self.siblings(cpu) - cpus for cpu in cpus if self.siblings(cpu) - cpus}

    def nodes_of(self, cpus: Iterable[int]) -> dict[int | None, CpuSet]:
        """{node: the CPUs of `cpus` on it}."""
        found: dict[int | None, set[int]] = {}
        for cpu in cpus:
            node = self.cpus[cpu].node if cpu in self.cpus else None
            found.setdefault(node, set()).add(cpu)
        return {n: CpuSet(c) for n, c in found.items()}

    def has_smt(self) -> bool:
        """True when some core has more than one hyperthread online."""
        return any(len(c.siblings & self.online()) > 1 for c in self.cpus.values())

    def layout(self) -> list[tuple[int, int, int, list[int]]]:
        """[(node, socket, core, [cpu ids])] in order: how the host is drawn."""
        cores: dict[tuple[int, int, int], list[int]] = {}
        for c in self.cpus.values():
            cores.setdefault((c.node, c.socket, c.core), []).append(c.id)
        return [(n, s, k, sorted(ids)) for (n, s, k), ids in sorted(cores.items())]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def from_sysfs(root: str = "/sys/devices/system") -> Topology:
    """The topology of this machine's online CPUs (sysfs under `root`)."""
    cpu_dir = os.path.join(root, "cpu")
    try:
        online = CpuSet.parse(_read(os.path.join(cpu_dir, "online")))
    except (OSError, PolicyError) as e:
        raise PolicyError("cannot read the host's CPUs from %s: %s" % (cpu_dir, e), 1) from None
    nodes: dict[int, int] = {}
    node_dir = os.path.join(root, "node")
    if os.path.isdir(node_dir):
        for entry in os.listdir(node_dir):
            if entry.startswith("node") and entry[4:].isdigit():
                try:
                    for cpu in CpuSet.parse(_read(os.path.join(node_dir, entry, "cpulist"))):
                        nodes[cpu] = int(entry[4:])
                except (OSError, PolicyError):
                    continue   # a node with no CPUs has an empty cpulist
    cpus = []
    for cpu in online:
        topo = os.path.join(cpu_dir, "cpu%d" % cpu, "topology")
        try:
            socket = int(_read(os.path.join(topo, "physical_package_id")))
            core = int(_read(os.path.join(topo, "core_id")))
            siblings = CpuSet.parse(_read(os.path.join(topo, "thread_siblings_list")))
        except (OSError, ValueError, PolicyError):
            socket, core, siblings = 0, cpu, CpuSet([cpu])   # no topology: one thread per core
        cpus.append(Cpu(cpu, nodes.get(cpu, 0), socket, core, siblings,
                        _llc(os.path.join(cpu_dir, "cpu%d" % cpu, "cache", "index3"))))
    return Topology(cpus)


def _llc(index: str) -> CpuSet | None:
    """The CPUs sharing the level 3 cache that sysfs describes in `index` (a CPU's
    cache/index3), or None where there is none (no L3, or a kernel that does not say)."""
    try:
        if _read(os.path.join(index, "level")) != "3":
            return None
        return CpuSet.parse(_read(os.path.join(index, "shared_cpu_list")))
    except (OSError, PolicyError):
        return None


def from_capabilities(xml: str, online: CpuSet | None = None) -> Topology:
    """The topology libvirt reports in its capabilities (<host><topology><cells>), for
    the CPUs in `online` (a CpuSet) when given; PolicyError when it cannot be read (the
    caller then assumes a flat one)."""
    import xml.etree.ElementTree as ET

    cpus = []
    try:
        root = ET.fromstring(xml)
        # <cache><bank level='3' cpus='0-7'/>: libvirt reads them from the same sysfs files.
        llcs = [CpuSet.parse(b.get("cpus", "")) for b in root.findall("host/cache/bank")
                if b.get("level") == "3" and b.get("cpus")]
        for cell in root.findall("host/topology/cells/cell"):
            node = int(cell.get("id", "0"))
            for c in cell.findall("cpus/cpu"):
                # A <cpu> without an id is not one we can pin: int("") refuses it.
                cpu = int(c.get("id", ""))
                if online is not None and cpu not in online:
                    continue
                siblings = c.get("siblings")
                cpus.append(Cpu(cpu, node, int(c.get("socket_id", "0")), int(c.get("core_id", str(cpu))),
                                CpuSet.parse(siblings) if siblings else CpuSet([cpu]),
                                next((b for b in llcs if cpu in b), None)))
    except (ValueError, ET.ParseError, PolicyError) as e:
        raise PolicyError("cannot read the host's topology from libvirt's capabilities: %s" % e, 1) from None
    return Topology(cpus)


def flat(online: Iterable[int]) -> Topology:
    """One thread per core, one node: what is assumed when nothing better is known."""
    return Topology([Cpu(c, 0, 0, c, CpuSet([c])) for c in online])
