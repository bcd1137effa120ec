"""A real libvirtd and real QEMU/TCG domains and LXC containers for the end-to-end tests
(doc/design.md "libvirt facts"). Every helper about domains takes `uri` (QEMU's by default; LXC_URI for
containers).

The registry root and the hook the helpers use are the installed package's ("/" and
HOOKDIR/DRIVER.d/policyhook) in the lab guests (tests/vm, tests/vm-xen), which are the
tests' own machines. On a host that may be an admin's, tests/e2e/conftest.py calls
use_instance() first: a scratch root and a hook instance of the tests' own."""

import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

URI = "qemu:///system"
LXC_URI = "lxc:///system"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLICYCTL = os.path.join(os.path.dirname(sys.executable), "policyctl")
HOOKDIR = "/etc/libvirt/hooks"
PIDFILE = "/run/libvirtd.pid"
PREFIX = "phe2e-"
# The disposable-host setting: where it is "yes", the tests may move every domain of the
# daemon (tests/e2e/conftest.py).
DISPOSABLE = "POLICYHOOK_TEST_DISPOSABLE_HOST"

ROOT = "/"                                          # the registry root (policyctl --root)
HOOK = HOOKDIR + "/qemu.d/policyhook"               # what libvirtd runs for QEMU domains
LXC_HOOK = HOOKDIR + "/lxc.d/policyhook"            # ... and for containers
RUNS = (HOOK, LXC_HOOK)                             # the hook files the processes run


def use_instance(root, hook, lxc_hook, runs):
    """Helpers on the registry under `root`, whose domains libvirtd hands to the hooks
    `hook` and `lxc_hook`, which run (exec) the files `runs`."""
    global ROOT, HOOK, LXC_HOOK, RUNS
    ROOT, HOOK, LXC_HOOK, RUNS = root, hook, lxc_hook, tuple(runs)


def paths():
    """policyhook's own layout of the registry root the helpers use (policyhook.paths)."""
    from policyhook.paths import Paths
    return Paths(ROOT)

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'{current}>{vcpus}</vcpu>{iothreads}{cputune}
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


# A container running /bin/sh on the host's root (libvirt's formatdomain: "exe" OS type,
# <init>, a pty console for the shell). Its 2 vCPUs are only a count: a container has
# no vCPU threads.
LXC_XML = """<domain type='lxc'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os><type>exe</type><init>/bin/sh</init></os>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <console type='pty'/>
  </devices>
</domain>
"""


class LabError(Exception):
    pass


def run(cmd, check=True, timeout=60, **kw):
    """`cmd`'s CompletedProcess; LabError when it fails (with `check`) or outlives
    `timeout`. A program that outlives it gets SIGABRT first: a Python one whose
    environment has PYTHONFAULTHANDLER=1 (policyctl here) prints where it waits."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGABRT)
            try:
                out, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            raise LabError("%s did not end within %d s: %s%s"
                           % (" ".join(cmd), timeout, out, err[-6000:])) from None
    r = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if check and r.returncode != 0:
        raise LabError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def virsh(*args, check=True, timeout=60, uri=URI):
    return run(["virsh", "-c", uri] + list(args), check=check, timeout=timeout)


def policyctl_argv(*args):
    """policyctl's command line on the helpers' registry root."""
    return [POLICYCTL, "--root", ROOT] + list(args)


def policyctl(*args, check=False, timeout=60):
    return run(policyctl_argv(*args), check=check, timeout=timeout,
               env=dict(os.environ, PYTHONFAULTHANDLER="1"))


def daemon_up(uri=URI):
    return subprocess.run(["virsh", "-c", uri, "uri"], capture_output=True).returncode == 0


def start_daemon():
    if daemon_up():
        return
    if os.path.isdir("/run/systemd/system"):
        run(["systemctl", "start", "libvirtd.service"])
    else:
        run(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
             "LIBVIRT_LOG_OUTPUTS=3:file:/var/log/libvirtd.log", "/usr/sbin/libvirtd", "-d"])
    wait_for(daemon_up, 10, "libvirtd to answer")


def stop_daemon():
    """Stop libvirtd; running domains keep running (as on a real host)."""
    if os.path.isdir("/run/systemd/system"):
        run(["systemctl", "stop", "libvirtd.service"])
        return
    with open(PIDFILE) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid) or _zombie(pid), 20, "libvirtd to exit")


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def settled(read, expected, timeout=60, interval=0.2):
    """What `read()` gives once it equals `expected`, or its last value at the timeout
    (the assertion then shows the difference); a read that fails gives its error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except (OSError, KeyError, LabError) as e:
            value = "unreadable: %s" % e
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def journal(*args):
    """journalctl's messages (the lab guests run systemd)."""
    return run(["journalctl", "--no-pager", "-q", "-o", "cat"] + list(args)).stdout


