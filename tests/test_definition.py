"""Persistent mode's pure part: a plan written into a definition's <cputune>, the
originals saved first and given back after, the definition's own pins read back."""

import pytest
from unit_helpers import policy

from policyhook import originals
from policyhook.cpuset import CpuSet
from policyhook.cputune import find_cputune, replace_cputune, rewrite
from policyhook.domxml import DomainFacts, parse_domain_xml
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.planner import Plan, plan

HOST4 = CpuSet.parse("0-3")
OWN = ("<cputune><shares>2000</shares><vcpupin vcpu='1' cpuset='0'/>"
       "<vcpusched vcpus='0' scheduler='fifo' priority='1'/></cputune>")


def facts(vcpus=2):
    return DomainFacts("vm", "qemu", vcpus, iothreads=())


def test_first_write_saves_what_it_replaces_and_what_was_not_there():
    p = plan(policy("vm", {0: "2", 1: "3"}, weight=512), HostPolicy(), facts(), HOST4)
    tune, saved = rewrite(OWN, p, {})
    assert tune == ("<cputune><shares>2048</shares><vcpupin vcpu=\"0\" cpuset=\"2\" />"
                    "<vcpupin vcpu=\"1\" cpuset=\"3\" /><vcpusched vcpus=\"0\" scheduler=\"fifo\" "
                    "priority=\"1\" /></cputune>")
    assert saved == {"shares": "<shares>2000</shares>", "vcpupin 0": None,
                     "vcpupin 1": '<vcpupin vcpu="1" cpuset="0" />'}


def test_what_the_plan_no_longer_sets_gets_its_original_back():
    p = plan(policy("vm", {0: "2", 1: "3"}, weight=512), HostPolicy(), facts(), HOST4)
    tune, saved = rewrite(OWN, p, {})
    smaller = plan(policy("vm", {0: "2"}), HostPolicy(), facts(), HOST4)
    tune, saved = rewrite(tune, smaller, saved)
    assert saved == {"vcpupin 0": None}
    assert tune == ('<cputune><shares>2000</shares><vcpupin vcpu="0" cpuset="2" />'
                    '<vcpupin vcpu="1" cpuset="0" /><vcpusched vcpus="0" scheduler="fifo" '
                    'priority="1" /></cputune>')
    # Nothing left: the definition's own <cputune>, element for element.
    tune, saved = rewrite(tune, None, saved)
    assert saved == {}
    assert tune == rewrite(OWN, None, {})[0]


def test_a_definition_without_cputune_gets_none_back():
    p = plan(policy("vm", emulator="1"), HostPolicy(), facts(), HOST4)
    tune, saved = rewrite(None, p, {})
    assert (tune, saved) == ('<cputune><emulatorpin cpuset="1" /></cputune>', {"emulatorpin": None})
    assert rewrite(tune, None, saved) == (None, {})


def test_an_edit_of_another_element_meanwhile_is_kept():
    p = plan(policy("vm", weight=512), HostPolicy(), facts(), HOST4)
    tune, saved = rewrite(None, p, {})
    edited = tune.replace("</cputune>", "<emulatorpin cpuset='3'/></cputune>")   # virsh edit
    tune, saved = rewrite(edited, None, saved)
    assert (tune, saved) == ('<cputune><emulatorpin cpuset="3" /></cputune>', {})


XML = """<domain type='kvm'>
  <name>vm</name>
  <vcpu placement='static'>2</vcpu>
  <cputune>
    <vcpupin vcpu='1' cpuset='0'/>
  </cputune>
  <qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'/>
</domain>
"""


def test_the_rest_of_the_definition_stays_byte_for_byte():
    assert find_cputune(XML) == "<cputune>\n    <vcpupin vcpu='1' cpuset='0'/>\n  </cputune>"
    new = replace_cputune(XML, "<cputune><shares>5</shares></cputune>")
    assert new == XML.replace("  <cputune>\n    <vcpupin vcpu='1' cpuset='0'/>\n  </cputune>\n",
                              "  <cputune><shares>5</shares></cputune>\n")
    assert replace_cputune(XML, None) == XML.replace(
        "  <cputune>\n    <vcpupin vcpu='1' cpuset='0'/>\n  </cputune>\n", "")
    bare = replace_cputune(XML, None)
    assert replace_cputune(bare, "<cputune/>").endswith("  <cputune/>\n</domain>\n")


