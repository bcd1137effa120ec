"""Quiet CPUs on fake /proc and /sys trees: the masks planned (managed IRQs, a one-CPU
mask, an IRQ that appears while an occupant runs, two sets overlapping in time), what
each had recorded before it is changed and given back byte for byte, also after a kill
at any step, irqbalance's banned CPUs through a drop-in, and files that cannot be
written."""

import contextlib
import errno
import os

import pytest

from policyhook import describe, housekeeping, quietcpus
from policyhook.cpuset import CpuSet
from policyhook.hostfiles import PF_KTHREAD, PF_NO_SETAFFINITY, HostFiles, IrqBalance
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.systemd import Systemd

IRQS = {  # irq: (smp_affinity_list, name)
    "0": ("0\n", "timer"),              # one CPU, not managed: stays where it is if held
    "24": ("0-7\n", "virtio0-config"),
    "25": ("0-7\n", "virtio0-input.0"),
    "26": ("0-3\n", "virtio0-output.0"),
    "30": ("2\n", "virtio2-req.2"),     # kernel-managed: the write fails
    "31": ("3\n", "virtio2-req.3"),     # kernel-managed
}
MANAGED = {"30", "31"}
KTHREADS = {  # pid: (comm, flags, Cpus_allowed_list)
    "2": ("kthreadd", PF_KTHREAD, "0-7"),
    "15": ("ksoftirqd/1", PF_KTHREAD | PF_NO_SETAFFINITY, "1"),
    "40": ("khugepaged", PF_KTHREAD, "0-7"),
    "700": ("sshd", 0x400100, "0-7"),
    "800": ("irqbalance", 0x400100, "0-7"),
}


