"""Facts about a domain, from its XML (the hook's stdin or XMLDesc)."""

from .cpuset import CpuSet
from .errors import PolicyError, invalid, quote
from .limits import MAX_VCPU
from .mapping import driver_of


class DomainFacts:
    __slots__ = ("name", "uuid", "driver", "vcpus", "vcpupin", "emulatorpin", "scheduler")

    def __init__(self, name, driver="qemu", vcpus=None, uuid=None, vcpupin=None, emulatorpin=None,
                 scheduler=None):
        self.name = name
        self.driver = driver
        self.vcpus = vcpus              # maximum vCPU count, None when unknown
        self.uuid = uuid
        self.vcpupin = dict(vcpupin or {})  # pins already in the XML's <cputune>
        self.emulatorpin = emulatorpin
        self.scheduler = scheduler      # the host's Xen scheduler (libxl), None when unknown


def parse_domain_xml(text):
    """DomainFacts from domain XML; INVALID when it is not domain XML."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise invalid("domain XML does not parse: %s" % e) from None
    if root.tag != "domain":
        raise invalid("expected <domain> XML, got <%s>" % root.tag)
    name = (root.findtext("name") or "").strip()
    uuid = (root.findtext("uuid") or "").strip() or None
    vcpus = None
    vcpu_text = root.findtext("vcpu")
    if vcpu_text is not None:
        try:
            vcpus = int(vcpu_text.strip())
        except ValueError:
            raise invalid("domain XML: <vcpu> %s is not a number" % quote(vcpu_text)) from None
        # Bounded: the planner walks every vCPU, and the hook must never hang libvirtd.
        if not 1 <= vcpus <= MAX_VCPU + 1:
            raise invalid("domain XML: <vcpu> %s is not in 1..%d" % (quote(vcpu_text), MAX_VCPU + 1))
    pins = {}
    emulator = None
    cputune = root.find("cputune")
    if cputune is not None:
        try:
            for pin in cputune.findall("vcpupin"):
                pins[int(pin.get("vcpu"))] = CpuSet.parse(pin.get("cpuset", ""))
            node = cputune.find("emulatorpin")
            if node is not None:
                emulator = CpuSet.parse(node.get("cpuset", ""))
        except (TypeError, ValueError, PolicyError) as e:
            raise invalid("domain XML: bad <cputune>: %s" % e) from None
    return DomainFacts(name, driver_of(root.get("type")) or "qemu", vcpus, uuid, pins, emulator)
