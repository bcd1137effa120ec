"""Every flag policyctl's words suggest is a flag of the command they name, or of the
command that was run: the read commands and unset cannot record a policy ahead of a
domain, so they do not offer --undefined. And `cpupolicy` of a domain the registry knows
only as a member of an occupancy set shows that membership."""

import ast
import io
import json
import os
import re

import libvirt
import pytest
from testdriver import URI, RecordingConn
from unit_helpers import REPO, make_registry, policy

from policyhook.cli import main
from policyhook.cli.parser import build

PARSER = build()
COMMANDS = next(a for a in PARSER._actions if a.dest == "command").choices
GLOBAL = set(PARSER._option_string_actions)


def flags_of(command):
    return GLOBAL | set(COMMANDS[command]._option_string_actions)


# 'policyctl apply --config vm1', (policyctl apply --all), `policyctl list`: up to a quote,
# a bracket or a backtick.
SUGGESTION = re.compile(r"policyctl ([a-z]+)([^'\"`()\n]*)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def wrong_flags(text, run=None):
    """[(command, flag)] of each flag in `text` that the command it goes with lacks: the
    command a 'policyctl CMD ...' suggestion names, else `run`."""
    found = []
    named = set()
    for m in SUGGESTION.finditer(text):
        command = m.group(1)
        if command not in COMMANDS:
            continue   # prose: "policyctl and the hook"
        for flag in FLAG.findall(m.group(2)):
            named.add((m.start(2), flag))
            if flag not in flags_of(command):
                found.append((command, flag))
    if run is not None:
        inside = [(m.start(2), m.end(2)) for m in SUGGESTION.finditer(text)]
        for m in FLAG.finditer(text):
            if not any(a <= m.start() < b for a, b in inside) and m.group() not in flags_of(run):
                found.append((run, m.group()))
    return found


def test_the_checker_sees_a_wrong_flag():
    assert wrong_flags("run 'policyctl apply --all' to finish") == []
    assert wrong_flags("run 'policyctl list --all' to finish") == [("list", "--all")]
    assert wrong_flags("(policyctl apply --config vm1)") == []
    assert wrong_flags("x; --undefined records a policy", run="cpupolicy") == [("cpupolicy", "--undefined")]
    assert wrong_flags("x; --undefined records a policy", run="vcpupin") == []
    assert wrong_flags("policyctl and the hook --json") == []


def _strings(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "policyctl " in node.value:
            yield node.lineno, node.value


SOURCES = sorted(os.path.join(d, f) for d, _dirs, files in os.walk(os.path.join(REPO, "policyhook"))
                 for f in files if f.endswith(".py"))


@pytest.mark.parametrize("path", SOURCES, ids=[os.path.relpath(p, REPO) for p in SOURCES])
def test_every_suggested_command_has_its_flags(path):
    """Each 'policyctl CMD --flag' the code writes (messages, docstrings) names a flag CMD has."""
    wrong = [(line, bad) for line, text in _strings(path) for bad in wrong_flags(text)]
    assert wrong == []


# ---- what the read commands (and unset) say when they refuse --------------------------


@pytest.fixture
def root(tmp_path):
    # "ghost" is known only as a member of CPU 2's occupancy set; vm1 has a policy.
    make_registry(str(tmp_path), [policy("pinned1", weight=300)], occupancy={2: ["ghost", "running2"]})
    return str(tmp_path)


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield RecordingConn(c)
    c.close()


def run(root, conn, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(["--root", root, "-c", URI] + list(argv), out, err, connect=lambda uri: conn, environ={})
    return code, out.getvalue(), err.getvalue()


NOT_KNOWN = "Error: domain '%%s' is not defined in libvirt (%s) and has no policy%%s\n" % URI
REFUSALS = [
    # (argv, exit code, stderr)
    (["cpupolicy", "nosuch"], 2, NOT_KNOWN % ("nosuch", "")),
    (["cpupolicy", "pinned"], 2, NOT_KNOWN % ("pinned", "; did you mean 'pinned1'?")),
    (["cpupolicy", "--json", "nosuch"], 2, NOT_KNOWN % ("nosuch", "")),
    (["verify", "nosuch"], 2, NOT_KNOWN % ("nosuch", "")),
    (["verify", "running2", "stoped"], 2, NOT_KNOWN % ("stoped", "; did you mean 'stopped'?")),
    (["apply", "nosuch"], 2, NOT_KNOWN % ("nosuch", "")),
    (["apply"], 2, "Error: give DOMAIN names or --all (see 'policyctl apply --help')\n"),
    (["--offline", "apply", "--all"], 2,
     "Error: apply puts the policy in force through libvirt; it cannot work --offline\n"),
    (["--offline", "verify"], 2,
     "Error: verify reads the live values from libvirt; it cannot work --offline\n"),
    (["unset", "nosuch", "weight"], 2, NOT_KNOWN % ("nosuch", "")),
    (["unset", "nosuch", "vcpupin", "0"], 2, NOT_KNOWN % ("nosuch", "")),
    (["unset", "pinned1", "emulatorpin", "1"], 2,
     "Error: INDEX goes only with 'unset DOMAIN vcpupin VCPU' or 'unset DOMAIN iothreadpin IOTHREAD' "
     "or 'unset DOMAIN vcpusched VCPUS'\n"),
    (["remove", "nosuch"], 2, "Error: domain 'nosuch' has no policy\n"),
    (["rebind", "nosuch"], 2, "Error: domain 'nosuch' is not defined in libvirt (%s); rebind binds a policy "
                              "to a defined domain\n" % URI),
    # A command that can record a policy ahead of its domain says how.
    (["vcpupin", "nosuch", "0", "0"], 2,
     "Error: domain 'nosuch' is not defined in libvirt (%s); --undefined records a policy for a domain "
     "not defined yet\n" % URI),
    (["cpuoccupy", "0"], 2, "Error: give DOMAINS, or --clear to free the CPUs (see 'policyctl cpuoccupy "
                            "--help')\n"),
]


@pytest.mark.parametrize("argv,code,message", REFUSALS, ids=[" ".join(r[0]) for r in REFUSALS])
def test_refusals_suggest_only_flags_the_command_has(root, conn, argv, code, message):
    assert run(root, conn, *argv) == (code, "", message)
    command = next(a for a in argv if a in COMMANDS)
    assert wrong_flags(message, run=command) == []


# ---- a member of an occupancy set with no policy of its own -----------------------------


MEMBER = "Policy:      none of its own; a member of the occupancy set of CPU 2 (cpuoccupy)"


def test_cpupolicy_shows_occupancy_membership(root, conn):
    code, out, err = run(root, conn, "cpupolicy", "ghost")
    assert (code, err) == (0, "")
    assert out.splitlines()[:4] == [
        "Domain:      ghost (not defined in libvirt)",
        MEMBER,
        "Host CPUs:   0,2,4",
        "Occupies:    2 (cpuoccupy)",
    ]
    code, out, err = run(root, conn, "cpupolicy", "--json", "ghost")
    doc = json.loads(out)
    assert (code, doc["stored"], doc["occupies"], doc["defined"]) == (0, False, [2], False)


def test_a_defined_member_without_a_policy(root, conn):
    code, out, _err = run(root, conn, "cpupolicy", "running2")
    assert code == 0
    assert out.splitlines()[1] == MEMBER


@pytest.mark.parametrize("argv,line", [
    (["verify", "ghost"], "ghost: not running; applies at next start"),
    (["apply", "ghost"], "ghost: not running; applies at next start"),
])
def test_other_reads_know_the_member_too(root, conn, argv, line):
    assert run(root, conn, *argv) == (0, line + "\n", "")
