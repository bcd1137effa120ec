#!/usr/bin/env python3
"""Plant known bugs in the pure core, one at a time, and say which tests catch each.

Each mutant is a substitution in one file of a copy of the tree (a temporary directory;
this tree is never changed). The unit tests named by --tests run in the copy; a mutant
that no test catches is reported as SURVIVED and the exit status is 1.

    python3 tools/mutants.py                       # every mutant, this working tree
    python3 tools/mutants.py --ref main            # the tree of a commit (git archive)
    python3 tools/mutants.py cap-0-quota-0 --tests "tests/test_mapping.py"

The default tests are the quick unit modules that hold the pure core; the whole unit
suite (make unit) takes several minutes a mutant on 2 cores.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, file, regular expression matched exactly once, replacement, what the bug is)
MUTANTS = [
    ("weight-v2-off-by-one", "policyhook/mapping.py",
     r"int\(round\(weight \* 100\.0 / 256\)\)", "int(round(weight * 100.0 / 256)) + 1",
     "cgroup v2 cpu_shares one above the formula"),
    ("cap-0-quota-0", "policyhook/mapping.py",
     r"= cap \* 1000 if cap else -1", "= cap * 1000",
     "cap 0 (no cap) sent as quota 0 instead of -1"),
    ("drift-ignores-weight", "policyhook/planner.py",
     r"\n        now = live\.sched\.get\(param\)\n",
     "\n        if param in ('cpu_shares', 'weight'):\n            continue\n"
     "        now = live.sched.get(param)\n",
     "a live weight that differs is not drift"),
    ("drift-ignores-removed-cap", "policyhook/planner.py",
     r"is_quota\(param\) and value < 0\s+and quota_is_unlimited",
     "is_quota(param) and quota_is_unlimited",
     "a cap removed live (quota unlimited) is not drift"),
    ("occupancy-not-subtracted", "policyhook/planner.py",
     r"effective = base - taken", "effective = base",
     "CPUs occupied by others are not taken out of a non-member's pins"),
    ("cpuset-exclusion-ignored", "policyhook/cpuset.py",
     r"cpus\.difference_update\(span\)", "pass",
     "'^N' in a cpulist removes nothing"),
    ("cpuset-range-short", "policyhook/cpuset.py",
     r"span = range\(lo, hi \+ 1\)", "span = range(lo, max(lo + 1, hi))",
     "'N-M' leaves out M (so '0-1' is one CPU)"),
    ("cap-lower-bound", "policyhook/tunables.py",
     r'CAP = SchedSetting\("cap", "schedcap", "cap", 0,', 'CAP = SchedSetting("cap", "schedcap", "cap", -1,',
     "a cap of -1 is accepted"),
    ("realtime-on-shared-cpu", "policyhook/planner.py",
     r"if not cpus\.issubset\(own\):", "if False:",
     "a real-time vCPU pinned partly outside its domain's occupied CPUs is planned"),
    ("vcpusched-drift-ignored", "policyhook/planner.py",
     r"if running != policy:", "if False:",
     "a vCPU thread's policy changed behind policyhook's back is not drift"),
]

DEFAULT_TESTS = ("tests/test_cpuset.py tests/test_mapping.py tests/test_planner.py tests/test_drift.py "
                 "tests/test_boundaries.py tests/test_cli_bad_input.py tests/test_fuzz.py "
                 "tests/test_vcpusched.py")
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache",
                                ".hypothesis", ".mypy_cache", ".ruff_cache", "*.egg-info")


def copy_tree(dest, ref):
    if ref is None:
        shutil.copytree(HERE, dest, ignore=IGNORE)
        return
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", HERE, "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)


def plant(tree, path, pattern, replacement):
    full = os.path.join(tree, path)
    with open(full) as f:
        text = f.read()
    found = len(re.findall(pattern, text))
    if found != 1:
        return "the pattern matches %d times in %s" % (found, path)
    with open(full, "w") as f:
        f.write(re.sub(pattern, lambda _m: replacement, text))
    return None


def run_tests(tree, python, tests):
    # Only the modules the tree has (an older commit may lack some).
    present = [t for t in tests.split() if os.path.exists(os.path.join(tree, t.split("::")[0]))]
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not e2e and not stress",
           "-rf", "--no-header"] + present
    start = time.time()
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in r.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    return r.returncode, failed, time.time() - start, " ".join(cmd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--tests", default=DEFAULT_TESTS)
    parser.add_argument("--ref", help="test the tree of this commit instead of the working tree")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every test that fails")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.names or m[0] in args.names]
    survived = 0
    base = tempfile.mkdtemp(prefix="policyhook-mutants-")
    try:
        for name, path, pattern, replacement, what in chosen:
            tree = os.path.join(base, name)
            copy_tree(tree, args.ref)
            problem = plant(tree, path, pattern, replacement)
            if problem:
                print("%-26s NOT PLANTED: %s" % (name, problem))
                survived += 1
                continue
            code, failed, seconds, cmd = run_tests(tree, args.python, args.tests)
            if code == 0:
                survived += 1
                caught = "SURVIVED"
            elif code != 1:
                survived += 1
                caught = "tests did not run (pytest exit %d): %s" % (code, cmd)
            else:
                modules = {}
                for test in failed:
                    module = os.path.basename(test.split("::")[0])[:-len(".py")]
                    modules[module] = modules.get(module, 0) + 1
                caught = "caught by %d tests: %s" % (
                    len(failed), ", ".join("%s (%d)" % kv for kv in sorted(modules.items())))
            print("%-26s %s (%.0f s) [%s]" % (name, caught, seconds, what), flush=True)
            if args.verbose:
                print("".join("    %s\n" % test for test in failed), end="", flush=True)
            shutil.rmtree(tree)
        print("tests: %s" % args.tests)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
