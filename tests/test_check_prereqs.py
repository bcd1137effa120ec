"""tools/check-prereqs: what `make install`, `make rpm`, `make srpm` and `make test` need,
named with the package that provides it. Run with a PATH of fakes: a fake python prints
what the probe would find, fake tools are there or not, `id` says who runs it."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "tools", "check-prereqs")
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")

# A distribution's Python 3.11 with everything installed.
FULL = {"version": "3.11", "executable": "/usr/bin/python3", "in_venv": "0", "system": "1",
        "managed": "0", "Python.h": "1", "setuptools_version": "66.1.1", "pip": "1",
        "setuptools": "1", "wheel": "1", "pytest": "1", "hypothesis": "1", "libvirt": "1",
        "jsonschema": "1", "filelock": "1", "ruff": "1", "venv": "1", "ensurepip": "1"}
PYENV = dict(FULL, executable="/opt/py/bin/python3", system="0")
HERE = "check-prereqs: make %s: "
PKG = "Debian: apt-get install %s; Fedora/RHEL: dnf install %s"
MANAGED = ("python3 is externally managed (PEP 668): pip refuses to install into it. Use a "
           "virtualenv, whose python the hook then runs: python3 -m venv /opt/policyhook && "
           "/opt/policyhook/bin/pip install setuptools wheel libvirt-python jsonschema filelock "
           "&& make install PYTHON=/opt/policyhook/bin/python; or build the package: make rpm")


def fake_python(path, facts):
    if facts is None:
        return
    # printf is a shell builtin: the fake PATH has no cat.
    path.write_text("#!/bin/sh\nprintf '%%s\\n' %s\n" % " ".join("'%s=%s'" % kv for kv in facts.items()))
    path.chmod(0o755)


def fake_tool(path, status=0):
    path.write_text("#!/bin/sh\nexit %d\n" % status)
    path.chmod(0o755)


def run(tmp_path, targets, python=FULL, rpm_python=FULL, venv=None, tools=("rpmbuild", "git", "cc",
        "pkg-config", "apt-get"), uid=1000, git_ok=True, libvirt_dev=True, args=()):
    """check-prereqs' (exit code, output lines) on a machine made of fakes."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    fake_python(bin_ / "python3", python)
    fake_python(tmp_path / "rpm-python3", rpm_python)
    if venv is not None:
        (tmp_path / "venv" / "bin").mkdir(parents=True)
        fake_python(tmp_path / "venv" / "bin" / "python", venv)
    for tool in tools:
        status = {"git": 0 if git_ok else 128, "pkg-config": 0 if libvirt_dev else 1}.get(tool, 0)
        fake_tool(bin_ / tool, status)
    (bin_ / "id").write_text("#!/bin/sh\necho %d\n" % uid)
    (bin_ / "id").chmod(0o755)
    r = subprocess.run([BASH, SCRIPT, "--python", "python3", "--rpm-python", str(tmp_path / "rpm-python3"),
                        "--venv", str(tmp_path / "venv")] + list(args) + list(targets),
                       capture_output=True, text=True, env={"PATH": str(bin_)}, cwd=str(tmp_path))
    assert r.stderr == ""
    return r.returncode, r.stdout.splitlines()


def without(facts, *names, **changes):
    return dict({k: v for k, v in facts.items() if k not in names},
                **{n: "0" for n in names}, **changes)


