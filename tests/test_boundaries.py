"""Both ends of every numeric key, and one step beyond each: weight, cap (0 is no cap; at
most 100 per host CPU where policyctl knows the host), vCPU and IOThread indexes, CPU
numbers. Through policyctl's parser (argv, --offline), through the Python API (integers,
as scripts pass them), and in policy files (the strict loader the hook uses, and the
JSON Schema `policyctl check` uses). A good value is saved as given; a bad one gives its
exit code and its exact line, and leaves every file as it was.

The host's CPUs are read from sysfs by the test (tests/oracle.py), not by the code
under test."""

import io
import json

import oracle
import pytest
from unit_helpers import make_registry, policy, snapshot

from policyhook import errors
from policyhook.api import PolicyManager
from policyhook.cli import main
from policyhook.errors import PolicyError
from policyhook.model import domain_from_doc, host_from_doc
from policyhook.paths import Paths
from policyhook.schema import DOMAIN_SCHEMA, HOST_SCHEMA, problems

HOST_CPUS = oracle.host_cpus()
HOST = oracle.cpulist_text(HOST_CPUS)
LAST = HOST_CPUS[-1]
NCPUS = len(HOST_CPUS)
CAP_HOST = 100 * NCPUS          # the cap's maximum on this host
CAP_ANY = 100 * (oracle.MAX_CPU + 1)   # in a file, on any host
OFFLINE = "saved; not applied live (--offline)"


@pytest.fixture
def root(tmp_path):
    make_registry(tmp_path, [policy("vm1", {0: "0"}, weight=300)])
    return str(tmp_path)


