"""Weight and cap changed on Xen behind policyhook's back, with Xen's own tool
(`xl sched-credit -d DOM -w W -c C`, below libvirt, which sends no event for it): a
weight that differs and a cap removed (0, Xen's no cap) are drift that `policyctl
verify` names, and that `policyctl watch` with [watch] on_drift = repair puts back at
its next reconcile, as `xl sched-credit` then reads."""

import json
import os
import re
import signal
import subprocess
import time

import lab
import pytest
import xen

IN_FORCE = (512, 50)
# (xl sched-credit's arguments, what Xen then has, the drift's line, its parameter, the live value)
CHANGES = [(("-w", "256"), (256, 50), "weight: policy 512, live 256", "weight", 256),
           (("-c", "0"), (512, 0), "cap: policy 50, live 0", "cap", 0)]
IDS = ["weight", "cap-removed"]


@pytest.fixture(scope="module")
def capped(installed):
    """One running domain with weight 512 and cap 50 in force."""
    name = xen.PREFIX + "drift"
    xen.define(name)
    try:
        for args in (("schedweight", name, "512"), ("schedcap", name, "50")):
            assert xen.policyctl(*args).returncode == 0
        xen.virsh("start", name, timeout=300)
        assert xen.settled(lambda: xen.sched_params(name), IN_FORCE) == IN_FORCE
        yield name
    finally:
        xen.undefine(name)
        xen.policyctl("remove", name)


def verified(name):
    r = xen.policyctl("verify", name)
    doc = json.loads(xen.policyctl("verify", name, "--json").stdout)
    return r, [(d["domain"], d["status"], d["drift"]) for d in doc]


@pytest.mark.parametrize("args,changed,line,param,live", CHANGES, ids=IDS)
def test_verify_reports_weight_and_cap_changed_with_xl(credit, capped, args, changed, line, param, live):
    xen.xl("sched-credit", "-d", capped, *args)
    got = xen.sched_params(capped)
    xen.record("xl sched-credit -d %s %s: weight, cap" % (capped, " ".join(args)), "%s, %s" % got)
    assert got == changed
    r, docs = verified(capped)
    assert (r.returncode, r.stdout, r.stderr) == (
        7, "%s: DRIFT: %s (policyctl apply %s)\n" % (capped, line, capped),
        "Error: 1 of 1 domain not in force: %s\n" % capped)
    want = dict(zip(("weight", "cap"), IN_FORCE))[param]
    assert docs == [(capped, "drift", [{"setting": param, "index": None, "policy": want, "live": live}])]
    assert xen.policyctl("apply", capped).returncode == 0
    assert xen.settled(lambda: xen.sched_params(capped), IN_FORCE) == IN_FORCE
    assert verified(capped)[0].returncode == 0


def test_the_watcher_repairs_weight_and_cap_changed_with_xl(credit, capped):
    conf_path = lab.paths().conf
    with open(conf_path) as f:
        conf = f.read()
    log = lab.paths().log
    offset = os.path.getsize(log) if os.path.exists(log) else 0
    # libvirt sends no event for what xl changes: the reconcile every [watch] interval finds it.
    section = "[watch]\non_drift = repair\ninterval = 2\n"
    with open(conf_path, "w") as f:
        f.write(re.sub(r"(?m)^\[watch\]\n", section, conf, count=1))
    proc = subprocess.Popen(lab.policyctl_argv("-c", xen.URI, "watch"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        lab.wait_for(lambda: "watch: %s: watching" % xen.URI in lab.log_text()[offset:], 120,
                     "the watcher to start")
        for args, _changed, line, _param, _live in CHANGES:
            # No read of the change itself: with a reconcile every 2 s the watcher may
            # have put it back already (it did under TCG). Its log line says what it found.
            xen.xl("sched-credit", "-d", capped, *args)
            t0 = time.monotonic()
            got = xen.settled(lambda: xen.sched_params(capped), IN_FORCE, timeout=60)
            xen.record("policyctl watch ([watch] interval = 2) after xl sched-credit %s" % " ".join(args),
                       "%s, %s after %.1f s" % (got + (time.monotonic() - t0,)))
            assert got == IN_FORCE
            repaired = "watch: %s: drift (reconcile) repaired: %s" % (capped, line)
            lab.wait_for(lambda text=repaired: text in lab.log_text()[offset:], 30, repr(repaired))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        with open(conf_path, "w") as f:
            f.write(conf)
