#!/bin/bash
# Make this machine able to run policyhook's tests and demo: Debian packages for a
# real libvirtd and QEMU (TCG, no KVM needed), a running libvirtd, and a virtualenv
# with the Python dependencies. Idempotent; takes ~25 s from nothing.
#
#   scripts/setup-lab.sh [VENV]      (default VENV: .venv in the source tree)
#
# It never overwrites an existing /etc/libvirt/qemu.conf and uses a libvirtd that
# already runs. Without root it sets up the virtualenv only and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
say() { printf '[setup-lab %5.1fs] %s\n' "$SECONDS" "$*"; }

PKGS="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 libvirt-dev pkg-config"
if [ "$(id -u)" = 0 ]; then
    missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $PKGS 2>/dev/null \
              | awk '$1 != "ii" {print $2}'; for p in $PKGS; do dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
        say "installed $(echo $missing | tr '\n' ' ')"
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
    mkdir -p /etc/libvirt/hooks/qemu.d
    if ! virsh -c qemu:///system uri >/dev/null 2>&1; then
        if [ -d /run/systemd/system ]; then
            systemctl start libvirtd.service
        else
            # A clean PATH: the hook's environment inherits libvirtd's.
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirtd.log" \
                /usr/sbin/libvirtd -d
        fi
        for _ in $(seq 1 100); do virsh -c qemu:///system uri >/dev/null 2>&1 && break; sleep 0.05; done
        virsh -c qemu:///system uri >/dev/null || { echo "setup-lab: libvirtd did not start; see /var/log/libvirtd.log" >&2; exit 1; }
        say "libvirtd started"
    fi
else
    say "not root: skipping packages and libvirtd (the end-to-end tests need root)"
fi

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    libvirt-python jsonschema filelock pytest hypothesis ruff setuptools wheel
say "virtualenv $VENV ready ($("$VENV/bin/python" -c 'import libvirt; print("libvirt-python", libvirt.getVersion())'))"