def run(root, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(["--root", root, "--offline"] + list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def stored(root):
    with open(Paths(root).domain_file("vm1")) as f:
        return json.load(f)


# ---- policyctl ---------------------------------------------------------------------------

GOOD = [
    # (argv, the line printed, the key saved and its value)
    (["schedweight", "vm1", "1"], "vm1: weight 1", ("weight", 1)),
    (["schedweight", "vm1", "256"], "vm1: weight 256", ("weight", 256)),
    (["schedweight", "vm1", "65535"], "vm1: weight 65535", ("weight", 65535)),
    (["schedcap", "vm1", "0"], "vm1: cap 0 (no cap)", ("cap", 0)),
    (["schedcap", "vm1", "1"], "vm1: cap 1% of one CPU", ("cap", 1)),
    (["schedcap", "vm1", str(CAP_HOST)], "vm1: cap %d%% of one CPU" % CAP_HOST, ("cap", CAP_HOST)),
    (["vcpupin", "vm1", "1", "0"], "vm1: vCPU 1 pinned to 0", ("vcpupin", {"0": "0", "1": "0"})),
    (["vcpupin", "vm1", "16383", str(LAST)], "vm1: vCPU 16383 pinned to %d" % LAST,
     ("vcpupin", {"0": "0", "16383": str(LAST)})),
    (["vcpupin", "vm1", "0", "0-%d" % LAST], "vm1: vCPU 0 pinned to %s" % HOST, ("vcpupin", {"0": HOST})),
    (["iothreadpin", "vm1", "1", "0"], "vm1: IOThread 1 pinned to 0", ("iothreadpin", {"1": "0"})),
    (["iothreadpin", "vm1", "4294967295", "0"], "vm1: IOThread 4294967295 pinned to 0",
     ("iothreadpin", {"4294967295": "0"})),
]


@pytest.mark.parametrize("argv,said,saved", GOOD, ids=[" ".join(g[0]) for g in GOOD])
def test_good_values_at_the_bounds(root, argv, said, saved):
    assert run(root, *argv) == (0, "%s: %s\n" % (said, OFFLINE), "")
    key, value = saved
    assert stored(root)[key] == value


def test_a_cpu_at_the_top_of_the_host_can_be_occupied(root):
    assert run(root, "cpuoccupy", str(LAST), "vm1") == (
        0, "CPU %d occupied by vm1: %s\n" % (LAST, OFFLINE), "")
    with open(Paths(root).host_file) as f:
        assert json.load(f)["cpuoccupy"] == {str(LAST): ["vm1"]}


ABOVE = "invalid cpulist '8192': CPU 8192 is above the maximum 8191"
BAD = [
    # (argv, exit code, the line after "Error: ")
    (["schedweight", "vm1", "0"], errors.INVALID, "invalid weight 0: must be 1..65535"),
    (["schedweight", "vm1", "65536"], errors.INVALID, "invalid weight 65536: must be 1..65535"),
    (["schedcap", "vm1", "-1"], errors.INVALID, "invalid cap '-1': not a whole number"),
    (["schedcap", "vm1", str(CAP_HOST + 1)], errors.INVALID,
     "invalid cap %d: above %d (100 x %d host CPUs)" % (CAP_HOST + 1, CAP_HOST, NCPUS)),
    (["schedcap", "vm1", str(CAP_ANY + 1)], errors.INVALID,
     "invalid cap %d: must be 0..%d" % (CAP_ANY + 1, CAP_ANY)),
    (["vcpupin", "vm1", "-1", "0"], errors.INVALID, "invalid vCPU '-1': not a whole number"),
    (["vcpupin", "vm1", "16384", "0"], errors.INVALID, "invalid vCPU 16384: must be 0..16383"),
    (["unset", "vm1", "vcpupin", "16384"], errors.INVALID, "invalid vCPU 16384: must be 0..16383"),
    (["iothreadpin", "vm1", "0", "0"], errors.INVALID, "invalid IOThread ID 0: must be 1..4294967295"),
    (["iothreadpin", "vm1", "4294967296", "0"], errors.INVALID,
     "invalid IOThread ID 4294967296: must be 1..4294967295"),
    (["unset", "vm1", "iothreadpin", "0"], errors.INVALID, "invalid IOThread ID 0: must be 1..4294967295"),
    (["vcpupin", "vm1", "0", str(LAST + 1)], errors.INVALID,
     "invalid cpulist '%d': CPU %d not on this host (host CPUs: %s)" % (LAST + 1, LAST + 1, HOST)),
    (["vcpupin", "vm1", "0", "8191"], errors.INVALID,
     "invalid cpulist '8191': CPU 8191 not on this host (host CPUs: %s)" % HOST),
    (["vcpupin", "vm1", "0", "8192"], errors.INVALID, ABOVE),
    (["emulatorpin", "vm1", "8192"], errors.INVALID, ABOVE),
    (["cpuoccupy", "8191", "vm1"], errors.INVALID,
     "invalid cpulist '8191': CPU 8191 not on this host (host CPUs: %s)" % HOST),
    (["cpuoccupy", "8192", "vm1"], errors.INVALID, ABOVE),
]
if 8191 in HOST_CPUS:       # a host with 8192 CPUs: 8191 is one of them
    BAD = [b for b in BAD if "'8191'" not in b[2]]


@pytest.mark.parametrize("argv,code,message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_beyond_the_bounds(root, argv, code, message):
    before = snapshot(root)
    assert run(root, *argv) == (code, "", "Error: %s\n" % message)
    assert snapshot(root) == before


# ---- the Python API: integers, as a script passes them ----------------------------------

API = [
    # (call, the error's line, or None when it is saved)
    (lambda pm: pm.set_sched("vm1", "weight", 0), "invalid weight 0: must be 1..65535"),
    (lambda pm: pm.set_sched("vm1", "weight", 1), None),
    (lambda pm: pm.set_sched("vm1", "weight", 65535), None),
    (lambda pm: pm.set_sched("vm1", "weight", 65536), "invalid weight 65536: must be 1..65535"),
    (lambda pm: pm.set_sched("vm1", "cap", -1), "invalid cap -1: must be 0..%d" % CAP_ANY),
    (lambda pm: pm.set_sched("vm1", "cap", 0), None),
    (lambda pm: pm.set_sched("vm1", "cap", CAP_HOST), None),
    (lambda pm: pm.set_sched("vm1", "cap", CAP_HOST + 1),
     "invalid cap %d: above %d (100 x %d host CPUs)" % (CAP_HOST + 1, CAP_HOST, NCPUS)),
    (lambda pm: pm.set_pin("vm1", "vcpu", -1, "0"), "invalid vCPU -1: must be 0..16383"),
    (lambda pm: pm.set_pin("vm1", "vcpu", 16383, "0"), None),
    (lambda pm: pm.set_pin("vm1", "vcpu", 16384, "0"), "invalid vCPU 16384: must be 0..16383"),
    (lambda pm: pm.set_pin("vm1", "iothread", 0, "0"), "invalid IOThread ID 0: must be 1..4294967295"),
    (lambda pm: pm.set_pin("vm1", "iothread", 4294967295, "0"), None),
    (lambda pm: pm.set_pin("vm1", "iothread", 4294967296, "0"),
     "invalid IOThread ID 4294967296: must be 1..4294967295"),
]
API_IDS = ["weight 0", "weight 1", "weight 65535", "weight 65536", "cap -1", "cap 0", "cap host max",
           "cap host max + 1", "vcpu -1", "vcpu 16383", "vcpu 16384", "iothread 0", "iothread max",
           "iothread max + 1"]


@pytest.mark.parametrize("call,message", API, ids=API_IDS)
def test_the_api_holds_the_same_bounds(root, call, message):
    pm = PolicyManager(Paths(root), offline=True)
    before = snapshot(root)
    if message is None:
        call(pm)
        assert snapshot(root) != before
        return
    with pytest.raises(PolicyError) as info:
        call(pm)
    assert (info.value.code, str(info.value)) == (errors.INVALID, message)
    assert snapshot(root) == before


# ---- policy files: the hook's strict loader and the schema ----------------------------------

FILES = [
    # (keys of a domain policy, the loader's message, the schema's problems); None: valid
    ({"weight": 0}, "$.weight: 0 is not in 1..65535", "$.weight: 0 is less than the minimum of 1"),
    ({"weight": 1}, None, None),
    ({"weight": 256}, None, None),
    ({"weight": 65535}, None, None),
    ({"weight": 65536}, "$.weight: 65536 is not in 1..65535",
     "$.weight: 65536 is greater than the maximum of 65535"),
    ({"cap": -1}, "$.cap: -1 is not in 0..%d" % CAP_ANY, "$.cap: -1 is less than the minimum of 0"),
    ({"cap": 0}, None, None),
    ({"cap": 1}, None, None),
    ({"cap": CAP_ANY}, None, None),
    ({"cap": CAP_ANY + 1}, "$.cap: %d is not in 0..%d" % (CAP_ANY + 1, CAP_ANY),
     "$.cap: %d is greater than the maximum of %d" % (CAP_ANY + 1, CAP_ANY)),
    ({"vcpupin": {"0": "0"}}, None, None),
    ({"vcpupin": {"16383": "0"}}, None, None),
    ({"vcpupin": {"16384": "0"}}, "$.vcpupin: '16384' is not a vCPU number (above 16383)",
     "$.vcpupin: '16384' is not a vCPU number"),
    ({"iothreadpin": {"0": "0"}}, "$.iothreadpin: '0' is not an IOThread number (below 1)",
     "$.iothreadpin: '0' is not an IOThread number"),
    ({"iothreadpin": {"1": "0"}}, None, None),
    ({"iothreadpin": {"4294967295": "0"}}, None, None),
    ({"iothreadpin": {"4294967296": "0"}},
     "$.iothreadpin: '4294967296' is not an IOThread number (above 4294967295)",
     "$.iothreadpin: '4294967296' is not an IOThread number"),
    ({"vcpupin": {"0": "8191"}}, None, None),
    ({"vcpupin": {"0": "8192"}}, "$.vcpupin.0: invalid cpulist '8192': CPU 8192 is above the maximum 8191",
     "$.vcpupin.0: '8192' is not a cpulist in canonical form"),
    ({"emulatorpin": "0-8191"}, None, None),
    ({"emulatorpin": "0-8192"}, "$.emulatorpin: invalid cpulist '0-8192': CPU 8192 is above the maximum 8191",
     "$.emulatorpin: '0-8192' is not a cpulist in canonical form"),
]


@pytest.mark.parametrize("keys,loader,schema", FILES, ids=[json.dumps(f[0]) for f in FILES])
def test_policy_files_at_the_bounds(keys, loader, schema):
    doc = dict({"version": 1, "domain": "vm1"}, **keys)
    assert problems(doc, DOMAIN_SCHEMA) == ([] if schema is None else [schema])
    if loader is None:
        assert domain_from_doc(doc).to_doc() == doc
        return
    with pytest.raises(PolicyError) as info:
        domain_from_doc(doc)
    assert str(info.value) == loader


@pytest.mark.parametrize("cpu,loader,schema", [
    ("0", None, None),
    ("8191", None, None),
    ("8192", "$.cpuoccupy: '8192' is not a CPU number (above 8191)",
     "$.cpuoccupy: '8192' is not a CPU number"),
    ("-1", "$.cpuoccupy: '-1' is not a CPU number (not a whole number)",
     "$.cpuoccupy: '-1' is not a CPU number"),
])
def test_host_files_at_the_bounds(cpu, loader, schema):
    doc = {"version": 1, "cpuoccupy": {cpu: ["vm1"]}}
    assert problems(doc, HOST_SCHEMA) == ([] if schema is None else [schema])
    if loader is None:
        assert host_from_doc(doc).to_doc() == doc
        return
    with pytest.raises(PolicyError) as info:
        host_from_doc(doc)
    assert str(info.value) == loader


def test_the_tables_cover_every_numeric_key():
    # A new numeric key in the table needs its rows here.
    from policyhook.tunables import PINS, SCHED

    keys = {r.key for r in SCHED} | {r.key for r in PINS}
    covered = {k for keys_, _l, _s in FILES for k in keys_}
    assert keys <= covered, keys - covered
