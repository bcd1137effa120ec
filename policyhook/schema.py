"""JSON Schemas of the policy files: the authority for every write and for `check`.

jsonschema is imported only when conforms() cannot accept a document by itself (see
below): policyctl's edits do not pay for it.

Formats that a regular expression cannot say exactly (canonical cpulists, safe
domain names, index keys without leading zeros) are custom formats checked by the
same functions the strict loader in model.py uses. Integers are strict (no 1.0,
no true), as Python's json module reads them.
"""

from .cpuset import is_canonical
from .errors import printable
from .limits import MAX_CPU, SCHEMA_VERSION, index_problem
from .names import MAX_NAME, name_problem
from .tunables import PIN, PINS, SCHED, VCPUSCHED

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
        + [(row.key, {"type": "integer", "minimum": row.lo, "maximum": row.hi}) for row in SCHED]
        + [(VCPUSCHED.key, {"type": "object", "propertyNames": {"format": "vcpu-index"},
                            "additionalProperties": {"type": "string", "format": "vcpusched"}})]),
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


def _uuid_ok(value):
    from .model import _is_uuid
    return _is_uuid(value)


# The custom formats: name -> True when the value conforms. A format checker sees every
# type; non-strings are the "type" keyword's job.
FORMATS = {
    "cpulist": lambda v: not isinstance(v, str) or is_canonical(v),
    "domain-name": lambda v: not isinstance(v, str) or name_problem(v) is None,
    "cpu-index": lambda v: index_problem(v, MAX_CPU) is None,
    "libvirt-uuid": lambda v: not isinstance(v, str) or _uuid_ok(v),
    # "fifo:10", "rr:1", "other" (tunables.VCPUSCHED)
    "vcpusched": lambda v: not isinstance(v, str) or VCPUSCHED.problem(v) is None,
}
FORMATS.update((row.kind + "-index", lambda v, row=row: index_problem(v, row.max_index, row.first) is None)
               for row in PINS if row.indexed)


def _validator_class():
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft7Validator

    def strict_int(_checker, value):
        return isinstance(value, int) and not isinstance(value, bool)

    types = base.TYPE_CHECKER.redefine("integer", strict_int)
    cls = validators.extend(base, type_checker=types)
    formats = jsonschema.FormatChecker(formats=())
    for name, check in FORMATS.items():
        formats.checks(name)(check)
    return cls, formats


# ---- conforms(): these schemas' keywords without importing jsonschema -----------------
#
# jsonschema costs policyctl about a third of its start-up (benchmarks/cli_latency.py),
# and a write is a document policyctl built itself. conforms() reads the schema above
# and evaluates the Draft 7 keywords it uses, as jsonschema with _validator_class()
# does; it answers None for anything else (a keyword, a value it does not know), and
# every caller then asks jsonschema, which also words every refusal. So jsonschema stays
# the judge of every document this refuses or cannot tell; tests/test_schema_agreement.py
# holds conforms() to jsonschema's answer on random documents.

_TYPES = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
          "string": lambda v: isinstance(v, str),
          "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)}
_ANNOTATIONS = ("$schema", "$id", "title", "description")


class _Unknown(Exception):
    """conforms() cannot tell: jsonschema decides."""


def conforms(doc, schema):
    """True when `doc` is valid under `schema`, False when not, None when only
    jsonschema can tell."""
    try:
        return _conforms(doc, schema)
    except _Unknown:
        return None


def _conforms(value, schema):
    for key, want in schema.items():
        if key in _ANNOTATIONS:
            continue
        if not _KEYWORDS.get(key, _unknown)(value, want, schema):
            return False
    return True


def _unknown(_value, _want, _schema):
    raise _Unknown()


def _type(value, want, _schema):
    if want not in _TYPES:
        raise _Unknown()
    return _TYPES[want](value)


def _const(value, want, _schema):
    if isinstance(want, (dict, list, float)) or isinstance(value, float):
        raise _Unknown()   # jsonschema's equality of containers and floats: not needed here
    return type(value) is type(want) and value == want


def _number(compare):
    def check(value, want, _schema):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        return compare(value, want)
    return check


def _length(compare):
    def check(value, want, _schema):
        return not isinstance(value, str) or compare(len(value), want)
    return check


def _size(compare):
    def check(value, want, _schema):
        return not isinstance(value, list) or compare(len(value), want)
    return check


def _format(value, want, _schema):
    if want not in FORMATS:
        raise _Unknown()
    return FORMATS[want](value)


def _required(value, want, _schema):
    return not isinstance(value, dict) or all(k in value for k in want)


def _properties(value, want, _schema):
    return not isinstance(value, dict) or all(_conforms(value[k], sub) for k, sub in want.items()
                                              if k in value)


def _additional(value, want, schema):
    if not isinstance(value, dict):
        return True
    extra = [k for k in value if k not in schema.get("properties", {})]
    if "patternProperties" in schema:
        raise _Unknown()
    if want is False:
        return not extra
    if want is True:
        return True
    return all(_conforms(value[k], want) for k in extra)


def _property_names(value, want, _schema):
    return not isinstance(value, dict) or all(_conforms(k, want) for k in value)


def _items(value, want, _schema):
    if not isinstance(value, list):
        return True
    if not isinstance(want, dict):
        raise _Unknown()
    return all(_conforms(v, want) for v in value)


def _unique(value, want, _schema):
    if not isinstance(value, list) or not want:
        return True
    if not all(isinstance(v, str) for v in value):
        raise _Unknown()   # jsonschema's equality (1 and true, 1 and 1.0): not needed here
    return len(set(value)) == len(value)


_KEYWORDS = {
    "type": _type, "const": _const, "format": _format, "required": _required,
    "properties": _properties, "additionalProperties": _additional,
    "propertyNames": _property_names, "items": _items, "uniqueItems": _unique,
    "minimum": _number(lambda v, w: v >= w), "maximum": _number(lambda v, w: v <= w),
    "minLength": _length(lambda n, w: n >= w), "maxLength": _length(lambda n, w: n <= w),
    "minItems": _size(lambda n, w: n >= w),
}


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
                "libvirt-uuid": "is not a UUID",
                "vcpusched": "is not a vCPU scheduler (fifo:1..99, rr:1..99 or other)",
                }.get(error.validator_value)
        kind = error.validator_value[:-len("-index")]
        if what is None and kind in PIN:
            label = PIN[kind].label
            what = "is not %s %s number" % ("an" if label[0] in "aeiouAEIO" else "a", label)
        what = what or "is not valid"
        return "%r %s" % (error.instance, what)
    if error.validator == "minItems" and error.validator_value == 1:
        return "%r should be non-empty" % (error.instance,)   # the same in every release
    return error.message
