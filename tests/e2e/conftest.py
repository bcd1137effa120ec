"""End-to-end fixtures: a real libvirtd, and policyhook installed as a package installs
it, but into a registry root of the tests' own (ROOT) and with a hook instance of their
own (HOOKDIR/DRIVER.d/policyhook-e2e) that hands only their domains (lab.PREFIX) to the
installed hook. The host's registry (/etc/policyhook, /run/policyhook, /var/lib and
/var/log/policyhook) and a hook an admin installed are never read, written or removed.

Before any test runs, the session lists the daemon's domains the tests did not create.
Where there are any, the tests marked `moves_others` or `restarts_libvirtd` (REFUSED)
are refused, one line naming those domains and the setting that says the host is a
disposable lab (lab.DISPOSABLE=yes, which .ci/run sets); the others run."""

import os
import shutil
import subprocess
import sys

import lab
import pytest

ROOT = "/run/policyhook-e2e"
INSTANCE = "policyhook-e2e"
DRIVERS = ("qemu", "lxc")
# The wrappers libvirtd runs, and the hook files a package installs, here under ROOT.
WRAPPERS = {d: "%s/%s.d/%s" % (lab.HOOKDIR, d, INSTANCE) for d in DRIVERS}
INSTALLED = {d: "%s%s/%s.d/policyhook" % (ROOT, lab.HOOKDIR, d) for d in DRIVERS}
lab.use_instance(ROOT, WRAPPERS["qemu"], WRAPPERS["lxc"], INSTALLED.values())

# The one place a domain name decides: every other domain is left to whatever else
# libvirtd runs. The variable is exported for exec (sh need not pass an assignment
# that precedes a special built-in).
WRAPPER = """#!/bin/sh
# policyhook's end-to-end tests (tests/e2e/conftest.py): a hook instance of their own,
# for their own domains ({prefix}*) only, on their own registry root. Removed when they end.
case "$1" in
{prefix}*)
    export POLICYHOOK_ROOT={root}
    exec {hook} "$@" ;;
esac
exit 0
"""

# Why a marked test is refused on a host with domains the tests did not create.
REFUSED = {
    "moves_others": "it moves other domains of the daemon or counts them in what it checks "
                    "(cpuoccupy re-pins every running domain outside the set, and in persistent mode "
                    "rewrites their definitions; [occupancy] mode = running does so at each start and "
                    "release)",
    "restarts_libvirtd": "it stops and starts libvirtd, which then runs every installed hook again "
                         "for every running domain (reconnect)",
}
refused = []        # (test id, reason), for the summary


def _disposable():
    return os.environ.get(lab.DISPOSABLE) == "yes"


def _unavailable(reason):
    # In CI the real-daemon tests must run: fail loudly. Elsewhere, skip and say why.
    if os.environ.get("CI"):
        pytest.fail("end-to-end lab unavailable: %s" % reason, pytrace=False)
    pytest.skip("end-to-end lab unavailable: %s" % reason)


