"""What the guest tier reads from the kernel of the lab guest (scripts/vm-lab.sh): a
QEMU domain's cgroup v2 files under machine.slice, its threads' CPU affinity, and the
journal. Every value read is recorded, and the tier's summary lists them."""

import os

import lab

CGROUP = "/sys/fs/cgroup"
READINGS = []


def record(what, value):
    READINGS.append((what, value))
    return value


def qemu_pid(name):
    with open("/run/libvirt/qemu/%s.pid" % name) as f:
        return int(f.read().split()[0])


def scope(name):
    """The domain's own cgroup, machine.slice/machine-qemu\\x2dID\\x2dNAME.scope, found
    from its QEMU process (which sits in libvirt/emulator below it): libvirt sets
    cpu_shares on it; its libvirt/ child holds the domain-wide quota (cpu.max) and one
    child per vCPU and for the emulator."""
    with open("/proc/%d/cgroup" % qemu_pid(name)) as f:
        for line in f:
            hierarchy, _, path = line.rstrip("\n").split(":", 2)
            if hierarchy == "0":
                suffix = "/libvirt/emulator"
                if not path.endswith(suffix):
                    raise lab.LabError("QEMU of %s is in %s, not in a libvirt/emulator cgroup" % (name, path))
                return CGROUP + path[:-len(suffix)]
    raise lab.LabError("QEMU of %s is in no cgroup v2 group" % name)


def read(path):
    with open(path) as f:
        return f.read().strip()


def cpus(cpulist):
    """{0, 1, 4, ...} from a kernel cpulist such as '0-1,4-7'."""
    found = set()
    for part in cpulist.split(","):
        if part:
            lo, _, hi = part.partition("-")
            found.update(range(int(lo), int(hi or lo) + 1))
    return found


def threads(name):
    """{thread name: tid} of the domain's QEMU ('CPU 0/TCG', 'qemu-system-x86', ...)."""
    pid = qemu_pid(name)
    found = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            found[read("/proc/%d/task/%s/comm" % (pid, tid))] = int(tid)
        except OSError:
            pass  # a thread that just ended
    return found


def vcpu_affinity(name, vcpus=2):
    """{vCPU: set of CPUs} as the kernel has the vCPU threads' affinity."""
    tids = threads(name)
    return {v: os.sched_getaffinity(tids["CPU %d/TCG" % v]) for v in range(vcpus)}
