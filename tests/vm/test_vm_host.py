"""The guest is the host the issue promised (systemd, cgroup v2, libvirt 11, the
distribution's Python stack, hyperthread siblings and NUMA nodes), with policyhook laid
out by its package. `make install` there (under /usr/local, reloading libvirtd through
systemd) is in test_vm_package.py."""

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

