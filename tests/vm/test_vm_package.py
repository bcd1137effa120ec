"""policyhook as its Debian package (scripts/vm-lab.sh installed it with apt-get): the
hook's layout and the watcher's hardened unit keeping a policy in force; then, the
packages removed once for both, a source install under /usr/local and its uninstall,
and an upgrade over a previous build followed by remove and purge, which keep the
admin's policies; the packages installed again after."""

import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
import time

import guest
import lab
import pytest

DEB_DIR = "/root/policyhook-deb"
CONF = "/etc/policyhook/policyhook.conf"
LOG = "/var/log/policyhook/policyhook.log"
METRICS_DIR = "/var/lib/prometheus/node-exporter"
UNIT = "policyhook-watch.service"
HOOKS = ["/etc/libvirt/hooks/%s.d/policyhook" % d for d in ("qemu", "lxc", "libxl")]


def dpkg_query(field, package="policyhook"):
    return lab.run(["dpkg-query", "-W", "-f", "${%s}" % field, package], check=False).stdout.strip()


def built(package):
    """The .deb of `package` that scripts/vm-lab.sh up copied into DEB_DIR."""
    return glob.glob(os.path.join(DEB_DIR, "%s_*_all.deb" % package))[0]


def apt(*args):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return lab.run(["apt-get", "-y", "-q"] + list(args), timeout=300, env=env, cwd=DEB_DIR)


def test_installed_as_the_package_with_the_hook_linked(installed):
    assert dpkg_query("db:Status-Abbrev") == "ii"
    assert lab.run(["dpkg", "-S", "/usr/sbin/policyhook"]).stdout.startswith("policyhook: ")
    for hook in HOOKS:
        assert os.readlink(hook) == "/usr/sbin/policyhook"
    # The Cockpit page, a package of its own (contrib/cockpit).
    assert dpkg_query("db:Status-Abbrev", "cockpit-policyhook") == "ii"
    assert lab.run(["dpkg", "-S", "/usr/share/cockpit/policyhook/manifest.json"]).stdout.startswith(
        "cockpit-policyhook: ")
    conffiles = dpkg_query("Conffiles")
    assert "/etc/policyhook/policyhook.conf" in conffiles and "/etc/libvirt" not in conffiles
    assert lab.run(["systemctl", "is-enabled", UNIT], check=False).stdout.strip() == "disabled"
    assert lab.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() == "inactive"


def test_hardened_watcher_repairs_drift(domains):
    out = lab.run(["systemd-analyze", "security", "--no-pager", UNIT]).stdout
    exposure = float(re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(UNIT), out).group(1))
    guest.record("systemd-analyze security %s" % UNIT, exposure)
    assert exposure <= 5.0, out
    name = domains()
    assert lab.policyctl("vcpupin", name, "0", "1").returncode == 0
    lab.virsh("start", name)
    lab.wait_for(lambda: lab.vcpupin(name).get(0) == "1", 15, "the hook's policy")
    with open(CONF) as f:
        conf = f.read()
    os.makedirs(METRICS_DIR, exist_ok=True)
    metrics = os.path.join(METRICS_DIR, "policyhook.prom")
    try:
        section = "[watch]\non_drift = repair\nsettle = 0.5\nmetrics_file = %s\n" % metrics
        with open(CONF, "w") as f:
            f.write(re.sub(r"(?m)^\[watch\]\n", section, conf, count=1))
        offset = os.path.getsize(LOG) if os.path.exists(LOG) else 0
        lab.run(["systemctl", "start", UNIT])
        lab.wait_for(lambda: re.search(r"watch: \S+: watching", lab.log_text()[offset:]), 60,
                     "the watcher to start")
        lab.virsh("vcpupin", name, "0", "0-1", "--live")
        t0 = time.monotonic()
        lab.wait_for(lambda: lab.vcpupin(name).get(0) == "1", 30, "the watcher to repair the drift")
        guest.record("drift repaired by %s after" % UNIT, "%.0f ms" % ((time.monotonic() - t0) * 1000))
        lab.wait_for(lambda: os.path.exists(metrics), 30, "the watcher's metrics file")
        assert lab.run(["systemctl", "is-active", UNIT]).stdout.strip() == "active"
    finally:
        lab.run(["systemctl", "stop", UNIT], check=False)
        with open(CONF, "w") as f:
            f.write(conf)
        for f in glob.glob(os.path.join(METRICS_DIR, "policyhook.prom*")):
            os.unlink(f)
    journal = lab.run(["journalctl", "-u", UNIT, "--no-pager", "-q", "-p", "warning"], check=False).stdout
    assert "Permission denied" not in journal and "Read-only file system" not in journal, journal


