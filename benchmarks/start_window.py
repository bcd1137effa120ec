#!/usr/bin/env python3
"""The window from `virsh start` returning to the policy being in force, on the real daemon.

    sudo python3 benchmarks/start_window.py [--runs 5] [--vcpus 2,16,64] [--mode hook,persistent,peer]

Needs root, a running libvirtd with QEMU, and policyhook installed (`make install`).
For each size it defines a throwaway domain with that many vCPUs and puts the same
policy on it three ways, then starts and destroys it --runs times per way:
  hook        policyhook's hook and detached applier (the default mode);
  persistent  [libvirt] persistent = yes: policyctl wrote the policy into the
              definition, libvirt applies it while it starts QEMU;
  peer        no policyhook policy; a bash hook of the kind admins write, in qemu.d,
              runs one detached `virsh` with every `vcpupin --live` and the `schedinfo`
              at `started begin` (libvirt-lab.md section 6).
Each run polls the live pins and scheduler parameters through libvirt from the moment
the start call returns; the window is when the first check that finds the whole
policy in force began (0 when it was in force as the start call returned).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import throwaway

NAME = "phbench-window"
CONF = "/etc/policyhook/policyhook.conf"
PEER = "/etc/libvirt/hooks/qemu.d/zz-phbench-peer"
PEER_SPEC = "/run/phbench-peer.virsh"
PEER_HOOK = """#!/bin/bash
# A hook of the kind admins write: pins and weight/cap with virsh, detached, at started.
[ "$1" = %s ] && [ "$2" = started ] && [ "$3" = begin ] || exit 0
setsid virsh -q -c qemu:///system "$(cat %s)" </dev/null >/dev/null 2>&1 &
exit 0
""" % (NAME, PEER_SPEC)


def set_persistent(on, original):
    text = original if not on else re.sub(r"(?m)^\[libvirt\]$", "[libvirt]\npersistent = yes", original,
                                          count=1)
    with open(CONF, "w") as f:
        f.write(text)


def policy_commands(vcpus, last):
    pins = {v: (last if v % 2 == 0 else 0) for v in range(vcpus)}
    return pins, [["vcpupin", NAME, str(v), str(c)] for v, c in pins.items()] + \
        [["schedweight", NAME, "512"], ["schedcap", NAME, "50"]]


def in_force(dom, want, libvirt):
    pins = dom.vcpuPinInfo(libvirt.VIR_DOMAIN_AFFECT_LIVE)
    if not all(pins[v][c] and sum(pins[v]) == 1 for v, c in want.items()):
        return False
    params = dom.schedulerParameters()
    # 4*512 on cgroup v1; libvirt leaves cpu_shares as written into cpu.weight on v2.
    return params.get("cpu_shares") in (2048, 200) and params.get("global_quota") == 50000


def measure(dom, want, runs, libvirt):
    windows, starts = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        dom.create()
        t1 = time.perf_counter()
        starts.append((t1 - t0) * 1000)
        deadline = t1 + 20
        while True:
            check = time.perf_counter()
            if in_force(dom, want, libvirt):
                windows.append((check - t1) * 1000)
                break
            if check > deadline:
                raise RuntimeError("policy not in force within 20 s")
            time.sleep(0.002)
        dom.destroy()
    return windows, starts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vcpus", default="2,16,64", help="comma-separated sizes")
    ap.add_argument("--mode", default="hook,persistent,peer", help="comma-separated: hook, persistent, peer")
    args = ap.parse_args()
    import libvirt

    libvirt.registerErrorHandler(lambda c, e: None, None)
    conn = libvirt.open("qemu:///system")
    last = conn.getCPUMap()[0] - 1
    policyctl = throwaway.POLICYCTL
    with open(CONF) as f:
        original = f.read()
    rows = []
    try:
        for vcpus in [int(v) for v in args.vcpus.split(",")]:
            for mode in args.mode.split(","):
                dom = throwaway.define_fresh(conn, NAME, vcpus, 64)
                want, commands = policy_commands(vcpus, last)
                try:
                    if mode == "peer":
                        shares = 200 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 2048
                        pins = ["vcpupin %s %d %d --live" % (NAME, v, c) for v, c in want.items()]
                        with open(PEER_SPEC, "w") as f:
                            f.write("; ".join(pins + ["schedinfo %s --live --set cpu_shares=%d "
                                                      "global_period=100000 global_quota=50000"
                                                      % (NAME, shares)]))
                        with open(PEER, "w") as f:
                            f.write(PEER_HOOK)
                        os.chmod(PEER, 0o755)
                    else:
                        set_persistent(mode == "persistent", original)
                        for command in commands:
                            subprocess.run([policyctl] + command, check=True, capture_output=True)
                    windows, starts = measure(dom, want, args.runs, libvirt)
                    rows.append((vcpus, mode, statistics.median(windows), min(windows), max(windows),
                                 statistics.median(starts)))
                finally:
                    for path in (PEER, PEER_SPEC):
                        if os.path.exists(path):
                            os.unlink(path)
                    set_persistent(False, original)
                    throwaway.remove(dom, NAME)
    finally:
        with open(CONF, "w") as f:
            f.write(original)
    print("start returned -> pins, weight and cap in force (ms; %d runs each; host CPUs: %d)"
          % (args.runs, last + 1))
    print("%6s  %-10s  %8s  %8s  %8s  %10s" % ("vCPUs", "mode", "median", "min", "max", "start call"))
    for vcpus, mode, med, lo, hi, start in rows:
        print("%6d  %-10s  %8.1f  %8.1f  %8.1f  %10.1f" % (vcpus, mode, med, lo, hi, start))
    print("reproduce: %s benchmarks/start_window.py --runs %d --vcpus %s --mode %s"
          % (os.path.basename(sys.executable), args.runs, args.vcpus, args.mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
