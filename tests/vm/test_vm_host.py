"""The guest is the host the issue promised (systemd, cgroup v2, libvirt 11, the
distribution's Python stack, hyperthread siblings and NUMA nodes), and `make install`
with the distribution's python3 lays policyhook out as a package would and reloads
libvirtd through systemd."""

import os
import re
import subprocess
import sys

import guest
import lab

SITE = "/usr/lib/python3/dist-packages"


def test_systemd_cgroup_v2_and_libvirt_11(installed):
    assert guest.read("/proc/1/comm") == "systemd"
    fstype = subprocess.run(["stat", "-f", "-c", "%T", guest.CGROUP], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert guest.record("/sys/fs/cgroup", fstype) == "cgroup2fs"
    assert {"cpu", "cpuset"} <= set(guest.read(guest.CGROUP + "/cgroup.controllers").split())
    out = lab.virsh("version", "--daemon").stdout
    daemon = re.search(r"Running against daemon: (\d+)\.(\d+)\.(\d+)", out)
    assert daemon, out
    guest.record("libvirt daemon", ".".join(daemon.groups()))
    assert int(daemon.group(1)) >= 11
    assert lab.run(["systemctl", "is-active", "libvirtd.service"]).stdout.strip() == "active"


def test_eight_cpus_with_siblings_and_two_numa_nodes(installed):
    node = "/sys/devices/system/node/node%d/cpulist"
    cpu = "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list"
    assert guest.read("/sys/devices/system/cpu/online") == "0-7"
    assert [guest.read(cpu % c) for c in range(0, 8, 2)] == ["0-1", "2-3", "4-5", "6-7"]
    assert [guest.read(node % n) for n in (0, 1)] == ["0-3", "4-7"]


def test_the_distributions_python_stack(installed):
    assert sys.executable == "/usr/bin/python3"
    import filelock
    import jsonschema
    import libvirt
    for module in (libvirt, jsonschema, filelock):
        assert module.__file__.startswith(SITE + "/"), module.__file__
    guest.record("python3", "%d.%d.%d" % sys.version_info[:3])
    guest.record("python3-libvirt", libvirt.getVersion())


def test_the_package_lays_out_the_python_package(installed):
    assert os.path.exists(SITE + "/policyhook/__init__.py")
    info = SITE + "/policyhook-%s.dist-info" % lab.run([lab.POLICYCTL, "--version"]).stdout.split()[-1]
    assert os.path.isdir(info)
    assert lab.run(["dpkg", "-S", info]).stdout.startswith("policyhook: ")
    with open(lab.POLICYCTL) as f:
        assert f.readline().strip() == "#!/usr/bin/python3"
    with open(lab.HOOK) as f:
        assert f.readline().strip() == "#!/usr/bin/python3 -I"
    assert os.stat(lab.HOOK).st_mode & 0o777 == 0o755


def _make(target):
    r = subprocess.run(["make", "-C", lab.REPO, "--no-print-directory", target, "PYTHON=/usr/bin/python3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, "make %s failed:\n%s%s" % (target, r.stdout, r.stderr)


def _reloaded_since(cursor):
    lines = lab.journal("--after-cursor", cursor, "-u", "libvirtd.service")
    return [line for line in lines.splitlines() if line.startswith("Reloaded ")]


def test_make_uninstall_and_install_reload_libvirtd(installed):
    """As a package's scripts would: libvirtd notices an added or removed hook only when
    it reloads, and under systemd that is `systemctl reload`."""
    try:
        lab.start_daemon()   # socket-activated: it stops when idle, and then nothing reloads
        cursor = lab.journal_cursor()
        _make("uninstall")
        assert not os.path.exists(lab.HOOK)
        assert not os.path.exists(lab.POLICYCTL)
        assert not os.path.exists(SITE + "/policyhook")
        lab.wait_for(lambda: _reloaded_since(cursor), 30, "libvirtd to reload after make uninstall")
        lab.start_daemon()
        cursor = lab.journal_cursor()
    finally:
        _make("install")
    assert os.access(lab.HOOK, os.X_OK)
    assert lab.run([lab.POLICYCTL, "--version"]).returncode == 0
    guest.record("after make install", lab.wait_for(lambda: _reloaded_since(cursor), 30,
                                                    "libvirtd to reload after make install")[-1])
