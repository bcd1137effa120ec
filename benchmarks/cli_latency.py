#!/usr/bin/env python3
"""policyctl's quick commands beside virsh's, each a whole process, on the real daemon.

    sudo python3 benchmarks/cli_latency.py [--runs 30] [--source DIR]

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
    args = ap.parse_args()
    source = os.path.abspath(args.source)

    conn = throwaway.connect()
    ncpus = conn.getCPUMap()[0]
    if ncpus < 2:
        raise SystemExit("needs 2 host CPUs, to move a pin between them")
    scratch = tempfile.mkdtemp(prefix="phbench-cli-")
    policyctl = os.path.join(scratch, "policyctl")
    with open(policyctl, "w") as f:
        f.write(SCRIPT.format(python=sys.executable, source=source))
    os.chmod(policyctl, 0o755)
    # Bytecode, as a package install leaves it (the source tree's __pycache__, ignored by git).
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(source, "policyhook")],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    ctl = [policyctl, "--root", scratch, "-c", URI]
    virsh = ["virsh", "-c", URI]
    python = sys.executable
    dom = throwaway.define_fresh(conn, NAME, 2, 64)
    try:
        dom.create()
        commands = [
            ("virsh vcpupin DOM 0 CPU --live",
             lambda i: virsh + ["vcpupin", NAME, "0", str(i % 2), "--live"]),
            ("policyctl vcpupin DOM 0 CPU", lambda i: ctl + ["vcpupin", NAME, "0", str(i % 2)]),
            ("virsh list", lambda i: virsh + ["list"]),
            ("policyctl list", lambda i: ctl + ["list"]),
            ("policyctl --version", lambda i: [policyctl, "--version"]),
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
        against = {"policyctl vcpupin DOM 0 CPU": "virsh vcpupin DOM 0 CPU --live",
                   "policyctl list": "virsh list", "policyctl --version": "virsh list"}
        print("%d runs each, interleaved; a domain with 2 vCPUs on %d host CPUs; policyctl from %s"
              % (args.runs, ncpus, source))
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
                 "" if source == REPO else " --source " + source))
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        shutil.rmtree(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
