#!/usr/bin/env python3
"""Wall time of one hook call per event, beside the interpreter's own start.

    python3 benchmarks/hook_time.py [--runs 40] [--domains 0,1000,10000]

Each figure is the median of --runs process starts, the way libvirtd runs the hook
(argv, XML on stdin, LC_ALL/PATH/HOME only, `python -I`). The floor, `python -c pass`
and `python -I -S -c pass`, is measured in the same run; the ratio to `python -c pass`
is the figure that matters. --domains fills a scratch registry with that many other
domains' policies to show the hook's time does not grow with the registry.
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

XML = ("<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
       "<vcpu placement='static'>2</vcpu><os><type arch='x86_64'>hvm</type></os></domain>")


def median_ms(cmd, runs, env, stdin=b""):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, input=stdin, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def make_registry(root, others):
    from policyhook.cpuset import CpuSet
    from policyhook.model import DomainPolicy
    from policyhook.paths import Paths
    from policyhook.registry import Registry
    from policyhook.results import Writes

    paths = Paths(root)
    reg = Registry(paths)
    os.makedirs(paths.domains, exist_ok=True)
    with open(paths.conf, "w") as f:
        # The applier forked at `started` must not reach a real libvirtd here.
        f.write("[libvirt]\nuri = test:///default\n[applier]\ntimeout = 2\n")
    saved = [DomainPolicy("withpolicy", {("vcpu", 0): CpuSet([0])}, {"weight": 512, "cap": 50})]
    saved += [DomainPolicy("other%05d" % i, {("vcpu", 0): CpuSet([0])}, {"weight": 100 + i % 1000})
              for i in range(others)]
    reg.transact(lambda _snap: Writes(domains=saved))
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--domains", default="0", help="comma-separated registry sizes (other domains)")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()

    py = args.python
    tmp = tempfile.mkdtemp(prefix="policyhook-bench-")
    hook = os.path.join(tmp, "policyhook")
    with open(os.path.join(REPO, "hooks", "qemu")) as src, open(hook, "w") as dst:
        lines = src.read().splitlines(True)
        # As installed (`python -I`), but importing this source tree.
        dst.write("import sys; sys.path.insert(0, %r)\n" % REPO)
        dst.writelines(lines[1:])
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "HOME": "/root"}
    print("python: %s (%s)" % (py, subprocess.run([py, "-V"], capture_output=True, text=True).stdout.strip()))
    print("runs per figure: %d (median wall time)\n" % args.runs)
    floor = median_ms([py, "-c", "pass"], args.runs, env)
    print("%-44s %7.1f ms" % ("python3 -c pass", floor))
    isolated = median_ms([py, "-I", "-S", "-c", "pass"], args.runs, env)
    print("%-44s %7.1f ms" % ("python3 -I -S -c pass", isolated))
    try:
        for size in [int(s) for s in args.domains.split(",")]:
            root = os.path.join(tmp, "root%d" % size)
            make_registry(root, size)
            henv = dict(env, POLICYHOOK_ROOT=root)
            print("\nregistry: %d other domains" % size)
            cases = [
                ("unhandled event (prepare end)", "nopolicy", "prepare", "end"),
                ("start begin, no policy", "nopolicy", "start", "begin"),
                ("prepare begin, no policy", "nopolicy", "prepare", "begin"),
                ("prepare begin, with policy", "withpolicy", "prepare", "begin"),
                ("started begin, with policy (forks applier)", "withpolicy", "started", "begin"),
                ("release end, with policy", "withpolicy", "release", "end"),
            ]
            for label, name, op, sub in cases:
                ms = median_ms([py, "-I", hook, name, op, sub, "-"], args.runs, henv,
                               XML.format(name=name).encode())
                print("%-44s %7.1f ms  (%.2fx python3 -c pass)"
                      % (label, ms, ms / floor))
    finally:
        time.sleep(2.5)  # let forked appliers give up before the scratch root goes
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nreproduce: %s benchmarks/hook_time.py --runs %d --domains %s"
          % (os.path.basename(py), args.runs, args.domains))


if __name__ == "__main__":
    main()