CASES = [
    # (id, targets, keyword arguments for run(), the lines it prints before the summary)
    ("install-nothing-missing", ["install"], {}, [HERE % "install" + "nothing missing"]),
    ("install-wheel-distribution-python", ["install"], {"python": without(FULL, "wheel")},
     [HERE % "install" + "Python module wheel is missing in python3 (pip builds policyhook with it, "
      "without isolation): " + PKG % ("python3-wheel", "python3-wheel")]),
    ("install-wheel-other-python", ["install"], {"python": without(PYENV, "wheel")},
     [HERE % "install" + "Python module wheel is missing in python3 (pip builds policyhook with it, "
      "without isolation): /opt/py/bin/python3 -m pip install wheel"]),
    ("install-wheel-in-setuptools-70.1", ["install"],
     {"python": without(FULL, "wheel", setuptools_version="70.1.0")}, [HERE % "install" + "nothing missing"]),
    ("install-old-setuptools", ["install"], {"python": dict(PYENV, setuptools_version="58.1.0")},
     [HERE % "install" + "setuptools 58.1.0 in python3 is older than 61 (pip builds policyhook with it, "
      "without isolation): /opt/py/bin/python3 -m pip install 'setuptools>=61'"]),
    ("install-no-pip", ["install"], {"python": without(PYENV, "pip")},
     [HERE % "install" + "Python module pip is missing in python3 (pip builds policyhook with it, "
      "without isolation): /opt/py/bin/python3 -m ensurepip"]),
    ("install-runtime-modules", ["install"], {"python": without(FULL, "libvirt", "filelock")},
     [HERE % "install" + "Python module libvirt is missing in python3 (policyctl and the hook import it): "
      + PKG % ("python3-libvirt", "python3-libvirt"),
      HERE % "install" + "Python module filelock is missing in python3 (policyctl and the hook import it): "
      + PKG % ("python3-filelock", "python3-filelock")]),
    ("install-destdir-needs-no-runtime-modules", ["install"],
     {"python": without(FULL, "libvirt", "filelock"), "args": ["--destdir", "/stage"]},
     [HERE % "install" + "nothing missing"]),
    ("install-externally-managed", ["install"], {"python": dict(FULL, managed="1")},
     [HERE % "install" + MANAGED]),
    ("install-externally-managed-package-build", ["install"],
     {"python": dict(FULL, managed="1"), "args": ["--destdir", "/stage", "--pip-into-env", "no"]},
     [HERE % "install" + "nothing missing"]),
    ("install-externally-managed-virtualenv", ["install"],
     {"python": dict(FULL, managed="1", in_venv="1")}, [HERE % "install" + "nothing missing"]),
    ("install-no-python", ["install"], {"python": None},
     [HERE % "install" + "python3 (PYTHON) does not run: " + PKG % ("python3", "python3")
      + ", or name one with PYTHON=..."]),
    ("install-python-3.8", ["install"], {"python": dict(FULL, version="3.8")},
     [HERE % "install" + "python3 (PYTHON) is Python 3.8; policyhook needs 3.9 or later: name one "
      "with PYTHON=..."]),
    ("rpm-nothing-missing", ["rpm"], {}, [HERE % "rpm" + "nothing missing"]),
    ("rpm-no-rpmbuild", ["rpm"], {"tools": ("git",)},
     [HERE % "rpm" + "rpmbuild is missing (make rpm runs it on the release tarball): "
      + PKG % ("rpm", "rpm-build")]),
    ("rpm-no-git", ["rpm"], {"tools": ("rpmbuild",)},
     [HERE % "rpm" + "git is missing (make dist writes the tarball with git archive): "
      + PKG % ("git", "git")]),
    ("rpm-not-a-checkout", ["rpm"], {"git_ok": False},
     [HERE % "rpm" + "%s is not a git checkout with a commit (make dist writes the tarball with git "
      "archive of HEAD): build from a git clone" % REPO]),
    ("rpm-check-needs-pytest", ["rpm"], {"rpm_python": without(FULL, "pytest", "hypothesis")},
     [HERE % "rpm" + "Python module %s is missing in %%s (%%%%check runs the unit tests; RPMBUILD_ARGS="
      "'--without tests' skips them): " % m + PKG % ("python3-" + m, "python3-" + m)
      for m in ("pytest", "hypothesis")]),
    ("rpm-without-tests", ["rpm"],
     {"rpm_python": without(FULL, "pytest", "hypothesis"), "args": ["--rpm-tests", "no"]},
     [HERE % "rpm" + "nothing missing"]),
    ("rpm-spec-installs-with-pip", ["rpm"], {"rpm_python": without(FULL, "setuptools", "wheel")},
     [HERE % "rpm" + "Python module %s is missing in %%s (the spec installs policyhook with pip): " % m
      + PKG % ("python3-" + m, "python3-" + m) for m in ("setuptools", "wheel")]),
    ("srpm-needs-no-python", ["srpm"], {"rpm_python": None, "tools": ("git",)},
     [HERE % "srpm" + "rpmbuild is missing (make srpm runs it on the release tarball): "
      + PKG % ("rpm", "rpm-build")]),
    ("test-complete-virtualenv", ["test"], {"venv": PYENV, "python": None, "tools": ()},
     [HERE % "test" + "nothing missing"]),
    ("test-no-venv-module", ["test"], {"python": without(FULL, "venv", "ensurepip")},
     [HERE % "test" + "the venv module with ensurepip is missing in python3 (make test builds %s with "
      "it): " + PKG % ("python3-venv", "python3")]),
    ("test-to-compile-libvirt-python", ["test"],
     {"python": without(FULL, "Python.h"), "tools": ("apt-get",)},
     [HERE % "test" + "cc is missing (pip compiles libvirt-python): " + PKG % ("gcc", "gcc"),
      HERE % "test" + "Python.h is missing for python3 (pip compiles libvirt-python): "
      + PKG % ("python3-dev", "python3-devel"),
      HERE % "test" + "pkg-config is missing (pip finds libvirt with it to compile libvirt-python): "
      + PKG % ("pkg-config", "pkgconf-pkg-config")]),
    ("test-libvirt-development-files", ["test"], {"libvirt_dev": False},
     [HERE % "test" + "libvirt's development files are missing (pip compiles libvirt-python against "
      "them): " + PKG % ("libvirt-dev", "libvirt-devel")]),
    ("test-root-the-lab-installs-libvirt-dev", ["test"], {"libvirt_dev": False, "uid": 0},
     [HERE % "test" + "nothing missing"]),
    ("test-root-without-apt", ["test"], {"uid": 0, "tools": ("cc", "pkg-config")},
     [HERE % "test" + "apt-get is missing: as root, make test sets up its end-to-end lab (libvirtd, QEMU, "
      "LXC) from Debian's packages; elsewhere run make lint and make unit with PYTHON=a virtualenv's "
      "python"]),
    ("every-target", ["install", "rpm", "test"],
     {"python": without(FULL, "wheel"), "tools": ("git", "cc", "pkg-config", "apt-get")},
     [HERE % "install" + "Python module wheel is missing in python3 (pip builds policyhook with it, "
      "without isolation): " + PKG % ("python3-wheel", "python3-wheel"),
      HERE % "rpm" + "rpmbuild is missing (make rpm runs it on the release tarball): "
      + PKG % ("rpm", "rpm-build"),
      HERE % "test" + "nothing missing"]),
]