def put(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def stat_line(pid, comm, flags, start="1234"):
    # pid (comm) state ppid pgrp session tty tpgid flags ... field 22 = start time
    rest = ["S", "0", "0", "0", "0", "-1", str(flags)] + ["0"] * 12 + [start] + ["0"] * 10
    return "%s (%s) %s\n" % (pid, comm, " ".join(rest))


def make_tree(root, irqs=IRQS, kthreads=KTHREADS):
    proc, sys = os.path.join(root, "proc"), os.path.join(root, "sys")
    put(os.path.join(proc, "irq", "default_smp_affinity"), "ff\n")
    lines = ["           CPU0       CPU1"]
    for irq, (mask, name) in irqs.items():
        add_irq(root, irq, mask)
        lines.append("%4s:          1          2  PCI-MSI 1-edge      %s" % (irq, name))
    put(os.path.join(proc, "interrupts"), "\n".join(lines) + "\n")
    put(os.path.join(sys, "devices", "virtual", "workqueue", "cpumask"), "ff\n")
    put(os.path.join(sys, "bus", "workqueue", "devices", "writeback", "cpumask"), "ff\n")
    put(os.path.join(sys, "devices", "system", "cpu", "isolated"), "\n")
    for pid, (comm, flags, allowed) in kthreads.items():
        put(os.path.join(proc, pid, "stat"), stat_line(pid, comm, flags))
        put(os.path.join(proc, pid, "status"), "Name:\t%s\nCpus_allowed_list:\t%s\n" % (comm, allowed))
    return proc, sys


def add_irq(root, irq, mask):
    put(os.path.join(root, "proc", "irq", irq, "smp_affinity_list"), mask)
    put(os.path.join(root, "proc", "irq", irq, "effective_affinity_list"), mask.split("-")[0].strip() + "\n")


def tree_bytes(root):
    """Every file of the fake /proc and /sys, as bytes."""
    found = {}
    for top in ("proc", "sys"):
        for d, _dirs, files in os.walk(os.path.join(root, top)):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    found[os.path.relpath(os.path.join(d, f), root)] = fh.read()
    return found


class Killed(BaseException):
    """kill -9: nothing after it runs, not even an except clause."""


class Countdown:
    """Dies at the n-th step (a host write or taking the record's lock); None: never."""

    def __init__(self, n=None):
        self.n = n
        self.steps = 0

    def step(self):
        self.steps += 1
        if self.n is not None and self.steps > self.n:
            raise Killed()


class FakeFiles(HostFiles):
    """HostFiles over the fake tree; the kernel refuses managed IRQs (EPERM); kernel
    threads' affinity is their status file's Cpus_allowed_list."""

    def __init__(self, root, countdown=None, managed=MANAGED, refuse=None):
        super().__init__(os.path.join(root, "proc"), os.path.join(root, "sys"), setaffinity=self._affinity)
        self.countdown = countdown or Countdown()
        self.managed = managed
        self.refuse = refuse or {}       # key -> errno

    def _affinity(self, pid, cpus):
        path = os.path.join(self.proc, str(pid), "status")
        with open(path) as f:
            name = f.readline().rstrip("\n")
        put(path, "%s\nCpus_allowed_list:\t%s\n" % (name, CpuSet(cpus)))

    def write(self, key, text):
        self.countdown.step()
        irq = housekeeping.irq_of(key)
        if irq in self.managed:
            raise OSError(errno.EPERM, "Operation not permitted")
        if key in self.refuse:
            raise OSError(self.refuse[key], os.strerror(self.refuse[key]))
        super().write(key, text)


@pytest.fixture
def root(tmp_path):
    make_tree(str(tmp_path))
    return str(tmp_path)


def update(root, held, countdown=None, repair=True, irqbalance=None, **kw):
    countdown = countdown or Countdown()

    @contextlib.contextmanager
    def lock(_path, _timeout):
        countdown.step()
        yield

    registry = Registry(Paths(root), lock=lock)
    return quietcpus.update(Paths(root), registry, FakeFiles(root, countdown, **kw), irqbalance,
                            CpuSet.parse(held) if held else CpuSet(), repair)


def read(root, rel):
    with open(os.path.join(root, rel)) as f:
        return f.read()


def irq_mask(root, irq):
    return read(root, "proc/irq/%s/smp_affinity_list" % irq).strip()


# ---- the plan, pure --------------------------------------------------------------------


def test_masks_render_as_the_kernel_prints_them():
    assert housekeeping.render("irq/default", CpuSet.parse("0-1,4-7")) == "f3"
    assert housekeeping.render("workqueue", CpuSet.parse("0,40")) == "100,00000001"
    assert housekeeping.parse("workqueue", "00000100,00000001\n") == CpuSet.parse("0,40")
    assert housekeeping.parse("irq/24", "0-3\n") == CpuSet.parse("0-3")
    assert housekeeping.render("irq/24", CpuSet.parse("0-1,4-7")) == "0-1,4-7"


def test_plan_keeps_every_movable_mask_off_and_a_one_cpu_mask_where_it_is():
    values = {"irq/24": "0-7\n", "irq/0": "2\n", "irq/26": "0-1\n", "irq/default": "ff\n",
              "workqueue": "ff\n", "kthread/40/9": "0-7\n"}
    p = housekeeping.plan(values, CpuSet.parse("2-3"), housekeeping.empty_record())
    assert dict(p.writes) == {"irq/24": "0-1,4-7", "irq/default": "f3", "workqueue": "f3",
                              "kthread/40/9": "0-1,4-7"}
    assert p.originals == {"irq/24": "0-7\n", "irq/default": "ff\n", "workqueue": "ff\n",
                           "kthread/40/9": "0-7\n"}
    assert p.kept == {"irq/0": CpuSet.parse("2")}          # never an empty mask
    assert "irq/26" not in dict(p.writes)                  # already off 2-3: untouched


def test_an_irq_irqbalance_moved_elsewhere_is_not_moved_again():
    record = {"saved": {"irq/24": "0-7\n"}, "applied": {"irq/24": "0-1,4-7"}, "managed": {}}
    p = housekeeping.plan({"irq/24": "5\n"}, CpuSet.parse("2-3"), record)
    assert p.writes == [] and p.drift == [] and p.restores == []
    # ... and gets its own mask back when nothing is held any more.
    p = housekeeping.plan({"irq/24": "5\n"}, CpuSet(), record)
    assert p.restores == [("irq/24", "0-7\n")]


def test_drift_without_repair_is_reported_not_written():
    record = {"saved": {"irq/24": "0-7\n", "workqueue": "ff\n"},
              "applied": {"irq/24": "0-1,4-7", "workqueue": "f3"}, "managed": {}}
    values = {"irq/24": "0-7\n", "workqueue": "ff\n"}
    p = housekeeping.plan(values, CpuSet.parse("2-3"), record, repair=False)
    assert p.writes == []
    assert p.drift == [("irq/24", "0-7", "0-1,4-7"), ("workqueue", "ff", "f3")]
    p = housekeeping.plan(values, CpuSet.parse("2-3"), record, repair=True)
    assert dict(p.writes) == {"irq/24": "0-1,4-7", "workqueue": "f3"} and p.originals == {}


def test_irqbalance_keeps_what_it_avoided_and_adds_the_held_cpus():
    held = CpuSet.parse("2-3")
    assert housekeeping.irqbalance_env({}, CpuSet(), held) == \
        "IRQBALANCE_BANNED_CPUS=\nIRQBALANCE_BANNED_CPULIST=2-3\n"
    # Without a setting of its own, irqbalance avoids the isolated and nohz_full CPUs.
    assert housekeeping.irqbalance_env({}, CpuSet.parse("7"), held).endswith("=2-3,7\n")
    assert housekeeping.irqbalance_env({"IRQBALANCE_BANNED_CPULIST": "0"}, CpuSet.parse("7"), held) \
        .endswith("=0,2-3\n")
    assert housekeeping.irqbalance_env({"IRQBALANCE_BANNED_CPUS": "10"}, CpuSet(), held).endswith("=2-4\n")


# ---- on the fake host ------------------------------------------------------------------


def test_kept_off_then_given_back_byte_for_byte(root):
    before = tree_bytes(root)
    r = update(root, "2-3")
    assert irq_mask(root, "24") == "0-1,4-7" and irq_mask(root, "25") == "0-1,4-7"
    assert irq_mask(root, "26") == "0-1"
    assert irq_mask(root, "0") == "0"                     # not on a held CPU: untouched
    assert read(root, "proc/irq/default_smp_affinity") == "f3\n"
    assert read(root, "sys/devices/virtual/workqueue/cpumask") == "f3\n"
    assert read(root, "sys/bus/workqueue/devices/writeback/cpumask") == "f3\n"
    assert "0-1,4-7" in read(root, "proc/2/status") and "0-1,4-7" in read(root, "proc/40/status")
    assert read(root, "proc/15/status").endswith("\t1\n")   # per-CPU: never touched
    assert read(root, "proc/700/status").endswith("\t0-7\n")  # not a kernel thread
    # Managed IRQs are not errors: named with the CPUs they stay on.
    assert r.managed == {"30": "2", "31": "3"} and r.problems == []
    assert quietcpus.managed_by_cpu(Paths(root)) == {2: [("30", "virtio2-req.2")],
                                                     3: [("31", "virtio2-req.3")]}
    # Nothing to do the second time.
    assert update(root, "2-3").changed == {}
    r = update(root, "")
    assert r.problems == [] and set(r.restored) >= {"irq/24", "irq/default", "workqueue"}
    assert tree_bytes(root) == before
    assert not os.path.exists(quietcpus.record_path(Paths(root)))


def test_an_irq_registered_while_held_gets_the_default_back(root):
    before = tree_bytes(root)
    update(root, "2-3")
    add_irq(root, "40", "0-1,4-7\n")       # registered now: the kernel gave it our default
    update(root, "2-3")
    assert irq_mask(root, "40") == "0-1,4-7"
    update(root, "")
    assert irq_mask(root, "40") == "0-7"   # the default it would have had
    after = tree_bytes(root)
    del after["proc/irq/40/smp_affinity_list"], after["proc/irq/40/effective_affinity_list"]
    assert after == before


def test_an_irq_registered_on_a_held_cpu_is_moved(root):
    update(root, "2-3")
    add_irq(root, "41", "0-7\n")           # a driver set its own affinity
    r = update(root, "2-3")
    assert r.changed == {"irq/41": "0-1,4-7"}
    occupy(root)
    assert quietcpus.drift(Paths(root), On(), ["a"], Registry(Paths(root)))[0] == []
    update(root, "")
    assert irq_mask(root, "41") == "0-7"


def test_two_sets_overlapping_in_time(root):
    before = tree_bytes(root)
    update(root, "2-3")                    # set A's occupant starts
    update(root, "2-3,6-7")                # set B's starts while A's runs
    assert irq_mask(root, "24") == "0-1,4-5"
    assert read(root, "proc/irq/default_smp_affinity") == "33\n"
    update(root, "6-7")                    # A's stops: its CPUs come back, B's stay quiet
    assert irq_mask(root, "24") == "0-5"
    assert irq_mask(root, "26") == "0-3"   # only ever on A's CPUs: its own again
    assert read(root, "sys/devices/virtual/workqueue/cpumask") == "3f\n"
    update(root, "")
    assert tree_bytes(root) == before


def test_a_one_cpu_mask_on_a_held_cpu_keeps_its_own(root):
    r = update(root, "0-1")
    assert irq_mask(root, "0") == "0" and r.kept["irq/0"] == CpuSet.parse("0")


def _run_until_done(root, held, limit=200):
    """update(held) killed at its 0th, 1st, ... step, each time run once more whole."""
    kills = 0
    for n in range(limit):
        countdown = Countdown(n)
        try:
            update(root, held, countdown)
        except Killed:
            kills += 1
            yield n
            continue
        return
    raise AssertionError("never finished")


def test_a_kill_at_any_step_of_keeping_off_is_completed_or_undone(tmp_path):
    done = None
    n = 0
    while True:
        root = str(tmp_path / ("k%d" % n))
        make_tree(root)
        before = tree_bytes(root)
        try:
            update(root, "2-3", Countdown(n))
            killed = False
        except Killed:
            killed = True
        update(root, "2-3")                 # the next start, apply --all or the watcher
        state = tree_bytes(root)
        if done is None:
            ref = str(tmp_path / "ref")
            make_tree(ref)
            update(ref, "2-3")
            done = tree_bytes(ref)
        assert state == done, "after a kill at step %d" % n
        update(root, "")                    # the last occupant stops
        assert tree_bytes(root) == before, "after a kill at step %d" % n
        assert not os.path.exists(quietcpus.record_path(Paths(root)))
        if not killed:
            break
        n += 1
    assert n > 10       # every write and every record save was a kill point


def test_a_kill_at_any_step_of_giving_back_is_completed(tmp_path):
    n = 0
    while True:
        root = str(tmp_path / ("g%d" % n))
        make_tree(root)
        before = tree_bytes(root)
        update(root, "2-3")
        try:
            update(root, "", Countdown(n))
            killed = False
        except Killed:
            killed = True
        update(root, "")
        assert tree_bytes(root) == before, "after a kill at step %d" % n
        assert not os.path.exists(quietcpus.record_path(Paths(root)))
        if not killed:
            break
        n += 1
    assert n > 5


def test_a_file_that_cannot_be_written_is_one_warning_and_the_rest_is_done(root):
    r = update(root, "2-3", refuse={"workqueue": errno.EACCES, "irq/24": errno.EROFS,
                                    "irq/25": errno.EROFS})
    assert sorted(r.problems) == [
        root + "/proc/irq/24/smp_affinity_list (and 1 more like it): cannot be written: "
        "Read-only file system; left as it is",
        root + "/sys/devices/virtual/workqueue/cpumask: cannot be written: Permission denied; left as it is"]
    assert read(root, "proc/irq/default_smp_affinity") == "f3\n"     # the rest still done
    assert "workqueue" not in quietcpus.load(Paths(root))["saved"]   # nothing to give back


def test_a_missing_file_is_not_an_error(tmp_path):
    root = str(tmp_path)
    make_tree(root)
    os.unlink(os.path.join(root, "sys/bus/workqueue/devices/writeback/cpumask"))
    r = update(root, "2-3")
    assert r.problems == [] and "workqueue" in r.changed


# ---- irqbalance ------------------------------------------------------------------------


class FakeSystemctl:
    def __init__(self, active=True):
        self.active = active
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv[1:])

        class R:
            stdout, stderr = "", ""
        r = R()
        r.returncode = 0 if argv[1] != "is-active" or self.active else 3
        return r


