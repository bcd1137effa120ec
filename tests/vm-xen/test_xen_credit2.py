"""Under credit2, Xen's default scheduler since 4.12. credit2 has a weight and a cap of
the same ranges and meaning as credit's, and libvirt's libxl driver sets both there too.

In the tier's one boot (sched=credit), a cpupool of two CPUs runs credit2 and a domain is
moved into it: libxl sets a domain's weight and cap through the scheduler of its pool, so
policyctl's live path and `apply` reach credit2, read back with xl sched-credit2. With Xen
booted with sched=credit2 (`make e2e-vm-xen-credit2`, not part of `make test`: a second
boot of several minutes under TCG), the policy is put in force at start as well."""

import json

import lab
import pytest
import xen

POOL = "phxen-credit2"
POOL_CPUS = ("6", "7")


@pytest.fixture
def credit2_pool(credit):
    """A cpupool running credit2 on CPUs 6-7, taken from Pool-0 and given back after (its
    domains back to Pool-0 first: a pool with domains cannot be destroyed)."""
    xl = xen.xl
    xl("cpupool-cpu-remove", "Pool-0", ",".join(POOL_CPUS))
    try:
        xl("cpupool-create", 'name="%s"' % POOL, 'sched="credit2"',
           "cpus=[%s]" % ",".join('"%s"' % c for c in POOL_CPUS))
        yield POOL
    finally:
        for name in xen.pool_domains(POOL):
            xl("cpupool-migrate", name, "Pool-0", check=False)
        xl("cpupool-destroy", POOL, check=False)
        xl("cpupool-cpu-add", "Pool-0", ",".join(POOL_CPUS))
        xen.record("xl cpupool-list (after the credit2 pool)", xl("cpupool-list"))


def test_weight_and_cap_reach_credit2_in_a_cpupool(domains, credit2_pool):
    # No pins: the domain starts in Pool-0, which no longer has the pool's CPUs, and
    # moves to the pool after.
    name = domains()
    for args in (("schedweight", name, "512"), ("schedcap", name, "50")):
        r = xen.policyctl(*args)
        assert r.returncode == 0, r.stdout + r.stderr
    cursor = lab.journal_cursor()
    xen.virsh("start", name, timeout=300)
    xen.logged(cursor, "libxl %s applier (start/begin): applied" % name)
    assert xen.sched_params(name, "credit") == (512, 50)

    # Into the credit2 pool: Xen gives the domain credit2's defaults, and that is drift.
    xen.xl("cpupool-migrate", name, credit2_pool)
    xen.record("xl cpupool-list (%s in %s)" % (name, credit2_pool), xen.xl("cpupool-list"))
    assert xen.sched_params(name, "credit2") == (256, 0)
    r = xen.policyctl("verify", name)
    assert r.returncode == 7, r.stdout + r.stderr
    xen.record("policyctl verify %s (in the credit2 pool)" % name, r.stdout.strip())
    r = xen.policyctl("apply", name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert xen.settled(lambda: xen.sched_params(name, "credit2"), (512, 50)) == (512, 50)
    xen.record("xl sched-credit2 -d %s (policyctl apply: schedweight 512, schedcap 50)" % name,
               xen.xl("sched-credit2", "-d", name))
    doc = json.loads(xen.policyctl("cpupolicy", name, "--json", check=True).stdout)
    assert doc["drift"] == [], doc
    # libvirt names the scheduler Xen booted with (Pool-0's), whatever the domain's pool.
    sched = lab.schedinfo(name, uri=xen.URI)
    xen.record("virsh schedinfo %s (in the credit2 pool)" % name,
               ", ".join("%s %s" % kv for kv in sorted(sched.items())))
    assert (sched["weight"], sched["cap"]) == ("512", "50")

    # Live, as under credit.
    for args in (("schedweight", name, "1024"), ("schedcap", name, "0")):
        r = xen.policyctl(*args)
        assert r.returncode == 0 and "applied live" in r.stdout, r.stdout + r.stderr
    assert xen.settled(lambda: xen.sched_params(name, "credit2"), (1024, 0)) == (1024, 0)


@pytest.mark.credit2
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
