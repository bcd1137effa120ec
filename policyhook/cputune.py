"""Write a plan into a domain XML's <cputune> (migrate and restore hooks)."""

import xml.etree.ElementTree as ET

from .mapping import CPUTUNE
from .tunables import PIN

# Element order in <cputune> as libvirt's schema lists it.
_ORDER = ["shares", "global_period", "global_quota", "period", "quota", "emulator_period",
          "emulator_quota", "iothread_period", "iothread_quota", "vcpupin", "emulatorpin",
          "iothreadpin", "vcpusched", "iothreadsched", "cachetune", "memorytune"]


def left_out(plan):
    """The plan's scheduler parameters that <cputune> cannot hold for its driver (the
    libxl cap): the applier sets them once the domain runs."""
    tags = CPUTUNE.get(plan.driver, {})
    return {k: v for k, v in plan.sched.items() if k not in tags}


def with_cputune(xml, plan):
    """`xml` with `plan`'s pins and parameters in <cputune>; '' when nothing changes."""
    if not plan.pins and len(left_out(plan)) == len(plan.sched):
        return ""
    root = ET.fromstring(xml)
    tune = root.find("cputune")
    if tune is None:
        tune = ET.SubElement(root, "cputune")
    for (kind, index), cpus in plan.sorted_pins():
        row = PIN[kind]
        for old in tune.findall(row.element):
            if not row.indexed or old.get(row.attr) == str(index):
                tune.remove(old)
        attrs = {row.attr: str(index)} if row.indexed else {}
        attrs["cpuset"] = str(cpus)
        ET.SubElement(tune, row.element, attrs)
    names = CPUTUNE.get(plan.driver, {})
    for key, value in sorted(plan.sched.items()):
        tag = names.get(key)
        if tag is None:
            continue
        node = tune.find(tag)
        if node is None:
            node = ET.SubElement(tune, tag)
        node.text = str(value)
    tune[:] = sorted(tune, key=lambda e: _ORDER.index(e.tag) if e.tag in _ORDER else len(_ORDER))
    return ET.tostring(root, encoding="unicode")
