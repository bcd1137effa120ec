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
              at `started begin` (doc/design.md "libvirt facts").
Each run polls what the kernel enforces from the moment the start call returns: each
vCPU thread's CPU affinity (sched_getaffinity) and the domain's CFS weight and quota in
its cgroup (cpu.shares and cpu.cfs_quota_us on cgroup v1, cpu.weight and cpu.max on v2):
no libvirt call competes with the ones being measured. The window is when the first
check that finds the whole policy in force began (0 when it was in force as the start
call returned).
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


class Kernel:
    """What the kernel has for a running domain: its vCPU threads and cgroup files."""

    def __init__(self, name):
        with open("/run/libvirt/qemu/%s.pid" % name) as f:
            pid = int(f.read().split()[0])
        self.vcpus = {}
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                m = re.match(r"CPU (\d+)/", f.read())
            if m:
                self.vcpus[int(m.group(1))] = int(tid)
        with open("/proc/%d/cgroup" % pid) as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
        v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        path = next(p for h, c, p in lines if (h == "0" if v2 else "cpu" in c.split(",")))
        base = "/sys/fs/cgroup" + ("" if v2 else "/cpu") + path.rsplit("/emulator", 1)[0]
        if v2:   # the weight on the domain's scope, the domain-wide quota on its libvirt/ child
            self.files = ((base.rsplit("/libvirt", 1)[0] + "/cpu.weight", "200"),
                          (base + "/cpu.max", "50000 100000"))
        else:
            self.files = ((base + "/cpu.shares", "2048"), (base + "/cpu.cfs_quota_us", "50000"))

    def in_force(self, want):
        for v, cpu in want.items():
            if os.sched_getaffinity(self.vcpus[v]) != {cpu}:
                return False
        for path, value in self.files:
            with open(path) as f:
                if f.read().strip() != value:
                    return False
        return True


def measure(dom, want, runs):
    windows, starts = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        dom.create()
        t1 = time.perf_counter()
        starts.append((t1 - t0) * 1000)
        kernel = Kernel(NAME)
        deadline = t1 + 20
        first = True
        while True:
            check = time.perf_counter()
            if kernel.in_force(want):
                # In force at the first look: it was when the start call returned (what
                # came between is finding the threads and files, not waiting).
                windows.append(0.0 if first else (check - t1) * 1000)
                break
            first = False
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

    conn = throwaway.connect()
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
                    windows, starts = measure(dom, want, args.runs)
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
