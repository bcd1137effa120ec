"""What the Xen tier reads in the lab's Xen dom0 (scripts/vm-lab.sh --xen): small PV
domains defined through libvirt's libxl driver, and what Xen itself says of them, from
its own tool, xl. Every output read is recorded, and the tier's summary lists them."""

import re

import lab

URI = "xen:///system"
HOOK = "/etc/libvirt/hooks/libxl.d/policyhook"
PREFIX = "phxen-"
READINGS = []

# A PV domain on dom0's own kernel and initrd. It only needs to exist and have vCPUs:
# break=top stops in the initrd's shell before it looks for a root disk, so it needs no
# disk and no network. Its console is Xen's (hvc0), served by xenconsoled.
DOMAIN_XML = """<domain type='xen'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>/vmlinuz</kernel>
    <initrd>/initrd.img</initrd>
    <cmdline>console=hvc0 break=top quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <console type='pty'><target type='xen' port='0'/></console>
  </devices>
</domain>
"""


def record(what, value):
    READINGS.append((what, value))
    return value


def virsh(*args, check=True, timeout=120):
    return lab.virsh(*args, check=check, timeout=timeout, uri=URI)


def policyctl(*args, check=False, timeout=60):
    return lab.policyctl("-c", URI, *args, check=check, timeout=timeout)


def xl(*args, check=True):
    return lab.run(["xl"] + list(args), check=check, timeout=60).stdout


def define(name, vcpus=2):
    path = "/tmp/%s.xml" % name
    with open(path, "w") as f:
        f.write(DOMAIN_XML.format(name=name, vcpus=vcpus))
    virsh("define", path)


def undefine(name):
    virsh("destroy", name, check=False)
    virsh("undefine", name, check=False)


def free_dom0():
    """Every CPU back to dom0's vCPUs, through libvirt so that its record agrees."""
    for vcpu in sorted(vcpu_list("Domain-0")):
        virsh("vcpupin", "Domain-0", str(vcpu), "0-7", "--live")


def domid(name):
    """Xen's id of the running domain: a new one each time Xen builds it."""
    return int(xl("domid", name).strip())


def scheduler():
    """The scheduler Xen runs (xl info's xen_scheduler)."""
    return re.search(r"^xen_scheduler\s*:\s*(\S+)", xl("info"), re.M).group(1)


def vcpu_list(name):
    """{vCPU: hard affinity} from `xl vcpu-list NAME`, as Xen has it."""
    out = xl("vcpu-list", name)
    found = {}
    for line in out.splitlines()[1:]:
        # Name ID VCPU CPU State Time(s) Affinity (Hard / Soft)
        m = re.match(r"^(\S+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(\S+)\s*/\s*(\S+)\s*$", line)
        if m and m.group(1) == name:
            found[int(m.group(3))] = m.group(4)
    return found


def pool_domains(pool):
    """Names of the domains in cpupool `pool` (`xl list -c`: a Cpupool column)."""
    names = []
    for line in xl("list", "-c").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 7 and fields[-1] == pool:
            names.append(fields[0])
    return names


def sched_params(name, sched="credit"):
    """(weight, cap) from `xl sched-credit -d NAME` (or sched-credit2), as Xen has them."""
    out = xl("sched-%s" % sched, "-d", name)
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise lab.LabError("xl sched-%s -d %s: no line for the domain:\n%s" % (sched, name, out))


def settled(read, expected, timeout=60):
    """lab.settled, reading twice a second: every xl command takes a while in this dom0."""
    return lab.settled(read, expected, timeout, interval=0.5)


def logged(cursor, *wanted, timeout=120):
    """The first line of policyhook's journal (syslog identifier policyhook) after
    `cursor` starting with each of `wanted`, in that order, once they are all there."""
    def found():
        lines = lab.journal("-t", "policyhook", "--after-cursor", cursor).splitlines()
        picked, at = [], 0
        for w in wanted:
            hit = next((i for i in range(at, len(lines)) if lines[i].startswith(w)), None)
            if hit is None:
                return None
            picked.append(lines[hit])
            at = hit + 1
        return picked
    # Each journalctl takes a while in this dom0: look once a second, not 20 times.
    what = "%s in journalctl -t policyhook" % " ... ".join(wanted)
    try:
        return lab.wait_for(found, timeout, what, interval=1)
    except lab.LabError as e:
        since = lab.journal("-t", "policyhook", "--after-cursor", cursor)
        raise lab.LabError("%s:\n%s" % (e, since)) from None
