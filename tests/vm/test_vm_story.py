"""The end-to-end story on a systemd host with cgroup v2: policy recorded with policyctl
while the domains are off, `virsh start`, and the policy read back from the kernel's own
files (cgroup v2 under machine.slice, the threads' affinity) and from the journal."""

import json
import time

import guest
import lab

# What the kernel must show once the policy below is in force. Weight 512 is
# cpu.weight 200 (512 * 100 / 256: cgroup v2's default 100 is the default weight 256);
# cap 50 is 50 ms of CPU in every 100 ms period for the whole domain.
POLICY_FILES = {
    "cpu.weight": "200",
    "libvirt/cpu.max": "50000 100000",
    "libvirt/vcpu0/cpuset.cpus": "2",
    "libvirt/vcpu1/cpuset.cpus": "3",
    "libvirt/emulator/cpuset.cpus": "0-1",
}
# The other domain has no policy: libvirt's defaults, kept off the CPUs 2-3 (one core,
# both hyperthreads) that the first one occupies.
KEPT_OFF_FILES = {
    "cpu.weight": "100",
    "libvirt/cpu.max": "max 100000",
    "libvirt/vcpu0/cpuset.cpus": "0-1,4-7",
    "libvirt/vcpu1/cpuset.cpus": "0-1,4-7",
    "libvirt/emulator/cpuset.cpus": "0-1,4-7",
}


def cgroup_files(name, files):
    base = guest.scope(name)
    return {f: guest.read("%s/%s" % (base, f)) for f in files}


def test_policy_and_occupancy_in_the_kernels_files(domains):
    a, b = domains("-a"), domains("-b")
    for args in (("vcpupin", a, "0", "2"), ("vcpupin", a, "1", "3"), ("emulatorpin", a, "0-1"),
                 ("schedweight", a, "512"), ("schedcap", a, "50"), ("cpuoccupy", "2-3", a)):
        r = lab.policyctl(*args)
        assert r.returncode == 0, r.stdout + r.stderr
    cursor = lab.journal_cursor()
    for name in (a, b):
        t0 = time.monotonic()
        lab.virsh("start", name, timeout=180)
        guest.record("virsh start %s (TCG inside TCG)" % name, "%.1f s" % (time.monotonic() - t0))

    assert lab.settled(lambda: cgroup_files(a, POLICY_FILES), POLICY_FILES) == POLICY_FILES
    assert lab.settled(lambda: cgroup_files(b, KEPT_OFF_FILES), KEPT_OFF_FILES) == KEPT_OFF_FILES
    guest.record("scope of %s" % a, guest.scope(a))
    for f, value in cgroup_files(a, POLICY_FILES).items():
        guest.record("%s (weight 512, cap 50) %s" % (a, f), value)

    # The threads themselves: the scheduler's view, not only the cgroups'.
    assert guest.vcpu_affinity(a) == {0: {2}, 1: {3}}
    assert guest.vcpu_affinity(b) == {0: {0, 1, 4, 5, 6, 7}, 1: {0, 1, 4, 5, 6, 7}}
    assert guest.cpus(guest.read("/proc/%d/status" % guest.qemu_pid(a)).split(
        "Cpus_allowed_list:")[1].split()[0]) == {0, 1}

    # libvirt's and policyctl's view agree with the kernel's: no drift.
    sched = lab.schedinfo(a)
    guest.record("virsh schedinfo %s" % a, "cpu_shares %s, global_period %s, global_quota %s" % (
        sched.get("cpu_shares"), sched.get("global_period"), sched.get("global_quota")))
    assert (sched["cpu_shares"], sched["global_quota"]) == ("200", "50000")
    doc = json.loads(lab.policyctl("cpupolicy", a, "--json", check=True).stdout)
    assert doc["running"] and doc["drift"] == []

    # The hook and the applier logged to the journal (syslog identifier policyhook).
    def logged():
        lines = lab.journal("-t", "policyhook", "--after-cursor", cursor).splitlines()
        wanted = ("qemu %s prepare/begin: admitted" % a, "qemu %s start/begin: applier started" % a,
                  "qemu %s applier (start/begin): " % a)
        found = [next((line for line in lines if line.startswith(w)), None) for w in wanted]
        return found if all(found) else None
    lines = lab.wait_for(logged, 30, "the hook's and the applier's lines in journalctl -t policyhook")
    for line in lines:
        guest.record("journalctl -t policyhook", line)
