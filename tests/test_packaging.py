"""The spec, pyproject.toml and make dist agree: URL, Source0, version, license."""

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
        return f.read()


def spec_tag(tag):
    return re.search(r"^%s:\s*(.+)$" % tag, read("policyhook.spec"), re.M).group(1).strip()


def test_url_is_the_documented_placeholder_everywhere():
    url = spec_tag("URL")
    assert url == "https://policyhook.example/"
    assert re.search(r'^Homepage = "%s"$' % re.escape(url), read("pyproject.toml"), re.M)
    assert spec_tag("Source0") == "%{url}releases/%{name}-%{version}.tar.gz"


def test_license_is_spdx_in_spec_and_pyproject():
    assert spec_tag("License") == "GPL-2.0-or-later"
    assert 'license = {text = "GPL-2.0-or-later"}' in read("pyproject.toml")
    assert read("LICENSE").lstrip().startswith("GNU GENERAL PUBLIC LICENSE\n                       Version 2")


def test_ruff_is_not_in_the_test_extra():
    section = read("pyproject.toml").split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = dict(re.findall(r"^(\w+) = \[(.*)\]$", section, re.M))
    assert "ruff" not in extras["test"] and "ruff" in extras["lint"]


@pytest.fixture
def tree(tmp_path):
    """What make check-spec reads: the spec and the package's version."""
    os.makedirs(tmp_path / "policyhook")
    shutil.copy(os.path.join(REPO, "policyhook", "__init__.py"), tmp_path / "policyhook")
    shutil.copy(os.path.join(REPO, "policyhook.spec"), tmp_path)
    return tmp_path


def check_spec(tree):
    # Not the variables of a make that runs these tests (make unit PYTHON=...).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "-s", "--no-print-directory", "-f", os.path.join(REPO, "Makefile"),
                        "PYTHON=" + sys.executable, "check-spec"], cwd=str(tree), capture_output=True,
                       text=True, env=env)
    return r.returncode, r.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_dist_checks_source0(tree):
    assert check_spec(tree) == (0, "")
    spec = (tree / "policyhook.spec").read_text()
    (tree / "policyhook.spec").write_text(spec.replace("%{name}-%{version}.tar.gz", "%{name}.tar.gz"))
    version = re.search(r'__version__ = "(.*)"', read("policyhook/__init__.py")).group(1)
    code, err = check_spec(tree)
    assert code != 0
    assert err.splitlines()[0] == (
        "policyhook.spec: Source0 https://policyhook.example/releases/policyhook.tar.gz does not name "
        "policyhook-%s.tar.gz, the tarball make dist writes" % version)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("entry, message", [
    ("policyhook ({v}-1) unstable; urgency=medium", ""),
    ("policyhook ({v}-0ubuntu2) noble; urgency=medium", ""),
    ("policyhook (9.9.9-1) unstable; urgency=medium",
     "debian/changelog has version 9.9.9-1, policyhook/__init__.py has {v}: "
     "add a changelog entry {v}-1 (dch -v {v}-1)"),
])
def test_make_deb_checks_the_changelog_version(tree, entry, message):
    version = re.search(r'__version__ = "(.*)"', read("policyhook/__init__.py")).group(1)
    os.makedirs(tree / "debian")
    (tree / "debian" / "changelog").write_text(entry.format(v=version) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "-s", "--no-print-directory", "-f", os.path.join(REPO, "Makefile"),
                        "PYTHON=" + sys.executable, "check-debian"], cwd=str(tree), capture_output=True,
                       text=True, env=env)
    expected = [message.format(v=version)] if message else []
    assert (r.returncode != 0, r.stderr.splitlines()[:1]) == (bool(message), expected)


def test_debian_changelog_is_the_package_version():
    version = re.search(r'__version__ = "(.*)"', read("policyhook/__init__.py")).group(1)
    assert re.match(r"policyhook \(%s-\d+\) " % re.escape(version), read("debian/changelog"))
