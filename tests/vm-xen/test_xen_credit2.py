"""Under credit2, Xen's default scheduler since 4.12, with Xen booted with sched=credit2
(scripts/vm-lab.sh --xen --sched credit2). credit2 has a weight and a cap of the same
ranges and meaning as credit's, and libvirt's libxl driver sets both there too: the
policy is put in force whole, at start and live, and read back with xl sched-credit2."""

import json

import lab
import pytest
import xen

pytestmark = pytest.mark.credit2


def test_policy_in_force_under_credit2(domains, credit2):
    name = domains()
    for args in (("vcpupin", name, "0", "2"), ("vcpupin", name, "1", "3"),
                 ("schedweight", name, "512"), ("schedcap", name, "50")):
        r = xen.policyctl(*args)
        assert r.returncode == 0, r.stdout + r.stderr
    cursor = lab.journal_cursor()
    xen.virsh("start", name, timeout=300)
    pins = {0: "2", 1: "3"}
    assert xen.settled(lambda: xen.vcpu_list(name), pins) == pins
    assert xen.settled(lambda: xen.sched_params(name, "credit2"), (512, 50)) == (512, 50)
    xen.record("xl vcpu-list %s (credit2)" % name, xen.xl("vcpu-list", name))
    xen.record("xl sched-credit2 -d %s (schedweight 512, schedcap 50)" % name,
               xen.xl("sched-credit2", "-d", name))
    line, = xen.logged(cursor, "libxl %s applier (start/begin): applied" % name)
    xen.record("journalctl -t policyhook (credit2)", line)
    assert "unsupported" not in line, line
    sched = lab.schedinfo(name, uri=xen.URI)
    xen.record("virsh schedinfo %s (credit2)" % name, ", ".join("%s %s" % kv for kv in sorted(sched.items())))
    assert (sched["Scheduler"], sched["weight"], sched["cap"]) == ("credit2", "512", "50")
    doc = json.loads(xen.policyctl("cpupolicy", name, "--json", check=True).stdout)
    assert doc["drift"] == [], doc

    # Live, as under credit.
    for args in (("schedweight", name, "1024"), ("schedcap", name, "0")):
        r = xen.policyctl(*args)
        assert r.returncode == 0 and "applied live" in r.stdout, r.stdout + r.stderr
    assert xen.settled(lambda: xen.sched_params(name, "credit2"), (1024, 0)) == (1024, 0)
    xen.record("xl sched-credit2 -d %s (schedweight 1024, schedcap 0 live)" % name,
               xen.xl("sched-credit2", "-d", name))
    assert lab.vcpupin(name, uri=xen.URI) == pins
