"""Runtime state under /run/policyhook/state: what the hook planned and the applier did.

One small JSON file per running domain, written atomically; gone at `release`.
Standard library only: the hook uses it.
"""

import json
import os
import time

from . import safeio
from .errors import PolicyError


def read(paths, name):
    try:
        data = safeio.read_file(paths.state_file(name), 1 << 20)
    except PolicyError:
        return None
    if data is None:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def update(paths, name, **fields):
    """Merge `fields` into the domain's state file (created if missing)."""
    doc = read(paths, name) or {"domain": name}
    doc.update(fields)
    doc["updated"] = time.time()
    safeio.ensure_dir(paths.run)
    safeio.ensure_dir(paths.state)
    # Runtime state: gone with the boot, so a rename is all it needs (no fsync).
    safeio.write_atomic(paths.state_file(name),
                        (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8"), durable=False)
    return doc


def drop(paths, name):
    try:
        os.unlink(paths.state_file(name))
        return True
    except FileNotFoundError:
        return False


def names(paths):
    try:
        entries = os.listdir(paths.state)
    except OSError:
        return []
    return sorted(e[:-5] for e in entries if e.endswith(".json") and not e.startswith("."))


def rename(paths, old, new):
    """Move a domain's runtime state to its new name, if it has one."""
    try:
        os.replace(paths.state_file(old), paths.state_file(new))
        return True
    except FileNotFoundError:
        return False
