"""cpuoccupy --auto's choice and vcpupin --auto's pins (placement.py), as tables on fake
sysfs trees: 2 sockets x 8 cores x 2 threads on 2 nodes (siblings numbered apart, as
Intel hosts number them) with one L3 cache per socket, the same with two L3 caches per
node, and 1 socket x 4 cores x 1 thread."""

import os

import pytest
from test_topology import fake_sysfs
from unit_helpers import write_raw

from policyhook import placement, topology
from policyhook.cpuset import CpuSet


def with_caches(system, groups):
    """Each CPU's cache/index3 as Linux writes it: level 3, shared with its group."""
    for group in groups:
        cpus = CpuSet.parse(group)
        for cpu in cpus:
            index = os.path.join(system, "cpu", "cpu%d" % cpu, "cache", "index3")
            write_raw(os.path.join(index, "level"), "3\n")
            write_raw(os.path.join(index, "shared_cpu_list"), "%s\n" % cpus)
    return system


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    big = with_caches(fake_sysfs(str(base / "big"), 2, 8, 2, nodes=2), ["0-7,16-23", "8-15,24-31"])
    split = with_caches(fake_sysfs(str(base / "split"), 2, 8, 2, nodes=2),
                        ["0-3,16-19", "4-7,20-23", "8-11,24-27", "12-15,28-31"])
    small = fake_sysfs(str(base / "small"), 1, 4, 1)
    return {name: topology.from_sysfs(path) for name, path in
            (("big", big), ("split", split), ("small", small))}


def cs(text):
    return CpuSet.parse(text) if text else CpuSet()


CHOICES = [
    # (id, tree, N, reserved, occupied, pinned CPUs, <numatune> nodes,
    #  -> CPUs, node, fits, L3 chosen)
    ("most free node", "big", 2, "0", "", "", None, "8,24", 1, True, None),
    ("rounded up to cores", "big", 3, "0", "", "", None, "8-9,24-25", 1, True, None),
    ("numatune's node", "big", 2, "0", "", "", "0", "1,17", 0, True, None),
    ("numatune's nodes, most free", "big", 2, "0", "", "", "0-1", "8,24", 1, True, None),
    ("half-occupied cores are not free", "big", 2, "0", "8-15", "", None, "1,17", 0, True, None),
    ("occupied whole cores", "big", 2, "", "0,16", "", None, "8,24", 1, True, None),
    ("tie: lowest node", "big", 2, "", "", "", None, "0,16", 0, True, None),
    ("unpinned first", "big", 2, "0", "", "8", None, "9,25", 1, True, None),
    ("pinned when it must", "big", 16, "0", "", "8", None, "8-15,24-31", 1, True, None),
    ("one L3 on the node", "split", 4, "0", "", "", None, "8-9,24-25", 1, True, "8-11,24-27"),
    ("fewest free L3 that holds", "split", 4, "0", "", "", "0", "1-2,17-18", 0, True, "0-3,16-19"),
    ("L3 with no pinned CPU", "split", 4, "0", "", "8-11", None, "12-13,28-29", 1, True, "12-15,28-31"),
    ("no L3 holds them all", "split", 10, "0", "", "", None, "8-12,24-28", 1, True, None),
    ("no SMT", "small", 2, "0", "", "", None, "1-2", 0, True, None),
    ("no SMT, reserved 0-1", "small", 1, "0-1", "", "", None, "2", 0, True, None),
    ("nothing fits: partial", "small", 3, "0", "3", "", None, "1-2", 0, False, None),
    ("nothing free", "small", 1, "0-3", "", "", None, "", 0, False, None),
    ("too many for a node", "big", 20, "0", "", "", None, "8-15,24-31", 1, False, None),
    ("numatune's node is full", "big", 2, "0", "1-7", "", "0", "", 0, False, None),
    ("numatune names no node here", "big", 2, "0", "", "", "5", "", None, False, None),
]


@pytest.mark.parametrize("case", CHOICES, ids=[c[0] for c in CHOICES])
def test_choose(trees, case):
    _id, tree, count, reserved, occupied, pinned, nodes, cpus, node, fits, llc = case
    p = placement.choose(trees[tree], count, cs(reserved), cs(occupied),
                         {c: ["other"] for c in cs(pinned)}, None if nodes is None else cs(nodes))
    assert (str(p.cpus), p.node, p.fits) == (cpus, node, fits)
    assert p.llc == (cs(llc) if llc else None)
    assert p.smt == (tree != "small")
    if fits:
        assert not p.cpus & (cs(reserved) | cs(occupied))
        assert len(trees[tree].nodes_of(p.cpus)) == 1
        assert p.rounded == (len(p.cpus) > count)
        if p.smt:
            assert trees[tree].whole_cores(p.cpus) == p.cpus


def test_split_reports_it(trees):
    p = placement.choose(trees["split"], 10, cs("0"), CpuSet(), {})
    assert (p.llc_split, p.llcs) == (True, 2)
    assert [str(c) for c in p.cores] == ["8,24", "9,25", "10,26", "11,27", "12,28"]


PINS = [
    # (tree, held, vCPUs, guest threads, -> each vCPU's CPU)
    ("big", "8-9,24-25", 2, 2, ["8", "24"]),
    ("big", "8-9,24-25", 2, 1, ["8", "9"]),
    ("big", "8-9,24-25", 4, 2, ["8", "24", "9", "25"]),
    ("big", "8-9,24-25", 4, 1, ["8", "9", "24", "25"]),
    ("big", "8-9,24", 3, 2, ["8", "24", "9"]),
    ("big", "8-9,24-25", 3, 2, ["8", "24", "9"]),
    ("small", "1-2", 2, 2, ["1", "2"]),
    ("big", "8,24", 3, 1, None),
]


@pytest.mark.parametrize("tree, held, vcpus, threads, expected", PINS)
def test_vcpu_pins(trees, tree, held, vcpus, threads, expected):
    got = placement.vcpu_pins(trees[tree], cs(held), vcpus, threads)
    assert (None if got is None else [str(c) for c in got]) == expected


def test_emulator_cpus(trees):
    big = trees["big"]
    assert str(placement.emulator_cpus(big, cs("8,24"), cs("8,24,1"))) == "9-15,25-31"
    assert str(placement.emulator_cpus(big, cs("8,24"), cs("8-15,24-31"))) == ""
    assert placement.node_of(big, cs("8,24")) == 1 and placement.node_of(big, cs("0,8")) is None


def test_caches_from_capabilities():
    xml = """<capabilities><host><topology><cells num='1'><cell id='0'><cpus num='4'>
      <cpu id='0' socket_id='0' core_id='0' siblings='0-1'/>
      <cpu id='1' socket_id='0' core_id='0' siblings='0-1'/>
      <cpu id='2' socket_id='0' core_id='1' siblings='2-3'/>
      <cpu id='3' socket_id='0' core_id='1' siblings='2-3'/>
      </cpus></cell></cells></topology>
      <cache><bank id='0' level='3' type='both' size='16' unit='MiB' cpus='0-1'/>
      <bank id='1' level='3' type='both' size='16' unit='MiB' cpus='2-3'/></cache></host></capabilities>"""
    t = topology.from_capabilities(xml)
    assert [str(t.cpus[c].llc) for c in range(4)] == ["0-1", "0-1", "2-3", "2-3"]
    assert t.has_smt()
