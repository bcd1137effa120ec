"""Strict JSON reading: UTF-8 only, no duplicate keys, no NaN, bounded size and depth."""

import json

from .errors import invalid

MAX_BYTES = 1 << 20
MAX_DEPTH = 32  # a policy file needs 4; deeper input would only exercise recursion limits


def _no_duplicates(pairs):
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen = set()
        for key, _value in pairs:
            if key in seen:
                raise ValueError("duplicate key '%s'" % key)
            seen.add(key)
    return doc


def _no_constant(name):
    raise ValueError("%s is not allowed" % name)


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def parse(data):
    """Parse bytes into a JSON value, or raise INVALID saying why."""
    if len(data) > MAX_BYTES:
        raise invalid("larger than %d bytes" % MAX_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid("not valid UTF-8 (byte %d)" % e.start) from None
    try:
        # json.loads() would build a decoder per call; one serves all (a BOM still goes
        # to json.loads, for its own message).
        doc = _DECODER.decode(text) if not text.startswith("\ufeff") else \
            json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:
        raise invalid("nested too deeply") from None
    except ValueError as e:
        # json.JSONDecodeError is a ValueError and says line and column.
        raise invalid("not valid JSON: %s" % e) from None
    # No deeper than the number of brackets (a cheap bound: most files are not walked).
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth(doc) > MAX_DEPTH:
        # Bounded here so that nothing later (jsonschema, repr) recurses that deep.
        raise invalid("nested too deeply")
    return doc


def _depth(doc):
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def dumps(doc):
    return (json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode("utf-8")
