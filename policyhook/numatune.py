"""[occupancy] memory = follow: a domain whose vCPUs are all pinned within one NUMA node
gets its memory bound there, in <numatune>: written into the persistent definition in
persistent mode (the definition's own element saved first in its originals under the
key "numatune", given back when the binding goes, as cputune.py does for <cputune>),
into the XML at migrate and restore, and live where libvirt allows it (session.py).

Pure, standard library only (the hook writes it at migrate and restore).
"""

import re
import xml.etree.ElementTree as ET

from .cpuset import CpuSet

KEY = "numatune"       # its key among a domain's originals (originals.py)


def memory_node(topo, plan, facts):
    """The NUMA node every vCPU of the domain is pinned within by `plan`, or None: a vCPU
    without a pin, pins across nodes, or a domain whose vCPU count is not known."""
    if facts.vcpus is None or plan is None:
        return None
    pins = plan.pins_of("vcpu")
    if not pins or any(v not in pins for v in range(facts.vcpus)):
        return None
    cpus = CpuSet(c for p in pins.values() for c in p)
    nodes = {topo.cpus[c].node if c in topo.cpus else None for c in cpus}
    return nodes.pop() if len(nodes) == 1 and None not in nodes else None


def element(node):
    """The <numatune> that binds a domain's memory to `node`, as text."""
    return "<numatune><memory mode=\"strict\" nodeset=\"%d\" /></numatune>" % node


def canon(text):
    """<numatune> text as element() writes it, whitespace aside, to compare (None: none)."""
    if text is None:
        return None
    tune = ET.fromstring(text)
    for e in tune.iter():
        e.text = e.text.strip() or None if e.text else None
        e.tail = None
    return ET.tostring(tune, encoding="unicode")


def rewrite(current, node, saved):
    """The <numatune> text a persistent definition should hold, and the originals kept
    since: `current` is the definition's element as text (None: none); `node` the node
    to bind to (None: the binding goes, and the saved original comes back); `saved` the
    domain's originals {key: text or None}. Returns (text or None, saved)."""
    saved = dict(saved)
    if node is not None:
        if KEY not in saved:
            saved[KEY] = current.strip() if current else None
        return element(node), saved
    if KEY in saved:
        return saved.pop(KEY), saved
    return current, saved


_NUMATUNE = re.compile(r"[ \t]*<numatune\s*/>\n?|[ \t]*<numatune>.*?</numatune>\n?", re.S)


def find(xml):
    """The <numatune> element of domain XML as text, or None."""
    m = _NUMATUNE.search(xml)
    return m.group(0).strip() if m else None


def replace(xml, numatune):
    """Domain XML with its <numatune> replaced by `numatune` (None: removed); everything
    else byte for byte."""
    text = "" if numatune is None else "  %s\n" % numatune
    if _NUMATUNE.search(xml):
        return _NUMATUNE.sub(lambda _m: text, xml, count=1)
    if numatune is None:
        return xml
    end = xml.rindex("</domain>")
    return xml[:end] + text + xml[end:]


def with_numatune(xml, node):
    """`xml` with its memory bound to `node` (migrate, restore)."""
    return replace(xml, element(node))