# ---- a source install: make install with the distribution's python3, under /usr/local ----

def test_apparmor_lets_libvirtd_run_the_hook_under_etc_not_usr_local(installed):
    """Why a source install's hook program is /etc/libvirt/hooks/policyhook: the profile
    Debian 13's libvirt ships lets libvirtd execute /usr/sbin/* and /etc/libvirt/hooks/**,
    nothing under /usr/local. Read from the profile: the guest's kernel has AppArmor, but
    without the apparmor package no profile is loaded."""
    guest.record("AppArmor in the guest's kernel", guest.read("/sys/module/apparmor/parameters/enabled"))
    profiles = "/sys/kernel/security/apparmor/profiles"
    loaded = guest.read(profiles).splitlines() if os.path.exists(profiles) else []
    guest.record("AppArmor profiles loaded", len(loaded))
    with open("/etc/apparmor.d/usr.sbin.libvirtd") as f:
        rules = [line.strip() for line in f if line.strip() and not line.strip().startswith("#")]
    assert "/etc/libvirt/hooks/** rmix," in rules and "/usr/sbin/* PUx," in rules
    executes = [r for r in rules if re.search(r"\s[a-zA-Z]*[xX][a-zA-Z]*,$", r)]
    assert not [r for r in executes if "local" in r], executes


LOCAL_HOOK = "/etc/libvirt/hooks/policyhook"
LOCAL_POLICYCTL = "/usr/local/bin/policyctl"
LOCAL_FILES = [
    LOCAL_HOOK, LOCAL_POLICYCTL, "/usr/local/lib/systemd/system/" + UNIT,
    "/usr/local/lib/tmpfiles.d/policyhook.conf", "/usr/local/share/man/man8/policyctl.8",
    "/usr/local/share/man/man8/policyhook.8", "/usr/local/share/man/man5/policyhook.conf.5",
    "/usr/local/share/man/man5/policyhook-policy.5", "/usr/local/share/bash-completion/completions/policyctl",
    "/usr/local/share/doc/policyhook/README.md", "/usr/local/share/cockpit/policyhook/manifest.json",
]
SOURCE_TREE = ["policyhook", "hooks", "tools", "etc", "contrib", "doc", "Makefile", "pyproject.toml",
               "setup.cfg", "README.md", "LICENSE"]


