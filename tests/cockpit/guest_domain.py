"""Run in the lab guest by tests/cockpit (scripts/vm-lab.sh run /usr/bin/python3 ...):

    guest_domain.py up NAME     define and start NAME, a throwaway 2-vCPU domain, with
                                CPUs 6-7 occupied by it, vCPU 0 pinned to 6 and 1 to 7,
                                and wait until its policy is in force; and NAME-idle,
                                defined, not running, with vCPU 0 pinned to 2-3, cap 50
    guest_domain.py down NAME   remove them, their policies and occupancy
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
import lab  # noqa: E402

CPUS = "6-7"
IDLE = "-idle"


def policyctl(*args):
    done = lab.policyctl(*args)
    if done.returncode != 0:
        sys.exit("policyctl %s: %s" % (" ".join(args), done.stderr.strip()))


def up(name):
    if not os.path.exists("/etc/policyhook-lab"):
        sys.exit("guest_domain.py runs in the lab guest only (scripts/vm-lab.sh run)")
    down(name)
    lab.define(name)
    policyctl("cpuoccupy", CPUS, name)
    policyctl("vcpupin", name, "0", "6")
    policyctl("vcpupin", name, "1", "7")
    lab.virsh("start", name, timeout=120)
    # The applier puts the policy in force just after the start: the page must see it so.
    lab.wait_for(lambda: lab.policyctl("verify", name).returncode == 0, 120,
                 "the policy of %s to be in force (policyctl verify)" % name, interval=1)
    lab.define(name + IDLE)
    policyctl("vcpupin", name + IDLE, "0", "2-3")
    policyctl("schedcap", name + IDLE, "50")


def down(name):
    """Everything up() made, whatever part of it was made."""
    lab.undefine(name + IDLE)
    lab.policyctl("remove", name + IDLE)
    shown = lab.policyctl("cpupolicy", name, "--json")
    occupies = json.loads(shown.stdout)["occupies"] if shown.returncode == 0 else []
    lab.undefine(name)
    if occupies:
        policyctl("cpuoccupy", ",".join(str(c) for c in occupies), "--clear")
    lab.policyctl("remove", name)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("up", "down"):
        sys.exit(__doc__)
    {"up": up, "down": down}[sys.argv[1]](sys.argv[2])
