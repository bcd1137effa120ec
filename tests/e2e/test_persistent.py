"""Persistent mode on the real daemon ([libvirt] persistent = yes): the policy written
into the persistent definition while the domain is shut off, in force the moment
`virsh start` returns, an occupancy change rewriting other domains' definitions, and
remove giving a domain its own <cputune> back exactly."""

import os
import re

import lab
import pytest

OWN = "<cputune><shares>2000</shares><vcpupin vcpu='1' cpuset='0'/></cputune>"


class Mode:
    """[libvirt] persistent in the installed policyhook.conf, put back as it was at the end."""

    def __init__(self):
        with open(lab.paths().conf) as f:
            self.before = f.read()

    def set(self, on):
        # The shipped file has its [libvirt] header uncommented, every key commented out.
        text = re.sub(r"(?m)^\[libvirt\]$", "[libvirt]\npersistent = %s" % ("yes" if on else "no"),
                      self.before, count=1)
        assert text != self.before, "no [libvirt] section in %s" % lab.paths().conf
        with open(lab.paths().conf, "w") as f:
            f.write(text)

    def restore(self):
        with open(lab.paths().conf, "w") as f:
            f.write(self.before)


@pytest.fixture
def mode(installed):
    m = Mode()
    yield m
    m.restore()


def cputune(name):
    """The <cputune> of the persistent definition, as libvirt writes it, or None."""
    xml = lab.virsh("dumpxml", "--inactive", name).stdout
    m = re.search(r"<cputune>.*?</cputune>", xml, re.S)
    return m.group(0) if m else None


def _originals(name):
    return os.path.join(lab.paths().originals, name + ".json")


@pytest.mark.moves_others      # cpuoccupy, which here rewrites the other domains' definitions
def test_the_definition_holds_the_policy(mode, domains):
    try:
        _the_definition_holds_the_policy(mode, domains)
    finally:
        lab.policyctl("cpuoccupy", "0-1", "--clear")


def _the_definition_holds_the_policy(mode, domains):
    mode.set(True)
    a = domains("-a", cputune=OWN)
    b = domains("-b")
    own_a = cputune(a)
    assert "<shares>2000</shares>" in own_a and cputune(b) is None

    r = lab.policyctl("vcpupin", a, "0", "1")
    assert (r.returncode, r.stdout) == (0, "%s: vCPU 0 pinned to 1: saved; applies at next start (domain is "
                                           "not running); written into its definition\n" % a), r.stderr
    assert lab.policyctl("schedweight", a, "512").returncode == 0
    tune = cputune(a)
    assert "<shares>2048</shares>" in tune
    assert "<vcpupin vcpu='0' cpuset='1'/>" in tune and "<vcpupin vcpu='1' cpuset='0'/>" in tune
    assert os.path.exists(_originals(a))

    # In force at the first look after `virsh start` returns: libvirt applied the definition.
    lab.virsh("start", a)
    assert lab.vcpupin(a)[0] == "1"
    assert lab.schedinfo(a)["cpu_shares"] == "2048"

    # An occupancy change rewrites the definitions of the domains it moves, running or not.
    r = lab.policyctl("cpuoccupy", "1", a)
    assert r.returncode == 0, r.stderr
    assert "  %s: definition rewritten\n" % b in r.stdout
    assert "<vcpupin vcpu='0' cpuset='0'/>" in cputune(b) and "<emulatorpin cpuset='0'/>" in cputune(b)
    text = lab.policyctl("cpupolicy", b).stdout
    assert "definition" in text, text
    r = lab.policyctl("cpuoccupy", "1", "--clear")
    assert r.returncode == 0, r.stderr
    assert cputune(b) is None
    assert not os.path.exists(_originals(b))

    # remove gives a its own <cputune> back, exactly.
    r = lab.policyctl("remove", a)
    assert r.returncode == 0, r.stderr
    assert cputune(a) == own_a
    assert not os.path.exists(_originals(a))


def test_apply_config_brings_older_definitions_in_line(mode, domains):
    name = domains()
    assert lab.policyctl("vcpupin", name, "1", "1").returncode == 0     # persistent mode off
    assert cputune(name) is None
    mode.set(True)
    r = lab.policyctl("apply", "--config", name)
    assert (r.returncode, r.stdout) == (0, "%s: definition holds the policy\n" % name), r.stderr
    assert "<vcpupin vcpu='1' cpuset='1'/>" in cputune(name)
    r = lab.policyctl("apply", "--config", name)
    assert r.stdout == "%s: definition holds the policy (unchanged)\n" % name
    # Mode off again: apply --config gives the definition back.
    mode.set(False)
    r = lab.policyctl("apply", "--config", name)
    assert (r.returncode, r.stdout) == (0, "%s: definition has its own <cputune> back\n" % name)
    assert cputune(name) is None
