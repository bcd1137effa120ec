#!/usr/bin/env python3
"""The window from `virsh start` returning to the policy being in force, on the real daemon.

    sudo python3 benchmarks/start_window.py [--runs 10] [--vcpus 2]

Needs root, a running libvirtd with QEMU, and policyhook installed (`make install`).
It defines a throwaway domain, stores a policy with pins, weight and cap, then starts
and destroys it --runs times. Each run polls the live pins and scheduler parameters
every 2 ms through libvirt from the moment the start call returns. It also reports the
applier's own figure (after_start_ms in the runtime state: hook call to applied).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import throwaway

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "phbench-window"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--uri", default="qemu:///system")
    args = ap.parse_args()
    import libvirt

    libvirt.registerErrorHandler(lambda c, e: None, None)
    conn = libvirt.open(args.uri)
    ncpus = conn.getCPUMap()[0]
    last = ncpus - 1
    policyctl = throwaway.POLICYCTL
    dom = throwaway.define_fresh(conn, NAME, args.vcpus, 64)
    want_pins = {}
    try:
        for vcpu in range(args.vcpus):
            cpu = last if vcpu % 2 == 0 else 0
            subprocess.run([policyctl, "vcpupin", NAME, str(vcpu), str(cpu)], check=True,
                           capture_output=True)
            want_pins[vcpu] = cpu
        subprocess.run([policyctl, "schedweight", NAME, "512"], check=True, capture_output=True)
        subprocess.run([policyctl, "schedcap", NAME, "50"], check=True, capture_output=True)
        windows, hook_to_applied, starts = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            dom.create()
            t1 = time.perf_counter()
            starts.append((t1 - t0) * 1000)
            deadline = t1 + 10
            while time.perf_counter() < deadline:
                pins = dom.vcpuPinInfo(libvirt.VIR_DOMAIN_AFFECT_LIVE)
                ok = all(pins[v][c] and sum(pins[v]) == 1 for v, c in want_pins.items())
                if ok:
                    params = dom.schedulerParameters()
                    ok = params.get("cpu_shares") in (2048, 200) and params.get("global_quota") == 50000
                if ok:
                    windows.append((time.perf_counter() - t1) * 1000)
                    break
                time.sleep(0.002)
            else:
                print("policy not in force within 10 s", file=sys.stderr)
                return 1
            for _ in range(200):
                try:
                    with open("/run/policyhook/state/%s.json" % NAME) as f:
                        st = json.load(f)
                    if st.get("result") == "applied" and st.get("after_start_ms") is not None:
                        hook_to_applied.append(st["after_start_ms"])
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.01)
            dom.destroy()
        print("domain: %d vCPUs, host CPUs: %d, runs: %d" % (args.vcpus, ncpus, args.runs))
        print("virsh start (create) call:           median %6.1f ms" % statistics.median(starts))
        print("start returned -> policy in force:   median %6.1f ms (min %.1f, max %.1f)"
              % (statistics.median(windows), min(windows), max(windows)))
        if hook_to_applied:
            print("started hook -> applier done:        median %6.1f ms" % statistics.median(hook_to_applied))
        print("reproduce: %s benchmarks/start_window.py --runs %d --vcpus %d"
              % (os.path.basename(sys.executable), args.runs, args.vcpus))
    finally:
        throwaway.remove(dom, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
