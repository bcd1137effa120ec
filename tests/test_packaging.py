"""The spec, pyproject.toml and make dist agree: URL, Source0, version, license."""

import configparser
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


def pyproject():
    """pyproject.toml, parsed: tomllib from Python 3.11, tomli before (None without it)."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            return None
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def setup_cfg():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(REPO, "setup.cfg"), encoding="utf-8")
    return parser


def cfg_list(value):
    """A setup.cfg list: one item a line, or separated by commas."""
    return [item.strip() for line in value.strip().splitlines() for item in line.split(",") if item.strip()]


def test_setup_cfg_says_what_pyproject_says():
    """setuptools before 61 (RHEL 9 has 53) reads setup.cfg, later ones pyproject.toml:
    the two give the same package."""
    project_toml = pyproject()
    if project_toml is None:
        pytest.skip("needs tomllib (Python 3.11) or tomli to read pyproject.toml")
    project = project_toml["project"]
    cfg = setup_cfg()
    meta, options = cfg["metadata"], cfg["options"]
    assert meta["name"] == project["name"] == "policyhook"
    # The version has one source, read the same way by both.
    assert project["dynamic"] == ["version"]
    assert project_toml["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "policyhook.__version__"}
    assert meta["version"] == "attr: policyhook.__version__"
    assert meta["description"] == project["description"]
    assert meta["long_description"] == "file: " + project["readme"]
    assert meta["long_description_content_type"] == "text/markdown"
    assert meta["license"] == project["license"]["text"]
    assert meta["url"] == project["urls"]["Homepage"]
    assert [c.strip() for c in meta["classifiers"].strip().splitlines()] == project["classifiers"]
    assert options["python_requires"] == project["requires-python"]
    assert cfg_list(options["install_requires"]) == project["dependencies"]
    extras = cfg["options.extras_require"]
    assert {k: cfg_list(v) for k, v in extras.items()} == project["optional-dependencies"]
    scripts = dict(line.split(" = ") for line in cfg_list(cfg["options.entry_points"]["console_scripts"]))
    assert scripts == project["scripts"] == {"policyctl": "policyhook.cli:main"}
    assert cfg_list(options["packages"]) == project_toml["tool"]["setuptools"]["packages"]


def test_every_package_of_the_tree_is_listed():
    packages = sorted(os.path.relpath(d, REPO).replace(os.sep, ".")
                      for d, _, files in os.walk(os.path.join(REPO, "policyhook")) if "__init__.py" in files)
    assert cfg_list(setup_cfg()["options"]["packages"]) == packages


def test_build_requires_setuptools_that_rhel_9_has():
    """RHEL 9's python3-setuptools is 53: %pyproject_buildrequires there must not ask for more."""
    assert re.search(r'^requires = \["setuptools>=53"\]$', read("pyproject.toml"), re.M)
