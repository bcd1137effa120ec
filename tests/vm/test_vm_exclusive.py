"""Exclusive CPUs that really are exclusive, in the lab guest (8 CPUs: siblings 0-1,
2-3, 4-5, 6-7; NUMA node 0 = 0-3, node 1 = 4-7; systemd): the hyperthread sibling
warning and --whole-cores, the occupancy picture, and host isolation read back with
`systemctl show -p AllowedCPUs` while an occupant runs, after it stops, and after the
process doing it is killed midway."""

import os
import re
import signal
import subprocess
import time

import guest
import lab
import pytest

CONF = "/etc/policyhook/policyhook.conf"
UNITS = ("system.slice", "user.slice", "init.scope")
RECORD = "/run/policyhook/isolation.json"
LOG = "/var/log/policyhook/policyhook.log"


def allowed(unit):
    return lab.run(["systemctl", "show", "-p", "AllowedCPUs", "--value", unit]).stdout.strip()


def all_allowed():
    return {unit: allowed(unit) for unit in UNITS}


@pytest.fixture
def isolating(installed):
    with open(CONF) as f:
        before = f.read()
    text = re.sub(r"(?m)^\[occupancy\]\n", "[occupancy]\nisolate_host = yes\n", before, count=1)
    with open(CONF, "w") as f:
        f.write(text if text != before else before + "\n[occupancy]\nisolate_host = yes\n")
    yield
    lab.policyctl("cpuoccupy", "0-7", "--clear")
    lab.policyctl("apply", "--all")          # gives back what is recorded
    with open(CONF, "w") as f:
        f.write(before)


def test_sibling_warning_and_whole_cores(domains):
    a = domains("-a")
    r = lab.policyctl("cpuoccupy", "2", a)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("Warning: CPU 2's hyperthread sibling CPU 3 stays open to other domains "
                        "(--whole-cores occupies whole cores)\n")
    r = lab.policyctl("cpuoccupy", "2", a, "--whole-cores")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[0] == "whole cores: added CPU 3"
    assert lab.policyctl("occupancy", "--json").returncode == 0
    picture = lab.policyctl("occupancy").stdout
    guest.record("policyctl occupancy", "\n" + picture.rstrip())
    lines = picture.splitlines()
    assert lines[0].split() == ["NODE", "SOCKET", "CORE", "CPU", "OCCUPIED", "BY", "PINNED", "HERE"]
    rows = [line.split() for line in lines[1:9]]
    assert [(r[0], r[3]) for r in rows] == [("0", "0"), ("0", "1"), ("0", "2"), ("0", "3"),
                                            ("1", "4"), ("1", "5"), ("1", "6"), ("1", "7")]
    assert [r[4] for r in rows] == ["-", "-", a, a, "-", "-", "-", "-"]
    assert lines[-2:] == ["NUMA node 0: CPUs 0-3", "NUMA node 1: CPUs 4-7"]
    lab.policyctl("cpuoccupy", "2-3", "--clear")


def test_host_isolation_follows_the_occupant(domains, isolating):
    a = domains("-a")
    assert all_allowed() == {u: "" for u in UNITS}
    assert lab.policyctl("cpuoccupy", "6-7", a).returncode == 0
    assert all_allowed() == {u: "" for u in UNITS}          # no occupant runs yet
    lab.virsh("start", a)
    running = lab.settled(all_allowed, {u: "0-5" for u in UNITS})
    guest.record("AllowedCPUs while %s (occupying 6-7) runs" % a, running)
    assert running == {u: "0-5" for u in UNITS}
    assert os.path.exists(RECORD)
    lab.virsh("destroy", a)
    stopped = lab.settled(all_allowed, {u: "" for u in UNITS})
    guest.record("AllowedCPUs after %s stopped" % a, stopped)
    assert stopped == {u: "" for u in UNITS}
    assert not os.path.exists(RECORD)


def test_a_killed_updater_is_put_right(domains, isolating):
    a = domains("-a")
    assert lab.policyctl("cpuoccupy", "6-7", a).returncode == 0
    offset = os.path.getsize(LOG) if os.path.exists(LOG) else 0
    start = subprocess.Popen(["virsh", "-c", lab.URI, "start", a], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    # Kill the applier the moment the hook names it, while the domain still starts.
    pid = None
    deadline = time.monotonic() + 30
    while pid is None and time.monotonic() < deadline:
        with open(LOG) as f:
            f.seek(offset)
            m = re.search(r"qemu %s start/begin: applier started \(pid (\d+)\)" % re.escape(a), f.read())
        pid = int(m.group(1)) if m else None
        time.sleep(0.01)
    assert pid, "no applier started"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # done already: the state below is then the finished one
    assert start.wait(timeout=120) == 0, start.stderr.read()
    guest.record("AllowedCPUs once the domain runs, its applier killed", all_allowed())
    r = lab.policyctl("apply", "--all")
    assert r.returncode == 0, r.stderr
    assert all_allowed() == {u: "0-5" for u in UNITS}
    # A record left as a crash leaves it, with nothing running: apply --all gives back.
    lab.virsh("destroy", a)
    lab.settled(all_allowed, {u: "" for u in UNITS})
    lab.run(["systemctl", "set-property", "--runtime", "system.slice", "AllowedCPUs=0-5"])
    with open(RECORD, "w") as f:
        f.write('{"saved": {"system.slice": ""}, "applied": {"system.slice": "0-5"}}\n')
    r = lab.policyctl("apply", "--all")
    assert r.returncode == 0, r.stderr
    assert "system.slice AllowedCPUs=all (given back)" in r.stdout
    assert all_allowed() == {u: "" for u in UNITS}
    assert not os.path.exists(RECORD)
