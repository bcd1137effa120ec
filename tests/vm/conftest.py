"""The guest tier: the end-to-end story on a host like the users' (systemd, cgroup v2,
libvirt 11, the distribution's python3), inside the lab guest of scripts/vm-lab.sh, as
root, with policyhook installed there as its Debian package (`make deb`, apt-get). `make e2e-vm` runs it; the
host's pytest never collects this directory (norecursedirs in pyproject.toml)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import guest  # noqa: E402
import lab  # noqa: E402

MARKER = "/etc/policyhook-lab"
PREFIX = "phvm-"


@pytest.fixture(scope="session")
def installed():
    """libvirtd running in the guest and policyhook's package installed by `scripts/vm-lab.sh up`."""
    if not os.path.exists(MARKER):
        pytest.fail("tests/vm run inside the lab guest only: make e2e-vm "
                    "(scripts/vm-lab.sh up; scripts/vm-lab.sh run python3 -m pytest tests/vm)",
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("tests/vm need root in the guest", pytrace=False)
    if lab.POLICYCTL != "/usr/bin/policyctl" or not os.access(lab.POLICYCTL, os.X_OK):
        pytest.fail("run with the distribution's /usr/bin/python3, after the package "
                    "put /usr/bin/policyctl there (scripts/vm-lab.sh up)", pytrace=False)
    if not os.access(lab.HOOK, os.X_OK):
        pytest.fail("%s is not installed: scripts/vm-lab.sh up" % lab.HOOK, pytrace=False)
    lab.start_daemon()
    _clean_all()
    yield
    _clean_all()


def _clean_all():
    lab.remove_throwaways(PREFIX)
    lab.remove_test_policies(PREFIX)
    # The guest is the tests' own machine (MARKER): its host policy is theirs too.
    if os.path.exists(lab.paths().host_file):
        os.unlink(lab.paths().host_file)


def _remove(name):
    lab.undefine(name)
    lab.policyctl("remove", name)


@pytest.fixture
def domains(installed, request):
    """A factory of throwaway 2-vCPU domains, named after the test; all removed after."""
    yield from lab.throwaways(request, PREFIX, 24, lab.define, _remove)


pytest_runtest_makereport = lab.journal_after_failure(guest.record, ("libvirtd", "irqbalance"))


def pytest_terminal_summary(terminalreporter):
    lab.write_readings(terminalreporter, "values read in the guest", guest.READINGS)
