"""vcpusched on the real daemon. This machine's kernel has real-time group scheduling on
cgroup v1, and libvirt gives the cgroups it makes no real-time budget
(cpu.rt_runtime_us 0): the kernel refuses SCHED_FIFO for a vCPU thread with EPERM, as
`chrt -f -p` does. So here the refusal is what is proven: named, with nothing
half-applied. The guest tier (tests/vm/test_vm_vcpusched.py) proves the policy in force
on cgroup v2, live and at start."""

import json
import os

import lab
import pytest

# cpuoccupy re-pins every running domain outside the set.
pytestmark = pytest.mark.moves_others


def vcpu_threads(name):
    return {int(comm.split()[1].split("/")[0]): tid for comm, tid in lab.qemu_threads(name).items()
            if comm.startswith("CPU ")}


def policies(name):
    return {vcpu: (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
            for vcpu, tid in vcpu_threads(name).items()}


@pytest.fixture
def freed(installed):
    yield
    lab.policyctl("cpuoccupy", "1", "--clear")


def test_realtime_refused_by_the_kernel_is_named_and_nothing_is_half_applied(domains, freed):
    name = domains()
    lab.virsh("start", name)
    for argv in (("cpuoccupy", "1", name), ("vcpupin", name, "0", "1"), ("vcpupin", name, "1", "1")):
        r = lab.policyctl(*argv)
        assert r.returncode == 0, r.stderr
    budget = os.path.join(lab.domain_cgroup(name), "vcpu0", "cpu.rt_runtime_us")
    assert lab.cgroup_value(os.path.dirname(budget), "cpu.rt_runtime_us") == "0"
    before = policies(name)
    assert before == {0: (os.SCHED_OTHER, 0), 1: (os.SCHED_OTHER, 0)}

    r = lab.policyctl("vcpusched", name, "0-1", "fifo", "10")
    assert r.returncode == 6, r.stdout + r.stderr
    assert r.stderr == (
        "Error: %s: vcpusched 0 fifo 10 failed: the kernel refused thread %d: Operation not "
        "permitted; the domain's cgroup has no real-time budget (%s is 0: real-time group "
        "scheduling gives it no real-time time) (the policy is saved; run 'policyctl apply %s' "
        "to retry)\n" % (name, vcpu_threads(name)[0], budget, name))
    assert policies(name) == before
    # Saved, and reported as not in force until the host gives the cgroup a budget.
    report = json.loads(lab.policyctl("cpupolicy", name, "--json").stdout)
    assert report["vcpusched"] == {"0": "fifo:10", "1": "fifo:10"}
    assert [(d["setting"], d["index"], d["policy"], d["live"]) for d in report["drift"]] == [
        ("vcpusched", 0, "fifo:10", "other"), ("vcpusched", 1, "fifo:10", "other")]
    assert lab.policyctl("verify", name).returncode == 7

    # 'other' needs no budget: put back, and in force.
    r = lab.policyctl("vcpusched", name, "0-1", "other")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == \
        "%s: vCPU 0 scheduled other, vCPU 1 scheduled other: saved; applied live" % name
    assert lab.policyctl("verify", name).returncode == 0


def test_realtime_outside_the_occupied_cpus_is_refused(domains):
    name = domains()
    lab.virsh("start", name)
    assert lab.policyctl("vcpupin", name, "0", "1").returncode == 0
    r = lab.policyctl("vcpusched", name, "0", "rr", "1")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("Error: vCPU 0 of '%s': real-time needs a vCPU pinned inside the CPUs its "
                        "domain occupies (cpuoccupy); it occupies none, and 1 is shared; nothing "
                        "saved\n" % name)
    assert policies(name)[0] == (os.SCHED_OTHER, 0)
