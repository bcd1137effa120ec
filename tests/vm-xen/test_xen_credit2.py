"""Under credit2, Xen's default scheduler since 4.12: libvirt's libxl driver sets weight
and cap only under credit, so policyhook puts the pins in force, leaves weight and cap
out and says so (mapping.unsupported), and refuses to record them for a running domain.
Xen booted with sched=credit2 (scripts/vm-lab.sh --xen --sched credit2)."""

import json
import re

import lab
import pytest
import xen

pytestmark = pytest.mark.credit2


def test_pins_in_force_weight_and_cap_reported(domains, credit2):
    name = domains()
    # Off, the domain's scheduler is not known: the whole policy is recorded.
    for args in (("vcpupin", name, "0", "2"), ("vcpupin", name, "1", "3"),
                 ("schedweight", name, "512"), ("schedcap", name, "50")):
        r = xen.policyctl(*args)
        assert r.returncode == 0, r.stdout + r.stderr
    cursor = xen.journal_cursor()
    xen.virsh("start", name, timeout=300)
    pins = {0: "2", 1: "3"}
    assert xen.settled(lambda: xen.vcpu_list(name), pins) == pins
    # Xen's defaults, untouched: credit2's weight 256 and no cap.
    assert xen.sched_params(name, "credit2") == (256, 0)
    xen.record("xl vcpu-list %s (credit2)" % name, xen.xl("vcpu-list", name))
    xen.record("xl sched-credit2 -d %s" % name, xen.xl("sched-credit2", "-d", name))

    line, = xen.logged(cursor, "libxl %s applier (start/begin): applied" % name)
    xen.record("journalctl -t policyhook (credit2)", line)
    assert re.search(r"unsupported: .*weight.*cap.*credit2", line), line
    sched = xen.virsh("schedinfo", name, check=False)
    xen.record("virsh schedinfo %s (credit2)" % name, (sched.stdout + sched.stderr).strip())

    doc = json.loads(xen.policyctl("cpupolicy", name, "--json", check=True).stdout)
    assert doc["drift"] == [], doc

    # Running, the scheduler is known: a weight is refused, nothing saved.
    r = xen.policyctl("schedweight", name, "300")
    xen.record("policyctl schedweight %s 300 (credit2)" % name, (r.stdout + r.stderr).strip())
    assert r.returncode == 3 and "credit2" in r.stderr, r.stdout + r.stderr
    with open("/etc/policyhook/domains/%s.json" % name) as f:
        assert json.load(f)["weight"] == 512
    assert lab.vcpupin(name, uri=xen.URI) == pins
