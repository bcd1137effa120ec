"""cpuoccupy --auto and vcpupin --auto: which physical CPUs, chosen from the host's
topology, the occupancy map, the running domains' pins and the settings, as Kubernetes'
CPU manager and Nova choose (doc/design.md "Automatic placement"). Pure: the callers
(api.py) ask libvirt first and run this inside the registry's transaction.

cpuoccupy --auto N takes N CPUs by these rules, in this order:
1. never a CPU in [occupancy] reserved, nor one already occupied;
2. whole cores where the host has SMT (N rounded up to whole cores);
3. all on one NUMA node: the one the domains' memory is bound to by <numatune> if any,
   else the node with the most free whole cores;
4. within the node, cores sharing one last-level cache where the node has several: the
   cache with the fewest free cores that holds them all, which leaves the larger ones
   whole for larger requests;
5. then cores no running domain is pinned to; then the lowest numbers.
Rules 1 to 3 are hard (nothing fits: a Placement with fits False and the best partial
choice); 4 and 5 are preferences.
"""

from __future__ import annotations

from .cpuset import CpuSet
from .results import Placement

# For the checker alone (typing costs ~10 ms at import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .topology import Topology


def _units(topo: Topology, smt: bool) -> list[CpuSet]:
    """The host's cores (their online CPUs) with SMT, else one unit per CPU; in order."""
    online = topo.online()
    if not smt:
        return [CpuSet([c]) for c in online]
    seen: set[CpuSet] = set()
    units = []
    for cpu in online:
        core = topo.siblings(cpu) & online
        if core not in seen:
            seen.add(core)
            units.append(core)
    return units


def _first(cpus: CpuSet) -> int:
    return next(iter(cpus))


def _size(units: list[CpuSet]) -> int:
    return sum(len(u) for u in units)


def _take(units: list[CpuSet], count: int, pinned: Mapping[int, object]) -> list[CpuSet]:
    """Units enough for `count` CPUs: those with no CPU pinned first, then in order."""
    out: list[CpuSet] = []
    for unit in sorted(units, key=lambda u: (any(c in pinned for c in u), _first(u))):
        if _size(out) >= count:
            break
        out.append(unit)
    return sorted(out, key=lambda u: _first(u))


def choose(topo: Topology, count: int, reserved: CpuSet, occupied: CpuSet,
           pinned: Mapping[int, object], memory_nodes: CpuSet | None = None) -> Placement:
    """The Placement of `count` CPUs. `pinned`: {cpu: the running domains pinned there}
    (pins narrower than every host CPU, the placed domains' own left out);
    `memory_nodes`: the nodes the domains' memory is bound to, or None."""
    smt = topo.has_smt()
    units = _units(topo, smt)
    free = topo.online() - reserved - occupied
    usable = [u for u in units if u.issubset(free)]
    nodes: dict[int, list[CpuSet]] = {}
    for unit in units:
        nodes.setdefault(topo.cpus[_first(unit)].node, [])
    for unit in usable:
        nodes[topo.cpus[_first(unit)].node].append(unit)
    candidates = sorted(nodes) if memory_nodes is None else [n for n in sorted(nodes) if n in memory_nodes]
    free_by_node = {n: nodes[n] for n in candidates}
    # Rule 3: the node with the most free whole cores among those that can hold them all.
    fitting = [n for n in candidates if _size(nodes[n]) >= count]
    pool = fitting or candidates
    node = max(pool, key=lambda n: (len(nodes[n]), -n)) if pool else None
    placement = Placement(count, smt=smt, reserved=reserved & topo.online(),
                          memory_nodes=memory_nodes, free_by_node=free_by_node)
    if node is None:
        return placement
    placement.node = node
    if not fitting:
        placement.cpus = CpuSet(c for u in _take(nodes[node], count, pinned) for c in u)
        placement.pinned = {c: pinned[c] for c in placement.cpus if c in pinned}
        return placement
    # Rule 4: one last-level cache, where the node has several.
    caches: dict[CpuSet | None, list[CpuSet]] = {}
    for unit in units:
        if topo.cpus[_first(unit)].node == node:
            caches.setdefault(topo.cpus[_first(unit)].llc, [])
    for unit in nodes[node]:
        caches[topo.cpus[_first(unit)].llc].append(unit)
    chosen: list[CpuSet]
    if len(caches) > 1:
        holding = [k for k in caches if _size(caches[k]) >= count]
        if holding:
            def cost(key: CpuSet | None) -> tuple[int, int, int]:
                took = _take(caches[key], count, pinned)
                busy = sum(1 for u in took for c in u if c in pinned)
                return (busy, len(caches[key]), min(c for u in caches[key] for c in u))
            llc = min(holding, key=cost)
            chosen = _take(caches[llc], count, pinned)
            placement.llc = llc
        else:
            # No cache holds them all: the fewest caches, the largest first.
            chosen = []
            def fullest(key: CpuSet | None) -> tuple[int, int]:
                return (-_size(caches[key]), _first(caches[key][0]) if caches[key] else 0)
            for key in sorted(caches, key=fullest):
                if _size(chosen) >= count:
                    break
                chosen += _take(caches[key], count - _size(chosen), pinned)
            placement.llc_split = True
        placement.llcs = len(caches)
    else:
        chosen = _take(nodes[node], count, pinned)
    placement.cpus = CpuSet(c for u in chosen for c in u)
    placement.cores = [u for u in sorted(chosen, key=lambda u: _first(u))]
    placement.pinned = {c: pinned[c] for c in placement.cpus if c in pinned}
    placement.fits = True
    return placement


def vcpu_pins(topo: Topology, held: CpuSet, vcpus: int, threads: int = 1) -> list[CpuSet] | None:
    """One host CPU of `held` for each of `vcpus` vCPUs (vCPU i gets item i), or None when
    `held` has fewer CPUs than that. A guest with `threads` per core gets each of its
    cores (vCPUs i*threads..) on one host core's threads where the host has cores that
    many threads wide in `held`; the rest in order."""
    if len(held) < vcpus:
        return None
    cores: list[list[int]] = []
    seen: set[int] = set()
    for cpu in held:
        if cpu not in seen:
            core = sorted((topo.siblings(cpu) & held) | CpuSet([cpu]))
            seen.update(core)
            cores.append(core)
    order: list[int] = []
    if threads > 1:
        # Guest core g is vCPUs g*threads..: each on a host core of its own.
        for _ in range(vcpus // threads):
            wide = [c for c in cores if len(c) >= threads and not set(c) & set(order)]
            if not wide:
                break
            order += wide[0][:threads]
    # The rest one thread of each core first: a guest that does not see the host's threads
    # gets whole cores as long as there are enough.
    width = max((len(c) for c in cores), default=1)
    order += [core[t] for t in range(width) for core in cores if t < len(core) and core[t] not in order]
    return [CpuSet([c]) for c in order[:vcpus]]


def emulator_cpus(topo: Topology, held: CpuSet, occupied: CpuSet) -> CpuSet:
    """The CPUs of the nodes of `held` outside every occupancy set (may be empty)."""
    nodes = {topo.cpus[c].node for c in held if c in topo.cpus}
    return CpuSet(c for c, cpu in topo.cpus.items() if cpu.node in nodes) - occupied


def node_of(topo: Topology, cpus: CpuSet) -> int | None:
    """The one NUMA node all of `cpus` lie in, else None (memory = follow binds there)."""
    nodes = {topo.cpus[c].node if c in topo.cpus else None for c in cpus}
    return nodes.pop() if len(nodes) == 1 else None
