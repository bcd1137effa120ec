"""policyctl as a libvirt admin expects it, on the real daemon: a typo, an Id, a UUID, a
wrong URI, verify with drift, offline vCPUs, a policy bound to its domain's UUID, and
rename after virsh domrename."""

import json
import os

import lab
import pytest


def _policy(name):
    path = lab.paths().domain_file(name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _log_since(offset):
    with open(lab.paths().log) as f:
        f.seek(offset)
        return f.read()


def _log_size():
    path = lab.paths().log
    return os.path.getsize(path) if os.path.exists(path) else 0


def test_typo_id_uuid_and_a_wrong_uri(domains):
    name = domains()
    lab.virsh("start", name)
    uuid = lab.virsh("domuuid", name).stdout.strip()
    typo = name[:-1] + "x"
    r = lab.policyctl("vcpupin", typo, "0", "0")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("Error: domain '%s' is not defined in libvirt (qemu:///system); did you mean '%s'?; "
                        "--undefined records a policy for a domain not defined yet\n" % (typo, name))
    assert _policy(typo) is None

    domid = lab.virsh("domid", name).stdout.strip()
    r = lab.policyctl("schedweight", domid, "300")
    assert (r.returncode, r.stdout) == (0, "%s: weight 300: saved; applied live\n"
                                           "  schedinfo cpu_shares=1200\n" % name), r.stderr
    r = lab.policyctl("vcpupin", uuid, "0", "1")
    assert r.returncode == 0 and r.stdout.startswith("%s: vCPU 0 pinned to 1: saved; applied live" % name)
    assert _policy(name) == {"version": 1, "domain": name, "uuid": uuid, "vcpupin": {"0": "1"},
                             "weight": 300}
    assert not os.path.exists(lab.paths().domain_file(domid))

    for args, env in ((["-c", "bogus:///x"], {}), ([], {"LIBVIRT_DEFAULT_URI": "bogus:///x"})):
        r = lab.run(lab.policyctl_argv(*args + ["schedweight", name, "500"]), check=False,
                    env=dict(os.environ, **env))
        assert (r.returncode, r.stdout, r.stderr) == (
            6, "", "Error: cannot connect to bogus:///x: no connection driver available for bogus:///x\n")
    assert _policy(name)["weight"] == 300


def test_verify_reports_drift_until_apply(domains):
    name = domains()
    lab.virsh("start", name)
    assert lab.policyctl("vcpupin", name, "1", "0").returncode == 0
    r = lab.policyctl("verify")
    assert (r.returncode, r.stdout) == (0, "%s: in force\n" % name), r.stderr
    lab.virsh("vcpupin", name, "1", "1", "--live")
    r = lab.policyctl("verify")
    assert r.returncode == 7
    assert r.stdout == "%s: DRIFT: vCPU 1: policy 0, live 1 (policyctl apply %s)\n" % (name, name)
    assert r.stderr == "Error: 1 of 1 domain not in force: %s\n" % name
    doc = json.loads(lab.policyctl("verify", "--json").stdout)
    assert [(d["domain"], d["status"], d["in_force"]) for d in doc] == [(name, "drift", False)]
    assert lab.policyctl("apply", name).returncode == 0
    assert lab.policyctl("verify", name).returncode == 0


def test_offline_vcpu_keeps_its_pin_for_hotplug(domains):
    name = domains(current=1)
    assert lab.policyctl("vcpupin", name, "1", "1").returncode == 0
    lab.virsh("start", name)
    lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied", 15, "the applier")
    r = lab.policyctl("verify", name)
    assert (r.returncode, r.stdout) == (0, "%s: in force\n" % name), r.stdout + r.stderr
    assert "vCPU 1    1       1          offline\n" in lab.policyctl("cpupolicy", name).stdout
    lab.virsh("setvcpus", name, "2", "--live")
    lab.wait_for(lambda: lab.vcpupin(name).get(1) == "1", 10, "vCPU 1 online, pinned")
    assert lab.affinity(name, "CPU 1/TCG") == "1"
    assert lab.policyctl("verify", name).returncode == 0


def test_a_policy_stays_with_its_domain(domains):
    name = domains()
    assert lab.policyctl("vcpupin", name, "0", "1").returncode == 0
    recorded = _policy(name)["uuid"]
    # Another domain takes the name: the policy is not applied to it.
    lab.undefine(name)
    lab.define(name)
    uuid = lab.virsh("domuuid", name).stdout.strip()
    assert uuid != recorded
    offset = _log_size()
    lab.virsh("start", name)
    lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied", 15, "the applier")
    assert lab.vcpupin(name)[0] == "0-1"
    fix = ("the policy of '%s' was recorded for the domain with UUID %s, but this '%s' has UUID %s; it is "
           "not applied (run 'policyctl rebind %s' to keep it for this domain, or 'policyctl remove %s')"
           % (name, recorded, name, uuid, name, name))
    log = _log_since(offset)
    assert "qemu %s prepare/begin: %s" % (name, fix) in log
    assert "qemu %s applier (start/begin): %s" % (name, fix) in log
    r = lab.policyctl("verify", name)
    assert (r.returncode, r.stdout) == (7, "%s: NOT APPLIED: %s\n" % (name, fix))
    r = lab.policyctl("check")
    assert r.returncode == 4 and "%s: %s\n" % (lab.paths().domain_file(name), fix) in r.stdout
    r = lab.policyctl("rebind", name)
    assert r.returncode == 0, r.stderr
    assert lab.vcpupin(name)[0] == "1"
    assert lab.policyctl("verify", name).returncode == 0


@pytest.mark.moves_others      # cpuoccupy
def test_rename_follows_virsh_domrename(domains):
    old = domains("-old")
    new = old[:-len("-old")] + "-new"
    try:
        assert lab.policyctl("vcpupin", old, "0", "1").returncode == 0
        assert lab.policyctl("cpuoccupy", "1", old).returncode == 0
        lab.virsh("domrename", old, new)
        r = lab.policyctl("rename", old, new)
        assert (r.returncode, r.stdout) == (0, "%s: policy moved to '%s': saved\n" % (old, new)), r.stderr
        assert _policy(old) is None and _policy(new)["vcpupin"] == {"0": "1"}
        assert lab.occupied() == {1: [new]}
        lab.virsh("start", new)
        lab.wait_for(lambda: lab.vcpupin(new).get(0) == "1", 15, "the renamed domain's policy")
    finally:
        lab.policyctl("cpuoccupy", "1", "--clear")
        lab.undefine(new)
        lab.policyctl("--offline", "remove", new)


def _verify(name):
    r = lab.policyctl("verify", name)
    doc = json.loads(lab.policyctl("verify", name, "--json").stdout)
    return r, [(d["domain"], d["status"], d["drift"]) for d in doc]


def test_verify_reports_weight_and_cap_changed_behind_our_back(domains):
    # Weight 512 is cpu_shares 2048 on cgroup v1, cap 50 a global_quota of 50000 per
    # 100000 us (README "Drivers"); `virsh schedinfo --live` changes them without us.
    name = domains()
    for args in (("schedweight", name, "512"), ("schedcap", name, "50")):
        assert lab.policyctl(*args).returncode == 0
    lab.virsh("start", name)
    lab.wait_for(lambda: (lab.state(name) or {}).get("result") == "applied", 15, "the applier")
    r, _ = _verify(name)
    assert (r.returncode, r.stdout) == (0, "%s: in force\n" % name), r.stderr

    lab.virsh("schedinfo", name, "--live", "--set", "cpu_shares=1024")
    assert lab.cgroup_value(lab.domain_cgroup(name), "cpu.shares") == "1024"
    r, docs = _verify(name)
    assert (r.returncode, r.stdout, r.stderr) == (
        7, "%s: DRIFT: cpu_shares: policy 2048, live 1024 (policyctl apply %s)\n" % (name, name),
        "Error: 1 of 1 domain not in force: %s\n" % name)
    assert docs == [(name, "drift", [{"setting": "cpu_shares", "index": None, "policy": 2048, "live": 1024}])]
    assert lab.policyctl("apply", name).returncode == 0
    assert lab.schedinfo(name)["cpu_shares"] == "2048"

    # The cap removed live: no quota at all, -1 on cgroup v1.
    lab.virsh("schedinfo", name, "--live", "--set", "global_quota=-1")
    assert lab.cgroup_value(lab.domain_cgroup(name), "cpu.cfs_quota_us") == "-1"
    r, docs = _verify(name)
    assert (r.returncode, r.stdout, r.stderr) == (
        7, "%s: DRIFT: global_quota: policy 50000, live -1 (policyctl apply %s)\n" % (name, name),
        "Error: 1 of 1 domain not in force: %s\n" % name)
    assert docs == [(name, "drift", [{"setting": "global_quota", "index": None, "policy": 50000,
                                      "live": -1}])]
    assert lab.policyctl("apply", name).returncode == 0
    assert lab.cgroup_value(lab.domain_cgroup(name), "cpu.cfs_quota_us") == "50000"
    assert _verify(name)[0].returncode == 0
