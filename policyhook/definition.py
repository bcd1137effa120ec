"""Persistent mode: the policy written into a domain's persistent definition, so that
libvirt puts it in force before the guest's first instruction, hook or no hook.

The definition is read and redefined through libvirt with no lock held; the originals
(originals.py) are read and written under the registry lock, and saved before the
definition changes; when nothing is left to give back, the definition is given back
first and the originals dropped after, so a crash at any point leaves a definition
whose every value policyhook wrote has its original on record.
"""

from . import numatune, originals
from .cputune import find_cputune, replace_cputune, rewrite
from .errors import LIBVIRT, PolicyError
from .results import Writes


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


def _keep(snap, name, uuid, current, plan, numa=None, node=None):
    """put()'s first transaction: the <cputune> for `plan` and the <numatune> for `node`
    (`current` and `numa`: the definition's elements), and the originals record with
    every value to keep until the definition is defined (saved when that adds any)."""
    found = snap.originals(name, uuid)
    if found is None:
        record = originals.Originals(name, uuid)
    else:
        record = originals.Originals(found.domain, found.uuid, found.saved)
    tune, saved = rewrite(current, plan, record.saved)
    memory, saved = numatune.rewrite(numa, node, saved)
    keeping = dict(record.saved, **saved)    # the given-back ones until defined
    record.uuid = uuid or record.uuid
    writes = []
    if keeping != record.saved:
        record.saved = keeping
        writes = [record]
    return Writes(originals=writes, result=(record, tune, memory, saved, keeping))


def _drop(snap, name, uuid, record, saved):
    """put()'s last transaction: the originals without those given back (none left:
    the file goes)."""
    found = snap.originals(name, uuid)
    kept = originals.Originals(found.domain, found.uuid, found.saved) if found else record
    kept.saved = dict(saved)
    return Writes(originals=[kept])


def put(registry, virt, conn, dom, name, uuid, plan, attempts=3, node=None):
    """Make the persistent definition of `dom` hold `plan` (None: give everything back),
    and with `node` its memory bound to that NUMA node ([occupancy] memory = follow;
    None: the definition's own <numatune>). `registry` records the originals
    (Registry.transact); returns True when the definition changed.

    An original is kept on record until the definition that no longer needs it is
    defined: saved first (with those being given back still in it), then the
    definition, then the record without them. The definition is read again right
    before it is defined, so that a change made meanwhile (virsh edit) is not lost."""
    for _ in range(attempts):
        xml = virt.definition_xml(dom)
        current = find_cputune(xml)
        numa = numatune.find(xml)
        record, tune, memory, saved, keeping = registry.transact(
            lambda snap, current=current, numa=numa: _keep(snap, name, uuid, current, plan, numa, node))
        moved = numatune.canon(memory) != numatune.canon(numa)
        changed = tune != _canon(current) or moved
        if changed:
            if virt.definition_xml(dom) != xml:
                continue                        # changed under us: plan it again
            new = replace_cputune(xml, tune)
            virt.define(conn, name, numatune.replace(new, memory) if moved else new)
        if saved != keeping:
            registry.transact(lambda snap, record=record, saved=saved: _drop(snap, name, uuid, record, saved))
        return changed
    raise PolicyError("%s: its definition kept changing while policyhook wrote into it; run "
                      "'policyctl apply --config %s' again" % (name, name), LIBVIRT)
