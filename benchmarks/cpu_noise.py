"""The host's noise on occupied CPUs, with [occupancy] housekeeping = no and = yes.

Run as root on a libvirt host with policyhook installed (the lab guest:
scripts/vm-lab.sh). A throwaway 2-vCPU domain occupies two sibling CPUs (one core) and
runs pinned there; then, for each setting, policyctl apply --all puts the host as the
setting says, irqbalance gets its interval to act, and for a fixed time the host works
outside those CPUs: disk I/O (dd with fsync), a workqueue-heavy load (many small files
written, fsynced and synced: ext4 and writeback work on unbound workqueues), and
network traffic into the NIC (whatever arrives on standard input: feed it through the
lab's ssh, `head -c 1G /dev/zero | scripts/vm-lab.sh run ...`; without it, UDP sent to
QEMU's user-network gateway). Both settings run with isolate_host = yes, so the host's
own processes are kept off those CPUs in both and the difference is housekeeping's.

Per occupied CPU (and one housekeeping CPU, for reference) it prints, per second:
device interrupts (/proc/interrupts rows with an IRQ number), softirqs (/proc/softirqs),
local timer interrupts and IPIs (LOC; RES, CAL, TLB), wakeups on the CPU
(/proc/schedstat ttwu_count) and context switches of kernel threads last seen there
(/proc/PID/status, attributed to the CPU /proc/PID/stat names at the end).

    head -c 1G /dev/zero | scripts/vm-lab.sh run python3 benchmarks/cpu_noise.py --cpus 6-7
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throwaway import POLICYCTL, connect, define_fresh, remove  # noqa: E402

NAME = "phbench-noise"
CONF = "/etc/policyhook/policyhook.conf"
PF_KTHREAD = 0x00200000
SCRATCH = "/var/tmp/phbench-noise"


def cpulist(text):
    found = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        found.update(range(int(lo), int(hi or lo) + 1))
    return sorted(found)


def policyctl(*args):
    r = subprocess.run([POLICYCTL] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("policyctl %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def set_conf(original, housekeeping):
    """The original settings with [occupancy] isolate_host = yes and housekeeping set."""
    lines = [line for line in original.splitlines()
             if not re.match(r"\s*(housekeeping|isolate_host)\s*=", line)]
    ours = ["isolate_host = yes", "housekeeping = %s" % housekeeping]
    if "[occupancy]" in lines:
        i = lines.index("[occupancy]") + 1
        lines[i:i] = ours
    else:
        lines += ["", "[occupancy]"] + ours
    with open(CONF, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- what the kernel counts ----------------------------------------------------------


def interrupts():
    """{cpu: {"device": n, "LOC": n, "IPI": n}} from /proc/interrupts."""
    with open("/proc/interrupts") as f:
        head = f.readline().split()
        ncpu = len(head)
        found = {c: {"device": 0, "LOC": 0, "IPI": 0} for c in range(ncpu)}
        for line in f:
            name, _, rest = line.partition(":")
            name = name.strip()
            counts = rest.split()[:ncpu]
            kind = ("device" if name.isdigit() else "LOC" if name == "LOC"
                    else "IPI" if name in ("RES", "CAL", "TLB") else None)
            if kind is None:
                continue
            for c, n in enumerate(counts):
                if n.isdigit():
                    found[c][kind] += int(n)
    return found


def softirqs():
    with open("/proc/softirqs") as f:
        ncpu = len(f.readline().split())
        total = [0] * ncpu
        for line in f:
            for c, n in enumerate(line.split()[1:ncpu + 1]):
                total[c] += int(n)
    return dict(enumerate(total))


def wakeups():
    """{cpu: ttwu_count} from /proc/schedstat (version 15+: the 5th number of a cpu line)."""
    found = {}
    if not os.path.exists("/proc/schedstat"):     # a kernel without CONFIG_SCHEDSTATS
        return found
    with open("/proc/schedstat") as f:
        for line in f:
            if line.startswith("cpu"):
                fields = line.split()
                found[int(fields[0][3:])] = int(fields[5])
    return found


def kthread_switches():
    """{pid: (last CPU, voluntary + nonvoluntary context switches)} of kernel threads."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rpartition(")")[2].split()
            if not int(fields[6]) & PF_KTHREAD:
                continue
            with open("/proc/%s/status" % pid) as f:
                status = f.read()
        except OSError:
            continue
        n = sum(int(m) for m in re.findall(r"(?m)^(?:non)?voluntary_ctxt_switches:\s*(\d+)", status))
        found[pid] = (int(fields[36]), n)
    return found


def sample():
    return {"irq": interrupts(), "soft": softirqs(), "wake": wakeups(), "kthreads": kthread_switches(),
            "t": time.monotonic()}


