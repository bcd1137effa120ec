#!/usr/bin/env python3
"""policyctl's reading commands, and the hook, against registries of growing size.

    python3 benchmarks/registry_scale.py [--sizes 10,1000,10000] [--runs 5] [--hook-runs 20]

For each size, builds a scratch registry (one policy file per domain, pins, weight, cap,
and a host.json occupancy map) under a temporary directory and times, as whole
processes the way an admin runs them (median of --runs):

    policyctl --root DIR --offline list
    policyctl --root DIR --offline list --json
    policyctl --root DIR --offline check

each beside `python3 -c pass` measured in the same run. The target: under a second at
10,000 domains. Then it runs benchmarks/hook_time.py with the same sizes, which shows
that the hook's time per event does not grow with the registry (it reads one domain's
file, never the directory). --hook-runs 0 skips that part.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

COMMANDS = [("list", ["list"]), ("list --json", ["list", "--json"]), ("check", ["check"])]


def build(root, size):
    """A registry of `size` domains. One file goes through Registry.transact (jsonschema, the
    lock, fsync); the others are the same bytes written directly, which is what save
    writes, without 10,000 fsyncs."""
    from policyhook import jsondoc
    from policyhook.cpuset import CpuSet
    from policyhook.model import DomainPolicy, HostPolicy
    from policyhook.paths import Paths
    from policyhook.registry import Registry
    from policyhook.results import Writes

    paths = Paths(root)
    reg = Registry(paths)

    def policy(i):
        return DomainPolicy("vm%05d" % i, {("vcpu", 0): CpuSet([0]), ("vcpu", 1): CpuSet([0, 1]),
                                           ("vcpu", 2): CpuSet([1]), ("emulator", 0): CpuSet([0])},
                            {"weight": 100 + i % 1000, "cap": (i % 8) * 25})

    host = HostPolicy({1: ["vm%05d" % i for i in range(0, size, max(1, size // 8))]})
    reg.transact(lambda _snap: Writes(domains=[policy(0)], host=host))
    for i in range(1, size):
        p = policy(i)
        with open(paths.domain_file(p.domain), "wb") as f:
            f.write(jsondoc.dumps(p.to_doc()))
    return paths


def timed(cmd, env):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, check=False)
    ms = (time.perf_counter() - t0) * 1000
    return ms, r


def median_ms(cmd, runs, env, check=None):
    times = []
    for _ in range(runs):
        ms, r = timed(cmd, env)
        if r.returncode != 0 or (check and not check(r.stdout)):
            sys.exit("unexpected result from %s: exit %d\n%s" % (" ".join(cmd), r.returncode,
                                                                 r.stderr.decode(errors="replace")))
        times.append(ms)
    return statistics.median(times), min(times), max(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,1000,10000", help="comma-separated registry sizes")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    ap.add_argument("--hook-runs", type=int, default=20,
                    help="runs per figure for benchmarks/hook_time.py (0: skip it)")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    py = args.python
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "HOME": "/root", "PYTHONPATH": REPO}
    print("python: %s (%s), %d CPUs" % (py, subprocess.run([py, "-V"], capture_output=True,
                                                          text=True).stdout.strip(), os.cpu_count()))
    print("runs per figure: %d (median wall time, min-max)\n" % args.runs)
    floor = median_ms([py, "-c", "pass"], max(args.runs, 10), env)[0]
    print("%-34s %8.1f ms" % ("python3 -c pass", floor))
    tmp = tempfile.mkdtemp(prefix="policyhook-scale-")
    worst = 0.0
    try:
        for size in sizes:
            root = os.path.join(tmp, "r%d" % size)
            t0 = time.perf_counter()
            build(root, size)
            print("\nregistry: %d domains (built in %.1f s)" % (size, time.perf_counter() - t0))
            for label, words in COMMANDS:
                cmd = [py, "-m", "policyhook.cli", "--root", root, "--offline"] + words
                if words == ["list"]:
                    def check(out, size=size):
                        return out.count(b"\n") == size + 1  # a header line, one per domain
                elif words == ["check"]:
                    def check(out):
                        return out.endswith(b"the registry is valid\n")
                else:
                    check = None
                med, lo, hi = median_ms(cmd, args.runs, env, check)
                worst = max(worst, med) if size >= 10000 else worst
                print("%-34s %8.1f ms  (%.0f-%.0f)" % ("policyctl --offline " + label, med, lo, hi))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if any(s >= 10000 for s in sizes):
        print("\nslowest at 10,000 domains: %.0f ms (target: under 1000 ms)" % worst)
    print("\nreproduce: %s benchmarks/registry_scale.py --sizes %s --runs %d --hook-runs %d"
          % (os.path.basename(py), args.sizes, args.runs, args.hook_runs))
    if args.hook_runs > 0:
        print("\n---- benchmarks/hook_time.py --runs %d --domains %s ----\n"
              % (args.hook_runs, args.sizes), flush=True)
        r = subprocess.run([py, os.path.join(REPO, "benchmarks", "hook_time.py"),
                            "--runs", str(args.hook_runs), "--domains", args.sizes, "--python", py])
        return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