def _make(*args):
    r = subprocess.run(["make", "-C", lab.REPO, "--no-print-directory", "PYTHON=" + sys.executable]
                       + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("make %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr), pytrace=False)


def _host_policy_refusal():
    """Why the whole tier cannot run here, or None: a policyhook an admin installed runs
    for every domain, the tests' too, and with a host policy (host.json, only looked
    at, never read) keeps them off the CPUs it occupies."""
    if _disposable():
        return None
    hooks = [path for path in ("%s/%s.d/policyhook" % (lab.HOOKDIR, d) for d in DRIVERS)
             if os.access(path, os.X_OK)]
    if hooks and os.path.lexists("/etc/policyhook/host.json"):
        return ("refused: the installed %s applies this host's occupancy (/etc/policyhook/host.json) "
                "to every domain, the tests' too, so what they read would be that policy's; set %s=yes "
                "only on a host whose domains and policy the tests may change"
                % (" and ".join(hooks), lab.DISPOSABLE))
    return None


def _install_instance():
    """The package's files under ROOT (make install-data DESTDIR), policyctl into this
    interpreter's virtualenv, and the wrappers libvirtd runs; then libvirtd reloads, as
    it must to see a new hook (the Makefile's reload-libvirtd)."""
    if os.path.lexists(ROOT):          # left by a session that was killed
        shutil.rmtree(ROOT)
    os.makedirs(ROOT, mode=0o755)
    _make("install-python")
    _make("install-data", "DESTDIR=" + ROOT)
    for driver in DRIVERS:
        # A package links each driver's hook to the one program (SBINDIR/policyhook) by
        # its installed path; staged under ROOT, the link leads to the staged program.
        link = INSTALLED[driver]
        if os.path.islink(link) and os.path.isabs(os.readlink(link)):
            target = ROOT + os.readlink(link)
            os.unlink(link)
            os.symlink(target, link)
        if not os.access(INSTALLED[driver], os.X_OK):
            pytest.fail("make install-data did not install %s" % INSTALLED[driver], pytrace=False)
        os.makedirs(os.path.dirname(WRAPPERS[driver]), mode=0o755, exist_ok=True)
        tmp = WRAPPERS[driver] + ".tmp"
        with open(tmp, "w") as f:
            f.write(WRAPPER.format(prefix=lab.PREFIX, root=ROOT, hook=INSTALLED[driver]))
        os.chmod(tmp, 0o755)
        os.rename(tmp, WRAPPERS[driver])
    _make("reload-libvirtd")


def _remove_instance(keep_root):
    for path in WRAPPERS.values():
        if os.path.lexists(path):
            os.unlink(path)
    _make("reload-libvirtd")
    if not keep_root:
        shutil.rmtree(ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def installed(request):
    """libvirtd running and the tests' own policyhook instance installed; yields the
    domains of the daemon the tests did not create, as listed before any test ran."""
    if os.geteuid() != 0:
        _unavailable("needs root")
    if sys.prefix == sys.base_prefix:
        _unavailable("run the end-to-end tests with a virtualenv's python (make e2e "
                     "PYTHON=.venv/bin/python): they install policyhook into it, never into the system")
    try:
        lab.start_daemon()
    except (lab.LabError, OSError) as e:
        _unavailable("libvirtd did not start: %s (see /var/log/libvirtd.log)" % e)
    refusal = _host_policy_refusal()
    if refusal:
        pytest.skip(refusal)
    others = lab.foreign_domains(lab.PREFIX)
    try:
        _install_instance()
        _clean_all()
        yield others
    finally:
        _clean_all()
        try:
            lab.wait_for(lambda: not lab.appliers(), 30, "the tests' appliers to exit")
        finally:
            failed = request.session.testsfailed
            _remove_instance(keep_root=failed)
            if failed:
                print("\nthe tests' registry root is kept for a look: %s" % ROOT)


def _clean_all():
    lab.remove_throwaways(lab.PREFIX)
    # Containers too, where libvirtd has its LXC driver.
    lab.remove_throwaways(lab.PREFIX, lab.LXC_URI, missing_ok=True)


@pytest.fixture(autouse=True)
def _confined(request):
    """Refuses a test REFUSED names, on a host with domains the tests did not create."""
    why = [REFUSED[m] for m in REFUSED if request.node.get_closest_marker(m)]
    if not why or _disposable():
        return
    others = request.getfixturevalue("installed")
    if others:
        reason = ("refused: %s; this daemon has domains the tests did not create (%s); set %s=yes "
                  "only where those may be moved" % ("; ".join(why), ", ".join(others), lab.DISPOSABLE))
        refused.append((request.node.nodeid, reason))
        pytest.skip(reason)


@pytest.fixture
def domains(installed, request):
    """A factory of throwaway domains (2 vCPUs unless vcpus=N; lab.define's keywords),
    named after the test; all removed after, with their policy and runtime state."""
    def remove(name):
        lab.undefine(name)
        for path in (lab.paths().domain_file(name), lab.paths().state_file(name)):
            if os.path.exists(path):
                os.unlink(path)

    yield from lab.throwaways(request, lab.PREFIX, 30, lab.define, remove)


def pytest_terminal_summary(terminalreporter):
    if refused:
        terminalreporter.section("refused on a host that is not a disposable lab")
        for reason in sorted(set(r for _, r in refused)):
            terminalreporter.write_line(reason)
            for nodeid, _ in (t for t in refused if t[1] == reason):
                terminalreporter.write_line("    " + nodeid)