def rates(a, b, cpus):
    dt = b["t"] - a["t"]
    rows = {}
    for c in cpus:
        kswitch = sum(n - a["kthreads"].get(pid, (c, n))[1]
                      for pid, (cpu, n) in b["kthreads"].items() if cpu == c)
        rows[c] = {
            "device interrupts/s": (b["irq"][c]["device"] - a["irq"][c]["device"]) / dt,
            "softirqs/s": (b["soft"][c] - a["soft"][c]) / dt,
            "local timer/s": (b["irq"][c]["LOC"] - a["irq"][c]["LOC"]) / dt,
            "IPIs/s (RES+CAL+TLB)": (b["irq"][c]["IPI"] - a["irq"][c]["IPI"]) / dt,
            "kernel-thread switches/s": kswitch / dt,
        }
        if c in b["wake"]:
            rows[c]["wakeups/s"] = (b["wake"][c] - a["wake"][c]) / dt
    return rows


# ---- the host's work ------------------------------------------------------------------


def load(seconds, housekeeping_cpus, stop):
    """Disk, workqueue and network work for `seconds`, on `housekeeping_cpus` only."""
    os.makedirs(SCRATCH, exist_ok=True)

    def pinned():
        os.sched_setaffinity(0, housekeeping_cpus)

    disk = subprocess.Popen(
        ["sh", "-c", "while :; do dd if=/dev/zero of=%s/dd bs=1M count=32 conv=fsync status=none; done"
         % SCRATCH], preexec_fn=pinned)
    small = subprocess.Popen(
        ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > %s/f$((i %% 200)); "
         "[ $((i %% 50)) = 0 ] && sync; done" % SCRATCH], preexec_fn=pinned)

    def network():
        os.sched_setaffinity(0, housekeeping_cpus)
        if not os.isatty(0):
            got = 0
            while not stop.is_set():
                chunk = os.read(0, 1 << 16)
                if not chunk:
                    break
                got += len(chunk)
            if got:
                return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not stop.is_set():
            try:
                s.sendto(b"\0" * 1400, ("10.0.2.2", 9))
            except OSError:
                time.sleep(0.001)

    net = threading.Thread(target=network, daemon=True)
    net.start()
    time.sleep(seconds)
    stop.set()
    for p in (disk, small):
        p.kill()
        p.wait()


def measure(mode, cpus, others, seconds, settle, original):
    set_conf(original, mode)
    policyctl("apply", "--all")
    time.sleep(settle)       # irqbalance's interval: it acts before the window opens
    stop = threading.Event()
    before = sample()
    load(seconds, set(others), stop)
    after = sample()
    return rates(before, after, cpus + others[:1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", default="6-7", help="two sibling CPUs to occupy (default 6-7)")
    ap.add_argument("--seconds", type=float, default=20, help="load time per setting (default 20)")
    ap.add_argument("--settle", type=float, default=12, help="seconds before each window (default 12)")
    args = ap.parse_args()
    cpus = cpulist(args.cpus)
    others = [c for c in range(os.cpu_count()) if c not in cpus]
    with open(CONF) as f:
        original = f.read()
    conn = connect()
    dom = define_fresh(conn, NAME, 2)
    results = {}
    stats = "/proc/sys/kernel/sched_schedstats"     # ttwu_count counts only while on
    schedstats = None
    if os.path.exists(stats):
        with open(stats) as f:
            schedstats = f.read()
        with open(stats, "w") as f:
            f.write("1\n")
    try:
        policyctl("cpuoccupy", args.cpus, NAME)
        for v, c in enumerate(cpus[:2]):
            policyctl("vcpupin", NAME, str(v), str(c))
        dom.create()
        for mode in ("no", "yes"):
            results[mode] = measure(mode, cpus, others, args.seconds, args.settle, original)
    finally:
        if schedstats is not None:
            with open(stats, "w") as f:
                f.write(schedstats)
        with open(CONF, "w") as f:
            f.write(original)
        remove(dom, NAME)
        subprocess.run([POLICYCTL, "cpuoccupy", args.cpus, "--clear"], capture_output=True)
        subprocess.run([POLICYCTL, "apply", "--all"], capture_output=True)
        subprocess.run(["rm", "-rf", SCRATCH])
    print("CPUs %s occupied by a running 2-vCPU domain (pinned there); %gs of disk, workqueue and "
          "network work on CPUs %s; isolate_host = yes in both" % (args.cpus, args.seconds, ",".join(
              map(str, others))))
    print("%-4s %-26s %18s %19s" % ("CPU", "per second", "housekeeping = no", "housekeeping = yes"))
    for c in results["no"]:
        for figure, off in results["no"][c].items():
            print("%-4s %-26s %18.1f %19.1f" % (c, figure, off, results["yes"][c][figure]))
    print("command: head -c 1G /dev/zero | scripts/vm-lab.sh run python3 benchmarks/cpu_noise.py --cpus %s "
          "--seconds %g" % (args.cpus, args.seconds))


if __name__ == "__main__":
    main()
