"""vcpusched: the vCPU threads' scheduling policy (tunables.VCPUSCHED), from policyctl's
arguments through the policy file, the planner, <cputune> and the threads themselves
(on fake trees with fake system calls: vcputhreads.Host)."""

import io
import json
import os
import xml.etree.ElementTree as ET

import oracle
import pytest
from unit_helpers import FakeThreads, make_registry, policy, snapshot, write_raw

from policyhook import errors, vcputhreads
from policyhook.cli import main
from policyhook.cpuset import CpuSet
from policyhook.cputune import plan_entries, rewrite
from policyhook.domxml import DomainFacts
from policyhook.model import HostPolicy, domain_from_doc
from policyhook.paths import Paths
from policyhook.planner import Live, Plan, differences, drift, plan, restores

HOST_CPUS = oracle.host_cpus()
LAST = HOST_CPUS[-1]
if len(HOST_CPUS) < 2:
    pytest.skip("these tests occupy a CPU and need a host with two CPUs or more", allow_module_level=True)


@pytest.fixture
def root(tmp_path):
    """vm1 pins vCPU 0 to CPU 0 and occupies the last CPU; vm2 has no pin."""
    make_registry(tmp_path, [policy("vm1", {0: "0"}), policy("vm2", cap=50)], {LAST: ["vm1"]})
    write_raw(Paths(str(tmp_path)).conf, "[policyctl]\nlock_timeout = 2\n")
    return str(tmp_path)


