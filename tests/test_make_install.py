"""Where `make install` puts policyhook: under /usr/local for a source install, under /usr
for a package build (DESTDIR), in the site directory the interpreter searches, with the
hook program where libvirtd's AppArmor profile lets it run (doc/packaging.md)."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_VENV = sys.prefix != sys.base_prefix
# What `make install` reads from the tree (a copy: make writes build/ beside them).
TREE = ["policyhook", "hooks", "tools", "etc", "contrib", "doc", "Makefile", "pyproject.toml",
        "setup.cfg", "README.md", "LICENSE"]

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def env():
    # Not the variables of a make that runs these tests (make unit PYTHON=...).
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}


def make_vars(names, *args, python=None):
    """{NAME: value} as the Makefile decides them for `make ARGS`."""
    rule = "show-vars: ; @" + " && ".join("echo '%s=$(%s)'" % (n, n) for n in names)
    r = subprocess.run(["make", "-s", "--no-print-directory", "-f", os.path.join(REPO, "Makefile"),
                        "--eval", rule, "PYTHON=" + (python or sys.executable)] + list(args) + ["show-vars"],
                       cwd=REPO, capture_output=True, text=True, env=env())
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines())


DIRS = ["PREFIX", "BINDIR", "SBINDIR", "HOOKPROG", "UNITDIR", "TMPFILESDIR", "MANDIR", "COMPLETIONDIR",
        "DOCDIR", "SYSCONFDIR", "HOOKDIR"]
LOCAL = {"PREFIX": "/usr/local", "SBINDIR": "/usr/local/sbin", "HOOKPROG": "/etc/libvirt/hooks/policyhook",
         "UNITDIR": "/usr/local/lib/systemd/system", "TMPFILESDIR": "/usr/local/lib/tmpfiles.d",
         "MANDIR": "/usr/local/share/man", "COMPLETIONDIR": "/usr/local/share/bash-completion/completions",
         "DOCDIR": "/usr/local/share/doc/policyhook", "SYSCONFDIR": "/etc", "HOOKDIR": "/etc/libvirt/hooks"}
PACKAGE = {"PREFIX": "/usr", "BINDIR": "/usr/bin", "SBINDIR": "/usr/sbin", "HOOKPROG": "/usr/sbin/policyhook",
           "UNITDIR": "/usr/lib/systemd/system", "TMPFILESDIR": "/usr/lib/tmpfiles.d",
           "MANDIR": "/usr/share/man", "COMPLETIONDIR": "/usr/share/bash-completion/completions",
           "DOCDIR": "/usr/share/doc/policyhook", "SYSCONFDIR": "/etc", "HOOKDIR": "/etc/libvirt/hooks"}


@needs_make
@pytest.mark.parametrize("args, expected", [
    # A source install: /usr/local, the hook program beside its links under /etc.
    ([], LOCAL),
    # A package build stages /usr whether it names PREFIX or not (debian/rules and the
    # spec pass PREFIX=/usr; other packagers pass DESTDIR only).
    (["DESTDIR=/stage"], PACKAGE),
    (["DESTDIR=/stage", "PREFIX=/usr"], PACKAGE),
    # The /usr/local layout staged, as the tests below install it.
    (["DESTDIR=/stage", "PREFIX=/usr/local"], dict(LOCAL, BINDIR="/usr/local/bin")),
    # An admin who asks for /usr gets the package's layout, hook in /usr/sbin.
    (["PREFIX=/usr"], dict(PACKAGE, BINDIR=None)),
    (["PREFIX=/opt/ph"], {"PREFIX": "/opt/ph", "HOOKPROG": "/etc/libvirt/hooks/policyhook",
                          "UNITDIR": "/opt/ph/lib/systemd/system"}),
    (["HOOKPROG=/usr/local/sbin/policyhook"], dict(LOCAL, HOOKPROG="/usr/local/sbin/policyhook")),
], ids=["source", "destdir", "destdir-usr", "destdir-local", "prefix-usr", "prefix-opt", "hookprog"])
def test_where_each_install_goes(args, expected):
    got = make_vars(DIRS, *args)
    for name, value in expected.items():
        if value is not None:
            assert got[name] == value, name
    if not any(a.startswith("DESTDIR=") for a in args):
        # Without DESTDIR policyctl goes where pip puts it: the virtualenv's bin, else PREFIX/bin.
        assert got["BINDIR"] == (sysconfig.get_path("scripts") if IN_VENV else got["PREFIX"] + "/bin")


@pytest.fixture
def fake_site(tmp_path):
    """PYTHON for make: this interpreter, whose site.getsitepackages() answers as a given
    distribution's python3 does (a sitecustomize replaces it)."""
    def python(dirs):
        d = tmp_path / "site"
        d.mkdir(exist_ok=True)
        (d / "sitecustomize.py").write_text(
            "import site\nsite.getsitepackages = lambda prefixes=None: %r\n" % dirs)
        return "env PYTHONPATH=%s %s" % (d, sys.executable)
    return python