@pytest.mark.parametrize("targets,kwargs,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_names_what_is_missing(tmp_path, targets, kwargs, expected):
    code, lines = run(tmp_path, targets, **kwargs)
    expected = [line.replace("%s", str(tmp_path / ("rpm-python3" if "make rpm" in line else "venv")))
                .replace("%%", "%") for line in expected]
    n = sum(1 for line in expected if not line.endswith(": nothing missing"))
    if n:
        expected.append("check-prereqs: %d missing; install them, then run make again (make "
                        "check-prereqs lists what every target needs)" % n)
    assert (code, lines) == (1 if n else 0, expected)


def test_unknown_argument(tmp_path):
    r = subprocess.run([BASH, SCRIPT, "deploy"], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (
        2, "", "check-prereqs: unknown argument 'deploy' (targets: install, rpm, srpm, test)\n")


def test_probe_of_a_real_interpreter(tmp_path):
    """The probe, run by this interpreter without site-packages, finds no pip, setuptools
    or wheel, and says how to get them for this kind of interpreter."""
    wrapper = tmp_path / "python3"
    wrapper.write_text('#!/bin/sh\nexec %s -I -S "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    r = subprocess.run([BASH, SCRIPT, "--python", str(wrapper), "--destdir", "/stage", "--pip-into-env", "no",
                        "install"],
                       capture_output=True, text=True)
    # Without site, a virtualenv of a Python before 3.11 takes its base's prefix.
    prefix, base, executable = subprocess.run(
        [str(wrapper), "-c", "import sys; print(sys.prefix, sys.base_prefix, sys.executable)"],
        capture_output=True, text=True, check=True).stdout.split()
    distribution = prefix == "/usr" and prefix == base

    def fix(module):
        if distribution:
            return PKG % ("python3-" + module, "python3-" + module)
        if module == "pip":
            return "%s -m ensurepip" % executable
        name = "'setuptools>=61'" if module == "setuptools" else module
        return "%s -m pip install %s" % (executable, name)

    why = "(pip builds policyhook with it, without isolation)"
    assert r.stdout.splitlines() == [
        HERE % "install" + "Python module %s is missing in %s %s: %s" % (m, wrapper, why, fix(m))
        for m in ("pip", "setuptools", "wheel")] + [
        "check-prereqs: 3 missing; install them, then run make again (make check-prereqs lists "
        "what every target needs)"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("goal,variables,checked", [
    ("install", ["DESTDIR=/stage"], "--destdir \"/stage\" --pip-into-env no"),
    # A system interpreter gets the package's layout, not pip into it; a virtualenv's
    # interpreter is pip into it.
    pytest.param("install", ["PYTHON=/usr/bin/python3"], "--destdir \"\" --pip-into-env no",
                 marks=pytest.mark.skipif(not os.path.exists("/usr/bin/python3"),
                                          reason="no /usr/bin/python3")),
    pytest.param("install", ["PYTHON=" + sys.executable], "--pip-into-env yes",
                 marks=pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="not run from a virtualenv")),
    ("rpm", [], "--rpm-tests yes"),
    ("rpm", ["RPMBUILD_ARGS=--without tests"], "--rpm-tests no"),
    ("srpm", [], ""),
    ("test", [], ""),
])
def test_make_runs_it_first(goal, variables, checked):
    # Not the variables of a make this test may run under (make unit PYTHON=...).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "PYTHON")}
    r = subprocess.run(["make", "-n", "--no-print-directory", goal] + variables, cwd=REPO,
                       capture_output=True, text=True, env=env)
    first = r.stdout.splitlines()[0]
    assert first.startswith("tools/check-prereqs ") and first.endswith(" " + goal)
    assert checked in first