def test_irqbalance_is_banned_from_the_held_cpus_and_given_its_own_back(root):
    os.makedirs(os.path.join(root, "run", "systemd", "system"))
    put(os.path.join(root, "etc", "default", "irqbalance"),
        "#IRQBALANCE_ONESHOT=\nIRQBALANCE_BANNED_CPULIST=0\n")
    admin = read(root, "etc/default/irqbalance")
    fake = FakeSystemctl()
    irqb = IrqBalance(Systemd(fake, root), root)
    r = update(root, "2-3", irqbalance=irqb)
    assert r.irqbalance == "0,2-3"
    dropin = os.path.join(root, "run/systemd/system/irqbalance.service.d")
    assert read(root, dropin + "/50-policyhook.env") == \
        "IRQBALANCE_BANNED_CPUS=\nIRQBALANCE_BANNED_CPULIST=0,2-3\n"
    assert "EnvironmentFile=-/run/systemd/system/irqbalance.service.d/50-policyhook.env" \
        in read(root, dropin + "/50-policyhook.conf")
    assert ["daemon-reload"] in fake.calls
    assert ["try-restart", "--no-block", "--", "irqbalance.service"] in fake.calls
    fake.calls.clear()
    assert update(root, "2-3", irqbalance=irqb).irqbalance is None and fake.calls == [
        ["is-active", "--quiet", "--", "irqbalance.service"]]      # no restart when nothing changed
    r = update(root, "", irqbalance=irqb)
    assert r.irqbalance == "given back" and not os.path.exists(dropin)
    assert read(root, "etc/default/irqbalance") == admin
    assert not os.path.exists(quietcpus.record_path(Paths(root)))


