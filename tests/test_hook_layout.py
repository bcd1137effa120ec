"""One hook file serves every driver: it tells the driver from the directory libvirtd ran
it from (HOOKDIR/DRIVER.d/policyhook, a link to SBINDIR/policyhook) or, in the source
tree, from its own name (hooks/qemu links to hooks/policyhook)."""

import io
import os
import subprocess
import sys

import pytest

from policyhook.hook import driver_of, run_as

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK = os.path.join(REPO, "hooks", "policyhook")


@pytest.mark.parametrize("path, driver", [
    ("/etc/libvirt/hooks/qemu.d/policyhook", "qemu"),
    ("/etc/libvirt/hooks/lxc.d/policyhook", "lxc"),
    ("/etc/libvirt/hooks/libxl.d/policyhook", "libxl"),
    ("/etc/libvirt/hooks/qemu.d/other-name", "qemu"),
    ("hooks/qemu", "qemu"),
    ("/src/hooks/libxl", "libxl"),
    ("/etc/libvirt/hooks/network.d/policyhook", None),
    ("/etc/libvirt/hooks/qemu", "qemu"),
    ("/usr/sbin/policyhook", None),
    ("policyhook", None),
    ("", None),
])
def test_driver_of(path, driver):
    assert driver_of(path) == driver


@pytest.mark.parametrize("argv0, shown", [
    ("/usr/sbin/policyhook", "/usr/sbin/policyhook"),
    ("/etc/libvirt/hooks/network.d/policyhook", "/etc/libvirt/hooks/network.d/policyhook"),
    ("/tmp/a\nb", "/tmp/a\\nb"),
])
def test_run_by_hand_is_one_line_and_exit_2(argv0, shown):
    err = io.StringIO()
    assert run_as([argv0, "vm1", "prepare", "begin", "-"], stderr=err) == 2
    assert err.getvalue() == (
        "policyhook: %s is libvirtd's hook; it runs as /etc/libvirt/hooks/DRIVER.d/policyhook "
        "(DRIVER: qemu, lxc, libxl), see policyhook(8)\n" % shown)


def test_each_driver_hook_is_the_one_hook():
    """hooks/DRIVER link to hooks/policyhook (in an installed tree, all to SBINDIR's); an
    sdist holds copies, since setuptools follows links: the same program either way."""
    with open(HOOK, "rb") as f:
        one = f.read()
    for driver in ("qemu", "lxc", "libxl"):
        path = os.path.join(REPO, "hooks", driver)
        if os.path.islink(path):
            assert os.path.realpath(path) == os.path.realpath(HOOK)
        else:
            with open(path, "rb") as f:
                assert f.read() == one, path


def test_the_hook_run_through_a_driver_directory_link(tmp_path):
    """As libvirtd runs it: through HOOKDIR/DRIVER.d/policyhook, a symlink."""
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "POLICYHOOK_ROOT": str(tmp_path), "PYTHONPATH": REPO}
    for driver in ("qemu", "lxc", "libxl"):
        os.makedirs(tmp_path / "hooks" / (driver + ".d"))
        link = tmp_path / "hooks" / (driver + ".d") / "policyhook"
        os.symlink(HOOK, link)
        r = subprocess.run([sys.executable, str(link), "vm1", "stopped", "end", "-"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stderr) == (0, "")
    r = subprocess.run([sys.executable, HOOK, "vm1", "stopped", "end", "-"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith("policyhook: %s is libvirtd's hook" % HOOK)