def run(root, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(["--root", root, "--offline"] + list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def stored(root, name):
    with open(os.path.join(root, "etc/policyhook/domains/%s.json" % name)) as f:
        return json.load(f)


REFUSED = [
    (["vcpusched", "vm1", "0", "fifo", "10"],
     "vCPU 0 of 'vm1': real-time needs a vCPU pinned inside the CPUs its domain occupies (%d); "
     "it is pinned to 0; nothing saved" % LAST),
    (["vcpusched", "vm2", "0", "rr", "5"],
     "vCPU 0 of 'vm2': real-time needs a vCPU pinned inside the CPUs its domain occupies "
     "(cpuoccupy); it has no pin; nothing saved"),
    (["vcpusched", "vm1", "0", "fifo"], "fifo needs a PRIORITY, 1-99"),
    (["vcpusched", "vm1", "0", "other", "3"], "other takes no PRIORITY (only fifo and rr do)"),
    (["vcpusched", "vm1", "0", "idle"], "invalid POLICY 'idle': fifo, rr or other"),
    (["vcpusched", "vm1", "0", "FIFO", "1"], "invalid POLICY 'FIFO': fifo, rr or other"),
    (["vcpusched", "vm1", "0", "fifo", "100"], "invalid PRIORITY 100: must be 1..99"),
    (["vcpusched", "vm1", "0", "fifo", "0"], "invalid PRIORITY 0: must be 1..99"),
    (["vcpusched", "vm1", "0", "rr", "x"], "invalid PRIORITY 'x': not a whole number"),
    (["vcpusched", "vm1", "1-0", "fifo", "1"], "invalid VCPUS '1-0': range 1-0 is reversed"),
    (["vcpusched", "vm1", "", "fifo", "1"], "invalid VCPUS '': it is empty"),
    (["vcpusched", "vm1", "16384", "other"], "invalid VCPUS '16384': CPU 16384 is above the maximum 8191"),
    (["unset", "vm1", "vcpusched", "0"], "domain 'vm1' has no scheduling policy for vCPU 0"),
    (["vcpusched", "vm1"], "the following arguments are required: VCPUS, POLICY "
     "(see 'policyctl vcpusched --help')"),
]


@pytest.mark.parametrize("argv,message", REFUSED, ids=[" ".join(a[0])[:50] for a in REFUSED])
def test_refused_with_one_line_and_nothing_saved(root, argv, message):
    before = snapshot(root)
    code, out, err = run(root, *argv)
    assert (code, out, err) == (errors.INVALID, "", "Error: %s\n" % message)
    assert snapshot(root) == before


def test_realtime_inside_the_occupied_cpus_is_saved_and_guards_the_pin(root):
    assert run(root, "vcpupin", "vm1", "0", str(LAST))[0] == 0
    code, out, err = run(root, "vcpusched", "vm1", "0", "fifo", "10")
    assert (code, err) == (0, "")
    assert out == "vm1: vCPU 0 scheduled fifo, priority 10: saved; not applied live (--offline)\n"
    assert stored(root, "vm1")["vcpusched"] == {"0": "fifo:10"}
    # Moving the real-time vCPU onto a shared CPU is refused, its policy kept.
    before = snapshot(root)
    code, out, err = run(root, "vcpupin", "vm1", "0", "0")
    assert code == errors.INVALID
    assert err == ("Error: vCPU 0 of 'vm1': real-time needs a vCPU pinned inside the CPUs its domain "
                   "occupies (%d); it is pinned to 0; nothing saved\n" % LAST)
    assert snapshot(root) == before
    # An unrelated change is not held up by it.
    assert run(root, "schedweight", "vm1", "512")[0] == 0
    code, out, _err = run(root, "cpupolicy", "vm1")
    assert code == 0
    assert [line.split() for line in out.splitlines() if "scheduler" in line] == \
        [["vCPU", "0", "scheduler", "fifo:10", "fifo:10"]]
    assert run(root, "vcpusched", "vm1", "0", "other")[1] == \
        "vm1: vCPU 0 scheduled other: saved; not applied live (--offline)\n"
    code, out, _err = run(root, "unset", "vm1", "vcpusched")
    assert (code, out) == (0, "vm1: vCPU schedulers unset (other): saved; not applied live (--offline)\n")
    assert "vcpusched" not in stored(root, "vm1")


def test_a_vcpu_list_sets_each_and_json_names_them(root):
    run(root, "vcpupin", "vm1", "1", str(LAST))
    run(root, "vcpupin", "vm1", "0", str(LAST))
    code, out, _err = run(root, "vcpusched", "--json", "vm1", "0-1", "rr", "99")
    assert code == 0
    doc = json.loads(out)
    assert doc["change"] == {"op": "set", "setting": "vcpusched", "index": [0, 1], "value": "rr:99"}
    assert stored(root, "vm1")["vcpusched"] == {"0": "rr:99", "1": "rr:99"}
    assert run(root, "unset", "vm1", "vcpusched", "1")[0] == 0
    assert stored(root, "vm1")["vcpusched"] == {"0": "rr:99"}


# ---- the policy file ------------------------------------------------------------------

@pytest.mark.parametrize("value,message", [
    ({"0": "fifo"}, "$.vcpusched.0: 'fifo' is not a vCPU scheduler (fifo needs a priority, fifo:1..99)"),
    ({"0": "rr:0"}, "$.vcpusched.0: 'rr:0' is not a vCPU scheduler (priority 0 is not in 1..99)"),
    ({"0": "rr:05"}, "$.vcpusched.0: 'rr:05' is not a vCPU scheduler (rr needs a priority, rr:1..99)"),
    ({"0": "other:1"}, "$.vcpusched.0: 'other:1' is not a vCPU scheduler ('other' takes no priority)"),
    ({"0": "batch"}, "$.vcpusched.0: 'batch' is not a vCPU scheduler (the policy is not one of fifo, "
     "rr, other)"),
    ({"0": 10}, "$.vcpusched.0: 10 is not a vCPU scheduler (not a string)"),
    ({"01": "other"}, "$.vcpusched: '01' is not a vCPU number (leading zero)"),
    ([], "$.vcpusched: [] is not an object"),
])
def test_the_loader_refuses_bad_values(value, message):
    with pytest.raises(errors.PolicyError) as e:
        domain_from_doc({"version": 1, "domain": "vm", "vcpusched": value})
    assert str(e.value) == message


def test_the_schema_agrees():
    from policyhook import schema

    good = {"version": 1, "domain": "vm", "vcpusched": {"0": "fifo:1", "3": "rr:99", "7": "other"}}
    assert domain_from_doc(good).to_doc() == good
    assert schema.conforms(good, schema.DOMAIN_SCHEMA) is True
    assert schema.problems(dict(good, vcpusched={"0": "fifo:0"}), schema.DOMAIN_SCHEMA) == [
        "$.vcpusched.0: 'fifo:0' is not a vCPU scheduler (fifo:1..99, rr:1..99 or other)"]


# ---- the planner ----------------------------------------------------------------------

HOST4 = CpuSet.range(4)


def facts(vcpus=2, pins=None):
    return DomainFacts("vm", "qemu", vcpus, pins=pins)


def rt_policy(vcpusched, pins=None):
    p = policy("vm", pins)
    p.vcpusched = dict(vcpusched)
    return p


def test_plan_keeps_realtime_inside_the_domains_cpus_and_leaves_out_the_rest():
    host = HostPolicy({2: ["vm"], 3: ["vm"]})
    p = plan(rt_policy({0: "fifo:10", 1: "rr:2"}, {0: "2", 1: "1-2"}), host, facts(), HOST4)
    assert p.vcpusched == {0: "fifo:10"}
    assert [(u.setting, u.reason) for u in p.unsupported] == [
        ("vcpusched", "vCPU 1: real-time needs a vCPU pinned inside the CPUs its domain occupies "
                      "(2-3); it is pinned to 1-2")]
    # "other" needs no occupancy; the XML's pin counts as the vCPU's pin.
    p = plan(rt_policy({0: "other", 1: "fifo:1"}), host, facts(pins={("vcpu", 1): CpuSet.parse("3")}), HOST4)
    assert p.vcpusched == {0: "other", 1: "fifo:1"}


def test_plan_refuses_a_vcpu_the_domain_does_not_have():
    with pytest.raises(errors.PolicyError) as e:
        plan(rt_policy({2: "other"}), HostPolicy(), facts(2), HOST4)
    assert str(e.value) == "vCPU 2 of 'vm' has a scheduling policy, but the domain has 2 vCPUs (0-1)"


def test_lxc_and_libxl_leave_it_out_and_say_why():
    p = plan(rt_policy({0: "other"}), HostPolicy(), DomainFacts("vm", "libxl", 2), HOST4)
    assert p.vcpusched == {}
    assert [u.setting for u in p.unsupported] == ["vcpusched"]


def test_drift_restores_and_differences():
    want = Plan("vm", "qemu", vcpusched={0: "fifo:10", 1: "other"})
    live = Live(vcpusched={0: "other", 1: "other"})
    assert [(d.param, d.index, d.want, d.have) for d in drift(want, live)] == [
        ("vcpusched", 0, "fifo:10", "other")]
    assert drift(want, Live()) == []          # not known live (another host): no drift
    assert differences(want, live).vcpusched == {0: "fifo:10"}
    assert differences(want, Live()).vcpusched == {0: "fifo:10", 1: "other"}
    back = restores(Plan("vm", "qemu"), want, facts(), HOST4, 2)
    assert back.vcpusched == {0: "other", 1: "other"}
    assert Plan.from_doc(want.to_doc()) == want


def test_cputune_holds_one_element_per_vcpu_and_gives_back_the_definitions_own():
    p = Plan("vm", "qemu", vcpusched={0: "fifo:10", 1: "other"})
    assert sorted((k, ET.tostring(e, encoding="unicode")) for k, e in plan_entries(p).items()) == [
        ("vcpusched 0", '<vcpusched vcpus="0" scheduler="fifo" priority="10" />'),
        ("vcpusched 1", '<vcpusched vcpus="1" scheduler="other" />')]
    own = "<cputune><vcpusched vcpus='0' scheduler='rr' priority='1'/></cputune>"
    text, saved = rewrite(own, p, {})
    assert text == ('<cputune><vcpusched vcpus="0" scheduler="fifo" priority="10" />'
                    '<vcpusched vcpus="1" scheduler="other" /></cputune>')
    assert saved == {"vcpusched 0": '<vcpusched vcpus="0" scheduler="rr" priority="1" />',
                     "vcpusched 1": None}
    text, saved = rewrite(text, Plan("vm", "qemu"), saved)
    assert (text, saved) == ('<cputune><vcpusched vcpus="0" scheduler="rr" priority="1" /></cputune>', {})


# ---- the threads ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2])
def test_threads_are_found_through_the_vcpu_cgroups_and_set(tmp_path, version):
    fake = FakeThreads(tmp_path, version)
    assert vcputhreads.threads(fake.host, "vm") == {0: [200], 1: [201]}
    assert vcputhreads.apply(fake.host, "vm", {0: "fifo:10", 1: "rr:3"}) == [0, 1]
    assert vcputhreads.policies(fake.host, "vm") == {0: "fifo:10", 1: "rr:3"}


def test_a_refusal_puts_back_what_was_changed_and_names_the_budget(tmp_path):
    fake = FakeThreads(tmp_path, 1, refuse={201})
    with pytest.raises(vcputhreads.VcpuThreadError) as e:
        vcputhreads.apply(fake.host, "vm", {0: "fifo:10", 1: "fifo:10"})
    assert e.value.index == 1
    budget = fake.base / "cg" / "cpu,cpuacct" / "machine.slice/machine-qemu\\x2d1\\x2dvm.scope" / "vcpu1"
    assert e.value.detail == ("the kernel refused thread 201: Operation not permitted; the domain's "
                              "cgroup has no real-time budget (%s/cpu.rt_runtime_us is 0: real-time "
                              "group scheduling gives it no real-time time)" % budget)
    assert fake.policy == {200: (os.SCHED_OTHER, 0), 201: (os.SCHED_OTHER, 0)}
    assert fake.calls[-1] == (200, os.SCHED_OTHER, 0)


@pytest.mark.parametrize("cgroup,message", [
    ("0::/machine.slice/qemu.scope\n", "the domain's QEMU (pid 100) is not in libvirt's emulator cgroup "
     "but in /machine.slice/qemu.scope"),
    ("0::/a/../emulator\n", "the domain's QEMU (pid 100) is not in libvirt's emulator cgroup but in "
     "/a/../emulator"),
    ("4:memory:/x\n", "%(proc)s/100/cgroup names no cpu cgroup of the domain"),
])
def test_threads_outside_libvirts_layout_are_an_error(tmp_path, cgroup, message):
    fake = FakeThreads(tmp_path)
    (fake.base / "proc" / "100" / "cgroup").write_text(cgroup)
    with pytest.raises(vcputhreads.VcpuThreadError) as e:
        vcputhreads.threads(fake.host, "vm")
    assert e.value.detail == message % {"proc": fake.base / "proc"}


def test_a_name_that_cannot_be_a_pid_file_is_refused(tmp_path):
    fake = FakeThreads(tmp_path)
    with pytest.raises(vcputhreads.VcpuThreadError):
        vcputhreads.threads(fake.host, "../vm")
