"""A plan in a domain XML's <cputune>: written into the XML at migrate and restore, and
into the persistent definition in persistent mode ([libvirt] persistent = yes).

Each element policyhook may write has a key: "vcpupin 0", "emulatorpin", "iothreadpin 1"
for pins (tunables.PINS), "vcpusched 0" for a vCPU's scheduling policy (one element per
vCPU, tunables.VCPUSCHED), the element's tag ("shares", "global_quota") for scheduler
parameters (mapping.CPUTUNE). In a persistent definition, the element a key had before
policyhook first wrote it is saved (originals.py) and given back when the policy no
longer sets that key, as tuned saves and restores original values. Elements policyhook
does not write (<iothreadsched>, <cachetune>, ...) are never touched, nor is a
definition's own <vcpusched> for several vCPUs ("0-3": its key is "vcpusched 0-3").
"""

import re
import xml.etree.ElementTree as ET

from .mapping import CPUTUNE
from .tunables import PIN, PIN_BY_KEY, VCPUSCHED

# Element order in <cputune> as libvirt's schema lists it.
_ORDER = ["shares", "global_period", "global_quota", "period", "quota", "emulator_period",
          "emulator_quota", "iothread_period", "iothread_quota", "vcpupin", "emulatorpin",
          "iothreadpin", "vcpusched", "iothreadsched", "cachetune", "memorytune"]


def left_out(plan):
    """The plan's scheduler parameters that <cputune> cannot hold for its driver (the
    libxl cap): the applier sets them once the domain runs."""
    tags = CPUTUNE.get(plan.driver, {})
    return {k: v for k, v in plan.sched.items() if k not in tags}


def plan_entries(plan):
    """{key: Element}: the <cputune> children that hold `plan`."""
    found = {}
    for (kind, index), cpus in plan.sorted_pins():
        row = PIN[kind]
        attrs = {row.attr: str(index)} if row.indexed else {}
        attrs["cpuset"] = str(cpus)
        found[pin_key(kind, index)] = ET.Element(row.element, attrs)
    names = CPUTUNE.get(plan.driver, {})
    for param, value in sorted(plan.sched.items()):
        if param in names:
            element = ET.Element(names[param])
            element.text = str(value)
            found[names[param]] = element
    for index, value in sorted(plan.vcpusched.items()):
        policy, priority = VCPUSCHED.split(value)
        attrs = {"vcpus": str(index), "scheduler": policy}
        if priority is not None:
            attrs["priority"] = str(priority)
        found["%s %d" % (VCPUSCHED.element, index)] = ET.Element(VCPUSCHED.element, attrs)
    return found


def pin_key(kind, index):
    row = PIN[kind]
    return "%s %d" % (row.element, index) if row.indexed else row.element


def key_of(element):
    """The key of a <cputune> child policyhook may write, or None."""
    if element.tag in PIN_BY_KEY:
        row = PIN_BY_KEY[element.tag]
        return "%s %s" % (row.element, element.get(row.attr)) if row.indexed else row.element
    if element.tag in _SCHED_TAGS:
        return element.tag
    if element.tag == VCPUSCHED.element:
        return "%s %s" % (element.tag, element.get("vcpus"))
    return None


def pin_of(key):
    """(kind, index) of a pin's key, or None for a scheduler parameter."""
    tag, _, index = key.partition(" ")
    if tag not in PIN_BY_KEY:
        return None
    row = PIN_BY_KEY[tag]
    return (row.kind, int(index) if row.indexed else 0)


_SCHED_TAGS = frozenset(tag for names in CPUTUNE.values() for tag in names.values())


def _ordered(elements):
    return sorted(elements, key=lambda e: _ORDER.index(e.tag) if e.tag in _ORDER else len(_ORDER))


def with_cputune(xml, plan):
    """`xml` with `plan`'s pins and parameters in <cputune>; '' when nothing changes."""
    entries = plan_entries(plan)
    if not entries:
        return ""
    root = ET.fromstring(xml)
    tune = root.find("cputune")
    if tune is None:
        tune = ET.SubElement(root, "cputune")
    kept = [e for e in tune if key_of(e) not in entries]
    tune[:] = _ordered(kept + list(entries.values()))
    return ET.tostring(root, encoding="unicode")


def rewrite(cputune, plan, saved):
    """The <cputune> text of a persistent definition that puts `plan` in force, and the
    originals kept since: `cputune` is the definition's element as text (None: it has
    none); `saved` is {key: original element text, or None where it had none}. A key
    the plan sets is saved first (once); a saved key the plan no longer sets gets its
    original back. Returns (text or None, saved)."""
    tune = ET.fromstring(cputune) if cputune else ET.Element("cputune")
    want = plan_entries(plan) if plan is not None else {}
    saved = dict(saved)
    current = {key_of(e): e for e in tune if key_of(e) is not None}
    for key in want:
        if key not in saved:
            saved[key] = ET.tostring(current[key], encoding="unicode").strip() if key in current else None
    children = [e for e in tune if key_of(e) is None or key_of(e) not in saved]
    # Only <cputune>'s own keys: the originals also hold <numatune>'s (numatune.py).
    for key in sorted(k for k in saved if k.partition(" ")[0] in _ORDER):
        if key in want:
            children.append(want[key])
        else:
            if saved[key] is not None:
                children.append(ET.fromstring(saved[key]))
            del saved[key]
    tune[:] = _ordered(children)
    if len(tune) == 0:
        return None, saved
    tune.text = tune.tail = None
    for child in tune:
        child.tail = None
    return ET.tostring(tune, encoding="unicode"), saved


_CPUTUNE = re.compile(r"[ \t]*<cputune\s*/>\n?|[ \t]*<cputune>.*?</cputune>\n?", re.S)


def find_cputune(xml):
    """The <cputune> element of domain XML as text, or None."""
    m = _CPUTUNE.search(xml)
    return m.group(0).strip() if m else None


def replace_cputune(xml, cputune):
    """Domain XML with its <cputune> replaced by `cputune` (None: removed); everything
    else byte for byte as libvirt wrote it. A new element goes last (libvirt reads the
    children of <domain> in any order)."""
    text = "" if cputune is None else "  %s\n" % cputune
    if _CPUTUNE.search(xml):
        return _CPUTUNE.sub(lambda _m: text, xml, count=1)
    end = xml.rindex("</domain>")
    return xml[:end] + text + xml[end:]
