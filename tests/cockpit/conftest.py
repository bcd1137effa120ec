"""The Cockpit page (contrib/cockpit) in a real browser: Chromium, headless, on this
machine, opens the page that Cockpit serves in the lab guest (scripts/vm-lab.sh cockpit)
and is checked against what policyctl says in the guest.

Run by `make e2e-vm-cockpit`, as root, on the Debian guest that `make e2e-vm-debian`
left running (tests/run runs it between that and `scripts/vm-lab.sh down`): it shares
the guest's one boot. The domain it needs is made and removed here. The host's pytest
never collects this directory by itself (norecursedirs in pyproject.toml)."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import devtools  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_LAB = os.path.join(REPO, "scripts", "vm-lab.sh")
SCREENSHOT = os.path.join(REPO, "build", "cockpit", "policyhook-page.png")
DOMAIN = "phck-page"        # the test's own domain in the guest (tests/cockpit/guest_domain.py)
SHOTS = []


def vm_lab(*args, timeout=600):
    """scripts/vm-lab.sh ARGS: its standard output; a failure fails the test with its stderr."""
    done = subprocess.run([VM_LAB] + list(args), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail("scripts/vm-lab.sh %s exited %d: %s" % (" ".join(args), done.returncode,
                                                             (done.stderr or done.stdout).strip()[-2000:]),
                    pytrace=False)
    return done.stdout


def in_guest(*argv):
    """Run argv as root in the guest (a fresh copy of this checkout is its directory)."""
    return vm_lab("run", *argv)


def policyctl_json(*args):
    return json.loads(in_guest("policyctl", *args, "--json"))


@pytest.fixture(scope="session")
def guest():
    if os.geteuid() != 0:
        pytest.fail("tests/cockpit need root (scripts/vm-lab.sh)", pytrace=False)
    status = subprocess.run([VM_LAB, "status"], capture_output=True, text=True).stdout
    if not status.startswith("running"):
        pytest.fail("the lab guest is not running: make e2e-vm-debian first, or scripts/vm-lab.sh up "
                    "(%s)" % status.strip(), pytrace=False)
    return True


@pytest.fixture(scope="session")
def page_url(guest):
    """The page's own URL, from the shell's URL that scripts/vm-lab.sh cockpit prints."""
    shell = vm_lab("cockpit").strip().splitlines()[-1]
    assert shell.startswith("http://127.0.0.1:") and shell.endswith("/policyhook"), shell
    return shell[:-len("/policyhook")] + "/cockpit/@localhost/policyhook/index.html"


@pytest.fixture(scope="session")
def domain(guest):
    """A running 2-vCPU domain that occupies CPUs 6-7 with vCPU 0 pinned to 6 and 1 to 7."""
    in_guest("/usr/bin/python3", "tests/cockpit/guest_domain.py", "up", DOMAIN)
    yield DOMAIN
    in_guest("/usr/bin/python3", "tests/cockpit/guest_domain.py", "down", DOMAIN)


@pytest.fixture(scope="session")
def browser():
    try:
        b = devtools.Browser()
    except devtools.BrowserError as e:
        pytest.fail(str(e), pytrace=False)
    yield b
    b.close()


@pytest.fixture(scope="session")
def page(browser, page_url, domain):
    """The page, opened once the domain runs, read through to the end."""
    p = browser.page(page_url)
    p.wait("document.body && document.body.getAttribute('data-state') === 'ready'",
           "the page to read policyctl's answers")
    return p


def pytest_terminal_summary(terminalreporter):
    for path in SHOTS:
        terminalreporter.write_line("screenshot of the Cockpit page: %s" % path)
