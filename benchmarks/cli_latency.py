#!/usr/bin/env python3
"""policyctl's quick commands beside virsh's, each a whole process, on the real daemon.

    sudo python3 benchmarks/cli_latency.py [--runs 30] [--source DIR] [--before DIR]

Needs root and a running libvirtd with QEMU. Defines and starts a throwaway 2-vCPU
domain on qemu:///system, then runs, interleaved, --runs rounds of:
`virsh vcpupin DOM 0 CPU --live` and `policyctl vcpupin DOM 0 CPU` (the pin alternates
between two CPUs, so that each call changes it), `virsh list`, `policyctl list` and
`policyctl --version`, and, as the floor under any Python command, the interpreter
doing nothing and importing libvirt. policyctl is this tree's (or --source DIR's, to
time another checkout), compiled to bytecode first as a package install leaves it, and
run as its console script runs it, on a scratch --root: no
admin's policy is read or written, and no domain but the throwaway one is touched. The
domain is destroyed and undefined at the end. Prints the medians, each policyctl
command's ratio to its virsh counterpart, and the command that reproduces them.

With --before DIR, the policyctl commands of the checkout DIR (another worktree: the
code before a change) run too, in the same rounds on their own scratch --root, so that
before and after meet the same load of a shared machine.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import throwaway

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "phbench-cli"
URI = "qemu:///system"

# What pip writes as the policyctl console script, without its argv[0] rewriting.
SCRIPT = """#!{python}
import sys
sys.path.insert(0, {source!r})
from policyhook.cli import main
sys.exit(main())
"""


def timed(argv):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = (time.perf_counter() - t0) * 1000
    if r.returncode:
        raise SystemExit("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.decode().strip()))
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--source", default=REPO, help="the policyhook tree to time (default: this one)")
    ap.add_argument("--before", metavar="DIR", help="another policyhook tree, timed beside it")
    args = ap.parse_args()
    source = os.path.abspath(args.source)
    trees = [("", source)] + ([(" (before)", os.path.abspath(args.before))] if args.before else [])

    conn = throwaway.connect()
    ncpus = conn.getCPUMap()[0]
    if ncpus < 2:
        raise SystemExit("needs 2 host CPUs, to move a pin between them")
    scratch = tempfile.mkdtemp(prefix="phbench-cli-")
    # Bytecode, as a package install leaves it (the source tree's __pycache__, ignored by git).
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    ctls = []
    for n, (suffix, tree) in enumerate(trees):
        root = os.path.join(scratch, str(n))
        os.mkdir(root)
        policyctl = os.path.join(root, "policyctl")
        with open(policyctl, "w") as f:
            f.write(SCRIPT.format(python=sys.executable, source=tree))
        os.chmod(policyctl, 0o755)
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(tree, "policyhook")],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        ctls.append((suffix, policyctl, [policyctl, "--root", root, "-c", URI]))
    virsh = ["virsh", "-c", URI]
    python = sys.executable
    dom = throwaway.define_fresh(conn, NAME, 2, 64)
    try:
        dom.create()
        # Each lambda binds its tree's command line now (c=ctl), not the loop's last.
        commands = [("virsh vcpupin DOM 0 CPU --live",
                     lambda i: virsh + ["vcpupin", NAME, "0", str(i % 2), "--live"])]
        commands += [("policyctl vcpupin DOM 0 CPU" + suffix,
                      lambda i, c=ctl: c + ["vcpupin", NAME, "0", str(i % 2)]) for suffix, _p, ctl in ctls]
        commands += [("virsh list", lambda i: virsh + ["list"])]
        commands += [("policyctl list" + suffix, lambda i, c=ctl: c + ["list"]) for suffix, _p, ctl in ctls]
        commands += [("policyctl --version" + suffix, lambda i, p=policyctl: [p, "--version"])
                     for suffix, policyctl, _c in ctls]
        commands += [
            ("python -c pass", lambda i: [python, "-c", "pass"]),
            ("python -c 'import libvirt'", lambda i: [python, "-c", "import libvirt"]),
        ]
        # One round first, untimed: a cold page cache is not what an admin meets twice.
        for _label, argv in commands:
            timed(argv(1))
        times = {label: [] for label, _argv in commands}
        for i in range(args.runs):
            for label, argv in commands:
                times[label].append(timed(argv(i)))
        median = {label: statistics.median(t) for label, t in times.items()}
        against = {}
        for suffix, _p, _c in ctls:
            against.update({"policyctl vcpupin DOM 0 CPU" + suffix: "virsh vcpupin DOM 0 CPU --live",
                            "policyctl list" + suffix: "virsh list",
                            "policyctl --version" + suffix: "virsh list"})
        print("%d runs each, interleaved; a domain with 2 vCPUs on %d host CPUs; policyctl from %s%s"
              % (args.runs, ncpus, source, "; (before) from %s" % trees[1][1] if args.before else ""))
        print()
        print("| command | median ms | min-max ms | ratio |")
        print("|---|---|---|---|")
        for label, _argv in commands:
            ratio = ("%.1fx %s" % (median[label] / median[against[label]], against[label])
                     if label in against else "")
            print("| `%s` | %.1f | %.1f-%.1f | %s |" % (label, median[label], min(times[label]),
                                                       max(times[label]), ratio))
        print()
        print("reproduce: sudo %s benchmarks/cli_latency.py --runs %d%s"
              % (os.path.relpath(python, REPO) if python.startswith(REPO) else python, args.runs,
                 ("" if source == REPO else " --source " + source)
                 + (" --before " + trees[1][1] if args.before else "")))
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        shutil.rmtree(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
