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
    r = subprocess.run(["groff", "-man", "-ww", "-z", str(tmp_path / page)], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, "")


SHIPPED = open(os.path.join(REPO, "etc", "policyhook.conf"), encoding="utf-8").read()

def line_of(text, needle):
    return text[:text.index(needle)].count("\n") + 1


BAD_CONF = [
    # (change to the shipped file, the line the error names, the error)
    (("#timeout = 30", "#timeout = 31"), "#timeout = 31",
     "c:%d: [applier] timeout: documented default 31, but the code's default is 30.0"),
    (("#timeout = 30", "#timeout = 700"), "#timeout = 700",
     "c:%d: [applier] timeout: documented default: 700 is not in 1..600"),
    (("#timeout = 30", "#timeout = 30\n#retries = 3"), "#retries",
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
