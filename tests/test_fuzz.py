"""Bad input and security: fuzzed policy files, hook argv and stdin XML, policyctl argv,
domain names; unsafe files refused by the hook running as root.

Never a traceback, the hook's exit code always what the settings say, every error one
line, and no file written when policyctl refuses. Each fuzz test has a quick version
(bounded examples, the normal suite) and a heavy one marked stress (`make stress`).
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import oracle
import pytest
from hookrun import REPO, domain_xml, run_hook
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from unit_helpers import make_registry, policy, snapshot_policy_files, write_raw

from policyhook import errors, hook, registry
from policyhook.cli import main as policyctl_main
from policyhook.domxml import parse_domain_xml
from policyhook.errors import PolicyError, printable
from policyhook.names import MAX_NAME
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.settings import load_settings

# This machine's CPUs read from sysfs by the test itself: what the hook plans against.
HOST = oracle.host_cpus()
LAST = HOST[-1]
CONF = "[libvirt]\nuri = test:///default\n[applier]\ntimeout = 2\n"
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture,
          HealthCheck.data_too_large]
# A process per example (the hook, policyctl as libvirtd and an admin run them).
PROCESS = settings(max_examples=8, deadline=None, suppress_health_check=HEALTH)
PROCESS_HEAVY = settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
# In-process (hook.main, policyctl's main): the same code, many more examples.
INPROC = settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
INPROC_HEAVY = settings(max_examples=2000, deadline=None, suppress_health_check=HEALTH)

REFUSING_OPS = ("prepare", "migrate", "restore")
VERBS = {"prepare": "to start", "migrate": "to migrate", "restore": "to restore"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A fresh registry root per example (appliers forked by the hook may still write
    into an old one, so none is removed while the module runs)."""
    base = tmp_path_factory.mktemp("fuzz")
    count = [0]

    def new(conf=CONF):
        count[0] += 1
        top = base / ("%d" % count[0])
        root = top / "root"
        paths = make_registry(str(root))
        write_raw(paths.conf, conf)
        return str(root)
    return new


# ---- strategies ------------------------------------------------------------------------

names = st.sampled_from(["vm1", "a", "web-01.example", "\u00e9t\u00e9", "with space", "x" * MAX_NAME,
                         "", ".", "..", "../vm1", "a/b", "/etc/passwd", ".hidden", "a\nb", "a\x00b",
                         "\x1b[31m", "x" * (MAX_NAME + 1), "vm1\x7f", "\ud800", "-vm1", "vm1,vm2"]) \
    | st.text(max_size=12)
huge_ints = st.sampled_from([2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30, 10 ** 4000, -10 ** 4000])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_ints, st.integers(-2, 70000),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([256.0, 1.0, 0.0, -0.0, 1e308]), st.text(max_size=8),
                    st.sampled_from(["0", "0-1", "1,0", "0-", "^0", "8192", "00", "0-8191", " 1"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=10)
cpulists = st.sampled_from(["0", str(LAST), "0-%d" % LAST, "%d" % (LAST + 1), "0-8191", "1,0",
                            "0-1,^1", "", "01"]) | st.text(alphabet="0123456789-^, ", max_size=6)
vcpu_keys = st.sampled_from(["0", "1", "2", "7", "16383", "16384", "01", "-1", "x", "", "\u0661"])


@st.composite
def near_valid_docs(draw):
    """A domain policy document, sometimes valid, usually wrong in a few places."""
    doc = {"version": 1, "domain": "vm1"}
    values = {
        "vcpupin": st.dictionaries(vcpu_keys, cpulists | scalars, max_size=3),
        "emulatorpin": cpulists,
        "weight": st.integers(0, 65536) | scalars,
        "cap": st.integers(-1, 100 * (LAST + 2)) | scalars,
        "uuid": st.sampled_from(["6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f", "nope"]) | scalars,
    }
    for key in draw(st.sets(st.sampled_from(sorted(values)))):
        doc[key] = draw(values[key])
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["set", "drop", "extra"]))
        key = draw(st.sampled_from(["version", "domain", "vcpupin", "weight", "cap", "emulatorpin"]))
        if action == "set":
            doc[key] = draw(json_values | names)
        elif action == "drop":
            doc.pop(key, None)
        else:
            doc[draw(st.text(max_size=6))] = draw(json_values)
    return doc