def usr_snapshot():
    """{path: (mode, owner, group, size, mtime, ctime)} of everything under /usr but
    /usr/local: the package manager's tree, which a source install must not touch."""
    found = {}
    for top, dirs, files in os.walk("/usr"):
        if top == "/usr":
            dirs.remove("local")
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            found[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


def local_snapshot():
    """The files and links under /usr/local and /etc/libvirt/hooks (directories apart)."""
    found = set()
    for top in ("/usr/local", "/etc/libvirt/hooks"):
        for parent, _, files in os.walk(top):
            found.update(os.path.join(parent, f) for f in files)
    return found


def source_make(tree, target):
    r = subprocess.run(["make", "--no-print-directory", target, "PYTHON=/usr/bin/python3"], cwd=str(tree),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "make %s failed:\n%s%s" % (target, r.stdout, r.stderr)
    return r.stdout


@contextlib.contextmanager
def daemon_kept_up():
    """libvirtd running throughout: socket-activated, it exits after 120 s without a
    client, and then nothing reloads; a client stays connected meanwhile (make install
    takes minutes in a loaded guest)."""
    lab.start_daemon()
    client = subprocess.Popen(["virsh", "-c", lab.URI, "event", "--all", "--loop"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        client.terminate()
        client.wait(10)


def reloaded_since(cursor):
    lines = lab.journal("--after-cursor", cursor, "-u", "libvirtd.service")
    return [line for line in lines.splitlines() if line.startswith("Reloaded ")]


@pytest.fixture(scope="module")
def without_the_package(installed):
    """Both packages removed (not purged) for the tests that install policyhook their own
    way, and installed again once after the last of them: each removal and installation
    takes about a minute in the guest."""
    deb, page = built("policyhook"), built("cockpit-policyhook")
    try:
        # cockpit-policyhook depends on this very build: it goes first, and comes back after.
        lab.run(["dpkg", "-r", "cockpit-policyhook", "policyhook"], timeout=300)
        assert not os.path.exists("/usr/bin/policyctl") and not os.path.exists("/usr/sbin/policyhook")
        yield
    finally:
        # A removed package's conffile that is gone (make uninstall takes the log rotation
        # file) is the admin's choice to dpkg, which would not put it back: --force-confmiss.
        lab.run(["dpkg", "-i", "--force-confmiss", deb, page], timeout=300)
    assert dpkg_query("db:Status-Abbrev") == "ii"
    assert dpkg_query("db:Status-Abbrev", "cockpit-policyhook") == "ii"
    assert all(os.readlink(h) == "/usr/sbin/policyhook" for h in HOOKS)
    assert os.path.isfile("/etc/logrotate.d/policyhook") and os.path.isfile(CONF)
    assert subprocess.run(["virsh", "-c", lab.URI, "uri"], capture_output=True).returncode == 0


def test_make_install_under_usr_local_puts_a_policy_in_force_and_uninstall_removes_it(
        without_the_package, tmp_path):
    """`make install` with the distribution's python3, the package removed: everything
    under /usr/local and /etc, the hook run by the real libvirtd, libvirtd reloaded;
    `make uninstall` takes it all away; nothing under /usr outside /usr/local changes."""
    tree = tmp_path / "src"
    for name in SOURCE_TREE:
        src = os.path.join(lab.REPO, name)
        if os.path.isdir(src):
            shutil.copytree(src, str(tree / name))
        else:
            os.makedirs(str(tree), exist_ok=True)
            shutil.copy(src, str(tree / name))
    # A domain of its own, not the `domains` fixture's: that one removes its policies with
    # the package's policyctl, which is not there while this test runs.
    name = "phvm-usr-local"
    site = "/usr/local/lib/python3.%d/dist-packages" % sys.version_info[1]
    lab.define(name)
    try:
        usr_before, local_before = usr_snapshot(), local_snapshot()
        with daemon_kept_up():
            cursor = lab.journal_cursor()
            t0 = time.monotonic()
            source_make(tree, "install")
            guest.record("make install (/usr/local) in the guest", "%.0f s" % (time.monotonic() - t0))
            lab.wait_for(lambda: reloaded_since(cursor), 30, "libvirtd to reload after make install")

        for path in LOCAL_FILES + [site + "/policyhook/__init__.py"]:
            assert os.path.isfile(path), path
        for hook in HOOKS:
            assert os.readlink(hook) == LOCAL_HOOK
        with open(LOCAL_HOOK) as f:
            assert f.readline().strip() == "#!/usr/bin/python3 -I"
        # The interpreter finds the package there; systemd, man and bash-completion find theirs.
        where = lab.run(["/usr/bin/python3", "-I", "-c", "import policyhook; print(policyhook.__file__)"],
                        cwd="/").stdout.strip()
        assert where == site + "/policyhook/__init__.py"
        lab.run(["systemctl", "daemon-reload"])
        assert lab.run(["systemctl", "show", "-P", "FragmentPath", UNIT]).stdout.strip() == \
            "/usr/local/lib/systemd/system/" + UNIT
        assert "/usr/local/bin/policyctl watch" in lab.run(["systemctl", "cat", UNIT]).stdout
        assert lab.run(["systemd-tmpfiles", "--cat-config"]).stdout.count(
            "# /usr/local/lib/tmpfiles.d/policyhook.conf") == 1

        # A domain started with a policy has it in force: the real libvirtd ran the hook.
        assert lab.run([LOCAL_POLICYCTL, "--root", lab.ROOT, "vcpupin", name, "0", "1"]).returncode == 0
        lab.virsh("start", name)
        lab.wait_for(lambda: lab.vcpupin(name).get(0) == "1", 15, "the policy in force")
        guest.record("virsh vcpupin under the /usr/local install", lab.vcpupin(name))
        lab.destroy(name)
        assert lab.run([LOCAL_POLICYCTL, "--root", lab.ROOT, "remove", name]).returncode == 0

        with daemon_kept_up():
            cursor = lab.journal_cursor()
            source_make(tree, "uninstall")
            lab.wait_for(lambda: reloaded_since(cursor), 30, "libvirtd to reload after make uninstall")
        lab.run(["systemctl", "daemon-reload"])
        assert not [p for p in LOCAL_FILES + HOOKS + [site + "/policyhook"] if os.path.lexists(p)]
        assert not glob.glob(site + "/policyhook-*.dist-info")
        assert local_snapshot() == local_before
        usr_after = usr_snapshot()
        changed = sorted(p for p in set(usr_before) | set(usr_after) if usr_before.get(p) != usr_after.get(p))
        assert changed == [], "make install, a start and make uninstall changed under /usr: %s" % changed
        guest.record("paths under /usr outside /usr/local, unchanged", len(usr_after))
    finally:
        lab.undefine(name)
        stored = os.path.join(lab.paths().domains, name + ".json")
        if os.path.exists(stored):
            os.unlink(stored)
        for path in LOCAL_FILES + HOOKS:
            if os.path.lexists(path):
                os.unlink(path)
        # What a make install that stopped half way may have left: a package under
        # /usr/local would come first on python3's path in the tests that follow.
        for path in [site + "/policyhook", "/usr/local/share/cockpit/policyhook"] + glob.glob(
                site + "/policyhook-*.dist-info"):
            if os.path.isdir(path):
                shutil.rmtree(path)


def test_upgrade_over_a_previous_build_then_remove_and_purge_keep_policies(without_the_package, tmp_path):
    """A previous build installed, this one over it, then remove and purge: the admin's
    settings and policies kept across the upgrade, the policies kept by the purge."""
    deb = built("policyhook")
    version = lab.run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()
    # The previous build: this package with a lower version.
    tree = tmp_path / "prev"
    lab.run(["dpkg-deb", "-R", deb, str(tree)])
    control = tree / "DEBIAN" / "control"
    control.write_text(control.read_text().replace("Version: %s" % version, "Version: %s~prev" % version))
    prev = os.path.join(DEB_DIR, "policyhook_%s~prev_all.deb" % version)
    lab.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), prev])
    policy = "/etc/policyhook/domains/phvm-package.json"
    try:
        apt("install", "./" + os.path.basename(prev))
        assert dpkg_query("Version") == version + "~prev"
        assert lab.policyctl("--offline", "schedweight", "phvm-package", "300").returncode == 0
        with open(CONF, "a") as f:
            f.write("# kept across the upgrade\n")
        apt("install", "./" + os.path.basename(deb))
        assert dpkg_query("Version") == version
        assert all(os.readlink(h) == "/usr/sbin/policyhook" for h in HOOKS)
        assert open(CONF).read().endswith("# kept across the upgrade\n")
        assert not glob.glob(CONF + ".dpkg-*")
        assert os.path.exists(policy)

        apt("remove", "policyhook")
        assert not any(os.path.lexists(h) for h in HOOKS) and not os.path.exists("/usr/sbin/policyhook")
        assert os.path.exists(policy) and os.path.exists(CONF)
        apt("purge", "policyhook")
        assert dpkg_query("db:Status-Abbrev") in ("", "un ", "pn ")
        assert os.path.exists(policy), "purge removed the admin's policy"
        assert not os.path.exists(CONF) and not os.path.exists("/var/log/policyhook")
    finally:
        os.unlink(prev)
        if os.path.exists(policy):
            os.unlink(policy)