def test_irqbalance_not_running_is_left_alone(root):
    os.makedirs(os.path.join(root, "run", "systemd", "system"))
    fake = FakeSystemctl(active=False)
    r = update(root, "2-3", irqbalance=IrqBalance(Systemd(fake, root), root))
    assert r.irqbalance is None and [c[0] for c in fake.calls] == ["is-active"]


def test_irqbalance_without_systemd_is_a_warning(root):
    r = update(root, "2-3", irqbalance=IrqBalance(Systemd(FakeSystemctl(), root), root))
    assert r.problems == ["irqbalance runs (pid 800) but not as a systemd unit: its banned CPUs cannot "
                          "be set at run time; it may move IRQs back onto 2-3"]


# ---- verify, and the words -------------------------------------------------------------


class On:
    housekeeping = True


def occupy(root):
    """host.json: CPUs 2-3 occupied by 'a'."""
    paths = Paths(root)
    put(paths.host_file, '{"version": 1, "cpuoccupy": {"2": ["a"], "3": ["a"]}}\n')
    os.chmod(paths.host_file, 0o644)
    return paths


def test_verify_names_an_irq_back_on_a_held_cpu_and_a_mask_not_given_back(root):
    update(root, "2-3")
    put(os.path.join(root, "proc/irq/24/smp_affinity_list"), "0-7\n")       # someone moved it back
    put(os.path.join(root, "sys/devices/virtual/workqueue/cpumask"), "ff\n")
    paths = occupy(root)
    found, names = quietcpus.drift(paths, On(), ["a"], Registry(paths))
    assert found == [("irq/24", "0-7", "0-1,4-7"), ("workqueue", "ff", "f3")]
    assert names["irq/24"] == "virtio0-config"
    # a stopped occupant whose masks were not given back is drift too
    found, _names = quietcpus.drift(paths, On(), [], Registry(paths))
    assert ("irq/default", "f3", "ff") in found


