"""The strict loader (model.py, used by the hook) and the JSON Schema (schema.py, used by
every write and by `check`) accept exactly the same documents; and schema.conforms(),
which spares policyctl's writes the import of jsonschema, never accepts what jsonschema
refuses, and accepts every document policyhook writes."""

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from unit_helpers import pinned

from policyhook import errors
from policyhook.cpuset import MAX_CPU, CpuSet
from policyhook.errors import PolicyError
from policyhook.limits import CAP_MAX, MAX_IOTHREAD, MAX_VCPU, WEIGHT_MAX, WEIGHT_MIN
from policyhook.model import HostPolicy, domain_from_doc, host_from_doc
from policyhook.names import MAX_NAME
from policyhook.schema import DOMAIN_SCHEMA, HOST_SCHEMA, conforms, problems

SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ---- building blocks ---------------------------------------------------------

GOOD_NAMES = ["vm1", "a", "web-01.example", "x" * MAX_NAME, "\u00e9" * (MAX_NAME // 2),
              "with space", "UPPER_lower", "a.json", "a..b", "-", "1", "\u2603", "\U0001f600"]
BAD_NAMES = ["", "a/b", "/", "../x", ".hidden", ".", "..", "a\x00b", "\x00", "a\nb", "a\tb",
             "a\x7fb", "\x1b[0m", "x" * (MAX_NAME + 1), "\u00e9" * (MAX_NAME // 2 + 1),
             "\ud800", "a\udfffb"]
GOOD_CPULISTS = ["0", "1", "0-1", "0-1,3-7,9", "8191", "0-%d" % MAX_CPU, "2,4,6"]
BAD_CPULISTS = ["", " ", "0-7,^2,9", "1,0", "0,1", "1-1", " 1", "1 ", "01", "8192", "^1", "1,",
                "-1", "a", "0-3,^2", "1" * 5000, "0-" + "9" * 5000, "1\n"]
GOOD_VCPU_KEYS = ["0", "1", "15", str(MAX_VCPU)]
GOOD_IOTHREAD_KEYS = ["1", "2", "100000", str(MAX_IOTHREAD)]
GOOD_CPU_KEYS = ["0", "1", "63", str(MAX_CPU)]
BAD_INDEX_KEYS = ["", "01", "00", "-1", "+1", "1\n", " 1", "1 ", "1.0", "1e3", "\uff11", "\u0661",
                  "\u00b2", "x", str(MAX_VCPU + 1), str(MAX_CPU + 1), "9" * 5000,
                  str(MAX_IOTHREAD + 1), "0"]
UUIDS = ["6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f", "6F1A5D7E-2A3B-4C5D-8E9F-0A1B2C3D4E5F"]
BAD_UUIDS = ["", "6f1a5d7e2a3b4c5d8e9f0a1b2c3d4e5f", "6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5g",
             "6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f ", "{6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5}",
             "6f1a5d7e-2a3b-4c5d-8e9f0-a1b2c3d4e5f", "6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5\u0661"]

names = st.sampled_from(GOOD_NAMES) | st.text(min_size=1, max_size=12)
any_name = names | st.sampled_from(BAD_NAMES)
cpu_sets = st.frozensets(st.integers(0, 70), min_size=1, max_size=10) \
    | st.frozensets(st.integers(0, MAX_CPU), min_size=1, max_size=4)
canonical_cpulists = cpu_sets.map(lambda s: str(CpuSet(s))) | st.sampled_from(GOOD_CPULISTS)
any_cpulist = canonical_cpulists | st.sampled_from(BAD_CPULISTS) \
    | st.text(alphabet="0123456789-^, ", max_size=8)

edge_ints = st.sampled_from([0, 1, -1, 2, 100, 255, 256, 400, 512, WEIGHT_MAX, WEIGHT_MAX + 1,
                             CAP_MAX, CAP_MAX + 1, 2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30, -10 ** 30])
# Every kind of JSON scalar, with the floats and bools that sit where integers go.
scalars = st.one_of(
    st.none(), st.booleans(), edge_ints, st.integers(),
    st.sampled_from([256.0, 1.0, 0.0, -0.0, 0.5, 1e308, -1e308, 50.0, 65535.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(GOOD_NAMES + BAD_NAMES + GOOD_CPULISTS + BAD_CPULISTS + UUIDS + BAD_UUIDS),
    st.text(max_size=10),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
vcpu_keys = st.integers(0, MAX_VCPU).map(str) | st.sampled_from(GOOD_VCPU_KEYS)
any_vcpu_key = vcpu_keys | st.sampled_from(BAD_INDEX_KEYS) | st.text(max_size=4)
iothread_keys = st.integers(1, MAX_IOTHREAD).map(str) | st.sampled_from(GOOD_IOTHREAD_KEYS)
any_iothread_key = iothread_keys | st.sampled_from(BAD_INDEX_KEYS) | st.text(max_size=4)
cpu_keys = st.integers(0, MAX_CPU).map(str) | st.sampled_from(GOOD_CPU_KEYS)
any_cpu_key = cpu_keys | st.sampled_from(BAD_INDEX_KEYS) | st.text(max_size=4)


@st.composite
def domain_policies(draw):
    vcpus = draw(st.dictionaries(st.integers(0, MAX_VCPU), cpu_sets.map(CpuSet), max_size=5))
    iothreads = draw(st.dictionaries(st.integers(1, MAX_IOTHREAD), cpu_sets.map(CpuSet), max_size=3))
    return pinned(
        draw(names.filter(lambda n: domain_name_ok(n))),
        vcpus,
        draw(st.none() | cpu_sets.map(CpuSet)),
        draw(st.none() | st.integers(WEIGHT_MIN, WEIGHT_MAX)),
        draw(st.none() | st.integers(0, CAP_MAX)),
        draw(st.none() | st.sampled_from(UUIDS)),
        iothreads,
    )


@st.composite
def host_policies(draw):
    occupancy = draw(st.dictionaries(st.integers(0, MAX_CPU),
                                     st.lists(names.filter(domain_name_ok), min_size=1, max_size=3,
                                              unique=True),
                                     max_size=5))
    return HostPolicy(occupancy)


def domain_name_ok(name):
    from policyhook.names import name_problem
    return name_problem(name) is None


def _value_for(key, kind):
    """A strategy for what may sit under `key`: right or wrong, mostly near the edge."""
    if kind == "domain":
        table = {
            "version": st.sampled_from([1, 1.0, 0, 2, True, "1", None, -1]),
            "domain": any_name | scalars,
            "uuid": st.sampled_from(UUIDS + BAD_UUIDS) | scalars,
            "vcpupin": st.dictionaries(any_vcpu_key, any_cpulist | scalars, max_size=4) | json_values,
            "emulatorpin": any_cpulist | scalars,
            "iothreadpin": st.dictionaries(any_iothread_key, any_cpulist | scalars, max_size=4) | json_values,
            "weight": st.integers(WEIGHT_MIN - 2, WEIGHT_MAX + 2) | scalars,
            "cap": st.integers(-2, CAP_MAX + 2) | scalars,
        }
    else:
        table = {
            "version": st.sampled_from([1, 1.0, 0, 2, True, "1", None, -1]),
            "cpuoccupy": st.dictionaries(
                any_cpu_key,
                st.lists(any_name, max_size=3) | st.lists(names, min_size=2, max_size=3).map(
                    lambda xs: xs + xs[:1]) | json_values,
                max_size=4) | json_values,
        }
    return table.get(key, json_values)


@st.composite
def mutated(draw, kind):
    """A valid document with one to three things changed: a value, a missing key, an extra key."""
    base = draw(domain_policies() if kind == "domain" else host_policies()).to_doc()
    keys = ["version", "domain", "uuid", "vcpupin", "emulatorpin", "iothreadpin", "weight", "cap"] \
        if kind == "domain" else ["version", "cpuoccupy"]
    doc = dict(base)
    for _ in range(draw(st.integers(1, 2))):
        action = draw(st.sampled_from(["set"] * 4 + ["inner"] * 4 + ["drop", "extra"]))
        if action == "set":
            key = draw(st.sampled_from(keys))
            doc[key] = draw(_value_for(key, kind))
        elif action == "drop" and doc:
            doc.pop(draw(st.sampled_from(sorted(doc))))
        elif action == "extra":
            doc[draw(st.sampled_from(["extra", "Domain", "vcpu_pin", "", "01", "comment"])
                     | st.text(max_size=6))] = draw(json_values)
        elif action == "inner":
            inner_key = draw(st.sampled_from(["vcpupin", "iothreadpin"])) if kind == "domain" else "cpuoccupy"
            inner = dict(doc.get(inner_key) or {}) if isinstance(doc.get(inner_key), dict) else {}
            if kind == "domain":
                inner[draw(any_vcpu_key | any_iothread_key)] = draw(any_cpulist | scalars)
            else:
                inner[draw(any_cpu_key)] = draw(st.lists(any_name, max_size=3) | json_values)
            doc[inner_key] = inner
    return doc


def documents(kind):
    valid = (domain_policies() if kind == "domain" else host_policies()).map(lambda p: p.to_doc())
    if kind == "domain":
        required = {"version": st.just(1), "domain": names}
        optional = {k: _value_for(k, kind)
                    for k in ("uuid", "vcpupin", "emulatorpin", "iothreadpin", "weight", "cap")}
    else:
        required = {"version": st.just(1)}
        optional = {"cpuoccupy": _value_for("cpuoccupy", kind)}
    # Every key present with a random value of the right or the wrong kind.
    random_fields = st.fixed_dictionaries(required, optional=optional)
    random_objects = st.dictionaries(
        st.sampled_from(["version", "domain", "uuid", "vcpupin", "emulatorpin", "iothreadpin", "weight",
                         "cap", "cpuoccupy", "extra"]), json_values, max_size=6)
    return st.one_of(valid, mutated(kind), mutated(kind), mutated(kind), random_fields, random_fields,
                     random_objects, json_values)


# ---- the comparison ------------------------------------------------------------------


def loader_verdict(loader, doc):
    """(accepted, message). Anything but an INVALID PolicyError is a bug in the loader."""
    try:
        loader(doc)
    except PolicyError as e:
        assert e.code == errors.INVALID, e
        assert "\n" not in str(e)
        assert str(e).startswith("$"), str(e)
        return False, str(e)
    return True, None


def assert_agree(doc, loader, schema):
    accepted, why = loader_verdict(loader, doc)
    found = problems(doc, schema)
    verdict = conforms(doc, schema)
    assert verdict in (None, not found), (
        "conforms() says %s, jsonschema %s on %s" % (verdict, found or "valid", _short(doc)))
    assert accepted == (not found), (
        "loader %s, schema %s on %s\n  loader: %s\n  schema: %s"
        % ("accepts" if accepted else "refuses", "accepts" if not found else "refuses",
           _short(doc), why, found))
    if accepted:
        # What the loader builds is stored back as a valid document that loads to the same value.
        policy = loader(doc)
        again = policy.to_doc()
        assert problems(again, schema) == []
        assert conforms(again, schema) is True   # a write needs no jsonschema
        assert loader(again) == policy
        assert json.loads(json.dumps(again)) == again


def _short(doc):
    text = repr(doc)
    return text if len(text) < 300 else text[:300] + "..."


@SETTINGS
@given(documents("domain"))
@example({"version": 1, "domain": "vm", "weight": 256.0})
@example({"version": 1, "domain": "vm", "weight": True})
@example({"version": 1, "domain": "vm", "cap": 10 ** 30})
@example({"version": True, "domain": "vm"})
@example({"version": 1.0, "domain": "vm"})
@example({"version": 1, "domain": "vm", "vcpupin": {"01": "0"}})
@example({"version": 1, "domain": "vm", "vcpupin": {"1\n": "0"}})
@example({"version": 1, "domain": "vm", "vcpupin": {"-1": "0"}})
@example({"version": 1, "domain": "vm", "vcpupin": {"9" * 5000: "0"}})
@example({"version": 1, "domain": "vm", "vcpupin": {"0": "1" * 5000}})
@example({"version": 1, "domain": "vm", "emulatorpin": "0-" + "9" * 5000})
@example({"version": 1, "domain": "vm", "emulatorpin": "0,1"})
@example({"version": 1, "domain": "a/b"})
@example({"version": 1, "domain": ".hidden"})
@example({"version": 1, "domain": "a\x00b"})
@example({"version": 1, "domain": "\ud800"})
@example({"version": 1, "domain": "x" * (MAX_NAME + 1)})
@example({"version": 1, "domain": "vm", "uuid": None})
@example({"version": 1, "domain": "vm", "vcpupin": {}})
@example({"version": 1, "domain": "vm", "unknown": 1})
@example({"domain": "vm"})
@example([])
@example(None)
def test_domain_loader_agrees_with_schema(doc):
    assert_agree(doc, domain_from_doc, DOMAIN_SCHEMA)


@SETTINGS
@given(documents("host"))
@example({"version": 1, "cpuoccupy": {"1": ["vm", "vm"]}})
@example({"version": 1, "cpuoccupy": {"1": []}})
@example({"version": 1, "cpuoccupy": {"1": "vm"}})
@example({"version": 1, "cpuoccupy": {"01": ["vm"]}})
@example({"version": 1, "cpuoccupy": {str(MAX_CPU + 1): ["vm"]}})
@example({"version": 1, "cpuoccupy": {"9" * 5000: ["vm"]}})
@example({"version": 1, "cpuoccupy": {"1": ["a/b"]}})
@example({"version": 1, "cpuoccupy": {"1": [1]}})
@example({"version": 1, "cpuoccupy": None})
@example({"version": 1, "cpuoccupy": {}})
@example({"version": 1.0})
@example({"version": 1, "domain": "vm"})
@example({})
def test_host_loader_agrees_with_schema(doc):
    assert_agree(doc, host_from_doc, HOST_SCHEMA)


# ---- a few exact messages, both ways ---------------------------------------------

DOMAIN_CASES = [
    ({"version": 1, "domain": "vm", "weight": 256.0},
     "$.weight: 256.0 is not an integer",
     ["$.weight: 256.0 is not of type 'integer'"]),
    ({"version": 1, "domain": "vm", "weight": True},
     "$.weight: True is not an integer",
     ["$.weight: True is not of type 'integer'"]),
    ({"version": 1, "domain": "vm", "weight": 0},
     "$.weight: 0 is not in 1..65535",
     ["$.weight: 0 is less than the minimum of 1"]),
    ({"version": 1, "domain": "vm", "cap": CAP_MAX + 1},
     "$.cap: %d is not in 0..%d" % (CAP_MAX + 1, CAP_MAX),
     ["$.cap: %d is greater than the maximum of %d" % (CAP_MAX + 1, CAP_MAX)]),
    ({"version": 1, "domain": "vm", "vcpupin": {"01": "0"}},
     "$.vcpupin: '01' is not a vCPU number (leading zero)",
     ["$.vcpupin: '01' is not a vCPU number"]),
    ({"version": 1, "domain": "vm", "vcpupin": {"0": "0,1"}},
     "$.vcpupin.0: '0,1' is not in canonical form (write '0-1')",
     ["$.vcpupin.0: '0,1' is not a cpulist in canonical form"]),
    ({"version": 1, "domain": "a/b"},
     "$.domain: 'a/b' is not a valid domain name: '/' is not allowed",
     ["$.domain: 'a/b' is not a valid domain name"]),
    ({"version": 2, "domain": "vm"},
     "$.version: 2 is not a supported version (this policyhook reads 1)",
     ["$.version: 1 was expected"]),
    ({"version": 1, "domain": "vm", "colour": "red"},
     "$: unknown key 'colour'",
     ["$: Additional properties are not allowed ('colour' was unexpected)"]),
    ({"version": 1},
     "$: 'domain' is required",
     ["$: 'domain' is a required property"]),
]


@pytest.mark.parametrize("doc,loader_message,schema_problems", DOMAIN_CASES,
                         ids=[c[1] for c in DOMAIN_CASES])
def test_domain_messages(doc, loader_message, schema_problems):
    with pytest.raises(PolicyError) as info:
        domain_from_doc(doc)
    assert str(info.value) == loader_message
    assert problems(doc, DOMAIN_SCHEMA) == schema_problems


HOST_CASES = [
    ({"version": 1, "cpuoccupy": {"1": ["vm", "vm"]}},
     "$.cpuoccupy.1: 'vm' is listed twice",
     ["$.cpuoccupy.1: ['vm', 'vm'] has non-unique elements"]),
    ({"version": 1, "cpuoccupy": {"1": []}},
     "$.cpuoccupy.1: [] is not a non-empty list of domain names",
     ["$.cpuoccupy.1: [] should be non-empty"]),
    ({"version": 1, "cpuoccupy": {"8192": ["vm"]}},
     "$.cpuoccupy: '8192' is not a CPU number (above 8191)",
     ["$.cpuoccupy: '8192' is not a CPU number"]),
    ({"version": 1, "cpuoccupy": {"1": [".x"]}},
     "$.cpuoccupy.1[0]: '.x' is not a valid domain name: it cannot start with '.'",
     ["$.cpuoccupy.1[0]: '.x' is not a valid domain name"]),
]


@pytest.mark.parametrize("doc,loader_message,schema_problems", HOST_CASES,
                         ids=[c[1] for c in HOST_CASES])
def test_host_messages(doc, loader_message, schema_problems):
    with pytest.raises(PolicyError) as info:
        host_from_doc(doc)
    assert str(info.value) == loader_message
    assert problems(doc, HOST_SCHEMA) == schema_problems


def test_schema_reports_every_problem_sorted():
    doc = {"version": 1, "domain": "vm", "weight": 0, "cap": -1, "emulatorpin": "1,0", "x": 1}
    assert problems(doc, DOMAIN_SCHEMA) == [
        "$.cap: -1 is less than the minimum of 0",
        "$.emulatorpin: '1,0' is not a cpulist in canonical form",
        "$.weight: 0 is less than the minimum of 1",
        "$: Additional properties are not allowed ('x' was unexpected)",
    ]


# ---- conforms() knows what it does not know -------------------------------------------

UNKNOWN_CASES = [
    ({"type": "object", "patternProperties": {"^a": {}}}, {"a": 1}),
    ({"type": "number"}, 1),
    ({"const": 1.0}, 1),
    ({"const": 1}, 1.0),
    ({"format": "email"}, "a@b"),
    ({"items": [{"type": "string"}]}, ["a"]),
    ({"uniqueItems": True}, [1, True]),
    ({"additionalProperties": False, "patternProperties": {"x": {}}}, {"x": 1}),
    ({"oneOf": [{"type": "string"}]}, "a"),
]


@pytest.mark.parametrize("schema,doc", UNKNOWN_CASES, ids=[repr(c[0]) for c in UNKNOWN_CASES])
def test_conforms_leaves_to_jsonschema_what_it_does_not_know(schema, doc):
    assert conforms(doc, schema) is None


CONFORMS_CASES = [
    ({"version": 1, "domain": "vm", "vcpupin": {"0": "0-1"}, "weight": 512}, DOMAIN_SCHEMA, True),
    ({"version": 1, "domain": "vm", "weight": 0}, DOMAIN_SCHEMA, False),
    ({"version": 1, "domain": "vm", "weight": True}, DOMAIN_SCHEMA, False),
    ({"version": True, "domain": "vm"}, DOMAIN_SCHEMA, False),
    ({"version": 1, "domain": "vm", "x": 1}, DOMAIN_SCHEMA, False),
    ({"version": 1, "domain": "x" * (MAX_NAME + 1)}, DOMAIN_SCHEMA, False),
    ({"version": 1, "cpuoccupy": {"1": ["a", "b"]}}, HOST_SCHEMA, True),
    ({"version": 1, "cpuoccupy": {"1": ["a", "a"]}}, HOST_SCHEMA, False),
    ({"version": 1, "cpuoccupy": {"1": []}}, HOST_SCHEMA, False),
    ({"version": 1, "cpuoccupy": {"01": ["a"]}}, HOST_SCHEMA, False),
]


@pytest.mark.parametrize("doc,schema,verdict", CONFORMS_CASES, ids=[repr(c[0])[:60] for c in CONFORMS_CASES])
def test_conforms_fixed_cases(doc, schema, verdict):
    assert conforms(doc, schema) is verdict
    assert (problems(doc, schema) == []) is verdict
