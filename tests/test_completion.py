"""policyctl's bash completion, run in bash as bash runs it: COMP_WORDS and COMP_CWORD
set, the completion function called, COMPREPLY read back."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")

RUN = r"""
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_policyctl
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def completion(tmp_path_factory):
    out = tmp_path_factory.mktemp("completion") / "policyctl"
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "mkcompletion.py"),
                    os.path.join(REPO, "contrib", "bash-completion", "policyctl.in"), str(out)],
                   check=True)
    (out.parent / "bin").mkdir()
    virsh = out.parent / "bin" / "virsh"
    virsh.write_text('#!/bin/sh\necho "$*" >> "$VIRSH_LOG"\n'
                     'if [ -n "$VIRSH_NAMES" ]; then cat "$VIRSH_NAMES"; fi\n')
    virsh.chmod(0o755)
    return str(out)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A registry with three domains, and one file that is not a policy."""
    root = tmp_path_factory.mktemp("root")
    domains = root / "etc" / "policyhook" / "domains"
    domains.mkdir(parents=True)
    for name in ("web1", "web2", "db"):
        (domains / (name + ".json")).write_text("{}")
    (domains / "notes.txt").write_text("")
    (root / "sub").mkdir()
    return str(root)


def complete(completion, *words, cwd="/", names=None, log="/dev/null"):
    """COMPREPLY for `policyctl WORDS...`. The `virsh` on PATH is a fake next to the
    completion (see the fixture): it logs its arguments to `log` and prints the lines of
    the file `names`, as `virsh list --all --name` prints the domains libvirt knows."""
    fake = os.path.join(os.path.dirname(completion), "bin")
    env = {"PATH": fake + ":" + os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "VIRSH_LOG": log, "VIRSH_NAMES": names or ""}
    r = subprocess.run([BASH, "--norc", "--noprofile", "-c", RUN, "bash", completion, "policyctl"]
                       + list(words), capture_output=True, text=True, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return sorted(line for line in r.stdout.split("\n") if line)


COMMANDS = ["apply", "check", "cpuoccupy", "cpupolicy", "emulatorpin", "iothreadpin", "list", "occupancy",
            "rebind", "remove", "rename", "schedcap", "schedweight", "unset", "vcpupin", "vcpusched",
            "verify", "watch"]
DOMAINS = ["db", "web1", "web2"]

CASES = [
    # (words after 'policyctl'; ROOT stands for the test registry's root, expected)
    (("",), COMMANDS),
    (("sch",), ["schedcap", "schedweight"]),
    (("--",), ["--connect", "--debug", "--help", "--offline", "--root", "--version"]),
    (("--r",), ["--root"]),
    (("--root", "ROOT", ""), COMMANDS),
    (("--root", "ROOT", "vcpupin", ""), DOMAINS),
    (("--root", "ROOT", "vcpupin", "w"), ["web1", "web2"]),
    (("--root", "ROOT", "vcpupin", "web1", ""), []),
    (("--root", "ROOT", "vcpupin", "web1", "0", ""), []),
    (("--root", "ROOT", "vcpupin", "--"), ["--auto", "--dry-run", "--help", "--json", "--undefined"]),
    (("--root", "ROOT", "vcpupin", "web1", "--auto", ""), []),
    (("--root", "ROOT", "cpuoccupy", "--auto", ""), []),
    (("--root", "ROOT", "cpuoccupy", "--auto", "2", ""), DOMAINS),
    (("--root", "ROOT", "cpuoccupy", "--auto", "2", "web1,d"), ["web1,db"]),
    (("--root", "ROOT", "vcpupin", "--dry-run", ""), DOMAINS),
    (("--root", "=", "ROOT", "schedcap", "d"), ["db"]),
    (("--root", "ROOT", "cpuoccupy", ""), []),
    (("--root", "ROOT", "cpuoccupy", "1", ""), DOMAINS),
    (("--root", "ROOT", "cpuoccupy", "1", "web1,"), ["web1,db", "web1,web2"]),
    (("--root", "ROOT", "cpuoccupy", "1", "web1,db,w"), ["web1,db,web2"]),
    (("--root", "ROOT", "cpuoccupy", "--"), ["--auto", "--clear", "--dry-run", "--help", "--json",
                                             "--undefined",
                                             "--whole-cores"]),
    (("--root", "ROOT", "unset", "db", ""), ["cap", "emulatorpin", "iothreadpin", "vcpupin", "vcpusched",
                                              "weight"]),
    (("--root", "ROOT", "iothreadpin", "w"), ["web1", "web2"]),
    (("--root", "ROOT", "unset", "db", "w"), ["weight"]),
    (("--root", "ROOT", "unset", "db", "vcpupin", ""), []),
    (("--root", "ROOT", "apply", "web1", ""), DOMAINS),
    (("--root", "ROOT", "apply", "web1", "db", "w"), ["web1", "web2"]),
    (("--root", "ROOT", "list", ""), []),
    (("-c", "qemu", ":", "///system", "--root", "ROOT", "remove", ""), DOMAINS),
    (("--connect", "test", ":", "///default", "--root", "=", "ROOT", "cpupolicy", "web"),
     ["web1", "web2"]),
    (("-c", ""), []),
    (("nosuchcommand", ""), []),
]


@pytest.mark.parametrize("words,expected", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_completes(completion, root, words, expected):
    assert complete(completion, *[root if w == "ROOT" else w for w in words]) == expected


def test_domains_come_from_root_only(completion, tmp_path):
    # An empty root, and one with no domains directory: nothing offered, no error.
    assert complete(completion, "--root", str(tmp_path), "remove", "") == []
    (tmp_path / "etc" / "policyhook" / "domains").mkdir(parents=True)
    assert complete(completion, "--root", str(tmp_path), "remove", "") == []


def test_root_value_completes_directories(completion, root):
    assert complete(completion, "--root", root + "/s") == [root + "/sub"]
    assert complete(completion, "--root", "=", root + "/s") == [root + "/sub"]


def test_every_command_of_the_parser_is_offered(completion):
    sys.path.insert(0, REPO)
    from policyhook.cli.parser import build

    parser = build()
    names = next(a.choices for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    assert complete(completion, "") == sorted(names)


def test_names_are_quoted_for_the_shell(completion, tmp_path):
    domains = tmp_path / "etc" / "policyhook" / "domains"
    domains.mkdir(parents=True)
    (domains / "my vm.json").write_text("{}")
    assert complete(completion, "--root", str(tmp_path), "remove", "my") == ["my\\ vm"]
    assert complete(completion, "--root", str(tmp_path), "cpuoccupy", "1", "a,m") == ["a,my\\ vm"]


def test_a_glob_in_the_working_directory_does_not_leak_in(completion, root, tmp_path):
    # 'domain*' in the generated table must not expand against files where bash runs.
    (tmp_path / "domainX").write_text("")
    assert complete(completion, "--root", root, "apply", "web1", "", cwd=str(tmp_path)) == DOMAINS


def test_domains_libvirt_knows_are_offered_with_one_virsh_list(completion, root, tmp_path):
    names = tmp_path / "names"
    names.write_text("web1\nweb3\nmy vm\n")
    log = tmp_path / "log"
    assert complete(completion, "--root", root, "vcpupin", "w", names=str(names), log=str(log)) == \
        ["web1", "web2", "web3"]
    assert log.read_text() == "-q list --all --name\n"
    assert complete(completion, "-c", "qemu:///session", "--root", root, "cpuoccupy", "1", "web1,",
                    names=str(names), log=str(log)) == ["web1,db", "web1,my\\ vm", "web1,web2", "web1,web3"]
    assert log.read_text().splitlines()[1] == "-q -c qemu:///session list --all --name"
    # --offline asks libvirt nothing; nor does a word that is not a domain.
    log.write_text("")
    assert complete(completion, "--offline", "--root", root, "vcpupin", "w", names=str(names),
                    log=str(log)) == ["web1", "web2"]
    assert complete(completion, "--root", root, "vcpupin", "web1", "0", "", names=str(names),
                    log=str(log)) == []
    assert log.read_text() == ""
