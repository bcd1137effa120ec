"""cpuoccupy --auto's choice and vcpupin --auto's pins (placement.py), as tables on fake
sysfs trees: 2 sockets x 8 cores x 2 threads on 2 nodes (siblings numbered apart, as
Intel hosts number them) with one L3 cache per socket, the same with two L3 caches per
node, and 1 socket x 4 cores x 1 thread."""

import io
import os

import pytest
from test_topology import fake_sysfs
from testdriver import URI
from unit_helpers import make_registry, policy, snapshot, write_raw

from policyhook import errors, placement, topology
from policyhook.cli.main import main
from policyhook.cpuset import CpuSet
from policyhook.paths import Paths
from policyhook.registry import Registry


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


# ---- policyctl: bad input, exact messages, files unchanged -----------------------------

@pytest.fixture
def root(tmp_path):
    """A registry whose host is the 2 x 8 x 2 tree, vm1 occupying core 1,17."""
    root = str(tmp_path)
    with_caches(fake_sysfs(root, 2, 8, 2, nodes=2), ["0-7,16-23", "8-15,24-31"])
    make_registry(root, [policy("vm1", {0: "1"})], {1: ["vm1"], 17: ["vm1"]})
    return root


def policyctl(root, *argv, uri=None):
    out, err = io.StringIO(), io.StringIO()
    where = ["-c", uri] if uri else ["--offline"]
    code = main(["--root", root] + where + list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


HELP = " (see 'policyctl %s --help')"
BAD = [
    (["cpuoccupy", "--auto", "0", "vm2"], errors.INVALID, "invalid CPU count 0: must be 1..8192"),
    (["cpuoccupy", "--auto", "x", "vm2"], errors.INVALID, "invalid CPU count 'x': not a whole number"),
    (["cpuoccupy", "--auto", "-1", "vm2"], errors.INVALID, "invalid CPU count '-1': not a whole number"),
    (["cpuoccupy", "--auto", "2"], errors.INVALID,
     "the following arguments are required: DOMAINS" + HELP % "cpuoccupy"),
    (["cpuoccupy"], errors.INVALID, "the following arguments are required: PCPUS" + HELP % "cpuoccupy"),
    (["cpuoccupy", "--auto", "2", "3", "vm2"], errors.INVALID,
     "cpuoccupy --auto N takes DOMAINS alone: no PCPUS, --clear or --whole-cores" + HELP % "cpuoccupy"),
    (["cpuoccupy", "--auto", "2", "vm2", "--clear"], errors.INVALID,
     "cpuoccupy --auto N takes DOMAINS alone: no PCPUS, --clear or --whole-cores" + HELP % "cpuoccupy"),
    (["cpuoccupy", "--auto", "2", "vm2", "--whole-cores"], errors.INVALID,
     "cpuoccupy --auto N takes DOMAINS alone: no PCPUS, --clear or --whole-cores" + HELP % "cpuoccupy"),
    (["cpuoccupy", "--auto", "2", "vm2,vm2"], errors.INVALID,
     "invalid domain list 'vm2,vm2': a domain is listed twice"),
    (["cpuoccupy", "--auto", "2", "a/b"], errors.INVALID, "invalid domain name 'a/b': '/' is not allowed"),
    (["cpuoccupy", "--auto", "17", "vm2"], errors.CONFLICT,
     "cannot place 17 CPUs for vm2: no NUMA node has 17 free CPUs in whole cores outside [occupancy] "
     "reserved (0) and the occupied CPUs (node 0: 6 free whole cores; node 1: 8 free whole cores); "
     "best partial choice: CPUs 8-15,24-31 on node 1; nothing saved"),
    (["vcpupin", "vm2", "--auto"], errors.INVALID,
     "vcpupin --auto needs the vCPU count of 'vm2' from libvirt (it cannot work --offline, nor for a "
     "domain libvirt does not know)"),
    (["vcpupin", "vm2", "0", "--auto"], errors.INVALID,
     "vcpupin --auto takes DOMAIN alone: no VCPU or CPULIST" + HELP % "vcpupin"),
    (["vcpupin", "vm2", "0", "1", "--auto"], errors.INVALID,
     "vcpupin --auto takes DOMAIN alone: no VCPU or CPULIST" + HELP % "vcpupin"),
    (["vcpupin", "vm2"], errors.INVALID,
     "the following arguments are required: VCPU, CPULIST" + HELP % "vcpupin"),
    (["vcpupin", "--auto"], errors.INVALID,
     "the following arguments are required: DOMAIN" + HELP % "vcpupin"),
]


@pytest.mark.parametrize("argv, code, message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input(root, argv, code, message):
    before = snapshot(root)
    assert policyctl(root, *argv) == (code, "", "Error: %s\n" % message)
    assert snapshot(root) == before


def test_reserved_and_dry_run(root):
    write_raw(Paths(root).conf, "[occupancy]\nreserved = 0-7,16-23\n")
    before = snapshot(root)
    code, out, err = policyctl(root, "cpuoccupy", "--auto", "1", "vm2", "--dry-run")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "rounded up to whole cores: 1 asked, 2 taken",
        "NUMA node 1: the most free whole cores (8; node 0: 0)",
        "  CPU 8: whole core 8,24 free; no running domain pinned there",
        "  CPU 24: whole core 8,24 free; no running domain pinned there",
        "CPUs 8,24 occupied by vm2: would be saved (dry run)"]
    assert snapshot(root) == before
    assert policyctl(root, "cpuoccupy", "--auto", "1", "vm2")[0] == 0
    assert Registry(Paths(root)).load_host().occupies("vm2") == [8, 24]


def test_vcpupin_auto_refused_on_too_few_cpus(root):
    """On libvirt's test driver: running2 has 2 vCPUs."""
    before = snapshot(root)
    assert policyctl(root, "vcpupin", "running2", "--auto", uri=URI) == (
        errors.CONFLICT, "", "Error: domain 'running2' has 2 vCPUs but occupies no CPU; vcpupin --auto gives "
        "each vCPU a CPU of its own: occupy 2 first (policyctl cpuoccupy --auto 2 running2)\n")
    assert snapshot(root) == before
