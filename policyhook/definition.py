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
from .errors import LIBVIRT, PolicyError


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


def put(paths, lock, virt, conn, dom, name, uuid, plan, attempts=3):
    """Make the persistent definition of `dom` hold `plan` (None: give everything back).
    `lock()` is the registry lock; returns True when the definition changed.

    An original is kept on record until the definition that no longer needs it is
    defined: saved first (with those being given back still in it), then the
    definition, then the record without them. The definition is read again right
    before it is defined, so that a change made meanwhile (virsh edit) is not lost."""
    for _ in range(attempts):
        xml = virt.definition_xml(dom)
        current = find_cputune(xml)
        with lock():
            record = originals.load(paths, name, uuid) or originals.Originals(name, uuid)
            tune, saved = rewrite(current, plan, record.saved)
            keeping = dict(record.saved, **saved)    # the given-back ones until defined
            record.uuid = uuid or record.uuid
            if keeping != record.saved:
                record.saved = keeping
                originals.save(paths, record)
        changed = tune != _canon(current)
        if changed:
            if virt.definition_xml(dom) != xml:
                continue                        # changed under us: plan it again
            virt.define(conn, name, replace_cputune(xml, tune))
        if saved != keeping:
            with lock():
                record = originals.load(paths, name, uuid) or record
                record.saved = saved
                originals.save(paths, record)   # nothing left: removes the file
        return changed
    raise PolicyError("%s: its definition kept changing while policyhook wrote into it; run "
                      "'policyctl apply --config %s' again" % (name, name), LIBVIRT)
