"""The man pages: built from the parser and the shipped settings file, every command,
option, exit code and key in them, and the settings file kept in step with the code."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

import argspec  # noqa: E402
import mdroff  # noqa: E402
import mkman  # noqa: E402


def build(tmp_path, page, *extra):
    out = tmp_path / page
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "mkman.py"), "-o", str(out), page]
                       + list(extra), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out.read_text()


def roff(text):
    return text.replace("-", "\\-")


def test_policyctl_page_has_every_command_option_and_exit_code(tmp_path):
    from policyhook.cli.parser import build as parser
    from policyhook.errors import EXIT_CODES

    page = build(tmp_path, "policyctl.8", "--hook", "/x/qemu.d/policyhook")
    p = parser()
    for opt in argspec.options(p):
        for flag in opt.flags:
            assert "\\fB%s\\fR" % roff(flag) in page
    for cmd in argspec.commands(p):
        assert ".SS %s\n" % cmd.name in page
        for opt in cmd.options:
            assert "\\fB%s\\fR" % roff(opt.flags[-1]) in page
        for pos in cmd.positionals:
            assert "\\fI%s\\fR" % pos.metavar in page
    for code in EXIT_CODES:
        assert ".TP\n\\fB%d\\fR\n" % code in page
    assert "\\fB/x/qemu.d/policyhook\\fR" in page
    assert "\\fBpolicyctl vcpupin vm1 0 0\\-3,^2\\fR" in page


def test_conf_page_has_every_key_with_its_default(tmp_path):
    from policyhook.settings import KEYS

    page = build(tmp_path, "policyhook.conf.5")
    for section, key in KEYS:
        assert ".SS [%s]" % section in page
        assert "\\fB%s\\fR = " % key in page
    assert "\\fBon_conflict\\fR = \\fIrefuse\\fR" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff")
@pytest.mark.parametrize("page", mkman.PAGES)
def test_pages_render_without_warnings(tmp_path, page):
    build(tmp_path, page)
    # -t: policyhook-policy(5) has tables, as its first line tells man(1).
    r = subprocess.run(["groff", "-t", "-man", "-ww", "-z", str(tmp_path / page)], capture_output=True,
                       text=True)
    assert (r.returncode, r.stderr) == (0, "")


SHIPPED = open(os.path.join(REPO, "etc", "policyhook.conf"), encoding="utf-8").read()

def line_of(text, needle):
    return text[:text.index(needle)].count("\n") + 1


BAD_CONF = [
    # (change to the shipped file, the line the error names, the error)
    (("#timeout = 120", "#timeout = 31"), "#timeout = 31",
     "c:%d: [applier] timeout: documented default 31, but the code's default is 120.0"),
    (("#timeout = 120", "#timeout = 700"), "#timeout = 700",
     "c:%d: [applier] timeout: documented default: 700 is not in 1..600"),
    (("#timeout = 120", "#timeout = 120\n#retries = 3"), "#retries",
     "c:%d: [applier] retries: documented, but not in policyhook.settings.KEYS"),
    (("#uri = qemu:///system", ""), None,
     "c: [libvirt] uri: in policyhook.settings.KEYS, but not documented"),
    (("# The connection policyctl and the QEMU applier use.\n", ""), "#uri",
     "c:%d: [libvirt] uri: no comment above the key says what it does"),
    (("[policyctl]", "[policyctl]\nlock_timeout 10"), "lock_timeout 10",
     "c:%d: not a comment, a section or a key line: lock_timeout 10"),
]


@pytest.mark.parametrize("change,where,error", BAD_CONF, ids=[e for _, _, e in BAD_CONF])
def test_conf_out_of_step_with_the_code(change, where, error):
    old, new = change
    assert old in SHIPPED
    text = SHIPPED.replace(old, new, 1)
    with pytest.raises(mkman.DocError) as e:
        mkman.checked_keys(text, "c")
    assert str(e.value) == (error % line_of(text, where) if where else error)


def test_active_key_lines_count_as_documented():
    text = SHIPPED.replace("#uri = qemu:///system", "uri = qemu:///system")
    assert ("libvirt", "uri", "qemu:///system") in [k[:3] for k in mkman.checked_keys(text, "c")]


def test_mkman_exits_1_and_names_the_problem(tmp_path):
    conf = tmp_path / "policyhook.conf"
    conf.write_text(SHIPPED.replace("#on_error = start", "#on_error = maybe"))
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "mkman.py"), "-o",
                        str(tmp_path / "out.5"), "--conf", str(conf), "policyhook.conf.5"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "[hook] on_error: documented default: 'maybe' is not one of start, refuse" in r.stderr
    assert not (tmp_path / "out.5").exists()


def test_policyctl_page_names_every_hook(tmp_path):
    page = build(tmp_path, "policyctl.8", *[a for d in ("qemu", "lxc", "libxl")
                                            for a in ("--hook", "/x/%s.d/policyhook" % d)])
    for path, driver, daemon in (("qemu", "QEMU", "virtqemud"), ("lxc", "LXC", "virtlxcd"),
                                 ("libxl", "Xen (libxl)", "virtxend")):
        entry = "\\fB/x/%s.d/policyhook\\fR\nThe hook libvirtd runs at each %s domain event"
        assert entry % (path, driver) in page
        assert "or %s, or SIGHUP" % daemon in page


# ---- policyhook(8), policyhook-policy(5), ENVIRONMENT: doc/man/*.md checked against the code ----

def test_hook_page_has_every_event_setting_and_section(tmp_path):
    from policyhook.hook import HANDLERS
    from policyhook.settings import Settings

    page = build(tmp_path, "policyhook.8", *[a for d in ("qemu", "lxc", "libxl")
                                             for a in ("--hook", "/x/%s.d/policyhook" % d)])
    for op, sub in HANDLERS:
        assert ".TP\n\\fB%s %s\\fR" % (op, sub) in page
    assert "\\fBrestore begin\\fR (QEMU only)" in page
    assert "\\fBmigrate begin\\fR (QEMU and libxl only)" in page
    for section in ("EVENTS", "CONFLICTS AND FAILURES", "EXIT STATUS", "LOGGING", "SELINUX", "ENVIRONMENT",
                    "FILES"):
        assert ".SH %s\n" % section in page
    assert "\\fBon_conflict\\fR (%s)" % Settings().on_conflict in page
    assert "\\fBon_error\\fR (%s)" % Settings().on_error in page
    assert "setsebool \\-P virt_hooks_unconfined on" in page
    for var in ("POLICYHOOK_ROOT", "LIBVIRT_DEFAULT_URI"):
        assert ".TP\n\\fB%s\\fR\n" % var in page
    assert ".TP\n\\fB/x/libxl.d/policyhook\\fR\n" in page


def test_policy_page_has_every_schema_key_and_the_mapping(tmp_path):
    from policyhook.mapping import sched_params
    from policyhook.schema import DOMAIN_SCHEMA, HOST_SCHEMA

    page = build(tmp_path, "policyhook-policy.5")
    assert page.startswith("\'\\\" t\n")   # tbl, for the weight and cap table
    for schema in (DOMAIN_SCHEMA, HOST_SCHEMA):
        for key in schema["properties"]:
            assert ".TP\n\\fB%s\\fR (" % key in page
    assert "\\fBweight\\fR (an integer from 1 to 65535)" in page
    assert "\\fBversion\\fR (always 1, required)" in page
    assert ".TS\n" in page and "\\fBcpu_shares = 4*W\\fR" in page
    shares = [sched_params("qemu", v, weight=512)["cpu_shares"] for v in (1, 2)]
    assert "QEMU and LXC: cpu_shares=%d on cgroup v1, cpu_shares=%d on cgroup v2; Xen: weight=512." \
        % tuple(shares) in page
    assert "Xen: cap=50." in page


def test_policyctl_page_has_environment(tmp_path):
    page = build(tmp_path, "policyctl.8")
    env = page[page.index(".SH ENVIRONMENT"):page.index(".SH FILES")]
    assert ".TP\n\\fBLIBVIRT_DEFAULT_URI\\fR\nThe connection when \\fB\\-c URI\\fR is not given" in env
    assert "(qemu:///system by default)" in env
    assert ".BR policyhook (8)," in page and ".BR policyhook\\-policy (5)," in page


def table(md):
    return next(b for b in mdroff.parse(md, "t.md") if b.kind == "table")


HANDLERS = {("prepare", "begin"): None, ("start", "begin"): None}
BAD_EVENTS = [
    ("| event | what |\n|---|---|\n| `prepare begin` | a |\n",
     "t.md:1: event 'start begin': in policyhook.hook.HANDLERS, but not documented"),
    ("| event | what |\n|---|---|\n| `prepare begin` | a |\n| `start begin` | b |\n| `bogus end` | c |\n",
     "t.md:5: event 'bogus end': not in policyhook.hook.HANDLERS"),
    ("| event | what |\n|---|---|\n| `prepare begin` | a |\n| `start begin` | b |\n| start | c |\n",
     "t.md:5: 'start': an event is `OPERATION SUB-OPERATION`"),
]


@pytest.mark.parametrize("md,error", BAD_EVENTS, ids=[e for _, e in BAD_EVENTS])
def test_events_out_of_step_with_the_hook(md, error):
    with pytest.raises(mkman.DocError) as e:
        mkman.check_events(table(md), "t.md", HANDLERS)
    assert str(e.value) == error


def test_every_event_of_the_hook_is_documented():
    from policyhook.hook import HANDLERS

    blocks = mkman.doc_blocks("policyhook.8")
    events = next(b for b in blocks if b.kind == "table" and mkman.table_kind(b) == "event")
    assert {e for e, _, _ in mkman.check_events(events, "s")} - {None} == {"%s %s" % k for k in HANDLERS}


READS = {"READ_ME": "policyhook/a.py:3"}
BAD_ENVIRONMENT = [
    ("| `READ_ME` | x |\n| `NEW_ONE` | y |\n",
     "t.md:4: NEW_ONE: documented, but the package does not read it (say 'Not read.' if so)"),
    ("| `READ_ME` | Not read. x |\n",
     "t.md:3: READ_ME: documented as not read, but policyhook/a.py:3 reads it"),
    ("| `OTHER` | Not read. x |\n",
     "t.md:1: READ_ME: policyhook/a.py:3 reads it, but it is not documented"),
    ("| READ_ME | x |\n",
     "t.md:3: 'READ_ME': a variable is `NAME`\nt.md:1: READ_ME: policyhook/a.py:3 reads it, but it is not "
     "documented"),
]


@pytest.mark.parametrize("rows,error", BAD_ENVIRONMENT, ids=[e for _, e in BAD_ENVIRONMENT])
def test_environment_out_of_step_with_the_code(rows, error):
    with pytest.raises(mkman.DocError) as e:
        mkman.check_environment(table("| variable | meaning |\n|---|---|\n" + rows), "t.md", READS)
    assert str(e.value) == error


def test_environment_reads_finds_every_way_to_read_a_variable(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("import os\nfrom os import environ, getenv\n"
                                  "x = os.environ['ONE']\ny = environ.get('TWO', 'd')\n"
                                  "z = os.getenv('THREE')\nw = getenv('FOUR')\n"
                                  "name = 'NOT_A_READ'\nv = os.environ.get(name)\n")
    assert mkman.environment_reads(str(package)) == {
        "ONE": "pkg/a.py:3", "TWO": "pkg/a.py:4", "THREE": "pkg/a.py:5", "FOUR": "pkg/a.py:6"}


def test_the_package_reads_only_documented_variables():
    assert set(mkman.environment_reads()) == {"POLICYHOOK_ROOT", "LIBVIRT_DEFAULT_URI", "COLUMNS"}


SCHEMA = {"type": "object", "required": ["version"], "additionalProperties": False, "properties": {
    "version": {"type": "integer", "const": 2},
    "pins": {"type": "object", "properties": {"iothread": {"type": "string", "format": "cpulist"}}}}}
BAD_KEYS = [
    ("| `version` | v |\n| `pins` | p |\n",
     "t.md:1: pins.iothread: in policyhook.schema.DOMAIN_SCHEMA, but not documented"),
    ("| `version` | v |\n| `pins` | p |\n| `pins.iothread` | i |\n| `weight` | w |\n",
     "t.md:6: weight: documented, but not in policyhook.schema.DOMAIN_SCHEMA"),
    ("| `version` | v |\n| `version` | v |\n| `pins` | p |\n| `pins.iothread` | i |\n",
     "t.md:4: version: documented twice"),
]


@pytest.mark.parametrize("rows,error", BAD_KEYS, ids=[e for _, e in BAD_KEYS])
def test_keys_out_of_step_with_the_schema(rows, error):
    with pytest.raises(mkman.DocError) as e:
        mkman.check_keys(table("| domain key | meaning |\n|---|---|\n" + rows), "t.md", SCHEMA)
    assert str(e.value) == error


def test_new_keys_flow_in_with_their_words():
    rows = "| `version` | v |\n| `pins` | p |\n| `pins.iothread` | i |\n"
    assert mkman.check_keys(table("| domain key | meaning |\n|---|---|\n" + rows), "t.md", SCHEMA) == [
        ("version", "always 2", True, "v"), ("pins", "an object with the keys below", False, "p"),
        ("pins.iothread", "a CPU list in canonical form", False, "i")]


@pytest.mark.parametrize("schema,words", [
    ({"type": "integer", "minimum": 0, "maximum": 9}, "an integer from 0 to 9"),
    ({"type": "integer", "minimum": 1}, "an integer of at least 1"),
    ({"type": "string", "format": "domain-name", "maxLength": 200},
     "a domain name of at most 200 characters"),
    ({"type": "object", "propertyNames": {"format": "vcpu-index"}, "additionalProperties":
      {"type": "string", "format": "cpulist"}},
     "an object: each key a vCPU number (a JSON string), each value a CPU list in canonical form"),
    ({"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
     "an array of at least 1 item, no repeats, each a string"),
    ({"enum": ["a", "b"]}, 'one of "a", "b"'),
])
def test_describe(schema, words):
    assert mkman.describe(schema, "S: k") == words


@pytest.mark.parametrize("schema,error", [
    ({"type": "string", "pattern": "^x$"}, "S: k: schema keyword pattern has no wording in tools/mkman.py"),
    ({"type": "string", "format": "iothread-index"},
     "S: k: format 'iothread-index' has no wording in tools/mkman.py (FORMATS)"),
    ({"type": "boolean"}, "S: k: type 'boolean' has no wording in tools/mkman.py"),
])
def test_describe_refuses_what_it_cannot_word(schema, error):
    with pytest.raises(mkman.DocError) as e:
        mkman.describe(schema, "S: k")
    assert str(e.value) == error


MAPPING = "| driver | cgroup | weight W | cap C |\n|---|---|---|---|\n"
ROWS = {
    "QEMU v1": "| QEMU | v1 | `cpu_shares = 4*W` | "
               "`global_period = 100000, global_quota = C*1000 if C > 0 else -1` |\n",
    "QEMU v2": "| QEMU | v2 | `cpu_shares = clamp(round(W*100/256), 1, 10000)` | "
               "`global_period = 100000, global_quota = C*1000 if C > 0 else -1` |\n",
    "LXC v1": "| LXC | v1 | `cpu_shares = 4*W` | "
              "`vcpu_period = 100000, vcpu_quota = C*1000 if C > 0 else -1` |\n",
    "LXC v2": "| LXC | v2 | `cpu_shares = clamp(round(W*100/256), 1, 10000)` | "
              "`vcpu_period = 100000, vcpu_quota = C*1000 if C > 0 else -1` |\n",
    "Xen": "| Xen | any | `weight = W` | `cap = C` |\n",
}


def mapping_table(**changes):
    rows = dict(ROWS, **changes)
    return table(MAPPING + "".join(r for r in rows.values() if r))


def test_mapping_as_documented_agrees_with_the_code():
    mkman.check_mapping(mapping_table(), "t.md")


BAD_MAPPING = [
    ({"QEMU v2": ROWS["QEMU v2"].replace("round(W*100/256)", "W*100//256")},
     "t.md:4: QEMU, cgroup v2: on cgroup v2, W = 4: the page gives cpu_shares=1, mapping.sched_params "
     "cpu_shares=2"),
    ({"LXC v1": ROWS["LXC v1"].replace("if C > 0 else -1", "if C > 0 else 0")},
     "t.md:5: LXC, cgroup v1: on cgroup v1, C = 0: the page gives vcpu_period=100000, vcpu_quota=0, "
     "mapping.sched_params vcpu_period=100000, vcpu_quota=-1"),
    ({"Xen": "| Xen | any | `weight = W` | `cap = C, period = 100000` |\n"},
     "t.md:7: Xen, cgroup any: on cgroup v1, C = 0: the page gives cap=0, period=100000, "
     "mapping.sched_params cap=0\n"
     "t.md:7: Xen, cgroup any: on cgroup v2, C = 0: the page gives cap=0, period=100000, "
     "mapping.sched_params cap=0"),
    ({"LXC v2": ""}, "t.md:1: LXC on cgroup v2: no row"),
    ({"LXC v2": ROWS["LXC v2"].replace("| v2 |", "| any |")},
     "t.md:6: LXC, cgroup any: LXC on cgroup v1 has a row already (line 5)\n"
     "t.md:6: LXC, cgroup any: on cgroup v1, W = 1: the page gives cpu_shares=1, mapping.sched_params "
     "cpu_shares=4"),
    ({"Xen": "| Xen | v3 | `weight = W` | `cap = C` |\n"},
     "t.md:7: Xen, cgroup v3: a driver is QEMU, LXC, Xen; a cgroup is v1, v2 or any\n"
     "t.md:1: Xen on cgroup v1: no row\nt.md:1: Xen on cgroup v2: no row"),
    ({"Xen": "| Xen | any | weight = W | `cap = C` |\n"},
     "t.md:7: Xen, cgroup any: 'weight = W': formulas are one `code` span"),
    ({"Xen": "| Xen | any | `weight == W` | `cap = C` |\n"},
     "t.md:7: Xen, cgroup any: 'weight == W' is not 'parameter = expression'"),
]


@pytest.mark.parametrize("changes,error", BAD_MAPPING, ids=[e.split("\n")[0] for _, e in BAD_MAPPING])
def test_mapping_out_of_step_with_the_code(changes, error):
    with pytest.raises(mkman.DocError) as e:
        mkman.check_mapping(mapping_table(**changes), "t.md")
    assert str(e.value) == error


@pytest.mark.parametrize("text,error", [
    ("{{default:hook.on_conflict}}", None),
    ("a\n{{default:hook.on_nothing}}", "s.md:2: {{default:hook.on_nothing}}: no such setting in "
                                       "policyhook.settings.KEYS"),
    ("{{version:x}}", "s.md:1: {{version:x}}: unknown placeholder"),
])
def test_placeholders(text, error):
    if error is None:
        assert mkman.expand(text, "s.md") == "refuse"
        return
    with pytest.raises(mkman.DocError) as e:
        mkman.expand(text, "s.md")
    assert str(e.value) == error


@pytest.mark.parametrize("md,error", [
    ("| a | b |\n| c | d |\n", "t.md:1: a table needs a |---| line under its header"),
    ("| a | b |\n|---|---|\n| c |\n", "t.md:3: 1 cells, the header has 2"),
    ("text\n\n> quoted\n", "t.md:3: not in the subset tools/mdroff.py reads: > quoted"),
    ("```\ncode\n```\n", "t.md:1: not in the subset tools/mdroff.py reads: ```"),
])
def test_markup_outside_the_subset(md, error):
    with pytest.raises(mdroff.MarkupError) as e:
        mdroff.parse(md, "t.md")
    assert str(e.value) == error


def test_markup_renders():
    blocks = mdroff.parse("# TITLE\n\nSome `code` and *text*,\n-1 and .dot\n\n- one\n  more\n\n"
                          "    literal -x\n\n| a | b |\n|---|---|\n| `x|y` | z |\n", "t.md")
    assert mdroff.render(blocks) == [
        ".SH TITLE", "Some \\fBcode\\fR and \\fItext\\fR, \\-1 and .dot", ".IP \\(bu 2", "one more",
        ".PP", ".RS 4", ".nf", "\\&literal \\-x", ".fi", ".RE", ".TP", "\\fBx|y\\fR", "z"]
