#!/usr/bin/env python3
"""What libvirt's own pin calls cost, with nothing of policyhook around them.

    sudo python3 benchmarks/pin_calls.py [--vcpus 64] [--runs 5]

Needs root and a running libvirtd with QEMU. Starts a throwaway domain with --vcpus
vCPUs and times --runs rounds of one virDomainPinVcpuFlags(AFFECT_LIVE) per vCPU, back
to back: the floor under the applier's start-to-in-force window in hook mode.
"""

import argparse
import os
import statistics
import sys
import time

import throwaway

NAME = "phbench-pins"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vcpus", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import libvirt

    conn = throwaway.connect()
    ncpus = conn.getCPUMap()[0]
    dom = throwaway.define_fresh(conn, NAME, args.vcpus, 64)
    try:
        dom.create()
        rounds = []
        for r in range(args.runs):
            t0 = time.perf_counter()
            for v in range(args.vcpus):
                dom.pinVcpuFlags(v, tuple((c == (v + r) % ncpus) for c in range(ncpus)),
                                 libvirt.VIR_DOMAIN_AFFECT_LIVE)
            rounds.append((time.perf_counter() - t0) * 1000)
        print("%d pinVcpuFlags calls, back to back: median %.1f ms (min %.1f, max %.1f), %.2f ms a call"
              % (args.vcpus, statistics.median(rounds), min(rounds), max(rounds),
                 statistics.median(rounds) / args.vcpus))
        print("reproduce: %s benchmarks/pin_calls.py --vcpus %d --runs %d"
              % (os.path.basename(sys.executable), args.vcpus, args.runs))
    finally:
        throwaway.remove(dom, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
