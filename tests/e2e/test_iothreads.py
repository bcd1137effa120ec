"""IOThread pins on the real daemon: a domain with <iothreads>2</iothreads>, its policy
recorded while shut off, put in force at start, changed live, kept off occupied CPUs,
shown with drift, and written into <cputune> when the domain is restored. Read back from
libvirt (`virsh iothreadinfo`) and from the kernel (each IOThread's CPU affinity)."""

import json
import os

import lab
import pytest


def _in_force(name, want):
    return lab.wait_for(lambda: lab.iothreadinfo(name) == want, 15,
                        "IOThread pins %s on %s" % (want, name))


@pytest.mark.moves_others      # cpuoccupy
def test_iothread_pins_from_start_to_restore(domains, tmp_path):
    name = domains(iothreads=2)
    other = lab.PREFIX + "iothreads-occupant"

    # Recorded while shut off, checked against the domain's <iothreads>.
    r = lab.policyctl("iothreadpin", name, "1", "1")
    assert (r.returncode, r.stdout) == (
        0, "%s: IOThread 1 pinned to 1: saved; applies at next start (domain is not running)\n" % name)
    r = lab.policyctl("iothreadpin", name, "3", "0")
    assert (r.returncode, r.stderr) == (
        2, "Error: invalid IOThread ID 3: domain '%s' has 2 IOThreads (1-2)\n" % name)

    # In force at start (the hook's applier), in libvirt and in the kernel.
    lab.virsh("start", name)
    _in_force(name, {1: "1", 2: "0-1"})
    assert lab.affinity(name, "IO iothread1") == "1"
    assert lab.affinity(name, "IO iothread2") == "0-1"

    # A live change.
    r = lab.policyctl("iothreadpin", name, "2", "0")
    assert (r.returncode, r.stdout) == (
        0, "%s: IOThread 2 pinned to 0: saved; applied live\n  iothreadpin 1 1\n  iothreadpin 2 0\n" % name)
    assert lab.iothreadinfo(name) == {1: "1", 2: "0"}
    assert lab.affinity(name, "IO iothread2") == "0"

    # Drift, shown by cpupolicy and put back by apply.
    lab.virsh("iothreadpin", name, "1", "0", "--live")
    report = json.loads(lab.policyctl("cpupolicy", name, "--json").stdout)
    assert report["drift"] == [{"setting": "iothreadpin", "index": 1, "policy": "1", "live": "0"}]
    text = lab.policyctl("cpupolicy", name).stdout
    assert "IOThread 1  1       1          0\n" in text
    assert "Drift:       IOThread 1: policy 1, live 0\n" in text
    assert lab.policyctl("apply", name).returncode == 0
    assert lab.iothreadinfo(name) == {1: "1", 2: "0"}

    # Occupancy keeps IOThreads off CPUs others own, as it does the emulator; a pin that
    # needs an occupied CPU is refused.
    r = lab.policyctl("cpuoccupy", "1", other, "--undefined")
    assert r.returncode == 3
    assert r.stderr == ("Error: IOThread 1 of '%s' is pinned to 1 (policy), which is occupied by %s "
                        "(cpuoccupy); it would have no CPU left\n" % (name, other))
    assert lab.policyctl("unset", name, "iothreadpin", "1").returncode == 0
    assert lab.iothreadinfo(name) == {1: "0-1", 2: "0"}
    r = lab.policyctl("cpuoccupy", "1", other, "--undefined")
    assert r.returncode == 0, r.stderr
    assert lab.iothreadinfo(name) == {1: "0", 2: "0"}
    assert lab.affinity(name, "IO iothread1") == "0"

    # Restored from a save file: the restore hook writes the policy of the moment (changed
    # while the domain was saved) into <cputune>, so it holds from the first instruction.
    assert lab.policyctl("cpuoccupy", "1", "--clear").returncode == 0
    saved = str(tmp_path / "saved.img")
    lab.virsh("save", name, saved, timeout=120)
    try:
        r = lab.policyctl("iothreadpin", name, "1", "1")
        assert r.stdout.endswith("saved; applies at next start (domain is not running)\n"), r.stdout
        lab.virsh("restore", saved, timeout=120)
    finally:
        os.unlink(saved)
    assert lab.iothreadinfo(name) == {1: "1", 2: "0"}
    assert "<iothreadpin iothread='1' cpuset='1'/>" in lab.virsh("dumpxml", name).stdout
    with open(lab.paths().log) as f:
        assert "qemu %s restore/begin: wrote the policy into <cputune>: IOThread 1 -> 1, IOThread 2 -> 0" \
            % name in f.read()
