"""A check of the checks (`make e2e-foreign`, run by `make test` after the end-to-end
tier): that tier, run on a host that is not a disposable lab, touches nothing it did not
create.

It makes such a host: a domain of someone else's running (pinned to every CPU), another
defined with its own <cputune> pins, and an admin's policy in /etc/policyhook (host.json
and a domain's file). It runs the end-to-end tier without POLICYHOOK_TEST_DISPOSABLE_HOST
and checks that the run passes, that it refused the tests that would move those domains
with one line naming them and the setting, that the host's registry (/etc, /run, /var/lib
and /var/log/policyhook) is byte for byte as it was, mode and owner included, and that
the two domains' live pins and defined <cputune> are unchanged. A policyhook installed
in libvirt's hook directories would apply that host policy to the tests' domains too:
for the run the program its links name is made non-executable (libvirtd then skips it),
and a second, short run checks that with it in place the tier is refused whole; where
none is installed, a stand-in of the same shape (links to a program) takes its place.
Everything is put back as it was, byte for byte; so the check itself writes into
/etc/policyhook and runs only where POLICYHOOK_TEST_DISPOSABLE_HOST=yes (CI)."""

import hashlib
import os
import re
import stat
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import lab  # noqa: E402

RUNNING = "phforeign-running"
PINNED = "phforeign-pinned"
OWN_CPUTUNE = ("<cputune><vcpupin vcpu='0' cpuset='0'/><vcpupin vcpu='1' cpuset='1'/>"
               "<emulatorpin cpuset='0'/></cputune>")
REGISTRY = ("/etc/policyhook", "/run/policyhook", "/var/lib/policyhook", "/var/log/policyhook")
ETC = REGISTRY[0]
# An admin's policy: CPU 1 for one of their domains, a weight for the other.
ADMIN_FILES = {
    ETC + "/host.json": b'{"version": 1, "cpuoccupy": {"1": ["%s"]}}\n' % PINNED.encode(),
    ETC + "/domains/%s.json" % RUNNING: b'{"version": 1, "domain": "%s", "weight": 300}\n' % RUNNING.encode(),
}
ADMIN_HOOKS = ["%s/%s.d/policyhook" % (lab.HOOKDIR, d) for d in ("qemu", "lxc")]
# Where no policyhook is installed, a stand-in shaped like one: a program the hooks link
# to (libvirtd runs only DRIVER.d's entries, not this name).
STANDIN = lab.HOOKDIR + "/policyhook-foreign-standin"
TIER = ["-m", "e2e and not stress", "tests/e2e"]
PROBE = ["tests/e2e/test_policyctl_live.py::test_vcpu_beyond_the_domain_is_refused"]


def snapshot(top):
    """{path: (kind, mode, uid, gid, sha256 of a file or a link's target)} of top and
    everything under it; {} when it does not exist."""
    found = {}
    if not os.path.lexists(top):
        return found
    for path in [top] + [os.path.join(d, n) for d, dirs, files in os.walk(top) for n in dirs + files]:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                what = hashlib.sha256(f.read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        else:
            what = None
        found[path] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what)
    return found


def registry():
    return {top: snapshot(top) for top in REGISTRY}


def cputune(name, *flags):
    m = re.search(r"<cputune>.*?</cputune>", lab.virsh("dumpxml", name, *flags).stdout, re.S)
    return m.group(0) if m else None


def domain_facts():
    """What the tests must leave alone: live and defined pins of both domains."""
    return {
        RUNNING: {"live pins": (lab.vcpupin(RUNNING), lab.emulatorpin(RUNNING)),
                  "live <cputune>": cputune(RUNNING), "defined <cputune>": cputune(RUNNING, "--inactive"),
                  "state": lab.virsh("domstate", RUNNING).stdout.strip()},
        PINNED: {"defined pins": (lab.vcpupin(PINNED), lab.emulatorpin(PINNED)),
                 "defined <cputune>": cputune(PINNED, "--inactive"),
                 "state": lab.virsh("domstate", PINNED).stdout.strip()},
    }


def run_tier(args):
    env = {k: v for k, v in os.environ.items() if k != lab.DISPOSABLE}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"] + args,
                       cwd=lab.REPO, env=env, capture_output=True, text=True, timeout=1800)
    return r, time.monotonic() - t0


def counts(output):
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|failed|errors?)", tail)}


