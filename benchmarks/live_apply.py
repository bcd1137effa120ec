#!/usr/bin/env python3
"""Live apply of a big domain's whole policy on the real daemon.

    sudo python3 benchmarks/live_apply.py [--vcpus 16] [--runs 20]

Needs root, a running libvirtd with QEMU and policyhook installed. Defines and starts a
throwaway domain with --vcpus vCPUs, stores a policy that pins every vCPU, the emulator,
the weight and the cap, then times putting it in force: through the Python API
(PolicyManager.apply, one libvirt connection) and as `policyctl apply DOM` (a whole
process: interpreter, imports, connection, apply). Medians of --runs.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import throwaway

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
NAME = "phbench-live"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vcpus", type=int, default=16)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()

    from policyhook.api import PolicyManager
    from policyhook.paths import Paths

    conn = throwaway.connect()
    ncpus = conn.getCPUMap()[0]
    policyctl = throwaway.POLICYCTL
    dom = throwaway.define_fresh(conn, NAME, args.vcpus, 128)
    try:
        dom.create()
        pm = PolicyManager(Paths("/"))
        for vcpu in range(args.vcpus):
            pm.set_pin(NAME, "vcpu", vcpu, str(vcpu % ncpus))
        pm.set_pin(NAME, "emulator", None, "0")
        pm.set_sched(NAME, "weight", 512)
        pm.set_sched(NAME, "cap", 100)
        api, proc = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            [result] = pm.apply([NAME])
            api.append((time.perf_counter() - t0) * 1000)
            assert result.error is None and len(result.applied.pins) == args.vcpus + 1, result.to_doc()
            t0 = time.perf_counter()
            subprocess.run([policyctl, "apply", NAME], check=True, capture_output=True)
            proc.append((time.perf_counter() - t0) * 1000)
        print("domain: %d vCPUs on %d host CPUs; %d pins + emulator pin + weight/cap, %d runs"
              % (args.vcpus, ncpus, args.vcpus, args.runs))
        print("PolicyManager.apply (API, connected):  median %6.1f ms" % statistics.median(api))
        print("policyctl apply DOM (whole process):   median %6.1f ms" % statistics.median(proc))
        print("reproduce: %s benchmarks/live_apply.py --vcpus %d --runs %d"
              % (os.path.basename(sys.executable), args.vcpus, args.runs))
    finally:
        throwaway.remove(dom, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