def journal_after_failure(record, units):
    """A pytest_runtest_makereport hook for a guest tier's conftest: after a failed test,
    `record` gets what `units` and policyhook logged in its last minutes (the guest is
    gone when CI shows the failure)."""
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" and report.failed:
            argv = ["journalctl", "--no-pager", "-q", "--since", "-5min", "-n", "80", "-t", "policyhook"]
            for unit in units:
                argv += ["-u", unit]
            try:
                tail = run(argv, check=False).stdout
            except LabError as e:
                tail = str(e)
            record("journalctl after %s failed" % item.name, tail)
    return pytest_runtest_makereport


def journal_cursor():
    out = run(["journalctl", "--no-pager", "-q", "-n", "0", "--show-cursor"]).stdout
    return out.strip().rsplit("cursor: ", 1)[-1]


def define(name, vcpus=2, uri=URI, iothreads=0, current=None, cputune=""):
    """Define a throwaway domain: `iothreads` IOThreads (IDs 1..N), `current` vCPUs online
    at start when fewer than `vcpus`, `cputune` its own <cputune> element."""
    path = "/tmp/%s.xml" % name
    with open(path, "w") as f:
        f.write((LXC_XML if uri == LXC_URI else DOMAIN_XML).format(
            name=name, vcpus=vcpus, current=" current='%d'" % current if current else "",
            cputune="\n  " + cputune if cputune else "",
            iothreads="\n  <iothreads>%d</iothreads>" % iothreads if iothreads else ""))
    virsh("define", path, uri=uri)


def destroy(name, uri=URI):
    virsh("destroy", name, check=False, uri=uri)


def undefine(name, uri=URI):
    destroy(name, uri)
    virsh("undefine", name, check=False, uri=uri)


def vcpupin(name, uri=URI):
    """{vcpu: 'cpulist'} from `virsh vcpupin` (live when running)."""
    out = virsh("vcpupin", name, uri=uri).stdout
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\s*(\d+)\s+(\S+)\s*$", out, re.M)}


def emulatorpin(name, uri=URI):
    out = virsh("emulatorpin", name, uri=uri).stdout
    m = re.search(r"\*:\s*(\S+)", out)
    return m.group(1) if m else None


@contextlib.contextmanager
def setting(section, key, value):
    """policyhook.conf with `key = value` in [section] (the shipped file has every section
    header, each key commented out), put back byte for byte afterwards."""
    path = paths().conf
    with open(path) as f:
        before = f.read()
    text = re.sub(r"(?m)^\[%s\]$" % re.escape(section), "[%s]\n%s = %s" % (section, key, value),
                  before, count=1)
    if text == before:
        raise LabError("no [%s] section in %s" % (section, path))
    with open(path, "w") as f:
        f.write(text)
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(before)


def schedinfo(name, uri=URI):
    out = virsh("schedinfo", name, uri=uri).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\w+)\s*:\s*(\S+)\s*$", out, re.M)}


def domain_cgroup(name, uri=URI, controller="cpu"):
    """The domain's own cgroup directory (v1), where libvirt writes its CPU limits: QEMU's
    machine/qemu-ID-NAME.libvirt-qemu (its main process sits in emulator/ below), a
    container's machine/lxc-PID-NAME.libvirt-lxc. Found from libvirt's pid file."""
    kind = "lxc" if uri == LXC_URI else "qemu"
    with open("/run/libvirt/%s/%s.pid" % (kind, name)) as f:
        pid = int(f.read().split()[0])
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                if path.endswith("/emulator"):
                    path = path[:-len("/emulator")]
                return "/sys/fs/cgroup/%s%s" % (controller, path)
    raise LabError("%s %s (pid %d) is in no %s cgroup" % (kind, name, pid, controller))


def cgroup_value(path, name):
    with open("%s/%s" % (path, name)) as f:
        return f.read().strip()


