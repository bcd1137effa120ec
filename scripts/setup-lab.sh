#!/bin/bash
# Make this machine able to run policyhook's tests and demo: Debian packages for a
# real libvirtd with its QEMU (TCG, no KVM needed) and LXC drivers, a running libvirtd,
# and a virtualenv with the Python dependencies. Idempotent; takes ~25 s from nothing.
#
#   scripts/setup-lab.sh [VENV]      (default VENV: .venv in the source tree)
#
# It never overwrites an existing /etc/libvirt/qemu.conf and uses a libvirtd that
# already runs. Without root it sets up the virtualenv only and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
say() { printf '[setup-lab %5.1fs] %s\n' "$SECONDS" "$*"; }

# chromium: the headless browser of the Cockpit page's tests (tests/cockpit).
PKGS="libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-driver-lxc libvirt-clients qemu-system-x86
      libvirt-dev pkg-config chromium"
restart=
start_libvirtd() {
    if [ -d /run/systemd/system ]; then
        systemctl start libvirtd.service
    else
        # A clean PATH: the hook's environment inherits libvirtd's. And no descriptor of
        # ours: the daemon would keep, say, a lock this script runs under held for ever.
        (
            for fd in $(ls "/proc/$BASHPID/fd"); do
                [ "$fd" -gt 2 ] && eval "exec $fd>&-"
            done
            exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirtd.log" \
                /usr/sbin/libvirtd -d
        )
    fi
    for _ in $(seq 1 100); do virsh -c qemu:///system uri >/dev/null 2>&1 && break; sleep 0.05; done
    virsh -c qemu:///system uri >/dev/null || { echo "setup-lab: libvirtd did not start; see /var/log/libvirtd.log" >&2; exit 1; }
}
stop_libvirtd() {   # running domains keep running
    if [ -d /run/systemd/system ]; then
        systemctl stop libvirtd.service
    elif [ -s /run/libvirtd.pid ] && kill -0 "$(cat /run/libvirtd.pid)" 2>/dev/null; then
        pid=$(cat /run/libvirtd.pid)
        kill -TERM "$pid"
        for _ in $(seq 1 200); do
            { kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; } || break
            sleep 0.1
        done
    fi
}
if [ "$(id -u)" = 0 ]; then
    missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $PKGS 2>/dev/null \
              | awk '$1 != "ii" {print $2}'; for p in $PKGS; do dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
        say "installed $(echo $missing | tr '\n' ' ')"
        # A running libvirtd loads a newly installed driver only when it restarts.
        case " $(echo $missing) " in *" libvirt-daemon-driver-lxc "*) restart=1 ;; esac
    fi
    # libvirt's LXC driver cannot start a container on a hybrid cgroup layout whose cgroup2
    # mount still holds controllers (this machine kind leaves hugetlb there, bound to no v1
    # hierarchy): the container setup bind-mounts cgroup2 before the v1 tmpfs and fails with
    # "Unable to create directory /sys/fs/cgroup/unified: No such file or directory". Give
    # those controllers v1 hierarchies of their own, as systemd's hybrid mode does; libvirt
    # then treats cgroup2 as absent and uses v1 only, for QEMU as well.
    unified=/sys/fs/cgroup/unified
    moved=$(cat "$unified/cgroup.controllers" 2>/dev/null || true)   # cgroupfs files stat as empty
    if [ -n "$moved" ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]; then
        for c in $moved; do
            mkdir -p "/sys/fs/cgroup/$c"
            mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
        done
        say "cgroup controllers moved from cgroup2 to v1 hierarchies of their own: $moved"
        restart=1
    fi
    # libvirt's QEMU driver resolves its build-time user before it reads qemu.conf.
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    id libvirt-qemu >/dev/null 2>&1 || useradd --system -g libvirt-qemu -d /var/lib/libvirt -M \
        -s /usr/sbin/nologin libvirt-qemu
    if [ ! -e /etc/libvirt/qemu.conf ]; then
        # No libvirt-daemon-system: no virtlogd service, no qemu user setup.
        printf 'user = "root"\ngroup = "root"\nstdio_handler = "file"\n' > /etc/libvirt/qemu.conf
        say "wrote /etc/libvirt/qemu.conf"
    fi
    mkdir -p /etc/libvirt/hooks/qemu.d /etc/libvirt/hooks/lxc.d
    if virsh -c qemu:///system uri >/dev/null 2>&1 && [ -n "$restart" ]; then
        stop_libvirtd
        start_libvirtd
        say "libvirtd restarted (new driver or cgroup layout)"
    elif ! virsh -c qemu:///system uri >/dev/null 2>&1; then
        start_libvirtd
        say "libvirtd started"
    fi
    virsh -c lxc:///system uri >/dev/null 2>&1 \
        || { echo "setup-lab: libvirtd has no LXC driver (lxc:///system); see /var/log/libvirtd.log" >&2; exit 1; }
else
    say "not root: skipping packages and libvirtd (the end-to-end tests need root)"
fi

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    libvirt-python jsonschema filelock pytest hypothesis ruff "mypy==1.14.1" setuptools wheel
say "virtualenv $VENV ready ($("$VENV/bin/python" -c 'import libvirt; print("libvirt-python", libvirt.getVersion())'))"
