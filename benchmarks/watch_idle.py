#!/usr/bin/env python3
"""What `policyctl watch` costs while nothing happens, on the real daemon.

    sudo python3 benchmarks/watch_idle.py [--seconds 60] [--domains 3]

Needs root, a running libvirtd with QEMU, and policyhook installed (`make install`).
Starts --domains throwaway domains with a policy, starts the watcher, lets it settle,
then reads its CPU time (utime + stime from /proc/PID/stat) and resident memory over
--seconds of quiet, and how fast it reports a drift made with `virsh vcpupin --live`.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

import throwaway

LOG = "/var/log/policyhook/policyhook.log"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--domains", type=int, default=3)
    args = ap.parse_args()

    conn = throwaway.connect()
    names = ["phbench-watch%d" % i for i in range(args.domains)]
    doms = []
    watcher = None
    try:
        for name in names:
            dom = throwaway.define_fresh(conn, name, 2, 64)
            doms.append((dom, name))
            subprocess.run([throwaway.POLICYCTL, "vcpupin", name, "0", "0"], check=True, capture_output=True)
            dom.create()
        offset = os.path.getsize(LOG) if os.path.exists(LOG) else 0
        watcher = subprocess.Popen([throwaway.POLICYCTL, "-c", "qemu:///system", "watch"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(LOG) as f:
                f.seek(offset)
                if "watch: qemu:///system: watching; " in f.read():
                    break
            time.sleep(0.05)
        time.sleep(1)
        cpu0, t0 = cpu_seconds(watcher.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = cpu_seconds(watcher.pid), time.monotonic()
        rss = rss_mib(watcher.pid)
        offset = os.path.getsize(LOG)
        t2 = time.monotonic()
        subprocess.run(["virsh", "-q", "vcpupin", names[0], "0", "1", "--live"], check=True,
                       capture_output=True)
        while True:
            with open(LOG) as f:
                f.seek(offset)
                if "watch: %s: drift (tunable)" % names[0] in f.read():
                    break
            if time.monotonic() - t2 > 10:
                raise RuntimeError("the drift was not reported within 10 s")
            time.sleep(0.002)
        reported = (time.monotonic() - t2) * 1000
        watcher.send_signal(signal.SIGTERM)
        t3 = time.monotonic()
        watcher.wait(timeout=10)
        stopped = (time.monotonic() - t3) * 1000
        watcher = None
        print("policyctl watch, %d running domains with a policy, %d s idle:" % (args.domains, args.seconds))
        idle = cpu1 - cpu0
        print("  CPU time while idle: %.3f s (%.3f %% of one CPU)" % (idle, 100 * idle / (t1 - t0)))
        print("  resident memory:     %.1f MiB" % rss)
        print("  drift reported:      %.0f ms after `virsh vcpupin --live` was started" % reported)
        print("  SIGTERM to exit:     %.0f ms" % stopped)
        print("reproduce: %s benchmarks/watch_idle.py --seconds %d --domains %d"
              % (os.path.basename(sys.executable), args.seconds, args.domains))
    finally:
        if watcher is not None:
            watcher.kill()
        for dom, name in doms:
            throwaway.remove(dom, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
