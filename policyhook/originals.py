"""What a domain's persistent definition had before policyhook first wrote into it
(persistent mode): /var/lib/policyhook/originals/DOMAIN.json, one per domain, written
before the definition is changed (tuned's saved originals), dropped when everything is
given back. Standard library only: the hook reads it, to plan from the domain's own
<cputune> rather than from what policyhook wrote there.

    {"domain": "vm1", "uuid": "...", "saved": {"vcpupin 0": "<vcpupin vcpu='0' cpuset='2'/>",
                                              "shares": null}}
"""

import json

from . import safeio
from .errors import PolicyError

MAX_BYTES = 1 << 20


class Originals:
    __slots__ = ("domain", "uuid", "saved")

    def __init__(self, domain, uuid=None, saved=None):
        self.domain = domain
        self.uuid = uuid
        self.saved = dict(saved or {})   # key (cputune.py) -> element text, or None

    def to_doc(self):
        return {"domain": self.domain, "uuid": self.uuid, "saved": dict(sorted(self.saved.items()))}


def load(paths, name, uuid=None):
    """The originals of `name`, or None; None too when they were saved for another
    domain of the same name (another UUID): what it had is not this one's."""
    data = safeio.read_file(paths.originals_file(name), MAX_BYTES)
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        found = Originals(doc["domain"], doc.get("uuid"), doc["saved"])
        if not isinstance(found.saved, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in found.saved.items()):
            raise ValueError("saved is not a map of element texts")
    except (ValueError, KeyError, TypeError) as e:
        raise PolicyError("%s: not an originals file: %s" % (paths.originals_file(name), e), 4) from None
    if uuid and found.uuid and uuid.lower() != found.uuid.lower():
        return None
    return found


def save(paths, originals):
    """Write (or, when nothing is saved any more, remove) a domain's originals."""
    path = paths.originals_file(originals.domain)
    if not originals.saved:
        return safeio.remove(path)
    safeio.ensure_dir(paths.originals)
    safeio.write_atomic(path, (json.dumps(originals.to_doc(), indent=2) + "\n").encode("utf-8"))
    return True


def remember(snap, name, uuid, cputune, plan):
    """A transient domain (Xen's dom0, `virsh create`) has no definition but its live one,
    which live pins change: before policyhook first writes a value there, what the domain
    had (`cputune`, its live <cputune> as text) is saved, so that its own pins stay known
    (own_pins) and come back when a policy or an occupancy set goes. A value already
    saved is kept: the first one is the domain's. Pure, for Registry.transact(): `snap`
    its Snapshot; returns the registry.Writes."""
    from .cputune import rewrite
    from .results import Writes

    found = snap.originals(name, uuid)
    record = Originals(name, uuid, found.saved if found else None)
    if found is not None:
        record.uuid = found.uuid
    _tune, saved = rewrite(cputune, plan, record.saved)
    added = {k: v for k, v in saved.items() if k not in record.saved}
    if not added:
        return Writes()
    record.saved.update(added)
    record.uuid = uuid or record.uuid
    return Writes(originals=[record])


def own_pins(facts, originals):
    """`facts` (from a definition policyhook wrote into) with the domain's own pins: each
    pin policyhook wrote replaced by the one it had before, or by none."""
    if originals is None:
        return facts
    import xml.etree.ElementTree as ET

    from .cpuset import CpuSet
    from .cputune import pin_of

    for key, text in originals.saved.items():
        pin = pin_of(key)
        if pin is None:
            continue
        facts.pins.pop(pin, None)
        if text is not None:
            facts.pins[pin] = CpuSet.parse(ET.fromstring(text).get("cpuset", ""))
    return facts
