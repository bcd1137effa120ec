"""Hyperthread siblings, NUMA nodes and who owns what, on fake sysfs trees: 2 sockets x 8
cores x 2 threads on 2 nodes (siblings numbered apart, as Intel hosts number them), and
1 socket x 4 cores x 1 thread."""

import io
import json
import os

import pytest
from unit_helpers import write_raw

from policyhook import topology
from policyhook.cli import main
from policyhook.cpuset import CpuSet
from policyhook.errors import PolicyError
from policyhook.paths import Paths


def fake_sysfs(root, sockets, cores, threads, nodes=1):
    """A sysfs tree under root/sys/devices/system as Linux writes it. CPU n is thread
    n // (sockets*cores) of core n % (sockets*cores); node = socket * nodes // sockets."""
    system = os.path.join(root, "sys", "devices", "system")
    per_thread = sockets * cores
    total = per_thread * threads
    write_raw(os.path.join(system, "cpu", "online"), "0-%d\n" % (total - 1))
    by_node = {}
    for cpu in range(total):
        core_index = cpu % per_thread
        socket = core_index // cores
        siblings = CpuSet(core_index + t * per_thread for t in range(threads))
        topo = os.path.join(system, "cpu", "cpu%d" % cpu, "topology")
        write_raw(os.path.join(topo, "physical_package_id"), "%d\n" % socket)
        write_raw(os.path.join(topo, "core_id"), "%d\n" % (core_index % cores))
        write_raw(os.path.join(topo, "thread_siblings_list"), "%s\n" % siblings)
        by_node.setdefault(socket * nodes // sockets, []).append(cpu)
    for node, cpus in by_node.items():
        write_raw(os.path.join(system, "node", "node%d" % node, "cpulist"), "%s\n" % CpuSet(cpus))
    return system


@pytest.fixture
def big(tmp_path):
    root = str(tmp_path / "big")
    fake_sysfs(root, 2, 8, 2, nodes=2)
    return root


@pytest.fixture
def small(tmp_path):
    root = str(tmp_path / "small")
    fake_sysfs(root, 1, 4, 1)
    return root


def test_topology_from_sysfs(big, small):
    t = topology.from_sysfs(Paths(big).sysfs)
    assert t.online() == CpuSet.parse("0-31")
    assert t.siblings(1) == CpuSet.parse("1,17") and t.siblings(17) == CpuSet.parse("1,17")
    assert (t.cpus[9].socket, t.cpus[9].core, t.cpus[9].node) == (1, 1, 1)
    assert t.nodes_of(CpuSet.parse("0-1,8")) == {0: CpuSet.parse("0-1"), 1: CpuSet.parse("8")}
    assert t.whole_cores(CpuSet.parse("1,8")) == CpuSet.parse("1,8,17,24")
    assert t.open_siblings(CpuSet.parse("1,17,8")) == {8: CpuSet.parse("24")}
    assert t.layout()[:2] == [(0, 0, 0, [0, 16]), (0, 0, 1, [1, 17])]
    s = topology.from_sysfs(Paths(small).sysfs)
    assert s.layout() == [(0, 0, 0, [0]), (0, 0, 1, [1]), (0, 0, 2, [2]), (0, 0, 3, [3])]
    assert s.open_siblings(CpuSet.parse("1")) == {}


def test_topology_from_libvirt_capabilities():
    caps = """<capabilities><host><topology><cells num='2'>
      <cell id='0'><cpus num='2'><cpu id='0' socket_id='0' die_id='0' core_id='0' siblings='0-1'/>
        <cpu id='1' socket_id='0' die_id='0' core_id='0' siblings='0-1'/></cpus></cell>
      <cell id='1'><cpus num='2'><cpu id='2' socket_id='1' die_id='0' core_id='0' siblings='2-3'/>
        <cpu id='3' socket_id='1' die_id='0' core_id='0' siblings='2-3'/></cpus></cell>
    </cells></topology></host></capabilities>"""
    t = topology.from_capabilities(caps)
    assert t.layout() == [(0, 0, 0, [0, 1]), (1, 1, 0, [2, 3])]
    assert topology.from_capabilities(caps, CpuSet.parse("0-1")).online() == CpuSet.parse("0-1")


@pytest.mark.parametrize("caps,why", [
    ("<capabilities><host><topology><cells><cell id='0'><cpus><cpu socket_id='0'/></cpus></cell>"
     "</cells></topology></host></capabilities>", "invalid literal for int() with base 10: ''"),
    ("<capabilities><host><topology><cells><cell id='0'><cpus><cpu id='0' core_id='x'/></cpus></cell>"
     "</cells></topology></host></capabilities>", "invalid literal for int() with base 10: 'x'"),
    ("<capabilities>", "no element found: line 1, column 14"),
])
def test_capabilities_that_cannot_be_read_are_an_error_not_a_traceback(caps, why):
    # policyctl's session falls back to a flat topology on this PolicyError; a TypeError
    # from int(None) once escaped it as a traceback.
    with pytest.raises(PolicyError) as info:
        topology.from_capabilities(caps)
    assert str(info.value) == "cannot read the host's topology from libvirt's capabilities: %s" % why


def run(root, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(["--root", root, "--offline"] + list(argv), out, err, environ={})
    return code, out.getvalue(), err.getvalue()


def test_cpuoccupy_warns_of_an_open_sibling_and_whole_cores_closes_it(big):
    os.makedirs(Paths(big).domains)
    code, out, err = run(big, "cpuoccupy", "1,8", "vm1", "--undefined")
    assert (code, out) == (0, "CPUs 1,8 occupied by vm1: saved; not applied live (--offline)\n")
    assert err == ("Warning: CPU 1's hyperthread sibling CPU 17 stays open to other domains (--whole-cores "
                   "occupies whole cores)\n"
                   "Warning: CPU 8's hyperthread sibling CPU 24 stays open to other domains (--whole-cores "
                   "occupies whole cores)\n")
    code, out, err = run(big, "cpuoccupy", "1,8", "vm1", "--whole-cores")
    assert (code, err) == (0, "")
    assert out == "whole cores: added CPUs 17,24\nCPUs 1,8,17,24 occupied by vm1: saved; not applied live " \
                  "(--offline)\n"
    with open(Paths(big).host_file) as f:
        assert sorted(json.load(f)["cpuoccupy"]) == ["1", "17", "24", "8"]


def test_the_occupancy_picture(big):
    os.makedirs(Paths(big).domains)
    assert run(big, "cpuoccupy", "1", "vm1", "--undefined")[0] == 0
    code, out, err = run(big, "occupancy")
    lines = out.splitlines()
    assert lines[:4] == [
        "NODE  SOCKET  CORE  CPU  OCCUPIED BY",
        "0     0       0     0    -",
        "0     0       0     16   -",
        "0     0       1     1    vm1",
    ]
    assert len([line for line in lines if line[:1].isdigit()]) == 32
    assert lines[-3:] == ["Shared core: core 1 of socket 0: CPU 1 occupied by vm1, CPU 17 open",
                          "NUMA node 0: CPUs 0-7,16-23", "NUMA node 1: CPUs 8-15,24-31"]
    doc = json.loads(run(big, "occupancy", "--json")[1])
    assert [n["node"] for n in doc["nodes"]] == [0, 1]
    assert doc["housekeeping"] is False     # [occupancy] housekeeping: no host CPUs kept quiet
    core = doc["nodes"][0]["sockets"][0]["cores"][1]
    assert core == {"core": 1, "cpus": [{"cpu": 1, "occupied_by": ["vm1"], "pinned": [], "managed_irqs": []},
                                        {"cpu": 17, "occupied_by": [], "pinned": [], "managed_irqs": []}]}


def test_cpupolicy_notes_pins_and_occupancy_across_numa_nodes(big):
    os.makedirs(Paths(big).domains)
    assert run(big, "vcpupin", "vm1", "0", "6-9", "--undefined")[0] == 0
    assert run(big, "cpuoccupy", "7-8", "vm1")[0] == 0
    code, out, err = run(big, "cpupolicy", "vm1")
    assert "NUMA:        vCPU 0's CPUs span 2 nodes (6-7 on node 0, 8-9 on node 1)\n" in out
    assert "NUMA:        the CPUs it occupies span 2 nodes (7 on node 0, 8 on node 1)\n" in out
    doc = json.loads(run(big, "cpupolicy", "vm1", "--json")[1])
    assert doc["numa"] == [{"pin": ["vcpu", 0], "nodes": {"0": "6-7", "1": "8-9"}},
                           {"pin": None, "nodes": {"0": "7", "1": "8"}}]


def test_occupancy_json_says_whether_housekeeping_keeps_the_open_cpus_for_the_host(big):
    os.makedirs(Paths(big).domains)
    with open(Paths(big).conf, "w") as f:
        f.write("[occupancy]\nhousekeeping = yes\n")
    doc = json.loads(run(big, "occupancy", "--json")[1])
    assert doc["housekeeping"] is True
