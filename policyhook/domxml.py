"""Facts about a domain, from its XML (the hook's stdin or XMLDesc)."""

from .cpuset import CpuSet
from .errors import PolicyError, invalid, quote
from .limits import MAX_IOTHREAD, MAX_THREADS
from .mapping import driver_of
from .tunables import PINS


class DomainFacts:
    __slots__ = ("name", "uuid", "driver", "indexes", "current", "pins", "scheduler", "threads",
                 "memory_nodes")

    def __init__(self, name, driver="qemu", vcpus=None, uuid=None, pins=None, scheduler=None,
                 iothreads=None, current=None, threads=1, memory_nodes=None):
        self.name = name
        self.driver = driver
        self.uuid = uuid
        # The threads of each indexed kind: vCPU numbers, IOThread IDs; a kind is
        # missing when the XML is not known (planned from the stored pins alone).
        self.indexes = {}
        if vcpus is not None:
            self.indexes["vcpu"] = tuple(range(vcpus))
        if iothreads is not None:
            self.indexes["iothread"] = tuple(sorted(iothreads))
        self.current = current          # vCPUs online at start (<vcpu current=...>), or None
        self.pins = dict(pins or {})    # (kind, index) -> CpuSet already in the XML's <cputune>
        self.scheduler = scheduler      # the host's Xen scheduler (libxl), None when unknown
        self.threads = threads          # the guest's threads per core (<cpu><topology threads=...>)
        self.memory_nodes = memory_nodes  # CpuSet of host nodes <numatune><memory nodeset=...>, or None

    @property
    def vcpus(self):
        """The maximum vCPU count, None when unknown."""
        known = self.indexes.get("vcpu")
        return None if known is None else len(known)


def _count(root, tag, lo):
    text = root.findtext(tag)
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise invalid("domain XML: <%s> %s is not a number" % (tag, quote(text))) from None
    # Bounded: the planner walks every thread, and the hook must never hang libvirtd.
    if not lo <= value <= MAX_THREADS:
        raise invalid("domain XML: <%s> %s is not in %d..%d" % (tag, quote(text), lo, MAX_THREADS))
    return value


def _iothread_ids(root):
    """IOThread IDs as libvirt numbers them: <iothreadids> as given, the rest of
    <iothreads> filled from 1 upwards with IDs not taken."""
    count = _count(root, "iothreads", 0) or 0
    ids = set()
    for node in root.findall("iothreadids/iothread"):
        try:
            value = int(node.get("id", ""))
        except ValueError:
            raise invalid("domain XML: <iothread id=%s> is not a number" % quote(node.get("id"))) from None
        if not 1 <= value <= MAX_IOTHREAD:
            raise invalid("domain XML: <iothread id='%d'> is not in 1..%d" % (value, MAX_IOTHREAD))
        ids.add(value)
    if len(ids) > MAX_THREADS:
        raise invalid("domain XML: more than %d <iothread> elements" % MAX_THREADS)
    candidate = 1
    while len(ids) < count:
        ids.add(candidate)
        candidate += 1
    return ids


def _cputune_pins(cputune):
    pins = {}
    try:
        for row in PINS:
            for node in cputune.findall(row.element):
                index = int(node.get(row.attr)) if row.indexed else 0
                pins[(row.kind, index)] = CpuSet.parse(node.get("cpuset", ""))
    except (TypeError, ValueError, PolicyError) as e:
        raise invalid("domain XML: bad <cputune>: %s" % e) from None
    return pins


class _Element:
    """The little of ElementTree's Element that the facts need: tag, get(), find(),
    findall() and findtext() of child paths ("a/b"), and the text before the first
    child. Built by expat, which ElementTree parses with: the hook parses every domain
    XML libvirtd hands it, and ElementTree's modules cost more to load than the parse."""

    __slots__ = ("tag", "attrib", "text", "children")

    def __init__(self, tag, attrib):
        self.tag = tag
        self.attrib = attrib
        self.text = []
        self.children = []

    def get(self, key, default=None):
        return self.attrib.get(key, default)

    def findall(self, path):
        found = [self]
        for tag in path.split("/"):
            found = [c for node in found for c in node.children if c.tag == tag]
        return found

    def find(self, path):
        found = self.findall(path)
        return found[0] if found else None

    def findtext(self, path):
        node = self.find(path)
        return None if node is None else "".join(node.text)


def _parse(text):
    """The root _Element of `text`, namespaces named as ElementTree names them
    ("{uri}tag"); expat's error for XML that does not parse."""
    from xml.parsers import expat

    parser = expat.ParserCreate(None, "}")
    stack = []
    roots = []

    def name(raw):
        return "{" + raw if "}" in raw else raw

    def start(tag, attrs):
        node = _Element(name(tag), {name(k): v for k, v in attrs.items()})
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    def data(chars):
        if stack and not stack[-1].children:    # ElementTree's text: before the first child
            stack[-1].text.append(chars)

    def default(text):
        # As ElementTree's parser: what expat leaves to the default handler is skipped,
        # but for an entity reference it cannot resolve, which is an error.
        if text[:1] == "&":
            err = expat.error("undefined entity %s: line %d, column %d"
                              % (text, parser.ErrorLineNumber, parser.ErrorColumnNumber))
            err.code = 11   # XML_ERROR_UNDEFINED_ENTITY
            raise err

    parser.DefaultHandlerExpand = default
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.buffer_text = True
    parser.Parse(text, True)
    return roots[0]


def parse_domain_xml(text):
    """DomainFacts from domain XML; INVALID when it is not domain XML."""
    from xml.parsers.expat import ExpatError

    try:
        root = _parse(text)
    except ExpatError as e:
        raise invalid("domain XML does not parse: %s" % e) from None
    if root.tag != "domain":
        raise invalid("expected <domain> XML, got <%s>" % root.tag)
    name = (root.findtext("name") or "").strip()
    uuid = (root.findtext("uuid") or "").strip() or None
    vcpus = _count(root, "vcpu", 1)
    current = None
    node = root.find("vcpu")
    if node is not None and node.get("current") is not None:
        try:
            current = int(node.get("current"))
        except ValueError:
            raise invalid("domain XML: <vcpu current=%s> is not a number"
                          % quote(node.get("current"))) from None
    cputune = root.find("cputune")
    pins = _cputune_pins(cputune) if cputune is not None else {}
    return DomainFacts(name, driver_of(root.get("type")) or "qemu", vcpus, uuid, pins,
                       iothreads=_iothread_ids(root), current=current, threads=_threads(root),
                       memory_nodes=_memory_nodes(root))


def _threads(root):
    """The guest's threads per core; 1 when its XML does not say (or says nonsense: the
    placement then pairs nothing)."""
    node = root.find("cpu/topology")
    text = node.get("threads") if node is not None else None
    try:
        value = int(text) if text is not None else 1
    except ValueError:
        return 1
    return value if 1 <= value <= MAX_THREADS else 1


def _memory_nodes(root):
    """The host nodes <numatune><memory nodeset=...> binds the guest's memory to, or None
    (no nodeset: libvirt places it, or the kernel does)."""
    node = root.find("numatune/memory")
    if node is None or not node.get("nodeset"):
        return None
    try:
        return CpuSet.parse(node.get("nodeset"))
    except PolicyError:
        return None
