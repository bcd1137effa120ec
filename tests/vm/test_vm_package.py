"""policyhook as its Debian package (scripts/vm-lab.sh installed it with apt-get): the
hook's layout, the watcher's hardened unit keeping a policy in force, and an upgrade
over a previous build followed by remove and purge, which keep the admin's policies."""

import glob
import os
import re
import subprocess
import time

import guest
import lab

DEB_DIR = "/root/policyhook-deb"
CONF = "/etc/policyhook/policyhook.conf"
LOG = "/var/log/policyhook/policyhook.log"
METRICS_DIR = "/var/lib/prometheus/node-exporter"
UNIT = "policyhook-watch.service"
HOOKS = ["/etc/libvirt/hooks/%s.d/policyhook" % d for d in ("qemu", "lxc", "libxl")]


def dpkg_query(field, package="policyhook"):
    return lab.run(["dpkg-query", "-W", "-f", "${%s}" % field, package], check=False).stdout.strip()


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


def test_upgrade_over_a_previous_build_then_remove_and_purge_keep_policies(installed, tmp_path):
    deb = glob.glob(os.path.join(DEB_DIR, "policyhook_*_all.deb"))[0]
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
        apt("install", "--allow-downgrades", "./" + os.path.basename(prev))
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
        # cockpit-policyhook depends on this very build: apt removed it on the way.
        page = glob.glob(os.path.join(DEB_DIR, "cockpit-policyhook_*_all.deb"))
        apt("install", *["./" + os.path.basename(p) for p in [deb] + page])
        os.unlink(prev)
        if os.path.exists(policy):
            os.unlink(policy)
    assert dpkg_query("db:Status-Abbrev") == "ii"
    assert dpkg_query("db:Status-Abbrev", "cockpit-policyhook") == "ii"
    assert subprocess.run(["virsh", "-c", lab.URI, "uri"], capture_output=True).returncode == 0
