"""End-to-end fixtures: a real libvirtd, our hook installed by `make install`."""

import glob
import os
import subprocess
import sys

import lab
import pytest


def _unavailable(reason):
    # In CI the real-daemon tests must run: fail loudly. Elsewhere, skip and say why.
    if os.environ.get("CI"):
        pytest.fail("end-to-end lab unavailable: %s" % reason, pytrace=False)
    pytest.skip("end-to-end lab unavailable: %s" % reason)


@pytest.fixture(scope="session")
def installed():
    """libvirtd running, policyhook installed into this interpreter and the hook dir."""
    if os.geteuid() != 0:
        _unavailable("needs root")
    try:
        lab.start_daemon()
    except (lab.LabError, OSError) as e:
        _unavailable("libvirtd did not start: %s (see /var/log/libvirtd.log)" % e)
    r = subprocess.run(["make", "-C", lab.REPO, "install", "PYTHON=" + sys.executable],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("make install failed:\n%s%s" % (r.stdout, r.stderr), pytrace=False)
    if not os.access(lab.HOOK, os.X_OK):
        pytest.fail("make install did not install %s" % lab.HOOK, pytrace=False)
    _clean_all()
    yield
    _clean_all()


def _clean_all():
    for name in lab.virsh("list", "--all", "--name").stdout.split():
        if name.startswith(lab.PREFIX):
            lab.undefine(name)
    # Containers too, where libvirtd has its LXC driver.
    listed = lab.virsh("list", "--all", "--name", uri=lab.LXC_URI, check=False)
    for name in listed.stdout.split() if listed.returncode == 0 else []:
        if name.startswith(lab.PREFIX):
            lab.undefine(name, lab.LXC_URI)
    for path in glob.glob("/etc/policyhook/domains/%s*.json" % lab.PREFIX):
        os.unlink(path)
    if os.path.exists("/etc/policyhook/host.json"):
        os.unlink("/etc/policyhook/host.json")


@pytest.fixture
def domains(installed, request):
    """A factory of throwaway 2-vCPU domains, named after the test; all removed after."""
    made = []

    def make(suffix="", vcpus=2, **kw):
        name = lab.PREFIX + request.node.name.replace("test_", "")[:30].replace("[", "-").rstrip("]") + suffix
        lab.define(name, vcpus, **kw)
        made.append(name)
        return name

    yield make
    for name in made:
        lab.undefine(name)
        for path in ("/etc/policyhook/domains/%s.json" % name, "/run/policyhook/state/%s.json" % name):
            if os.path.exists(path):
                os.unlink(path)
