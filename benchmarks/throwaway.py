"""A throwaway QEMU/TCG domain for the benchmarks that run on the real daemon."""

import os
import subprocess
import sys

XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory}</memory>
<vcpu placement='static'>{vcpus}</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><controller type='usb' model='none'/>
<memballoon model='none'/></devices></domain>"""

POLICYCTL = os.path.join(os.path.dirname(sys.executable), "policyctl")


def connect():
    """A connection to qemu:///system; libvirt's own printing of errors is off (they
    still raise)."""
    import libvirt

    libvirt.registerErrorHandler(lambda c, e: None, None)
    return libvirt.open("qemu:///system")


def define_fresh(conn, name, vcpus, memory_mib=64):
    """Define `name` anew, after removing one a crashed run may have left."""
    import libvirt

    try:
        old = conn.lookupByName(name)
        if old.isActive():
            old.destroy()
        old.undefine()
    except libvirt.libvirtError:
        pass
    return conn.defineXML(XML.format(name=name, vcpus=vcpus, memory=memory_mib))


def remove(dom, name):
    """Destroy and undefine the domain and drop its policy."""
    if dom.isActive():
        dom.destroy()
    dom.undefine()
    subprocess.run([POLICYCTL, "remove", name], capture_output=True)
