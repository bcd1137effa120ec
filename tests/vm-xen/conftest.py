"""The Xen tier: policyhook on the hypervisor weight and cap come from. It runs inside the
lab's Xen dom0 (scripts/vm-lab.sh --xen: Xen 4.20 under QEMU's TCG, libvirt 11's libxl
driver), as root, with policyhook installed there as its Debian package, and reads back
what Xen itself enforces with xl. `make e2e-vm-xen` runs it with Xen booted with
sched=credit (the tests not marked credit2; credit2 there in a cpupool), `make
e2e-vm-xen-credit2` with sched=credit2 (those that are marked). The host's pytest never
collects this directory (norecursedirs)."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import lab  # noqa: E402
import xen  # noqa: E402

MARKER = "/etc/policyhook-lab"


def pytest_configure(config):
    config.addinivalue_line("markers", "credit2: needs Xen booted with sched=credit2 "
                            "(scripts/vm-lab.sh --xen --sched credit2)")


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


@pytest.fixture(scope="session")
def installed():
    """Xen's dom0 in the lab guest, libvirtd with its libxl driver, policyhook installed."""
    if not os.path.exists(MARKER) or _read("/sys/hypervisor/type") != "xen":
        pytest.fail("tests/vm-xen run inside the lab's Xen guest only: make e2e-vm-xen "
                    "(scripts/vm-lab.sh --xen up; scripts/vm-lab.sh --xen run python3 -m pytest "
                    "tests/vm-xen)", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("tests/vm-xen need root in the guest", pytrace=False)
    if lab.POLICYCTL != "/usr/bin/policyctl" or not os.access(xen.HOOK, os.X_OK):
        pytest.fail("run with the distribution's /usr/bin/python3, after its package put "
                    "policyctl and %s there (scripts/vm-lab.sh --xen up)" % xen.HOOK, pytrace=False)
    lab.wait_for(lambda: lab.daemon_up(xen.URI), 120, "libvirtd's libxl driver to answer")
    _clean_all()
    yield
    _clean_all()


def _clean_all():
    lab.remove_throwaways(xen.PREFIX, xen.URI, remove=xen.undefine)
    lab.remove_test_policies(xen.PREFIX)
    # The guest is the tests' own machine (MARKER): its host policy is theirs too.
    if os.path.exists(lab.paths().host_file):
        os.unlink(lab.paths().host_file)


def _scheduler_fixture(wanted):
    def fixture(installed):
        running = xen.scheduler()
        if running != wanted:
            pytest.fail("these tests need Xen booted with sched=%s; it runs %s (make e2e-vm-xen "
                        "selects them by marker)" % (wanted, running), pytrace=False)
        return running
    return fixture


credit = pytest.fixture(scope="session")(_scheduler_fixture("credit"))
credit2 = pytest.fixture(scope="session")(_scheduler_fixture("credit2"))


def _remove(name):
    xen.undefine(name)
    xen.policyctl("remove", name)


@pytest.fixture
def domains(installed, request):
    """A factory of throwaway 2-vCPU PV domains, named after the test; removed after."""
    yield from lab.throwaways(request, xen.PREFIX, 24, xen.define, _remove)


pytest_runtest_makereport = lab.journal_after_failure(xen.record, ("libvirtd", "virtxend"))


def pytest_terminal_summary(terminalreporter):
    lab.write_readings(terminalreporter, "values read in the Xen guest", xen.READINGS)