def appliers():
    """Pids of policyhook processes still alive (hooks or appliers)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if any(path.encode() + b"\0" in cmd for path in RUNS) and not _zombie(int(pid)):
            found.append(int(pid))
    return found


def state(name):
    """The runtime state policyhook recorded for a running domain, or None."""
    path = paths().state_file(name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def qemu_threads(name):
    """{thread name: TID} of a running QEMU domain ('CPU 0/TCG', 'IO iothread1', ...)."""
    with open("/run/libvirt/qemu/%s.pid" % name) as f:
        pid = int(f.read().split()[0])
    found = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                found[f.read().strip()] = int(tid)
        except OSError:
            continue
    return found


def affinity(name, thread):
    """The CPUs the kernel lets one QEMU thread run on, as a cpulist string."""
    cpus = sorted(os.sched_getaffinity(qemu_threads(name)[thread]))
    return ",".join(map(str, cpus)) if len(cpus) < 2 or cpus[-1] - cpus[0] != len(cpus) - 1 \
        else "%d-%d" % (cpus[0], cpus[-1])


def iothreadinfo(name, uri=URI):
    """{IOThread ID: 'cpulist'} from `virsh iothreadinfo` (live when running)."""
    out = virsh("iothreadinfo", name, uri=uri).stdout
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\s*(\d+)\s+(\S+)\s*$", out, re.M)}


def occupied():
    """{CPU: [domains]} of the occupied CPUs, from `policyctl occupancy --json`."""
    doc = json.loads(policyctl("occupancy", "--json").stdout)
    return {c["cpu"]: c["occupied_by"] for n in doc["nodes"] for s in n["sockets"] for k in s["cores"]
            for c in k["cpus"] if c["occupied_by"]}


def log_text():
    """policyhook's log as it is now ('' before its first line)."""
    try:
        with open(paths().log) as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ---- what the conftests of tests/e2e, tests/vm and tests/vm-xen share -------------------


def throwaways(request, prefix, width, define, remove):
    """The body of a `domains` fixture (`yield from` it): yields make(suffix="", **kw),
    which defines with define(name, **kw) a domain named after the test (`prefix`, the
    test's name cut to `width`, `suffix`) and returns its name; each is removed after
    with remove(name)."""
    made = []

    def make(suffix="", **kw):
        name = prefix + request.node.name.replace("test_", "")[:width].replace("[", "-").rstrip("]") + suffix
        define(name, **kw)
        made.append(name)
        return name

    yield make
    for name in made:
        remove(name)


def remove_throwaways(prefix, uri=URI, remove=None, missing_ok=False):
    """Every domain of `uri` whose name starts with `prefix`, removed with remove(name)
    (default: undefine on `uri`); with `missing_ok`, nothing where libvirtd has no such
    driver."""
    listed = virsh("list", "--all", "--name", uri=uri, check=not missing_ok)
    for name in listed.stdout.split() if listed.returncode == 0 else []:
        if name.startswith(prefix):
            (remove or (lambda n: undefine(n, uri)))(name)


def foreign_domains(prefix):
    """The domains of the daemon, running or defined, not named `prefix`...: 'NAME (qemu)',
    'NAME (lxc)' (where libvirtd has its LXC driver)."""
    found = []
    for uri, kind in ((URI, "qemu"), (LXC_URI, "lxc")):
        listed = virsh("list", "--all", "--name", uri=uri, check=uri == URI)
        names = listed.stdout.split() if listed.returncode == 0 else []
        found += ["%s (%s)" % (name, kind) for name in names if not name.startswith(prefix)]
    return found


def remove_test_policies(prefix):
    """The policies of domains named `prefix`... in the helpers' registry."""
    for path in glob.glob(os.path.join(glob.escape(paths().domains), "%s*.json" % prefix)):
        os.unlink(path)


def write_readings(terminalreporter, title, readings):
    """pytest's summary section `title`: each (what, value) read (any value, as %s
    shows it), one of several lines indented under its name."""
    if not readings:
        return
    terminalreporter.section(title)
    for what, value in readings:
        text = "%s" % (value,)
        if "\n" in text:
            terminalreporter.write_line("%s:" % what)
            for line in text.rstrip("\n").splitlines():
                terminalreporter.write_line("    " + line)
        else:
            terminalreporter.write_line("%s: %s" % (what, text))
