"""What each policyctl command loads: a structural check of what keeps it quick
(benchmarks/cli_latency.py measures the time). jsonschema only where a document must be
judged by it (`check` of a broken file), libvirt only where libvirt is asked, filelock
nowhere (locking.FlockLock is the registry's lock), the planner not for `list`; and
`--version` with no parser, a parser of the one command asked for otherwise."""

import os
import subprocess
import sys

import pytest
from testdriver import URI
from unit_helpers import REPO, make_registry, policy, write_raw

from policyhook.cli.parser import build, command_word
from policyhook.paths import Paths

# Runs policyctl as its console script does, then names every module it loaded.
PROBE = """
import sys
from policyhook.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("MODULES", " ".join(sorted(sys.modules)))
sys.exit(code)
"""

HEAVY = ("jsonschema", "libvirt", "filelock", "policyhook.api", "policyhook.planner", "policyhook.session",
         "policyhook.virt", "policyhook.enforce")
NO_SCHEMA = ("jsonschema", "libvirt", "filelock")


def loaded(root, argv):
    r = subprocess.run([sys.executable, "-c", PROBE] + [a.replace("ROOT", str(root)) for a in argv],
                       capture_output=True, text=True, cwd=str(root), env=dict(os.environ, PYTHONPATH=REPO),
                       timeout=60)
    lines = [line for line in r.stdout.splitlines() if line.startswith("MODULES ")]
    assert lines, (r.returncode, r.stdout, r.stderr)
    return r.returncode, set(lines[-1].split()[1:]), r.stderr


def top(modules):
    return {m.split(".")[0] for m in modules} | modules


CASES = [
    # (argv, exit code, must not be loaded, must be loaded)
    (["--version"], 0, HEAVY + ("policyhook.registry",), ()),
    (["--root", "ROOT", "list"], 0, HEAVY, ("policyhook.registry",)),
    (["--root", "ROOT", "list", "--json"], 0, ("jsonschema", "libvirt", "filelock", "policyhook.api"), ()),
    (["--root", "ROOT", "--offline", "vcpupin", "vm1", "0", "0"], 0,
     ("jsonschema", "libvirt", "filelock", "policyhook.virt"), ("policyhook.api",)),
    (["--root", "ROOT", "--offline", "schedweight", "vm1", "512"], 0, NO_SCHEMA, ()),
    (["--root", "ROOT", "--offline", "cpuoccupy", "0", "vm1"], 0, NO_SCHEMA, ()),
    (["--root", "ROOT", "--offline", "cpupolicy", "vm1"], 0, NO_SCHEMA, ()),
    (["--root", "ROOT", "--offline", "check"], 0, NO_SCHEMA, ()),
    # Through libvirt (its test driver): libvirt, but no jsonschema for the write.
    (["--root", "ROOT", "-c", URI, "vcpupin", "stopped", "0", "0"], 0, ("jsonschema", "filelock", "urllib"),
     ("libvirt", "policyhook.virt")),
    (["--root", "ROOT", "-c", URI, "list"], 0, HEAVY, ()),
]


@pytest.mark.parametrize("argv,code,absent,present", CASES, ids=[" ".join(c[0][2:] or c[0]) for c in CASES])
def test_what_a_command_loads(tmp_path, argv, code, absent, present):
    make_registry(str(tmp_path), [policy("vm1", pins={0: "0"}, weight=300), policy("vm2", cap=50)])
    rc, modules, err = loaded(tmp_path, argv)
    assert rc == code, err
    assert sorted(top(modules) & set(absent)) == []
    assert sorted(set(present) - modules) == []


def test_check_judges_a_broken_file_with_jsonschema(tmp_path):
    make_registry(str(tmp_path), [policy("vm1", weight=300)])
    write_raw(Paths(str(tmp_path)).domain_file("vm2"), '{"version": 1, "domain": "vm2", "weight": 0}\n')
    rc, modules, _err = loaded(tmp_path, ["--root", "ROOT", "--offline", "check"])
    assert rc == 4
    assert "jsonschema" in modules


# ---- the parser of the one command asked for --------------------------------------------

WORDS = [
    (["list"], "list"),
    (["--root", "/r", "-c", "qemu:///system", "vcpupin", "vm", "0", "1"], "vcpupin"),
    (["--roo", "/r", "--conn", "list", "cpupolicy", "vm"], "cpupolicy"),   # prefixes take values
    (["--root=/r", "-cqemu:///system", "--offline", "--debug", "verify"], "verify"),
    (["--help", "list"], None),
    (["--he", "list"], None),
    (["-h"], None),
    (["--", "list"], None),
    ([], None),
    (["--version"], None),
    (["nosuch", "x"], "nosuch"),
    (["list", "--help"], "list"),
]


