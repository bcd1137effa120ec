"""End-to-end fixtures: a real libvirtd, our hook installed by `make install`."""

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
    lab.remove_throwaways(lab.PREFIX)
    # Containers too, where libvirtd has its LXC driver.
    lab.remove_throwaways(lab.PREFIX, lab.LXC_URI, missing_ok=True)
    lab.remove_test_policies(lab.PREFIX)


@pytest.fixture
def domains(installed, request):
    """A factory of throwaway domains (2 vCPUs unless vcpus=N; lab.define's keywords),
    named after the test; all removed after, with their policy and runtime state."""
    def remove(name):
        lab.undefine(name)
        for path in ("/etc/policyhook/domains/%s.json" % name, "/run/policyhook/state/%s.json" % name):
            if os.path.exists(path):
                os.unlink(path)

    yield from lab.throwaways(request, lab.PREFIX, 30, lab.define, remove)
