"""The vCPU threads of a running QEMU domain on this host, and their scheduling policies.

libvirt puts <vcpusched> in force when it starts a domain, but has no call that changes
a running domain's (virsh has none either). So a vCPU's policy (tunables.VCPUSCHED) is
set on its threads directly, as `chrt -p` would, and read back from them. The threads
are found through the vCPU cgroups libvirt makes for every domain it starts: QEMU's
main process sits in the domain's `emulator` cgroup, and vCPU N's threads in the
sibling `vcpuN` (cgroup v2: `.../libvirt/vcpuN/cgroup.threads`; v1: `.../vcpuN/tasks`
of the cpu controller). The process is the one in libvirt's pid file of the domain.

All or nothing: every thread's policy is read before the first is changed, and a
refusal puts back the ones already changed, so a vCPU is never left half real-time.
The kernel refuses SCHED_FIFO and SCHED_RR with EPERM when real-time group scheduling
gives the thread's cgroup no real-time time (cgroup v1 with CONFIG_RT_GROUP_SCHED:
`cpu.rt_runtime_us` is 0 in every cgroup below the root unless someone gives it some,
as in this machine's lab); the error says so.

Directories and the system calls come in as arguments (`Host`): tests run on fake trees.
"""

import errno
import os

from .names import name_problem

# os.SCHED_* by the names policies use, and back (SCHED_BATCH and SCHED_IDLE are read,
# never set: they show as drift from a policy).
POLICIES = {"other": os.SCHED_OTHER, "fifo": os.SCHED_FIFO, "rr": os.SCHED_RR}
NAMES = {value: name for name, value in POLICIES.items()}
NAMES.update({getattr(os, "SCHED_BATCH", 3): "batch", getattr(os, "SCHED_IDLE", 5): "idle"})


class VcpuThreadError(Exception):
    """A vCPU's threads could not be found or changed: the vCPU (or None), and why."""

    def __init__(self, index, detail):
        super().__init__(detail)
        self.index = index
        self.detail = detail


class Host:
    """Where this host keeps what the functions below read, and the calls that change a
    thread; a test gives fake directories and calls."""

    def __init__(self, run_dir="/run/libvirt/qemu", proc="/proc", cgroup_root="/sys/fs/cgroup",
                 getscheduler=os.sched_getscheduler, getparam=os.sched_getparam,
                 setscheduler=os.sched_setscheduler):
        self.run_dir = run_dir
        self.proc = proc
        self.cgroup_root = cgroup_root
        self.getscheduler = getscheduler
        self.getparam = getparam
        self.setscheduler = setscheduler


def _read(path):
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def qemu_pid(host, name):
    """The pid libvirt recorded for the domain's QEMU; VcpuThreadError when none."""
    if name_problem(name) is not None or "/" in name:
        raise VcpuThreadError(None, "'%s' cannot name a pid file" % name)
    path = os.path.join(host.run_dir, name + ".pid")
    try:
        text = _read(path).strip()
    except OSError as e:
        raise VcpuThreadError(None, "cannot read %s: %s" % (path, e.strerror)) from None
    if not (text.isascii() and text.isdigit()):
        raise VcpuThreadError(None, "%s does not hold a pid" % path)
    return int(text)


def vcpu_dirs(host, pid):
    """{vCPU: its cgroup directory} of the QEMU process `pid`, and the file listing each
    directory's threads ('cgroup.threads' or 'tasks')."""
    path = os.path.join(host.proc, str(pid), "cgroup")
    try:
        lines = _read(path).splitlines()
    except OSError as e:
        raise VcpuThreadError(None, "cannot read %s: %s" % (path, e.strerror)) from None
    found = None
    for line in lines:
        _id, _, rest = line.partition(":")
        controllers, _, where = rest.partition(":")
        if "cpu" in controllers.split(","):       # cgroup v1: the cpu controller's tree
            found = (os.path.join(host.cgroup_root, controllers), "tasks", where)
            break
        if controllers == "" and where and found is None:   # cgroup v2: "0::/machine.slice/..."
            found = (host.cgroup_root, "cgroup.threads", where)
    if found is None:
        raise VcpuThreadError(None, "%s names no cpu cgroup of the domain" % path)
    base, listing, where = found
    parts = [p for p in where.split("/") if p]
    if not parts or parts[-1] != "emulator" or ".." in parts:
        raise VcpuThreadError(None, "the domain's QEMU (pid %d) is not in libvirt's emulator cgroup "
                                    "but in %s" % (pid, where))
    parent = os.path.join(base, *parts[:-1])
    try:
        names = os.listdir(parent)
    except OSError as e:
        raise VcpuThreadError(None, "cannot list %s: %s" % (parent, e.strerror)) from None
    dirs = {}
    for entry in names:
        number = entry[4:]
        if entry.startswith("vcpu") and number.isascii() and number.isdigit():
            dirs[int(number)] = os.path.join(parent, entry)
    return dirs, listing


