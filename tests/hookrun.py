"""Run hooks/qemu (or hooks/lxc, hooks/libxl) the way libvirtd does: argv, XML on stdin,
a cut-down environment."""

import json
import os
import subprocess
import sys

from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.results import Writes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK = os.path.join(REPO, "hooks", "qemu")
HOOKS = {driver: os.path.join(REPO, "hooks", driver) for driver in ("qemu", "lxc", "libxl")}

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <uuid>6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
"""


# What libvirt's LXC and libxl drivers hand their hooks: a container running /bin/sh, and
# an HVM Xen guest.
LXC_XML = """<domain type='lxc'>
  <name>{name}</name>
  <uuid>6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e60</uuid>
  <memory unit='KiB'>65536</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os><type arch='x86_64'>exe</type><init>/bin/sh</init></os>
  <devices><emulator>/usr/lib/libvirt/libvirt_lxc</emulator><console type='pty'/></devices>
</domain>
"""
XEN_XML = """<domain type='xen'>
  <name>{name}</name>
  <uuid>6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e61</uuid>
  <memory unit='KiB'>262144</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='xenfv'>hvm</type><loader>/usr/lib/xen/boot/hvmloader</loader></os>
  <devices><emulator>/usr/lib/xen/bin/qemu-system-i386</emulator></devices>
</domain>
"""
XML = {"qemu": DOMAIN_XML, "lxc": LXC_XML, "libxl": XEN_XML}


def domain_xml(name="vm1", vcpus=2, driver="qemu"):
    return XML[driver].format(name=name, vcpus=vcpus)


def run_hook(root, name, op, sub, xml=None, timeout=20, hook=HOOK):
    """CompletedProcess of one hook call. libvirtd passes only LC_ALL, PATH and HOME;
    POLICYHOOK_ROOT points the hook at a test registry, PYTHONPATH at this tree."""
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "HOME": "/root",
           "POLICYHOOK_ROOT": str(root), "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, hook, name, op, sub, "-"],
                          input=(xml if xml is not None else domain_xml(name)).encode(),
                          capture_output=True, env=env,
                          timeout=timeout, cwd="/")


def save(root, policy=None, host=None):
    """Store a domain policy and/or the host policy in the test registry under `root`."""
    Registry(Paths(str(root))).transact(
        lambda _snap: Writes(domains=[policy] if policy is not None else [], host=host))


def state(root, name):
    """The runtime state the hook and applier recorded for `name`, or None."""
    path = Paths(str(root)).state_file(name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def log_text(root):
    path = Paths(str(root)).log
    return open(path).read() if os.path.exists(path) else ""


def unsupported(plan_doc):
    """A recorded plan's unsupported settings, in the words the log uses."""
    from policyhook.describe import unsupported_lines
    from policyhook.planner import Lost

    return unsupported_lines([Lost.from_doc(u) for u in plan_doc["unsupported"]])


def notes(plan_doc):
    from policyhook.describe import note_lines
    from policyhook.planner import Plan

    return note_lines(Plan.from_doc(plan_doc))