@pytest.mark.parametrize("argv,word", WORDS, ids=[" ".join(w[0]) or "(none)" for w in WORDS])
def test_command_word(argv, word):
    assert command_word(argv) == word


SAME = [
    ["vcpupin", "vm1", "0", "0-1", "--dry-run"],
    ["--root", "/r", "-c", "test:///default", "emulatorpin", "--json", "vm1", "0"],
    ["iothreadpin", "vm1", "1", "0", "--undefined"],
    ["schedweight", "vm1", "512"],
    ["schedcap", "--dry-run", "vm1", "50"],
    ["cpuoccupy", "1", "vm1,vm2", "--whole-cores"],
    ["cpuoccupy", "1", "--clear"],
    ["unset", "vm1", "vcpupin", "0"],
    ["remove", "vm1"],
    ["rename", "a", "b"],
    ["rebind", "vm1"],
    ["cpupolicy", "--json", "vm1"],
    ["verify", "a", "b"],
    ["--offline", "list"],
    ["occupancy", "--json"],
    ["check"],
    ["watch"],
    ["apply", "--all", "--config"],
]


@pytest.mark.parametrize("argv", SAME, ids=[" ".join(a) for a in SAME])
def test_one_command_parses_as_the_whole_parser_does(argv):
    only = command_word(argv)
    assert only is not None
    assert vars(build(only).parse_args(argv)) == vars(build().parse_args(argv))


def _commands(parser):
    return next(a for a in parser._actions if a.dest == "command").choices


@pytest.mark.parametrize("command", sorted(_commands(build())))
def test_one_command_helps_as_the_whole_parser_does(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert list(_commands(build(command))) == [command]
    assert _commands(build(command))[command].format_help() == _commands(build())[command].format_help()


def test_no_such_command_builds_them_all():
    assert sorted(_commands(build("nosuch"))) == sorted(_commands(build()))


def test_version_needs_no_parser():
    import io

    from policyhook import __version__
    from policyhook.cli import main
    out = io.StringIO()
    assert main(["--version"], out) == 0
    assert out.getvalue() == "policyctl %s\n" % __version__
    r = subprocess.run([sys.executable, "-m", "policyhook.cli", "--root", "/nonexistent", "--version"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, out.getvalue(), "")


URIS = ["qemu:///system", "qemu:///session", "lxc:///system", "xen:///system", "test:///default",
        "test:///tmp/host.xml", "qemu+ssh://root@Host.Example:2222/system", "qemu+ssh://host/system",
        "qemu+tcp://10.0.0.1/system?no_verify=1", "qemu+tls://[fe80::1]:16514/system",
        "qemu+ssh://user@[2001:DB8::1]/system", "qemu://localhost/system", "qemu+unix:///system?socket=/x",
        "qemu+ssh://h?x=1", "qemu+ssh://h#frag", "qemu+ssh://@/system", "qemu", "", "qemu:/system"]


@pytest.mark.parametrize("uri", URIS)
def test_uri_host_is_urlsplits_hostname(uri):
    from urllib.parse import urlsplit

    from policyhook.virt import uri_host
    assert uri_host(uri) == urlsplit(uri).hostname


# ---- what a live vcpupin asks libvirt -----------------------------------------------------


class Traced:
    """A connection or domain whose calls are listed (domains handed out are traced too)."""

    def __init__(self, target, who, calls):
        self._target, self._who, self._calls = target, who, calls

    def __getattr__(self, attr):
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            self._calls.append("%s.%s" % (self._who, attr))
            found = value(*args, **kwargs)
            if hasattr(found, "pinVcpuFlags"):
                return Traced(found, "dom", self._calls)
            return found
        return call


def test_a_live_vcpupin_asks_libvirt_only_what_it_needs(tmp_path):
    """The host's CPUs, the domain, its definition (vCPU count, own pins), whether it runs,
    whether it has a definition of its own (a transient domain's originals are saved
    first), and the pin: dom.name() and getURI() are answered by the client library."""
    import io

    import libvirt
    from testdriver import RecordingConn

    from policyhook.cli import main
    calls = []
    conn = Traced(RecordingConn(libvirt.open(URI)), "conn", calls)
    out, err = io.StringIO(), io.StringIO()
    code = main(["--root", str(tmp_path), "-c", URI, "vcpupin", "running2", "0", "2"], out, err,
                connect=lambda uri: conn, environ={})
    assert (code, out.getvalue(), err.getvalue()) == (
        0, "running2: vCPU 0 pinned to 2: saved; applied live\n  vcpupin 0 2\n", "")
    assert calls == ["conn.getURI", "conn.getCPUMap", "conn.lookupByName", "dom.name", "dom.XMLDesc",
                     "dom.isActive", "dom.isPersistent", "dom.pinVcpuFlags"]