DEBIAN_13 = ["/usr/local/lib/python3.13/dist-packages", "/usr/lib/python3/dist-packages",
             "/usr/lib/python3.13/dist-packages"]
FEDORA_41 = ["/usr/local/lib64/python3.13/site-packages", "/usr/local/lib/python3.13/site-packages",
             "/usr/lib64/python3.13/site-packages", "/usr/lib/python3.13/site-packages"]
RHEL_9 = ["/usr/local/lib64/python3.9/site-packages", "/usr/local/lib/python3.9/site-packages",
          "/usr/lib64/python3.9/site-packages", "/usr/lib/python3.9/site-packages"]


@needs_make
@pytest.mark.parametrize("searched, expected", [
    (DEBIAN_13, "/usr/local/lib/python3.13/dist-packages"),
    (FEDORA_41, "/usr/local/lib/python3.13/site-packages"),     # lib, not lib64: a pure package
    (RHEL_9, "/usr/local/lib/python3.9/site-packages"),
], ids=["debian", "fedora", "rhel9"])
def test_the_package_goes_to_the_site_directory_searched_under_usr_local(fake_site, searched, expected):
    assert make_vars(["PYTHON_SITELIB"], python=fake_site(searched))["PYTHON_SITELIB"] == expected


@needs_make
def test_a_package_build_keeps_the_interpreters_own_layout(fake_site):
    """PREFIX /usr is the packagers' and stays as it was, whatever the interpreter searches
    under /usr/local."""
    python = fake_site(DEBIAN_13)
    layout = subprocess.run(["env", "DEB_PYTHON_INSTALL_LAYOUT=deb_system", sys.executable, "-c",
                             "import sysconfig; print(sysconfig.get_path('purelib', "
                             "vars={'base': '/usr', 'platbase': '/usr'}))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert make_vars(["PYTHON_SITELIB"], "DESTDIR=/stage", python=python)["PYTHON_SITELIB"] == layout


def staged_install(tmp_path, *args):
    tree = tmp_path / "tree"
    for name in TREE:
        src = os.path.join(REPO, name)
        if os.path.isdir(src):
            shutil.copytree(src, str(tree / name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            os.makedirs(str(tree), exist_ok=True)
            shutil.copy(src, str(tree / name))
    stage = tmp_path / "stage"
    # What make install needs in this interpreter (pip, setuptools, wheel), which a
    # package build's test step may lack (Debian's Build-Depends do not name pip, nor
    # the RHEL 9 stack's virtualenv wheel); make test's virtualenv has it all.
    r = subprocess.run(["make", "-s", "--no-print-directory", "check-prereqs-install", "DESTDIR=%s" % stage,
                        "PYTHON=" + sys.executable], cwd=str(tree), capture_output=True, text=True, env=env())
    if r.returncode != 0:
        pytest.skip("make install cannot run with %s here: %s" % (sys.executable, r.stderr.strip()))
    r = subprocess.run(["make", "--no-print-directory", "install", "DESTDIR=%s" % stage,
                        "PYTHON=" + sys.executable] + list(args),
                       cwd=str(tree), capture_output=True, text=True, env=env())
    assert r.returncode == 0, r.stdout + r.stderr
    return tree, stage


def listing(stage):
    found = {}
    for top, dirs, files in os.walk(str(stage)):
        for name in dirs + files:
            path = os.path.join(top, name)
            rel = "/" + os.path.relpath(path, str(stage))
            found[rel] = ("l " + os.readlink(path)) if os.path.islink(path) else (
                "d" if os.path.isdir(path) else "f %o" % (os.stat(path).st_mode & 0o777))
    return found


@needs_make
def test_the_usr_local_layout_staged_and_uninstalled(tmp_path):
    tree, stage = staged_install(tmp_path, "PREFIX=/usr/local")
    site = make_vars(["PYTHON_SITELIB"], "DESTDIR=/stage", "PREFIX=/usr/local")["PYTHON_SITELIB"]
    got = listing(stage)
    files = {path: kind for path, kind in got.items() if kind != "d"}
    hook = "/etc/libvirt/hooks/policyhook"
    expected = {
        hook: "f 755",
        "/etc/libvirt/hooks/qemu.d/policyhook": "l " + hook,
        "/etc/libvirt/hooks/lxc.d/policyhook": "l " + hook,
        "/etc/libvirt/hooks/libxl.d/policyhook": "l " + hook,
        "/etc/policyhook/policyhook.conf": "f 644",
        "/etc/logrotate.d/policyhook": "f 644",
        "/usr/local/bin/policyctl": "f 755",
        "/usr/local/lib/systemd/system/policyhook-watch.service": "f 644",
        "/usr/local/lib/tmpfiles.d/policyhook.conf": "f 644",
        "/usr/local/share/man/man8/policyctl.8": "f 644",
        "/usr/local/share/man/man8/policyhook.8": "f 644",
        "/usr/local/share/man/man5/policyhook.conf.5": "f 644",
        "/usr/local/share/man/man5/policyhook-policy.5": "f 644",
        "/usr/local/share/bash-completion/completions/policyctl": "f 644",
        "/usr/local/share/doc/policyhook/README.md": "f 644",
        "/usr/local/share/cockpit/policyhook/index.html": "f 644",
        "/usr/local/share/cockpit/policyhook/manifest.json": "f 644",
        "/usr/local/share/cockpit/policyhook/policyhook.css": "f 644",
        "/usr/local/share/cockpit/policyhook/policyhook.js": "f 644",
    }
    package = {p: k for p, k in files.items() if p.startswith(site + "/")}
    assert {p: k for p, k in files.items() if p not in package} == expected
    # The whole package, its metadata without pip's records, no bytecode.
    modules = {os.path.relpath(os.path.join(top, f), REPO)
               for top, _, names in os.walk(os.path.join(REPO, "policyhook"))
               for f in names if f.endswith(".py")}
    assert {p[len(site) + 1:] for p in package if p.endswith(".py")} == modules
    assert set(package.values()) == {"f 644"}
    info = {os.path.basename(p) for p in package if ".dist-info/" in p}
    assert "METADATA" in info and "entry_points.txt" in info
    assert not info & {"RECORD", "REQUESTED", "direct_url.json"}
    assert not [p for p in got if "__pycache__" in p]
    # Nothing of the package manager's tree under /usr.
    assert [p for p in got if p.startswith("/usr/") and not p.startswith("/usr/local")] == []
    assert {p.split("/")[1] for p in got} == {"etc", "usr", "var", "run"}
    unit = (stage / "usr/local/lib/systemd/system/policyhook-watch.service").read_text()
    assert "ExecStart=/usr/local/bin/policyctl watch" in unit
    with open(str(stage) + "/usr/local/bin/policyctl") as f:
        assert f.readline().strip() == "#!" + sys.executable
    with open(str(stage) + hook) as f:
        assert f.readline().strip() == "#!%s -I" % sys.executable

    r = subprocess.run(["make", "--no-print-directory", "uninstall", "DESTDIR=%s" % stage,
                        "PREFIX=/usr/local", "PYTHON=" + sys.executable],
                       cwd=str(tree), capture_output=True, text=True, env=env())
    assert r.returncode == 0, r.stdout + r.stderr
    left = {p: k for p, k in listing(stage).items() if k != "d"}
    # The admin's settings stay, as they do after a package's removal.
    assert left == {"/etc/policyhook/policyhook.conf": "f 644"}

