"""JSON Schemas of the policy files: the authority for every write and for `check`.

Formats that a regular expression cannot say exactly (canonical cpulists, safe
domain names, index keys without leading zeros) are custom formats checked by the
same functions the strict loader in model.py uses. Integers are strict (no 1.0,
no true), as Python's json module reads them.
"""

from .cpuset import is_canonical
from .errors import printable
from .limits import MAX_CPU, SCHEMA_VERSION, index_problem
from .names import MAX_NAME, name_problem
from .tunables import PIN, PINS, SCHED

# Draft 7: every keyword used here exists there, and jsonschema >= 3.0 (RHEL 9 ships
# 3.2) implements it; Draft 2020-12 needs jsonschema >= 4.0.
_DRAFT = "http://json-schema.org/draft-07/schema#"

_NAME = {"type": "string", "format": "domain-name", "minLength": 1, "maxLength": MAX_NAME}
_CPULIST = {"type": "string", "format": "cpulist", "minLength": 1}

def _pin_schema(row):
    if not row.indexed:
        return _CPULIST
    return {"type": "object", "propertyNames": {"format": row.kind + "-index"},
            "additionalProperties": _CPULIST}


DOMAIN_SCHEMA = {
    "$schema": _DRAFT,
    "$id": "https://policyhook.example/schema/domain-1.json",
    "title": "policyhook domain policy",
    "type": "object",
    "required": ["version", "domain"],
    "additionalProperties": False,
    "properties": dict(
        [("version", {"type": "integer", "const": SCHEMA_VERSION}),
         ("domain", _NAME),
         ("uuid", {"type": "string", "format": "libvirt-uuid"})]
        + [(row.key, _pin_schema(row)) for row in PINS]
        + [(row.key, {"type": "integer", "minimum": row.lo, "maximum": row.hi}) for row in SCHED]),
}

HOST_SCHEMA = {
    "$schema": _DRAFT,
    "$id": "https://policyhook.example/schema/host-1.json",
    "title": "policyhook host policy",
    "type": "object",
    "required": ["version"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "integer", "const": SCHEMA_VERSION},
        "cpuoccupy": {
            "type": "object",
            "propertyNames": {"format": "cpu-index"},
            "additionalProperties": {
                "type": "array", "minItems": 1, "uniqueItems": True, "items": _NAME,
            },
        },
    },
}


def _validator_class():
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft7Validator

    def strict_int(_checker, value):
        return isinstance(value, int) and not isinstance(value, bool)

    types = base.TYPE_CHECKER.redefine("integer", strict_int)
    cls = validators.extend(base, type_checker=types)
    formats = jsonschema.FormatChecker(formats=())
    # A format checker sees every type; non-strings are the "type" keyword's job.
    formats.checks("cpulist")(lambda v: not isinstance(v, str) or is_canonical(v))
    formats.checks("domain-name")(lambda v: not isinstance(v, str) or name_problem(v) is None)
    for row in PINS:
        if row.indexed:
            formats.checks(row.kind + "-index")(
                lambda v, row=row: index_problem(v, row.max_index, row.first) is None)
    formats.checks("cpu-index")(lambda v: index_problem(v, MAX_CPU) is None)
    formats.checks("libvirt-uuid")(lambda v: not isinstance(v, str) or _uuid_ok(v))
    return cls, formats


def _uuid_ok(value):
    from .model import _is_uuid
    return _is_uuid(value)


_cache = {}


def validator(schema):
    key = id(schema)
    if key not in _cache:
        cls, formats = _validator_class()
        _cache[key] = cls(schema, format_checker=formats)
    return _cache[key]


def problems(doc, schema):
    """Every problem in `doc`, one line each: '$.path: message', sorted by path."""
    found = []
    for error in validator(schema).iter_errors(doc):
        found.append("%s: %s" % (_path(error.absolute_path), _message(error)))
    return sorted(found)


def _path(parts):
    # The strict loader's form ($.vcpupin.0, $.cpuoccupy.1[0]), not jsonschema's
    # json_path, whose quoting of keys differs between jsonschema releases.
    # A key's control characters are escaped, as repr() would: each problem stays one line.
    return "$" + "".join("[%d]" % p if isinstance(p, int) else "." + printable(p) for p in parts)


def _message(error):
    if error.validator == "format":
        what = {"cpulist": "is not a cpulist in canonical form",
                "domain-name": "is not a valid domain name",
                "cpu-index": "is not a CPU number",
                "libvirt-uuid": "is not a UUID"}.get(error.validator_value)
        kind = error.validator_value[:-len("-index")]
        if what is None and kind in PIN:
            label = PIN[kind].label
            what = "is not %s %s number" % ("an" if label[0] in "aeiouAEIO" else "a", label)
        what = what or "is not valid"
        return "%r %s" % (error.instance, what)
    if error.validator == "minItems" and error.validator_value == 1:
        return "%r should be non-empty" % (error.instance,)   # the same in every release
    return error.message