def test_describe_says_what_was_done(root):
    r = update(root, "2-3")
    text = describe.quiet_line(r)
    assert text.startswith("quiet CPUs: 8 masks kept off 2-3 (irq/default, irq/24, irq/25, irq/26, "
                           "kthread/2/1234, ")
    assert "kernel-managed IRQs stay: 30 on 2, 31 on 3" in text


# ---- through policyctl, on libvirt's test driver -------------------------------------


def test_policyctl_keeps_quiet_verifies_repairs_and_gives_back(tmp_path):
    import io
    import json

    import libvirt
    from testdriver import URI, RecordingConn
    from unit_helpers import write_raw

    from policyhook.cli import main

    root = str(tmp_path)
    make_tree(root, kthreads={})
    paths = Paths(root)
    os.makedirs(paths.domains)
    os.makedirs(paths.run)
    write_raw(paths.conf, b"[occupancy]\nhousekeeping = yes\n")
    before = tree_bytes(root)
    raw = libvirt.open(URI)
    conn = RecordingConn(raw)

    def run(*argv):
        out, err = io.StringIO(), io.StringIO()
        code = main(["--root", root, "-c", URI] + list(argv), out, err, connect=lambda uri: conn, environ={})
        return code, out.getvalue(), err.getvalue()

    code, out, err = run("cpuoccupy", "2", "running2")
    assert code == 0, err
    assert "quiet CPUs: 6 masks kept off 2 " in out
    assert irq_mask(root, "24") == "0-1,3-7" and read(root, "proc/irq/default_smp_affinity") == "fb\n"
    assert run("verify")[0] == 0
    put(os.path.join(root, "proc/irq/24/smp_affinity_list"), "0-7\n")       # back on CPU 2
    code, out, err = run("verify")
    assert code == 7
    assert out == ("pinned1: in force\n"       # kept off CPU 2 by the occupancy: in force
                   "host: DRIFT (quiet CPUs): IRQ 24 (virtio0-config): 0-7, wanted 0-1,3-7 "
                   "(policyctl apply --all)\n")
    assert err == ("Error: the host's interrupts or kernel work are not kept as [occupancy] housekeeping "
                   "says (1 mask)\n")
    doc = json.loads(run("verify", "--json")[1])
    assert doc[1:] == [{"domain": None, "host": "quiet-cpus", "status": "drift", "in_force": False,
                    "drift": [{"what": "irq/24", "name": "virtio0-config", "now": "0-7",
                               "wanted": "0-1,3-7"}],
                    "error": None, "uuid": None}]
    assert run("apply", "--all")[0] == 0
    assert irq_mask(root, "24") == "0-1,3-7" and run("verify")[0] == 0
    code, out, err = run("cpuoccupy", "2", "--clear")
    assert code == 0 and "masks given back" in out
    assert tree_bytes(root) == before
    raw.close()