def test_the_domains_own_pins_are_read_back_from_the_originals(tmp_path):
    paths = Paths(str(tmp_path))
    written = parse_domain_xml(XML.replace("cpuset='0'", "cpuset='3'").replace(
        "</cputune>", "<emulatorpin cpuset='2'/></cputune>"))
    assert written.pins == {("vcpu", 1): CpuSet.parse("3"), ("emulator", 0): CpuSet.parse("2")}
    originals.save(paths, originals.Originals("vm", "u-1", {"vcpupin 1": "<vcpupin vcpu='1' cpuset='0'/>",
                                                            "emulatorpin": None}))
    own = originals.own_pins(written, originals.load(paths, "vm", "u-1"))
    assert own.pins == {("vcpu", 1): CpuSet.parse("0")}
    # Saved for another domain of the same name: not this one's.
    assert originals.load(paths, "vm", "u-2") is None
    originals.save(paths, originals.Originals("vm", "u-1", {}))
    assert originals.load(paths, "vm") is None


@pytest.mark.parametrize("text,message", [
    ("[]", "not an originals file: not a JSON object"),
    ('{"domain": "vm", "saved": {"a": 1}}', "not an originals file: saved is not a map of element texts"),
    ("{", "not an originals file: Expecting property name enclosed in double quotes: line 1 column 2 "
          "(char 1)"),
])
def test_a_broken_originals_file_is_an_error_naming_it(tmp_path, text, message):
    from unit_helpers import write_raw

    from policyhook.errors import PolicyError

    paths = Paths(str(tmp_path))
    write_raw(paths.originals_file("vm"), text)
    with pytest.raises(PolicyError) as info:
        originals.load(paths, "vm")
    assert str(info.value) == "%s: %s" % (paths.originals_file("vm"), message)


def test_plan_of_nothing_writes_nothing():
    assert rewrite(OWN, Plan("vm", "qemu"), {}) == rewrite(OWN, None, {})


class FakeVirt:
    """A definition libvirt would hold: definition_xml and define, which can fail."""

    def __init__(self, xml):
        self.xml = xml
        self.fail = False

    def definition_xml(self, _dom):
        return self.xml

    def define(self, _conn, _name, xml):
        if self.fail:
            from policyhook.errors import PolicyError
            raise PolicyError("libvirtd went away", 6)
        self.xml = xml


def test_an_original_stays_on_record_until_its_definition_is_defined(tmp_path):
    from policyhook import definition
    from policyhook.errors import PolicyError
    from policyhook.locking import FlockLock
    from policyhook.registry import Registry

    paths = Paths(str(tmp_path))
    reg = Registry(paths, 1, FlockLock)
    v = FakeVirt(XML)
    f = parse_domain_xml(XML)
    both = plan(policy("vm", {0: "2", 1: "3"}), HostPolicy(), f, HOST4)
    definition.put(reg, v, None, None, "vm", "u1", both)
    assert "cpuset=\"3\"" in v.xml
    v.fail = True            # unset vCPU 1's pin, and libvirt refuses the new definition
    one = plan(policy("vm", {0: "2"}), HostPolicy(), f, HOST4)
    with pytest.raises(PolicyError):
        definition.put(reg, v, None, None, "vm", "u1", one)
    assert originals.load(paths, "vm").saved["vcpupin 1"] == '<vcpupin vcpu="1" cpuset="0" />'
    v.fail = False
    definition.put(reg, v, None, None, "vm", "u1", None)     # remove
    assert find_cputune(v.xml) == '<cputune><vcpupin vcpu="1" cpuset="0" /></cputune>'
    assert originals.load(paths, "vm") is None