def threads(host, name):
    """{vCPU: [thread ids]} of the running domain `name` (online vCPUs only)."""
    return _threads_in(*vcpu_dirs(host, qemu_pid(host, name)))


def _threads_in(dirs, listing):
    found = {}
    for index, path in sorted(dirs.items()):
        try:
            tids = [int(t) for t in _read(os.path.join(path, listing)).split()]
        except (OSError, ValueError):
            continue          # unplugged meanwhile
        if tids:
            found[index] = tids
    return found


def policy_of(host, tid):
    """'fifo:10', 'other', 'batch': one thread's policy as a policy file writes it."""
    number = host.getscheduler(tid)
    policy = NAMES.get(number, "policy %d" % number)
    if policy in ("fifo", "rr"):
        return "%s:%d" % (policy, host.getparam(tid).sched_priority)
    return policy


def policies(host, name):
    """{vCPU: its policy} of the running domain `name`; a vCPU whose threads disagree
    shows its first thread's. VcpuThreadError when the threads cannot be found."""
    found = {}
    for index, tids in threads(host, name).items():
        try:
            found[index] = policy_of(host, tids[0])
        except OSError:
            continue           # the thread ended meanwhile
    return found


def _set(host, tid, value):
    policy, _, priority = value.partition(":")
    host.setscheduler(tid, POLICIES[policy], os.sched_param(int(priority) if priority else 0))


def apply(host, name, wanted):
    """Put `wanted` ({vCPU: 'fifo:10'}) in force on the domain's vCPU threads, all or
    nothing. Returns the vCPUs set; VcpuThreadError (the vCPU, why) when one is refused,
    after every thread changed before it got its policy back. A vCPU with no thread
    (offline) is left out: it gets libvirt's default when it comes online."""
    dirs, listing = vcpu_dirs(host, qemu_pid(host, name))
    found = _threads_in(dirs, listing)
    before = {}
    for index in sorted(wanted):
        for tid in found.get(index, ()):
            try:
                before[tid] = (host.getscheduler(tid), host.getparam(tid).sched_priority)
            except OSError as e:
                raise VcpuThreadError(index, "cannot read the policy of its thread %d: %s"
                                      % (tid, e.strerror)) from None
    changed = []
    try:
        for index in sorted(wanted):
            for tid in found.get(index, ()):
                try:
                    _set(host, tid, wanted[index])
                except OSError as e:
                    raise VcpuThreadError(index, _why(dirs[index], tid, e)) from None
                changed.append(tid)
    except VcpuThreadError:
        for tid in reversed(changed):
            policy, priority = before[tid]
            try:
                host.setscheduler(tid, policy, os.sched_param(priority))
            except OSError:
                pass   # the thread ended meanwhile
        raise
    return sorted(i for i in wanted if i in found)


def _why(vcpu_dir, tid, error):
    """The kernel's refusal in words, naming the real-time budget (of the vCPU's cgroup
    `vcpu_dir`) when that is why."""
    text = "the kernel refused thread %d: %s" % (tid, error.strerror)
    if error.errno != errno.EPERM:
        return text
    budget = os.path.join(vcpu_dir, "cpu.rt_runtime_us")
    try:
        runtime = _read(budget).strip()
    except OSError:
        return ("%s; real-time group scheduling gives the domain's cgroup no real-time budget "
                "(the kernel refuses SCHED_FIFO and SCHED_RR there)" % text)
    if runtime == "0":
        return ("%s; the domain's cgroup has no real-time budget (%s is 0: real-time group "
                "scheduling gives it no real-time time)" % (text, budget))
    return text