def test_occupancy_names_the_kernel_managed_irqs_per_cpu():
    import io

    from policyhook.cli import show

    cpus = [{"cpu": 0, "occupied_by": [], "pinned": [], "managed_irqs": []},
            {"cpu": 1, "occupied_by": ["a"], "pinned": [],
             "managed_irqs": [{"irq": "30", "name": "virtio2-req.1"}]}]
    doc = {"asked_libvirt": False, "nodes": [{"node": 0, "cpus": "0-1", "sockets": [
        {"socket": 0, "cores": [{"core": 0, "cpus": cpus}]}]}]}
    out = io.StringIO()
    show.occupancy_map(doc, out)
    assert out.getvalue().splitlines()[-1] == "Kernel-managed IRQs on CPU 1 (they stay): 30 virtio2-req.1"


def test_nothing_held_nothing_recorded_the_host_is_not_read(tmp_path):
    paths = Paths(str(tmp_path))       # no /proc, no /sys, no registry under this root

    @contextlib.contextmanager
    def lock(_path, _timeout):
        yield
    registry = Registry(paths, lock=lock)
    assert quietcpus.update_for(paths, On(), ["a"], registry) is None
    assert quietcpus.update_for(paths, _Off(), ["a"], registry) is None


class _Off:
    housekeeping = False


def test_the_watcher_repairs_quiet_cpus_only_with_on_drift_repair(tmp_path):
    from policyhook.settings import Settings
    from policyhook.watch import Watcher

    asked = []

    class PM:
        uri = "qemu:///system"

        def update_host(self, running=None, repair=True):
            asked.append(repair)

    for on_drift in ("report", "repair"):
        settings = Settings()
        settings.on_drift = on_drift
        w = Watcher(Paths(str(tmp_path)), settings, [settings.uri], None, say=lambda *a: None)
        w.links[settings.uri] = PM()
        w.isolate()
    assert asked == [False, True]
