"""[occupancy] memory = follow: which node (numatune.memory_node), the <numatune> written
into a persistent definition with its own element saved first and given back byte for
byte, and the XML the hook prints at migrate and restore."""

import pytest
from hookrun import run_hook, save
from test_definition import FakeVirt
from test_topology import fake_sysfs
from unit_helpers import pinned, policy, write_raw

from policyhook import definition, numatune, originals, topology
from policyhook.cpuset import CpuSet
from policyhook.cputune import find_cputune
from policyhook.domxml import DomainFacts, parse_domain_xml
from policyhook.locking import FlockLock
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.planner import plan
from policyhook.registry import Registry


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """2 sockets x 8 cores x 2 threads on 2 nodes: node 0 = 0-7,16-23, node 1 = 8-15,24-31."""
    return topology.from_sysfs(fake_sysfs(str(tmp_path_factory.mktemp("big")), 2, 8, 2, nodes=2))


HOST = CpuSet.parse("0-31")
NODES = [
    # (vCPU pins, vCPUs, -> node)
    ({0: "8", 1: "24"}, 2, 1),
    ({0: "0-7", 1: "16"}, 2, 0),
    ({0: "8"}, 2, None),            # vCPU 1 floats
    ({0: "7", 1: "8"}, 2, None),    # across nodes
    ({}, 2, None),
]


@pytest.mark.parametrize("pins, vcpus, node", NODES)
def test_memory_node(big, pins, vcpus, node):
    facts = DomainFacts("vm", "qemu", vcpus, iothreads=())
    p = plan(policy("vm", pins), HostPolicy(), facts, HOST)
    assert numatune.memory_node(big, p, facts) == node
    assert numatune.memory_node(big, p, DomainFacts("vm")) is None   # vCPU count unknown


OWN = """<domain type='kvm'>
  <name>vm</name>
  <vcpu placement='static'>2</vcpu>
  <numatune>
    <memory mode='preferred' nodeset='0'/>
  </numatune>
  <cputune>
    <vcpupin vcpu='1' cpuset='0'/>
  </cputune>
</domain>
"""


@pytest.mark.parametrize("xml", [OWN, OWN.replace("  <numatune>\n    <memory mode='preferred' nodeset='0'/>\n"
                                                  "  </numatune>\n", "")], ids=["own", "none"])
def test_the_definition_gets_numatune_and_its_own_back(tmp_path, big, xml):
    reg = Registry(Paths(str(tmp_path)), 1, FlockLock)
    v = FakeVirt(xml)
    facts = parse_domain_xml(xml)
    p = plan(policy("vm", {0: "8", 1: "24"}), HostPolicy(), facts, HOST)
    node = numatune.memory_node(big, p, facts)
    assert definition.put(reg, v, None, None, "vm", "u1", p, node=node) is True
    assert numatune.find(v.xml) == '<numatune><memory mode="strict" nodeset="1" /></numatune>'
    assert parse_domain_xml(v.xml).memory_nodes == CpuSet([1])
    saved = originals.load(Paths(str(tmp_path)), "vm").saved
    assert saved["numatune"] == numatune.find(xml)
    # Again: nothing changes.
    assert definition.put(reg, v, None, None, "vm", "u1", p, node=node) is False
    # memory = leave again, pins kept: its own <numatune> back, the <cputune> still ours.
    assert definition.put(reg, v, None, None, "vm", "u1", p, node=None) is True
    assert numatune.find(v.xml) == numatune.find(xml)
    assert "cpuset=\"24\"" in find_cputune(v.xml)
    # Everything given back: byte for byte what it had but <cputune>'s form.
    definition.put(reg, v, None, None, "vm", "u1", None)
    assert numatune.find(v.xml) == numatune.find(xml)
    assert originals.load(Paths(str(tmp_path)), "vm") is None


def test_replace_keeps_the_rest_byte_for_byte():
    assert numatune.replace(OWN, numatune.find(OWN)) == OWN
    assert numatune.replace(OWN, None) == OWN.replace(
        "  <numatune>\n    <memory mode='preferred' nodeset='0'/>\n  </numatune>\n", "")
    bare = numatune.replace(OWN, None)
    assert numatune.replace(bare, None) == bare


@pytest.mark.parametrize("memory, expected", [("follow", '<numatune><memory mode="strict" nodeset="1" />'
                                                          '</numatune>'), ("leave", None)])
def test_migrate_writes_numatune_with_follow(tmp_path, memory, expected):
    paths = Paths(str(tmp_path))
    fake_sysfs(str(tmp_path), 2, 8, 2, nodes=2)
    write_raw(paths.conf, "[libvirt]\nuri = test:///default\n[occupancy]\nmemory = %s\n" % memory)
    save(tmp_path, pinned("vm1", {0: CpuSet([8]), 1: CpuSet([24])}))
    r = run_hook(tmp_path, "vm1", "migrate", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    assert numatune.find(r.stdout.decode()) == expected