@st.composite
def policy_bytes(draw):
    """The bytes of a policy file: every class of bad input, and some good ones."""
    kind = draw(st.sampled_from(["near", "near", "near", "json", "bytes", "non-utf8", "deep",
                                 "deep-inside", "huge-number", "duplicate", "constant", "empty"]))
    if kind == "near":
        return json.dumps(draw(near_valid_docs())).encode("utf-8", "surrogatepass")
    if kind == "json":
        return json.dumps(draw(json_values)).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "non-utf8":
        good = b'{"version": 1, "domain": "vm1", "weight": 300}'
        at = draw(st.integers(0, len(good)))
        return good[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + good[at:]
    if kind == "deep":
        n = draw(st.sampled_from([31, 32, 33, 100, 1000, 5000, 100000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (opener * n + "1" + closer * n).encode()
    if kind == "deep-inside":
        n = draw(st.integers(1, 40))
        return ('{"version": 1, "domain": "vm1", "vcpupin": %s{}%s}' % ("[" * n, "]" * n)).encode()
    if kind == "huge-number":
        digits = draw(st.sampled_from([20, 400, 4300, 4301, 10000]))
        key = draw(st.sampled_from(["weight", "cap", "version"]))
        sign = draw(st.sampled_from(["", "-"]))
        return ('{"version": 1, "domain": "vm1", "%s": %s%s}' % (key, sign, "9" * digits)).encode()
    if kind == "duplicate":
        return b'{"version": 1, "domain": "vm1", "weight": 300, "weight": 400}'
    if kind == "constant":
        return ('{"version": 1, "domain": "vm1", "weight": %s}'
                % draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400"]))).encode()
    return b""


# ---- the hook's expected behaviour, from the design's rule table -----------------------

def expected_hook(root, name, op, sub, xml_bytes):
    """(exit code, stderr, the <cputune> children stdout must hold or None for no output)
    the hook must give. Whether a file is readable and the XML is domain XML comes from the
    registry's loader and the XML parser; what the plan holds, and whether it conflicts,
    from the documented rules (tests/oracle.py), never from the planner or the mapping."""
    paths = Paths(root)
    if (op, sub) not in (("prepare", "begin"), ("migrate", "begin"), ("restore", "begin")):
        return 0, "", None
    from policyhook.names import name_problem

    valid = name_problem(name) is None
    if not ((valid and os.path.lexists(paths.domain_file(name))) or os.path.lexists(paths.host_file)):
        return 0, "", None
    try:
        conf = load_settings(paths)
    except PolicyError:
        return 0, "", None

    def refusal(e, code):
        setting = conf.on_conflict if code == errors.CONFLICT else conf.on_error
        if setting == "refuse":
            return 1, printable("policyhook: refusing %s '%s': %s" % (VERBS[op], name, e)) + "\n", None
        return 0, "", None
    text = xml_bytes.decode("utf-8", "replace")
    try:
        facts = parse_domain_xml(text)
        stored = registry.read_domain(paths, name) if valid else None
        registry.read_host(paths)
    except PolicyError as e:
        return refusal(e, e.code)
    doc = _json(paths.domain_file(name)) if stored is not None else None
    occupancy = (_json(paths.host_file) or {}).get("cpuoccupy", {})
    indexes = {k: list(v) for k, v in facts.indexes.items()}
    xml_pins = {key: set(cpus) for key, cpus in facts.pins.items()}
    try:
        pins, params = oracle.plan(doc, occupancy, name, facts.driver, facts.uuid, indexes, xml_pins,
                                   HOST, oracle.cgroup_version())
    except oracle.Conflict as e:
        return refusal(e, errors.CONFLICT)
    if op == "prepare":
        return 0, "", None
    return 0, "", oracle.cputune(pins, params, facts.driver)
    # (XML nested deeper than Python's recursion limit cannot be written back: the
    # strategies stay below it; test_xml_too_deep_to_write_back covers that case.)


def _json(path):
    if not os.path.lexists(path):
        return None
    with open(path, "rb") as f:
        return json.load(f)


def _children(tune):
    return sorted((e.tag, tuple(sorted(e.attrib.items())), (e.text or "").strip()) for e in tune) \
        if tune is not None else []


def check_hook_result(code, out, err, expected, op, xml_bytes):
    """The hook's result against expected_hook's: the same exit code and stderr; on
    migrate and restore, the input XML with the plan's elements in <cputune> (the
    input's other <cputune> children kept) and nothing else changed, or no output when
    the plan writes nothing."""
    assert "Traceback" not in err
    assert code in (0, 1)
    if code == 1:
        assert op in REFUSING_OPS
        assert err.endswith("\n") and err[:-1].isprintable(), err
    want_code, want_err, tune = expected
    assert (code, err) == (want_code, want_err)
    if not tune:
        assert out == ""
        return
    got = ET.fromstring(out)
    given = ET.fromstring(xml_bytes.decode("utf-8", "replace"))
    written = {oracle.element_key(tag, attrs) for tag, attrs, _text in tune}
    kept = [c for c in _children(given.find("cputune")) if oracle.element_key(c[0], c[1]) not in written]
    assert _children(got.find("cputune")) == sorted(kept + tune)
    for root in (got, given):
        for element in root.findall("cputune"):
            root.remove(element)
    assert ET.tostring(got) == ET.tostring(given)


def conf_text(on_error, on_conflict):
    return CONF + "[hook]\non_error = %s\non_conflict = %s\n" % (on_error, on_conflict)


events = st.sampled_from([("prepare", "begin")] * 4 + [("migrate", "begin"), ("restore", "begin"),
                          ("start", "begin"), ("reconnect", "begin"), ("started", "begin"),
                          ("release", "end"), ("stopped", "end")])
in_process_events = st.sampled_from([("prepare", "begin")] * 4 + [
    ("migrate", "begin"), ("restore", "begin"), ("started", "begin"), ("release", "end"),
    ("stopped", "end")])
settings_pairs = st.tuples(st.sampled_from(["start", "refuse"]), st.sampled_from(["start", "refuse"]))


def run_hook_in_process(root, name, op, sub, xml_bytes, argv=None):
    out, err = io.StringIO(), io.StringIO()
    argv = argv if argv is not None else ["qemu", name, op, sub, "-"]
    code = hook.main("qemu", argv, io.BytesIO(xml_bytes), out, err, {"POLICYHOOK_ROOT": root})
    return code, out.getvalue(), err.getvalue()


# ---- policy files through the hook -----------------------------------------------------

def _policy_file_case(scratch, data, event, pair, in_process):
    op, sub = event
    root = scratch(conf_text(*pair))
    write_raw(Paths(root).domain_file("vm1"), data)
    xml = domain_xml("vm1").encode()
    expected = expected_hook(root, "vm1", op, sub, xml)
    if in_process:
        code, out, err = run_hook_in_process(root, "vm1", op, sub, xml)
    else:
        r = run_hook(root, "vm1", op, sub, xml=xml.decode())
        code, out, err = r.returncode, r.stdout.decode(), r.stderr.decode()
    check_hook_result(code, out, err, expected, op, xml)


@PROCESS
@given(data=policy_bytes(), event=events, pair=settings_pairs)
def test_fuzz_policy_files_through_the_hook(scratch, data, event, pair):
    _policy_file_case(scratch, data, event, pair, in_process=False)


# Examples run every time, whatever the draw: values that reach <cputune>, at both ends
# of each range, and a pin the domain cannot take.
@INPROC
@example(data=b'{"version": 1, "domain": "vm1", "weight": 300, "cap": 50, "vcpupin": {"1": "0"}}',
         event=("migrate", "begin"), pair=("refuse", "refuse"))
@example(data=b'{"version": 1, "domain": "vm1", "weight": 1, "cap": 0, "emulatorpin": "0"}',
         event=("restore", "begin"), pair=("refuse", "refuse"))
@example(data=b'{"version": 1, "domain": "vm1", "weight": 65535, "cap": 1}',
         event=("migrate", "begin"), pair=("refuse", "refuse"))
@example(data=b'{"version": 1, "domain": "vm1", "vcpupin": {"2": "0"}}',
         event=("prepare", "begin"), pair=("start", "refuse"))
@given(data=policy_bytes(), event=in_process_events, pair=settings_pairs)
def test_fuzz_policy_files_through_the_hook_in_process(scratch, data, event, pair):
    _policy_file_case(scratch, data, event, pair, in_process=True)


@pytest.mark.stress
@PROCESS_HEAVY
@given(data=policy_bytes(), event=events, pair=settings_pairs)
def test_fuzz_policy_files_through_the_hook_heavy(scratch, data, event, pair):
    _policy_file_case(scratch, data, event, pair, in_process=False)


@pytest.mark.stress
@INPROC_HEAVY
@given(data=policy_bytes(), event=in_process_events, pair=settings_pairs)
def test_fuzz_policy_files_through_the_hook_in_process_heavy(scratch, data, event, pair):
    _policy_file_case(scratch, data, event, pair, in_process=True)


def test_huge_and_deep_policy_files_examples(scratch):
    """The worst single cases, run every time: 1 MiB + 1 byte, 100,000 levels, a number of
    10,000 digits."""
    for data in (b" " * (1 << 20) + b"{}", b"[" * 100000 + b"]" * 100000,
                 b'{"version": 1, "domain": "vm1", "weight": 1%s}' % (b"0" * 10000)):
        _policy_file_case(scratch, data, ("prepare", "begin"), ("refuse", "refuse"), in_process=False)


# ---- policy files through policyctl check, cpupolicy, list and a change ------------------

def policyctl(root, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = policyctl_main(["--root", root, "--offline"] + list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _policyctl_file_case(scratch, data):
    root = scratch()
    paths = Paths(root)
    path = paths.domain_file("vm1")
    write_raw(path, data)
    try:
        registry.read_domain(paths, "vm1")
        good = True
    except PolicyError as e:
        assert e.code == errors.REGISTRY
        assert str(e).startswith(path + ": ")
        good = False
    code, out, err = policyctl(root, "check")
    assert err == ""
    if good:
        assert (code, out) == (0, "%s: the registry is valid\n" % paths.etc)
    else:
        assert code == errors.REGISTRY
        lines = out.splitlines()
        assert lines and out.endswith("\n")
        assert all(line.startswith(path + ": ") and line.isprintable() for line in lines), lines
        assert len(set(lines)) == len(lines)
    before = snapshot_policy_files(root)
    for argv in (["cpupolicy", "vm1"], ["list"], ["schedweight", "vm1", "300"],
                 ["vcpupin", "vm1", "0", "0"]):
        code, out, err = policyctl(root, *argv)
        assert "Traceback" not in err
        if good:
            assert code in (0, errors.INVALID, errors.CONFLICT), (argv, err)
        else:
            # list shows what it can read and names the broken file; the others stop.
            assert code == errors.REGISTRY and (out == "" or argv == ["list"]), argv
            assert err.startswith("Error: %s: " % path) and err[:-1].isprintable(), err
            assert snapshot_policy_files(root) == before


@INPROC
@given(data=policy_bytes())
def test_fuzz_policy_files_through_policyctl(scratch, data):
    _policyctl_file_case(scratch, data)


@pytest.mark.stress
@INPROC_HEAVY
@given(data=policy_bytes())
def test_fuzz_policy_files_through_policyctl_heavy(scratch, data):
    _policyctl_file_case(scratch, data)


@PROCESS
@given(data=policy_bytes())
def test_fuzz_policy_files_through_policyctl_check_process(scratch, data):
    root = scratch()
    path = Paths(root).domain_file("vm1")
    write_raw(path, data)
    r = subprocess.run([sys.executable, "-m", "policyhook.cli", "--root", root, "check"],
                       capture_output=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    assert r.stderr == b""
    assert r.returncode in (0, errors.REGISTRY)
    if r.returncode:
        assert all(line.startswith(path.encode() + b": ") for line in r.stdout.splitlines())


# ---- policyctl argv ----------------------------------------------------------------------

COMMANDS = ["vcpupin", "emulatorpin", "schedweight", "schedcap", "cpuoccupy", "unset", "remove",
            "cpupolicy", "list", "occupancy", "check", "apply"]
WORDS = ["vm1", "vm2", "vcpupin", "emulatorpin", "weight", "cap", "--json", "--dry-run", "--clear",
         "--all", "--", "-", "--bogus", "-x", "--json=1", "-c", "test:///default", "--offline",
         "0", "1", "-1", "+1", "256", "65535", "65536", "1e3", "0x10", "9" * 5000, " 5", "\u0663",
         "1.5", "00", "0-1", "1-0", "^0", "0-3,^2", "", ",", "0,", "8191", "8192", "0-8191", "a",
         "0--1", ".", "..", "../x", "a/b", "a\nb", "\x1b[0m", "x" * 300, "\u00e9", "\u202e",
         "vm1,vm2", "vm1,,vm2", "vm1,vm1", "%s" % LAST, "--help", "-h", "--version"]


def _not_global(token):
    """Tokens that could reach outside the scratch root or ask for a traceback: argparse
    takes abbreviations (--ro = --root, --d = --debug)."""
    for option in ("--root", "--debug"):
        head = token.split("=", 1)[0]
        if len(head) >= 3 and option.startswith(head):
            return False
    return True


tokens = (st.sampled_from(WORDS) | st.text(max_size=8) | st.integers(-5, 70000).map(str)) \
    .filter(_not_global)
argvs = st.tuples(st.sampled_from(COMMANDS) | tokens, st.lists(tokens, max_size=5)) \
    .map(lambda t: [t[0]] + t[1])


def _argv_case(scratch, argv, in_process):
    root = scratch()
    top = os.path.dirname(root)
    make_registry(root, [policy("vm1", {0: "0"}, weight=300)], occupancy={LAST: ["vm1"]})
    before = snapshot_policy_files(root)
    if in_process:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):   # argparse prints --help and --version there
            try:
                code, text, err = policyctl(root, *argv)
            except SystemExit as e:             # --help, --version: argparse exits
                code, err = e.code, ""
    else:
        r = subprocess.run([sys.executable, "-m", "policyhook.cli", "--root", root, "--offline"] + argv,
                           capture_output=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
        code, err = r.returncode, r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err
    assert code in errors.EXIT_CODES, (argv, code, err)
    assert code != errors.INTERNAL, (argv, err)
    lines = err.splitlines()
    assert all(line.startswith(("Error: ", "Warning: ")) for line in lines), (argv, err)
    if code:
        assert lines and lines[-1].startswith("Error: ") and err.endswith("\n")
        assert all(line.isprintable() for line in lines), err
        assert sum(line.startswith("Error: ") for line in lines) == 1
        assert snapshot_policy_files(root) == before, argv
    else:
        assert Registry(Paths(root)).check() == []
    assert os.listdir(top) == ["root"]            # nothing written beside the root
    assert sorted(os.listdir(root)) == ["etc", "run"]


@INPROC
@given(argv=argvs)
def test_fuzz_policyctl_argv(scratch, argv):
    _argv_case(scratch, argv, in_process=True)


@pytest.mark.stress
@INPROC_HEAVY
@given(argv=argvs)
def test_fuzz_policyctl_argv_heavy(scratch, argv):
    _argv_case(scratch, argv, in_process=True)


@PROCESS
@given(argv=argvs.filter(lambda a: all("\x00" not in t for t in a)))
def test_fuzz_policyctl_argv_process(scratch, argv):
    try:
        for t in argv:
            os.fsencode(t)
    except UnicodeEncodeError:
        assume(False)
    _argv_case(scratch, argv, in_process=False)


# ---- hook argv and stdin XML ---------------------------------------------------------------

def _xml_case(scratch, xml_bytes, event, pair, stored, in_process):
    op, sub = event
    root = scratch(conf_text(*pair))
    make_registry(root, [stored], occupancy={LAST: ["vm1", "other"]} if LAST else None)
    expected = expected_hook(root, "vm1", op, sub, xml_bytes)
    if in_process:
        code, out, err = run_hook_in_process(root, "vm1", op, sub, xml_bytes)
    else:
        env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "POLICYHOOK_ROOT": root, "PYTHONPATH": REPO}
        r = subprocess.run([sys.executable, os.path.join(REPO, "hooks", "qemu"), "vm1", op, sub, "-"],
                           input=xml_bytes, capture_output=True, env=env, timeout=60)
        code, out, err = r.returncode, r.stdout.decode(), r.stderr.decode()
    check_hook_result(code, out, err, expected, op, xml_bytes)


xml_texts = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"<domain/>", b"<domain>", b"<foo><name>vm1</name></foo>", b"<?xml?>",
                     b"<domain><vcpu>two</vcpu></domain>", b"<domain><vcpu>-3</vcpu></domain>",
                     b"<domain><vcpu>0</vcpu></domain>", b"<domain><vcpu>99999999999</vcpu></domain>",
                     b"<domain><vcpu>" + b"9" * 5000 + b"</vcpu></domain>",
                     b"<domain type='xen'><vcpu>2</vcpu></domain>",
                     b"<domain><vcpu>2</vcpu><cputune><vcpupin vcpu='x' cpuset='0'/></cputune></domain>",
                     b"<domain><vcpu>2</vcpu><cputune><vcpupin vcpu='0' cpuset='99999'/></cputune></domain>",
                     b"<domain><vcpu>2</vcpu><cputune><vcpupin cpuset='0'/></cputune></domain>",
                     b"<domain><vcpu>2</vcpu><cputune><emulatorpin cpuset=''/></cputune></domain>",
                     b"\xef\xbb\xbf<domain><vcpu>2</vcpu></domain>",
                     b"<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
                     b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'><!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;"
                     b"&c;'><!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'><!ENTITY f '&e;&e;&e;&e;&e;&e;&e;"
                     b"&e;&e;&e;'><!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>]><domain><name>&g;</name>"
                     b"</domain>",
                     b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/shadow">]><domain><name>&x;</name>'
                     b"<vcpu>2</vcpu></domain>"]),
    st.builds(lambda n, vcpus, pin: ("<domain type='qemu'><name>vm1</name><vcpu>%s</vcpu><cputune>"
                                     "<vcpupin vcpu='%s' cpuset='%s'/></cputune>%s</domain>"
                                     % (vcpus, pin[0], pin[1], "<x>" * n + "</x>" * n)).encode(),
              st.integers(0, 300), st.integers(0, 5).map(str) | st.text(max_size=3),
              st.tuples(st.integers(0, 4).map(str), cpulists)),
    st.integers(1, 40000).map(lambda n: ("<domain><name>vm1</name><vcpu>2</vcpu><devices>%s</devices>"
                                         "</domain>" % ("<disk type='file'/>" * n)).encode()),
)
stored_policies = st.sampled_from([policy("vm1", {0: "0"}, weight=300),
                                   policy("vm1", {1: str(LAST)}, emulator="0", cap=50),
                                   policy("vm1", {3: "0"}), policy("vm1", weight=512)])
xml_events = st.sampled_from([("prepare", "begin"), ("migrate", "begin"), ("restore", "begin")])


@PROCESS
@given(xml=xml_texts, event=xml_events, pair=settings_pairs, stored=stored_policies)
def test_fuzz_hook_stdin_xml(scratch, xml, event, pair, stored):
    _xml_case(scratch, xml, event, pair, stored, in_process=False)


@INPROC
@example(xml=domain_xml("vm1", 2, "libxl").encode(), event=("migrate", "begin"), pair=("refuse", "refuse"),
         stored=policy("vm1", {1: "0"}, emulator="0", weight=512, cap=50))
@example(xml=domain_xml("vm1", 2, "lxc").encode(), event=("restore", "begin"), pair=("refuse", "refuse"),
         stored=policy("vm1", {1: "0"}, weight=512, cap=50))
@example(xml=b"<domain type='qemu'><name>vm1</name><vcpu>2</vcpu><cputune><shares>7</shares>"
             b"<vcpupin vcpu='0' cpuset='0'/><emulatorpin cpuset='0'/></cputune></domain>",
         event=("migrate", "begin"), pair=("refuse", "refuse"), stored=policy("vm1", {1: "0"}, cap=25))
@given(xml=xml_texts, event=xml_events, pair=settings_pairs, stored=stored_policies)
def test_fuzz_hook_stdin_xml_in_process(scratch, xml, event, pair, stored):
    _xml_case(scratch, xml, event, pair, stored, in_process=True)


@pytest.mark.stress
@INPROC_HEAVY
@given(xml=xml_texts, event=xml_events, pair=settings_pairs, stored=stored_policies)
def test_fuzz_hook_stdin_xml_heavy(scratch, xml, event, pair, stored):
    _xml_case(scratch, xml, event, pair, stored, in_process=True)


def test_huge_xml_on_stdin(scratch):
    """A 2 MB domain XML: read whole, parsed, answered; no hang."""
    xml = ("<domain type='qemu'><name>vm1</name><vcpu>2</vcpu><devices>%s</devices></domain>"
           % ("<disk type='file' device='disk'/>" * 60000)).encode()
    for event in [("prepare", "begin"), ("migrate", "begin")]:
        _xml_case(scratch, xml, event, ("refuse", "refuse"), policy("vm1", {0: "0"}), in_process=False)


hook_words = st.sampled_from(["vm1", "other", "prepare", "begin", "start", "started", "reconnect",
                              "migrate", "restore", "release", "stopped", "end", "-", "", ".", "..",
                              "../../etc/x", "a/b", "a\nb", "\x1b[0m", "x" * 300, "vm1\x7f"]) \
    | st.text(max_size=10)
hook_argvs = st.lists(hook_words, max_size=6)


def _hook_argv_case(scratch, argv, in_process):
    """Any argv: exit 0 (nothing here can conflict: vm1's policy fits, other domains keep
    off the occupied CPU), stdout only for migrate/restore, and no file outside
    the registry's own directories, whatever the name."""
    root = scratch()
    top = os.path.dirname(root)
    make_registry(root, [policy("vm1", {0: "0"}, weight=300)], occupancy={LAST: ["vm1"]} if LAST else None)
    xml = domain_xml("vm1").encode()
    if in_process:
        code, out, err = run_hook_in_process(root, None, None, None, xml, argv=["qemu"] + argv)
    else:
        env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "POLICYHOOK_ROOT": root, "PYTHONPATH": REPO}
        r = subprocess.run([sys.executable, os.path.join(REPO, "hooks", "qemu")] + argv, input=xml,
                           capture_output=True, env=env, timeout=60)
        code, out, err = r.returncode, r.stdout.decode(), r.stderr.decode()
    assert (code, err) == (0, ""), (argv, err)
    if out:
        assert argv[1:3] in (["migrate", "begin"], ["restore", "begin"])
    assert os.listdir(top) == ["root"]
    allowed = {"etc", "run", "var"}
    assert set(os.listdir(root)) <= allowed
    state = Paths(root).state
    if os.path.isdir(state):
        for entry in os.listdir(state):
            assert entry.endswith(".json") and os.path.isfile(os.path.join(state, entry))


@PROCESS
@given(argv=hook_argvs.filter(lambda a: all("\x00" not in w for w in a)))
def test_fuzz_hook_argv(scratch, argv):
    try:
        for w in argv:
            os.fsencode(w)
    except UnicodeEncodeError:
        assume(False)
    # start/reconnect fork an applier: keep them rare in the quick suite.
    _hook_argv_case(scratch, argv, in_process=False)


@INPROC
@given(argv=hook_argvs.filter(lambda a: not (len(a) > 2 and (a[1], a[2]) in
                                              (("start", "begin"), ("reconnect", "begin")))))
def test_fuzz_hook_argv_in_process(scratch, argv):
    _hook_argv_case(scratch, argv, in_process=True)


@pytest.mark.stress
@INPROC_HEAVY
@given(argv=hook_argvs.filter(lambda a: not (len(a) > 2 and (a[1], a[2]) in
                                              (("start", "begin"), ("reconnect", "begin")))))
def test_fuzz_hook_argv_in_process_heavy(scratch, argv):
    _hook_argv_case(scratch, argv, in_process=True)


# ---- domain names cannot reach outside the registry ---------------------------------------

any_names = names | st.text() | st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape"))


def _name_case(scratch, name):
    paths = Paths("/nonexistent/root")
    for fn, directory in ((paths.domain_file, paths.domains), (paths.state_file, paths.state)):
        try:
            path = fn(name)
        except PolicyError as e:
            assert e.code == errors.INVALID
            assert str(e).startswith("invalid domain name ") and "\n" not in str(e)
            continue
        assert os.path.dirname(path) == directory
        assert os.path.basename(path) == name + ".json"
        assert os.path.normpath(path) == path
        assert not os.path.basename(path).startswith(".")
    root = scratch()
    before = snapshot_policy_files(root)
    code, out, err = policyctl(root, "schedweight", "--", name, "300")  # '--': names such as '-x'
    assert "Traceback" not in err and code in (0, errors.INVALID), (name, code, err)
    if code == 0:
        assert os.listdir(Paths(root).domains) == [name + ".json"]
    else:
        assert err.startswith("Error: invalid domain name ") and err.count("\n") == 1
        assert snapshot_policy_files(root) == before
    assert os.listdir(os.path.dirname(root)) == ["root"]


@INPROC
@given(name=any_names)
def test_fuzz_domain_names_stay_inside_the_registry(scratch, name):
    _name_case(scratch, name)


@pytest.mark.stress
@INPROC_HEAVY
@given(name=any_names)
def test_fuzz_domain_names_stay_inside_the_registry_heavy(scratch, name):
    _name_case(scratch, name)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "..", ".", "a/../../b", "/abs", "a\x00b",
                                  "a\nb", "x" * 201, ".vm1", "vm1/"])
def test_traversal_names_are_refused(tmp_path, name):
    root = str(tmp_path / "root")
    make_registry(root)
    before = snapshot_policy_files(root)
    code, out, err = policyctl(root, "vcpupin", name, "0", "0")
    assert code == errors.INVALID and out == ""
    assert err.startswith("Error: invalid domain name %r: " % name)
    assert snapshot_policy_files(root) == before
    assert os.listdir(str(tmp_path)) == ["root"]
    # The hook, given such a name by libvirtd, touches nothing of it.
    r = run_hook(root, name.replace("\x00", ""), "prepare", "begin")
    assert (r.returncode, r.stderr) == (0, b"")
    assert os.listdir(str(tmp_path)) == ["root"]


# ---- unsafe policy files, refused by the hook running as root -----------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners and modes are checked as root")


def _unsafe(kind, paths, tmp_path):
    """Make vm1's policy file (or what the hook reads) unsafe; the path the message names
    and why."""
    good = '{"version": 1, "domain": "vm1", "weight": 300}'
    path = paths.domain_file("vm1")
    if kind == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(good)
        os.symlink(str(target), path)
        return path, "is a symlink; refusing to follow it"
    if kind == "symlink to /dev/zero":
        os.symlink("/dev/zero", path)
        return path, "is a symlink; refusing to follow it"
    if kind == "owned by nobody":
        write_raw(path, good)
        os.chown(path, 65534, 65534)
        return path, "is owned by uid 65534, not 0; refusing it (chown 0 %s)" % path
    if kind == "group-writable":
        write_raw(path, good, 0o664)
        return path, "is group- or world-writable (mode 0664); refusing it (chmod go-w %s)" % path
    if kind == "world-writable":
        write_raw(path, good, 0o646)
        return path, "is group- or world-writable (mode 0646); refusing it (chmod go-w %s)" % path
    if kind == "fifo":
        os.mkfifo(path, 0o644)
        return path, "is not a regular file"
    if kind == "directory":
        os.mkdir(path, 0o755)
        return path, "is not a regular file"
    if kind == "domains dir is a symlink":
        write_raw(path, good)
        real = str(tmp_path / "real-domains")
        os.rename(paths.domains, real)
        os.symlink(real, paths.domains)
        return paths.domains, "is a symlink; refusing to follow it"
    if kind == "domains dir owned by nobody":
        write_raw(path, good)
        os.chown(paths.domains, 65534, 65534)
        return paths.domains, "is owned by uid 65534, not 0; refusing it (chown 0 %s)" % paths.domains
    if kind == "etc dir world-writable":
        write_raw(path, good)
        os.chmod(paths.etc, 0o777)
        return paths.etc, "is group- or world-writable (mode 0777); refusing it (chmod go-w %s)" % paths.etc
    if kind == "host.json owned by nobody":
        write_raw(path, good)
        write_raw(paths.host_file, '{"version": 1}')
        os.chown(paths.host_file, 65534, 65534)
        return paths.host_file, "is owned by uid 65534, not 0; refusing it (chown 0 %s)" % paths.host_file
    if kind == "lock file is a symlink":
        write_raw(path, good)
        target = tmp_path / "victim"
        target.write_text("precious\n")
        os.unlink(paths.lock)
        os.symlink(str(target), paths.lock)
        return paths.lock, "cannot be locked: Too many levels of symbolic links"
    raise AssertionError(kind)


UNSAFE = ["symlink", "symlink to /dev/zero", "owned by nobody", "group-writable", "world-writable",
          "fifo", "directory", "domains dir is a symlink", "domains dir owned by nobody",
          "etc dir world-writable", "host.json owned by nobody", "lock file is a symlink"]


@needs_root
@pytest.mark.parametrize("kind", UNSAFE)
@pytest.mark.parametrize("on_error", ["start", "refuse"])
def test_the_hook_refuses_unsafe_files_and_says_why(tmp_path, kind, on_error):
    root = tmp_path / "root"
    paths = make_registry(str(root))
    write_raw(paths.conf, conf_text(on_error, "refuse"))
    path, why = _unsafe(kind, paths, tmp_path)
    message = "%s: %s" % (path, why)
    r = run_hook(str(root), "vm1", "prepare", "begin", timeout=20)
    assert r.stdout == b""
    if on_error == "refuse":
        assert (r.returncode, r.stderr.decode()) == (1, "policyhook: refusing to start 'vm1': %s\n" % message)
    else:
        assert (r.returncode, r.stderr) == (0, b"")
        with open(paths.state_file("vm1")) as f:
            assert json.load(f)["error"] == message
    if kind == "lock file is a symlink":
        assert (tmp_path / "victim").read_text() == "precious\n"


# ---- XML the hook must not choke on -------------------------------------------------------

@pytest.mark.parametrize("vcpus", ["99999999999", "16385", "0", "-3"])
def test_an_absurd_vcpu_count_does_not_hang_the_hook(tmp_path, vcpus):
    """The planner walks every vCPU: a count of 10^11 once kept the hook (and so
    libvirtd, which has no hook timeout) busy for ever. Now bounded, and refused."""
    root = str(tmp_path / "root")
    paths = make_registry(root, [policy("vm1", weight=300)], occupancy={LAST: ["other"]})
    write_raw(paths.conf, conf_text("refuse", "refuse"))
    xml = "<domain type='qemu'><name>vm1</name><vcpu>%s</vcpu></domain>" % vcpus
    r = run_hook(root, "vm1", "prepare", "begin", xml=xml, timeout=20)
    assert (r.returncode, r.stdout) == (1, b"")
    assert r.stderr.decode() == "policyhook: refusing to start 'vm1': domain XML: <vcpu> '%s' is not " \
        "in 1..16384\n" % vcpus


def test_xml_too_deep_to_write_back(tmp_path):
    """3,000 nested elements parse, but cannot be written back into the migration XML:
    the hook's own failure, so on_error decides, in one line."""
    root = str(tmp_path / "root")
    paths = make_registry(root, [policy("vm1", weight=300)])
    xml = "<domain><name>vm1</name><vcpu>2</vcpu>%s</domain>" % ("<x>" * 3000 + "</x>" * 3000)
    write_raw(paths.conf, conf_text("start", "refuse"))
    r = run_hook(root, "vm1", "migrate", "begin", xml=xml)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    write_raw(paths.conf, conf_text("refuse", "refuse"))
    r = run_hook(root, "vm1", "migrate", "begin", xml=xml)
    assert (r.returncode, r.stdout) == (1, b"")
    assert r.stderr.startswith(b"policyhook: refusing to migrate 'vm1': RecursionError: maximum recursion ")
    assert r.stderr.count(b"\n") == 1


@pytest.mark.parametrize("name", ["a\nb", "\x1b[31mred", "x\x85y", "a\u2028b"])
def test_hook_messages_stay_on_one_line_whatever_the_name(tmp_path, name):
    """A name that is no file name (control characters) still gets the host policy's
    admission; a refusal quotes it escaped, on one line, and so does the log."""
    root = str(tmp_path / "root")
    paths = make_registry(root)
    write_raw(paths.host_file, b"{broken")
    write_raw(paths.conf, conf_text("refuse", "refuse"))
    r = run_hook(root, name, "prepare", "begin", xml=domain_xml("vm1"))
    assert r.returncode == 1
    text = r.stderr.decode()
    assert text.startswith("policyhook: refusing to start '%s': %s: not valid JSON"
                           % (printable(name), paths.host_file))
    assert text.endswith("\n") and text[:-1].isprintable()
    with open(paths.log) as f:
        assert all(line.isprintable() for line in f.read().splitlines())
