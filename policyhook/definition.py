"""Persistent mode: the policy written into a domain's persistent definition, so that
libvirt puts it in force before the guest's first instruction, hook or no hook.

The definition is read and redefined through libvirt with no lock held; the originals
(originals.py) are read and written under the registry lock, and saved before the
definition changes; when nothing is left to give back, the definition is given back
first and the originals dropped after, so a crash at any point leaves a definition
whose every value policyhook wrote has its original on record.
"""

from . import originals
from .cputune import find_cputune, replace_cputune, rewrite


def _canon(text):
    """<cputune> text as rewrite() writes it, to compare with what the definition has."""
    if text is None:
        return None
    import xml.etree.ElementTree as ET

    tune = ET.fromstring(text)
    tune.text = tune.tail = None
    for child in tune:
        child.tail = None
    return ET.tostring(tune, encoding="unicode") if len(tune) else None


def put(paths, lock, virt, conn, dom, name, uuid, plan):
    """Make the persistent definition of `dom` hold `plan` (None: give everything back).
    `lock()` is the registry lock; returns True when the definition changed."""
    xml = virt.definition_xml(dom)
    current = find_cputune(xml)
    with lock():
        record = originals.load(paths, name, uuid) or originals.Originals(name, uuid)
        tune, saved = rewrite(current, plan, record.saved)
        changed = tune != _canon(current)
        dropping = not saved and record.saved
        record.saved = saved
        record.uuid = uuid or record.uuid
        if saved:
            originals.save(paths, record)
    if changed:
        virt.define(conn, name, replace_cputune(xml, tune))
    if dropping:
        with lock():
            originals.save(paths, record)   # nothing saved: removes the file
    return changed