class Saved:
    """Files and modes the check changes, put back as they were."""

    def __init__(self):
        self.files = {}         # path: (bytes, mode, uid, gid), a link's target, or None: absent
        self.modes = {}         # path: mode
        self.made = []          # paths created, removed last first

    def _keep(self, path):
        """Saves what is at path the first time (restore() puts it back) and clears the
        way: directories made, whatever is there removed."""
        if path not in self.files:
            if os.path.islink(path):
                self.files[path] = os.readlink(path)
            elif os.path.lexists(path):
                st = os.lstat(path)
                with open(path, "rb") as f:
                    self.files[path] = (f.read(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            else:
                self.files[path] = None
        for d in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
            if not os.path.isdir(d):
                os.mkdir(d, 0o755)
                self.made.append(d)
        if os.path.lexists(path):
            os.unlink(path)

    def write(self, path, data, mode=0o644):
        self._keep(path)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)

    def link(self, path, target):
        self._keep(path)
        os.symlink(target, path)

    def chmod(self, path, mode):
        # A link's own mode is 0777 and chmod follows it: only a file's mode is saved.
        assert not os.path.islink(path), path
        self.modes.setdefault(path, stat.S_IMODE(os.lstat(path).st_mode))
        os.chmod(path, mode)

    def restore(self):
        for path, mode in self.modes.items():
            os.chmod(path, mode)
        for path, old in self.files.items():
            # Whatever is there now goes, a link included: writing through it would
            # leave the link and write its target.
            if os.path.lexists(path):
                os.unlink(path)
            if isinstance(old, str):
                os.symlink(old, path)
            elif old is not None:
                with open(path, "wb") as f:
                    f.write(old[0])
                os.chmod(path, old[1])
                os.chown(path, old[2], old[3])
        for d in reversed(self.made):
            os.rmdir(d)


def remove_foreign():
    for name in (RUNNING, PINNED):
        lab.undefine(name)


def test_the_tier_leaves_a_shared_host_as_it_was(capsys):
    if os.geteuid() != 0 or os.environ.get(lab.DISPOSABLE) != "yes":
        why = ("the check of the checks writes an admin's files into /etc/policyhook and defines domains "
               "of its own: it runs only as root where %s=yes" % lab.DISPOSABLE)
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    lab.start_daemon()
    original = registry()
    hooks = snapshot(lab.HOOKDIR)
    saved = Saved()
    figures = []
    try:
        # A policyhook installed here would apply the admin's policy to the tests' domains.
        # Installed, the hooks are links to one program (SBINDIR/policyhook of a package,
        # /etc/libvirt/hooks/policyhook of a source install): its mode is what counts.
        if not any(os.access(path, os.X_OK) for path in ADMIN_HOOKS):
            saved.write(STANDIN, b"#!/bin/sh\nexit 0\n", 0o755)
            for path in ADMIN_HOOKS:
                saved.link(path, STANDIN)
        active = sorted({os.path.realpath(path) for path in ADMIN_HOOKS if os.access(path, os.X_OK)})
        assert active, ADMIN_HOOKS
        for path in active:
            saved.chmod(path, stat.S_IMODE(os.stat(path).st_mode) & ~0o111)
        remove_foreign()
        lab.define(RUNNING)
        lab.virsh("start", RUNNING)
        lab.define(PINNED, cputune=OWN_CPUTUNE)
        for path, data in ADMIN_FILES.items():
            saved.write(path, data)
        host = registry()
        facts = domain_facts()
        assert facts[RUNNING]["live pins"] == ({0: "0-1", 1: "0-1"}, "0-1"), facts
        assert facts[PINNED]["defined pins"] == ({0: "0", 1: "1"}, "0"), facts

        r, took = run_tier(TIER)
        out = r.stdout + r.stderr
        figures.append("the end-to-end tier without %s: %.0f s, %s"
                       % (lab.DISPOSABLE, took, counts(r.stdout)))
        assert r.returncode == 0, out[-6000:]
        refusals = [line for line in out.splitlines() if line.startswith("SKIPPED") and "refused: " in line]
        assert refusals, out[-6000:]
        for line in refusals:
            assert "%s (qemu)" % RUNNING in line and "%s (qemu)" % PINNED in line, line
            assert "%s=yes" % lab.DISPOSABLE in line, line
        figures.append("refused: %d tests, e.g. %s" % (sum(int(n) for n in
                       re.findall(r"^SKIPPED \[(\d+)\].*refused: ", out, re.M)), refusals[0]))
        assert registry() == host
        assert domain_facts() == facts
        assert not any(os.path.lexists("%s/%s.d/policyhook-e2e" % (lab.HOOKDIR, d)) for d in ("qemu", "lxc"))

        # With an installed policyhook in force and a host policy, the tier is refused whole.
        for path in active:
            os.chmod(path, saved.modes[path])
        r, took = run_tier(PROBE)
        out = r.stdout + r.stderr
        figures.append("with an installed policyhook in force: %.0f s, %s" % (took, counts(r.stdout)))
        assert r.returncode == 0 and counts(r.stdout) == {"skipped": 1}, out[-4000:]
        assert "applies this host's occupancy (/etc/policyhook/host.json)" in out, out[-4000:]
        assert registry() == host
        assert domain_facts() == facts
    finally:
        # The admin's hooks stay off until their domains are gone: they would log their stop.
        for path, mode in saved.modes.items():
            os.chmod(path, mode & ~0o111)
        remove_foreign()
        saved.restore()
        # libvirtd runs hooks only if an executable one was there at its last reload, and
        # the tier's last reload saw none (the Makefile's reload-libvirtd): reload with them back.
        subprocess.run(["make", "-C", lab.REPO, "--no-print-directory", "reload-libvirtd"],
                       capture_output=True, check=True)
    assert registry() == original
    assert snapshot(lab.HOOKDIR) == hooks
    with capsys.disabled():
        print("\n" + "\n".join(figures))
