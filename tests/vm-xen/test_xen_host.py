"""The guest is a Xen host as weight and cap know it: Xen 4.20 with dom0, libvirt's libxl driver
answering on xen:///system, and policyhook's libxl hook installed by its package.
dom0 runs on 2 of Xen's 8 physical CPUs, so dom0's own CPU list is not the host's."""

import os
import re

import lab
import xen

from policyhook.hostinfo import host_cpus, online_cpus


def test_xen_runs_with_dom0_and_libvirts_libxl_driver(installed):
    info = xen.xl("info")
    fields = dict((k, v.strip()) for k, v in re.findall(r"^(\w+)[ \t]*:(.*)$", info, re.M))
    xen.record("xl info", ", ".join("%s %s" % (k, fields[k]) for k in (
        "xen_version", "xen_scheduler", "nr_cpus", "nr_nodes", "cores_per_socket",
        "threads_per_core", "total_memory")))
    assert fields["xen_version"].startswith("4.20")
    assert fields["nr_cpus"] == "8" and fields["nr_nodes"] == "2"
    assert "sched=" in fields["xen_commandline"]
    assert sorted(xen.vcpu_list("Domain-0")) == [0, 1]
    out = xen.virsh("version", "--daemon").stdout
    xen.record("virsh -c xen:///system version --daemon", " / ".join(out.strip().split("\n")))
    assert re.search(r"Running hypervisor: Xen 4\.20", out), out
    assert re.search(r"Running against daemon: 11\.", out), out
    assert lab.run(["systemctl", "is-active", "libvirtd.service", "xen.service"]).stdout.split() == \
        ["active", "active"]
    with open(xen.HOOK) as f:
        assert f.readline().strip() == "#!/usr/bin/python3 -I"
    assert os.stat(xen.HOOK).st_mode & 0o777 == 0o755


def test_the_hook_plans_on_xens_physical_cpus_not_dom0s(installed):
    """dom0's /sys/devices/system/cpu lists its 2 vCPUs; pins name Xen's 8 physical CPUs,
    which dom0's kernel lists in /sys/devices/system/xen_cpu."""
    assert str(online_cpus()) == "0-1"
    assert str(host_cpus("libxl")) == "0-7"
    assert str(host_cpus("qemu")) == "0-1"
    caps = xen.virsh("capabilities").stdout
    assert len(re.findall(r"<cpu id=", caps)) == 8
