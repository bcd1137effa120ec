"""policyctl against the real daemon: live on a running domain, saved for an inactive one."""

import json

import lab


def test_running_domain_gets_the_change_at_once(domains):
    name = domains()
    lab.virsh("start", name)
    r = lab.policyctl("vcpupin", name, "0", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "%s: vCPU 0 pinned to 1: saved; applied live" % name
    assert lab.policyctl("schedweight", name, "512").returncode == 0
    assert lab.policyctl("schedcap", name, "50").returncode == 0
    assert lab.policyctl("emulatorpin", name, "0").returncode == 0
    assert lab.vcpupin(name) == {0: "1", 1: "0-1"}
    assert lab.emulatorpin(name) == "0"
    sched = lab.schedinfo(name)
    assert (sched["cpu_shares"], sched["global_period"], sched["global_quota"]) == \
        ("2048", "100000", "50000")

    report = json.loads(lab.policyctl("cpupolicy", name, "--json").stdout)
    assert report["running"] is True
    assert report["vcpupin"] == {"0": "1"}
    assert (report["weight"], report["cap"], report["occupies"]) == (512, 50, [])
    assert report["drift"] == []

    # Unsetting puts libvirt's defaults back live.
    assert lab.policyctl("unset", name, "vcpupin", "0").returncode == 0
    assert lab.policyctl("unset", name, "weight").returncode == 0
    assert lab.policyctl("unset", name, "cap").returncode == 0
    assert lab.vcpupin(name)[0] == "0-1"
    sched = lab.schedinfo(name)
    assert sched["cpu_shares"] == "1024"
    assert int(sched["global_quota"]) < 0 or int(sched["global_quota"]) > 10 ** 15


def test_drift_is_shown_and_apply_fixes_it(domains):
    name = domains()
    lab.virsh("start", name)
    assert lab.policyctl("vcpupin", name, "1", "0").returncode == 0
    lab.virsh("vcpupin", name, "1", "1", "--live")
    report = json.loads(lab.policyctl("cpupolicy", name, "--json").stdout)
    assert report["drift"] == [{"setting": "vcpupin", "index": 1, "policy": "0", "live": "1"}]
    text = lab.policyctl("cpupolicy", name).stdout
    assert "Drift:       vCPU 1: policy 0, live 1" in text
    r = lab.policyctl("apply", name)
    assert (r.returncode, r.stdout.splitlines()[0]) == (0, "%s: applied live" % name)
    assert lab.vcpupin(name)[1] == "0"


def test_inactive_domain_is_saved_not_applied(domains):
    name = domains()
    r = lab.policyctl("vcpupin", name, "1", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "%s: vCPU 1 pinned to 0: saved; applies at next start " \
        "(domain is not running)" % name
    assert lab.policyctl("schedweight", name, "300").returncode == 0
    # Nothing written into libvirt's own configuration.
    assert "<cputune>" not in lab.virsh("dumpxml", "--inactive", name).stdout
    uuid = lab.virsh("domuuid", name).stdout.strip()
    with open(lab.paths().domain_file(name)) as f:
        assert json.load(f) == {"version": 1, "domain": name, "uuid": uuid, "vcpupin": {"1": "0"},
                                "weight": 300}


def test_vcpu_beyond_the_domain_is_refused(domains):
    name = domains()
    r = lab.policyctl("vcpupin", name, "2", "0")
    assert r.returncode == 2
    assert r.stderr == "Error: invalid vCPU 2: domain '%s' has 2 vCPUs (0-1)\n" % name


def test_undefined_domain_is_saved_for_later(installed):
    name = lab.PREFIX + "not-defined"
    try:
        r = lab.policyctl("schedcap", name, "25", "--undefined")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "%s: cap 25%% of one CPU: saved; applies at next start " \
            "(libvirt does not know the domain yet)" % name
    finally:
        lab.policyctl("remove", name)


def test_unreachable_libvirtd_saves_with_a_warning(domains):
    name = domains()
    r = lab.policyctl("-c", "qemu+unix:///system?socket=/nonexistent", "schedweight", name, "128")
    assert r.returncode == 0
    assert r.stdout.strip() == "%s: weight 128: saved; not applied live (libvirt unreachable)" % name
    assert r.stderr.startswith("Warning: cannot connect to qemu+unix:///system?socket=/nonexistent:")
    assert r.stderr.rstrip().endswith("the change is saved but not applied live")
