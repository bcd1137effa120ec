#!/bin/bash
# The guest lab: a host like the users' (systemd, a pure cgroup v2 hierarchy, libvirt 11,
# the distribution's python3 and its libvirt, jsonschema and filelock), as a Debian 13
# guest booted under QEMU (TCG) on this machine, with policyhook installed by its own
# `make install`. This machine itself cannot have cgroup v2 (doc/design.md "libvirt facts").
#
# Nothing leaves this machine: the guest's one network is QEMU's user network with
# restrict=on, and its sshd is reached through a port on 127.0.0.1 only.
# doc/vm-lab.md tells more.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/vm-lab.sh [OPTIONS] COMMAND [ARGS...]

A Debian 13 guest with systemd, cgroup v2 and libvirt 11, booted under QEMU (TCG) with
8 vCPUs (2 sockets x 2 cores x 2 threads) and two NUMA nodes, where policyhook is
installed as its Debian package, built from this checkout. Run as root.

Commands:
  build           build the guest image from Debian 13 packages (debootstrap), unless
                  the cached one was built from the current recipe
  up              build if needed, boot the guest, wait until libvirtd answers, and
                  install this checkout in it (its Debian package, built here with make
                  deb and installed with apt-get, in either guest); on a
                  running guest it only installs the checkout again
  run CMD [ARGS]  run CMD as root in the guest, in a fresh copy of this checkout,
                  standard input forwarded; exits with CMD's status
  cockpit         start Cockpit in the running Debian guest, for tests, and print a URL
                  on this machine's 127.0.0.1 that opens policyhook's page with no
                  password: a test-only session as root, not a login (doc/vm-lab.md)
  down            shut the guest down (the image cache is kept)
  status          say whether the guest runs, and from which image

Options:
  --xen           the Xen variant: the same guest with Xen 4.20 and libvirt's libxl driver
                  added, booted as Xen's dom0 (its own image, run directory and ssh port,
                  so it can run beside the default guest); doc/vm-lab.md
  --sched NAME    with --xen: Xen's scheduler, credit (the default here, weight and cap's own) or
                  credit2 (Xen's own default); `up` reboots a guest booted with another
  -h, --help      this text

Environment:
  POLICYHOOK_LAB_CACHE         image cache (default /var/cache/policyhook-lab)
  POLICYHOOK_LAB_MIRROR        Debian mirror (default: the one apt uses here)
  POLICYHOOK_LAB_BOOT_TIMEOUT  seconds to wait for the guest's sshd and libvirtd (600)
EOF
}

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${POLICYHOOK_LAB_CACHE:-/var/cache/policyhook-lab}
RUN_DIR=/run/policyhook-lab            # gone at reboot, like the guest it describes
GUEST_NAME=policyhook-lab              # QEMU's -name, how a running guest is recognised
LOCK=$CACHE/lock                       # one build or boot of this variant at a time
LAB_URI=qemu:///system                 # the guest is ready once libvirtd answers here
BOOT_TIMEOUT=${POLICYHOOK_LAB_BOOT_TIMEOUT:-600}
HOST_ALIAS=policyhook-lab              # the guest's name in known_hosts, whatever its port

say() { printf '[vm-lab %6.1fs] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'vm-lab: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# The image recipe. Everything that decides what the image holds is in SUITE, PACKAGES
# and the functions named in RECIPE_FUNCTIONS: their text is hashed, and an image built
# from another recipe is rebuilt. A variant (an option such as --xen) sets VARIANT and
# adds packages and functions; each variant keeps its own image.

VARIANT=debian
SUITE=trixie
# debootstrap installs Depends only, never Recommends: this is the whole list.
PACKAGES=(
    systemd systemd-sysv dbus udev          # init; systemd-container needs a system bus
    libpam-systemd                          # logind, for polkitd (debootstrap skips virtual
                                            # packages: default-logind | logind)
    linux-image-amd64                       # the kernel (QEMU boots it directly)
    libvirt-daemon-system qemu-system-x86   # libvirt 11 and QEMU, as a host has them
    python3 python3-libvirt python3-jsonschema python3-filelock   # the distribution's stack
    python3-pip python3-setuptools python3-wheel make             # make install
    python3-pytest                          # tests/vm, run inside
    ansible-core python3-cffi-backend       # the Ansible collection, run on the guest itself;
                                            # the second provides the virtual packages that
                                            # python3-cryptography needs (debootstrap skips them)
    openssh-server iproute2                 # the way in: sshd on QEMU's user network
    irqbalance                              # enabled by its package: quiet CPUs against it
    cockpit-ws cockpit-system               # the web console, for contrib/cockpit's page;
    dbus-user-session                       # for its dconf-service (debootstrap skips the
                                            # virtual default-dbus-session-bus)
)
RECIPE_FUNCTIONS=(configure_rootfs in_root install_key)
CONFIGURE=(configure_rootfs)           # run on the debootstrapped tree, in this order

recipe_hash() {
    {
        echo "$VARIANT $SUITE"
        echo "${PACKAGES[*]}"
        for f in "${RECIPE_FUNCTIONS[@]}"; do declare -f "$f"; done
    } | sha256sum | cut -c1-16
}

# Files and units of the guest, written into the debootstrapped tree.
configure_rootfs() {
    local root=$1
    [ -n "$root" ] && [ "$root" != / ] || die "configure_rootfs: no image tree given"
    echo policyhook-lab >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tpolicyhook-lab\n' >"$root/etc/hosts"
    # The kernel mounts the root read-write (rw on its command line): with no fstab
    # entry, no unit waits for udev to announce /dev/vda, which takes long under TCG.
    echo '# / is mounted rw by the kernel (scripts/vm-lab.sh)' >"$root/etc/fstab"
    # systemd gives up on a device after 90 s; under TCG, and most as Xen's dom0, the NIC
    # has come later than that (lab-net.service then failed and sshd was never reached).
    mkdir -p "$root/etc/systemd/system.conf.d"
    printf '# scripts/vm-lab.sh: devices come late under TCG\n[Manager]\nDefaultDeviceTimeoutSec=600s\n' \
        >"$root/etc/systemd/system.conf.d/lab-devices.conf"
    # QEMU's user network gives the guest 10.0.2.15; a static address needs no DHCP
    # client. The device name is eth0 (net.ifnames=0 on the kernel command line).
    cat >"$root/etc/systemd/system/lab-net.service" <<'EOF'
[Unit]
Description=Lab network (QEMU user network, reached from the host's 127.0.0.1 only)
BindsTo=sys-subsystem-net-devices-eth0.device
After=sys-subsystem-net-devices-eth0.device
Before=ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=ip link set lo up
ExecStart=ip address add 10.0.2.15/24 dev eth0
ExecStart=ip link set eth0 up

[Install]
WantedBy=multi-user.target
EOF
    # The kernel patches its code in place (a static key) each time the first cpuset
    # cgroup appears or the last one goes, which every domain start and stop here can
    # do, and each time the first CPU quota (cpu.max) is set or the last one lifted,
    # which a cap does; under QEMU's multi-threaded TCG another vCPU then sometimes runs
    # the stale breakpoint ("Oops: int3" in get_page_from_freelist, and in
    # __set_next_task_fair at tests/vm's first cap, both seen in the guest tier). A
    # cgroup with a cpuset and a quota no one reaches, living as long as the guest,
    # keeps both keys on (doc/vm-lab.md).
    cat >"$root/etc/systemd/system/lab-static-keys.service" <<'EOF'
[Unit]
Description=Lab: a cpuset cgroup and a CPU quota for as long as the guest runs (scripts/vm-lab.sh)
DefaultDependencies=no
After=sysinit.target

[Service]
ExecStart=/bin/sleep infinity
Delegate=cpuset
CPUQuota=6400%

[Install]
WantedBy=sysinit.target
EOF
    in_root "$root" systemctl enable -q lab-net.service ssh.service libvirtd.service lab-static-keys.service
    in_root "$root" systemctl set-default -q multi-user.target
    # Periodic jobs that would only compete with the tests for the guest's slow CPUs.
    in_root "$root" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer man-db.timer \
        e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer
    # libvirt's default NAT network is of no use to the tests, and starting it only slows
    # libvirtd down (it would stay inside the guest: QEMU's user network is restricted).
    rm -f "$root/etc/libvirt/qemu/networks/autostart/default.xml"
    # root's systemd user manager stays up between logins: starting it again for each
    # ssh login (pam_systemd) costs seconds under TCG.
    mkdir -p "$root/var/lib/systemd/linger"
    touch "$root/var/lib/systemd/linger/root"
    # Every boot starts from this image: make it a boot like any other, not a first one
    # (no preset-all, no ldconfig or hwdb rebuild for an /etc or /var older than /usr).
    in_root "$root" systemd-machine-id-setup
    in_root "$root" ldconfig
    # tests/vm refuse to run anywhere but in this guest.
    echo "policyhook lab guest" >"$root/etc/policyhook-lab"
    rm -f "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*_Packages
    touch "$root/etc/.updated" "$root/var/.updated"
}

# A command in the unbooted tree. systemctl warns there that /proc is not mounted, which
# does not matter for enable and mask: its output is shown only when it fails.
in_root() {
    local root=$1 out
    shift
    out=$(chroot "$root" "$@" 2>&1) || { echo "$out" >&2; die "in the image: $* failed"; }
}

# Root logs in with the lab's key; the guest's host key goes to the lab's known_hosts.
install_key() {
    local root=$1 dir=$2
    ssh-keygen -q -t ed25519 -N '' -C policyhook-lab -f "$dir/id_ed25519"
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$dir/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    echo "$HOST_ALIAS $(cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
}

# ---------------------------------------------------------------------------------------
# The Xen variant (--xen): the same guest with Xen added, booted as Xen's dom0.

XEN_SCHED=credit

use_xen() {
    VARIANT=xen
    # xen-system-amd64 brings the hypervisor, xen-utils-4.20 (xl) and xen-utils-common
    # (the xen service: xenstored, xenconsoled); libvirt's libxl driver is a package of
    # its own.
    PACKAGES+=(xen-system-amd64 libvirt-daemon-driver-xen)
    RECIPE_FUNCTIONS+=(configure_xen)
    CONFIGURE+=(configure_xen)
    RUN_DIR=/run/policyhook-lab-xen
    GUEST_NAME=policyhook-lab-xen
    LOCK=$CACHE/xen.lock
    LAB_URI=xen:///system
}

configure_xen() {
    local root=$1
    [ -n "$root" ] && [ "$root" != / ] || die "configure_xen: no image tree given"
    # libvirtd loads its libxl driver only where xenstored answers; socket activation
    # could start it before the xen service has started xenstored.
    mkdir -p "$root/etc/systemd/system/libvirtd.service.d"
    printf '[Unit]\nWants=xen.service\nAfter=xen.service\n' \
        >"$root/etc/systemd/system/libvirtd.service.d/xen.conf"
    # xendomains saves running domains at shutdown and restores them at boot: the lab's
    # domains are throwaway, and it only makes the poweroff slow.
    in_root "$root" systemctl mask -q xendomains.service
}

# Xen's command line. sched: policyhook's weight and cap are the credit scheduler's (--sched
# credit2 for Xen's own default). dom0 gets 2 vCPUs and 1 GiB, as production dom0s are
# kept small; under TCG every page-table update of a PV dom0 is an emulated hypercall,
# and 8 dom0 vCPUs on 2 host cores took four times as long to boot. smap=0: with SMAP,
# Xen 4.20 faults on dom0's first exception frame under QEMU 7.2's TCG and crashes it
# ("domain_crash_sync called from entry.S ... create_bounce_frame"; doc/vm-lab.md).
# xpti=false spec-ctrl=no: the CPU is QEMU's emulation, which speculates nothing, and
# XPTI (on by default for a GenuineIntel CPU) switches page tables and flushes the TLB at
# each of dom0's kernel entries, which TCG pays in full: without it, python3's start in
# dom0 took 1.3 s instead of 1.8 and a dpkg -i 53 s instead of 82.
xen_cmdline() {
    echo "console=com1 com1=115200,8n1 sched=$XEN_SCHED dom0_mem=1024M,max:1024M" \
         "dom0_max_vcpus=2 smap=0 xpti=false spec-ctrl=no noreboot loglvl=all" \
         "guest_loglvl=all console_timestamps=boot"
}

# ---------------------------------------------------------------------------------------
# This machine's side.

HOST_PACKAGES=(debootstrap debian-archive-keyring qemu-system-x86 openssh-client e2fsprogs)

need_root() {
    [ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and the image cache in $CACHE need it)"
}

host_packages() {
    local missing=() p
    for p in "${HOST_PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get could not install ${missing[*]}"
}

# The Debian mirror apt uses on this machine (deb822 sources or sources.list).
mirror() {
    if [ -n "${POLICYHOOK_LAB_MIRROR:-}" ]; then
        echo "$POLICYHOOK_LAB_MIRROR"
        return
    fi
    local url
    url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' | grep -v -- '-security' | head -n1)
    [ -n "$url" ] || url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" {print ($2 ~ /^\[/ ? $3 : $2)}' | grep -v -- '-security' | head -n1)
    [ -n "$url" ] || die "no Debian mirror in /etc/apt/sources.list*; set POLICYHOOK_LAB_MIRROR"
    echo "$url"
}

image_dir() { echo "$CACHE/images/$VARIANT-$SUITE-$(recipe_hash)"; }

# Unfinished builds of this variant: another variant's, built meanwhile, are not ours.
build_prefix() { if [ "$VARIANT" = debian ]; then echo .build; else echo ".build-$VARIANT"; fi; }

cmd_build() {
    need_root
    local dir tmp t0
    dir=$(image_dir)
    if [ -f "$dir/complete" ]; then
        say "image up to date: $dir"
        return
    fi
    host_packages
    mkdir -p "$CACHE/images"
    tmp="$CACHE/images/$(build_prefix).$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # A failed build leaves nothing behind but what the next one removes.
    trap 'rm -rf --one-file-system "$tmp"' EXIT
    t0=$SECONDS
    local url
    url=$(mirror)
    say "debootstrap $SUITE from $url into $tmp/root"
    local pkgs
    pkgs=$(IFS=,; echo "${PACKAGES[*]}")
    if ! debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$tmp/root" "$url" \
            >"$tmp/debootstrap.log" 2>&1; then
        tail -n 20 "$tmp/debootstrap.log" >&2
        cp "$tmp/debootstrap.log" "$CACHE/debootstrap-failed.log"
        die "debootstrap failed (log: $CACHE/debootstrap-failed.log)"
    fi
    say "debootstrap done ($((SECONDS - t0)) s, $(du -sm "$tmp/root" | cut -f1) MiB)"
    local step
    for step in "${CONFIGURE[@]}"; do "$step" "$tmp/root"; done
    install_key "$tmp/root" "$tmp"
    cp "$tmp"/root/boot/vmlinuz-* "$tmp/vmlinuz"
    cp "$tmp"/root/boot/initrd.img-* "$tmp/initrd.img"
    if [ "$VARIANT" = xen ]; then
        # QEMU's multiboot loader takes an ELF image, not the gzip GRUB would unpack.
        gunzip -c "$tmp"/root/boot/xen-*-amd64.gz >"$tmp/xen" || die "no Xen hypervisor in the image"
    fi
    # No loop device needed: mkfs copies the tree. The free space is for what a run
    # writes in the guest (QEMU keeps it in a throwaway overlay); the file is sparse.
    local used
    used=$(du -sm "$tmp/root" | cut -f1)
    truncate -s "$((used * 13 / 10 + 1024))M" "$tmp/rootfs.img"
    mkfs.ext4 -q -F -L policyhook-lab -d "$tmp/root" "$tmp/rootfs.img" \
        || die "mkfs.ext4 -d failed on $tmp/rootfs.img"
    sed -n 's/^VERSION_ID=//p' "$tmp/root/etc/os-release" >"$tmp/os-version"
    rm -rf "$tmp/root"
    recipe_hash >"$tmp/complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
    # This variant's older recipes are of no more use (and unfinished builds).
    find "$CACHE/images" -mindepth 1 -maxdepth 1 \( -name "$VARIANT-*" -o -name "$(build_prefix).*" \) \
        -not -path "$dir" -exec rm -rf --one-file-system {} +
    say "image built in $((SECONDS - t0)) s: $dir ($(du -sm "$dir" | cut -f1) MiB on disk)"
}

# ---------------------------------------------------------------------------------------
# The guest.

# The one QEMU command line (QEMU_ARGS), for the image in $1 and the ssh port in $2.
qemu_cmdline() {
    local img=$1 port=$2 cpu=max boot
    # quiet: every character on the emulated serial port costs; errors still show.
    local linux="root=/dev/vda rw net.ifnames=0 quiet systemd.show_status=error"
    boot=(-kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$linux console=ttyS0")
    if [ "$VARIANT" = xen ]; then
        # libvirt's libxl driver refuses to start unless it can name the host CPU after
        # one of its models, and every model needs vme or sep: QEMU 7.2's TCG has no vme,
        # and Xen hides sep on AMD (no SYSENTER in long mode). TCG's own CPU is AMD-like;
        # as GenuineIntel it keeps sep, and Xen sees the thread siblings too.
        cpu=max,vendor=GenuineIntel
        # Xen as a multiboot kernel, dom0's kernel (with its command line) and initrd as
        # its modules, as Xen's own QEMU smoke tests boot it. Commas separate modules.
        case $img in *,*|*' '*) die "the image path must have no comma or space: $img" ;; esac
        boot=(-kernel "$img/xen" -initrd "$img/vmlinuz $linux console=hvc0,$img/initrd.img"
              -append "$(xen_cmdline)")
    fi
    # shellcheck disable=SC2054  # the commas are QEMU's option syntax
    QEMU_ARGS=(
        qemu-system-x86_64 -name "$GUEST_NAME"
        # /dev/kvm exists on this machine kind, but a Linux guest dies under it.
        -accel tcg,thread=multi -cpu "$cpu"
        -smp 8,sockets=2,cores=2,threads=2 -m 4096
        -object memory-backend-ram,id=mem0,size=2G -object memory-backend-ram,id=mem1,size=2G
        -numa node,nodeid=0,cpus=0-3,memdev=mem0 -numa node,nodeid=1,cpus=4-7,memdev=mem1
        "${boot[@]}"
        # snapshot=on: the guest's writes go to a temporary overlay, so every boot starts
        # from the image as built.
        -drive "file=$img/rootfs.img,if=virtio,format=raw,snapshot=on"
        -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22"
        -device virtio-net-pci,netdev=net0
        -device virtio-rng-pci
        -display none -monitor none -serial "file:$RUN_DIR/console.log" -no-reboot
        -daemonize -pidfile "$RUN_DIR/qemu.pid"
    )
}

# The pid in pid file $1 when that process runs and its command line holds $2 (a pid
# file outlives its process, and the number may be another's by now).
live_pid() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
    echo "$pid"
}

# The pid of the guest's QEMU, when it runs.
guest_pid() {
    live_pid "$RUN_DIR/qemu.pid" "-name $GUEST_NAME "
}

ssh_args() {
    local img
    img=$(cat "$RUN_DIR/image")
    SSH_OPTS=(-p "$(cat "$RUN_DIR/port")" -i "$img/id_ed25519" -o IdentitiesOnly=yes
              -o HostKeyAlias="$HOST_ALIAS" -o UserKnownHostsFile="$img/known_hosts"
              -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR
              -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=8)
    # One connection, reused: a login costs about a second under TCG.
    SSH_ARGS=(ssh "${SSH_OPTS[@]}"
              -o ControlMaster=auto -o ControlPath="$RUN_DIR/ssh.%C" -o ControlPersist=120
              root@127.0.0.1)
}

# Run a shell command line in the guest; guest_stdin forwards this side's standard input.
guest() {
    guest_stdin "$@" </dev/null
}

guest_stdin() {
    ssh_args
    "${SSH_ARGS[@]}" -- "$@"
}

# What a boot is given besides the image (Xen's command line); empty for the default.
boot_line() {
    if [ "$VARIANT" = xen ]; then xen_cmdline; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until `guest CMD` succeeds, while QEMU runs; $1 = what, for messages. Returns 1
# when Xen's dom0 crashed (Xen, booted with noreboot, keeps QEMU running).
wait_guest() {
    local what=$1; shift
    local deadline=$((SECONDS + BOOT_TIMEOUT))
    ssh_args
    until timeout 30 "${SSH_ARGS[@]}" -- "$@" </dev/null >/dev/null 2>&1; do
        if [ "$VARIANT" = xen ] && grep -q "$DOM0_CRASHED" "$RUN_DIR/console.log"; then
            return 1
        fi
        guest_pid >/dev/null || { tail -n 30 "$RUN_DIR/console.log" >&2; die "the guest stopped while waiting for $what (console: $RUN_DIR/console.log)"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$RUN_DIR/console.log" >&2; die "timed out after ${BOOT_TIMEOUT}s waiting for $what (console: $RUN_DIR/console.log)"; }
        sleep 1
    done
}

# Xen's dom0 can crash while it boots, in the kernel's live code patching ("Oops: int3"
# in text_poke_bp's wake, with two vCPUs): a race of QEMU 7.2's multi-threaded TCG, seen
# in 2 of 6 boots while other guests loaded this machine's 2 CPUs and in 1 of 16
# without them; with thread=single it never came, but the Xen tier took 1.6 times as
# long. So a boot whose dom0 crashed is tried again, twice, with the console kept.
DOM0_CRASHED="Hardware Dom0 crashed"

boot() {
    local img=$1 attempt
    rm -f "$RUN_DIR"/console.dom0-crashed-*.log
    for attempt in 1 2 3; do
        if boot_once "$img"; then
            return
        fi
        cp "$RUN_DIR/console.log" "$RUN_DIR/console.dom0-crashed-$attempt.log"
        grep -m1 -B2 -A6 'Oops' "$RUN_DIR/console.log" >&2 || true
        kill_guest
        [ "$attempt" -lt 3 ] || die "Xen's dom0 crashed while booting, 3 times (consoles: $RUN_DIR/console.dom0-crashed-*.log)"
        say "Xen's dom0 crashed while booting (console kept in $RUN_DIR/console.dom0-crashed-$attempt.log; doc/vm-lab.md): booting again"
    done
}

# One boot; non-zero only when Xen's dom0 crashed on the way. Called as a condition,
# where bash ignores set -e: every step that can fail says so itself.
boot_once() {
    local img=$1 port t0=$SECONDS
    mkdir -p "$RUN_DIR" || die "cannot create $RUN_DIR"
    port=$(free_port) || die "no free port on 127.0.0.1"
    echo "$port" >"$RUN_DIR/port"
    echo "$img" >"$RUN_DIR/image"
    boot_line >"$RUN_DIR/boot"
    : >"$RUN_DIR/console.log"
    qemu_cmdline "$img" "$port"
    # No descriptor of ours for the daemonized QEMU: it would hold the lab's lock. Its
    # warnings go to a log: TCG's AMD-like CPU model warns that it lacks topoext for
    # threads=2, yet the guest sees the siblings (tests/vm check them).
    "${QEMU_ARGS[@]}" 9>&- 2>"$RUN_DIR/qemu.log" \
        || { cat "$RUN_DIR/qemu.log" >&2; die "QEMU did not start: ${QEMU_ARGS[*]}"; }
    say "guest booting (QEMU pid $(guest_pid), ssh on 127.0.0.1:$port, console $RUN_DIR/console.log)"
    wait_guest "the guest's sshd" true || return 1
    say "guest's sshd answers after $((SECONDS - t0)) s"
    wait_guest "libvirtd in the guest" virsh -c "$LAB_URI" uri || return 1
    say "libvirtd answers after $((SECONDS - t0)) s"
}

# This checkout, as a tar stream: tracked files with their uncommitted changes and
# untracked files that git does not ignore; never .git, a virtualenv or build output.
checkout_tar() {
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do
                  { [ -e "$f" ] || [ -L "$f" ]; } && printf '%s\0' "$f"
              done \
            | tar --null -T - -czf -)
    else
        tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist -czf - .
    fi
}

# Both guests run policyhook as its package: `make deb` of this checkout (its tracked
# files with their uncommitted changes, through `git stash create`; without the unit
# tests, which `make deb` runs in CI), installed with apt-get from the .debs alone (the
# images hold every Depends). With it comes cockpit-policyhook, the Cockpit page's
# package (for `cockpit`). The .debs are also kept at GUEST_DEB for tests/vm's upgrade
# test and its /usr/local install test (which installs from its own copy of the tree).
DEB_DIR=build/vm-deb
GUEST_DEB=/root/policyhook-deb

build_deb() {
    local ref t0=$SECONDS
    ref=$(cd "$REPO" && git stash create 2>/dev/null) || ref=
    [ -n "$ref" ] || ref=HEAD
    if ! (cd "$REPO" && dpkg-checkbuilddeps >/dev/null 2>&1); then
        say "installing the Build-Depends of debian/control"
        (cd "$REPO" && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 build-dep -y -qq ./ >/dev/null) \
            || die "apt-get build-dep ./ failed"
    fi
    mkdir -p "$RUN_DIR"
    DEB_BUILD_OPTIONS=nocheck make -C "$REPO" --no-print-directory deb DIST_REF="$ref" DEBDIR="$DEB_DIR" \
        >"$RUN_DIR/make-deb.log" 2>&1 || { tail -n 30 "$RUN_DIR/make-deb.log" >&2; die "make deb failed (log: $RUN_DIR/make-deb.log)"; }
    DEB=$(ls "$REPO/$DEB_DIR"/policyhook_*_all.deb)
    COCKPIT_DEB=$(ls "$REPO/$DEB_DIR"/cockpit-policyhook_*_all.deb)
    say "built $(basename "$DEB") from $( [ "$ref" = HEAD ] && echo HEAD || echo "the work tree") in $((SECONDS - t0)) s"
}

install_checkout() {
    local t0=$SECONDS
    build_deb
    tar -C "$(dirname "$DEB")" -cf - "$(basename "$DEB")" "$(basename "$COCKPIT_DEB")" \
        | guest_stdin "rm -rf $GUEST_DEB && mkdir -p $GUEST_DEB && tar -xf - -C $GUEST_DEB" \
        || die "could not copy $DEB and $COCKPIT_DEB to the guest"
    # --reinstall: a guest that is up already may have another build of this version.
    guest "cd $GUEST_DEB && DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall \
        ./$(basename "$DEB") ./$(basename "$COCKPIT_DEB") >/var/log/policyhook-install.log 2>&1" \
        || { guest "cat /var/log/policyhook-install.log" >&2 || true; die "apt-get install of the packages failed in the guest"; }
    say "installed $(basename "$DEB") and $(basename "$COCKPIT_DEB") in the guest with apt-get in $((SECONDS - t0)) s: $(guest policyctl --version)"
}

# Run with the lab's lock held: one build or boot at a time.
locked() {
    mkdir -p "$CACHE"
    exec 9>"$LOCK"
    flock -w 3600 9 || die "another vm-lab.sh holds $LOCK"
}

cmd_up() {
    need_root
    locked
    cmd_build
    local img
    img=$(image_dir)
    if guest_pid >/dev/null; then
        if [ "$(cat "$RUN_DIR/image" 2>/dev/null)" != "$img" ]; then
            say "the running guest is from an older image: restarting it"
            stop_guest
            boot "$img"
        elif [ "$(cat "$RUN_DIR/boot" 2>/dev/null)" != "$(boot_line)" ]; then
            say "the running guest was booted with another command line: restarting it"
            stop_guest
            boot "$img"
        fi
    else
        host_packages
        boot "$img"
    fi
    install_checkout
}

cmd_run() {
    need_root
    [ $# -gt 0 ] || die "run: no command given (scripts/vm-lab.sh run CMD [ARGS...])"
    guest_pid >/dev/null || die "the guest is not running: scripts/vm-lab.sh up"
    local dir cmd
    dir=$(checkout_tar | guest_stdin 'd=$(mktemp -d /var/tmp/policyhook.XXXXXX) && tar -xzf - -C "$d" && echo "$d"') \
        || die "could not copy the checkout to the guest"
    cmd=$(printf '%q ' "$@")
    set +e
    guest_stdin "cd $dir && $cmd; rc=\$?; rm -rf $dir; exit \$rc"
    local rc=$?
    set -e
    exit "$rc"
}

stop_guest() {
    local pid
    stop_cockpit_forward
    pid=$(guest_pid) || return 0
    guest "systemctl poweroff --no-block" >/dev/null 2>&1 || true
    # Nothing to lose by waiting less: the guest's writes go to a throwaway overlay.
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "the guest did not power off within 30 s: stopping QEMU (pid $pid)"
    fi
    kill_guest
}

# Stop QEMU itself, at once.
kill_guest() {
    local pid
    stop_cockpit_forward
    if pid=$(guest_pid); then
        kill -TERM "$pid"
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    fi
    rm -f "$RUN_DIR/qemu.pid" "$RUN_DIR/port"
}

cmd_down() {
    need_root
    locked
    if ! guest_pid >/dev/null; then
        say "the guest is not running"
        return
    fi
    stop_guest
    say "guest shut down"
}

# ---------------------------------------------------------------------------------------
# Cockpit in the guest, for contrib/cockpit's page and its tests (tests/cockpit): cockpit-ws
# with a local session (no TLS, no login: its bridge runs as root, as cockpit-ws does),
# bound to the guest's 127.0.0.1 only, reached through an ssh forward from this
# machine's 127.0.0.1. A test-only session, not a login: doc/vm-lab.md "Cockpit".

COCKPIT_PORT=9091                     # in the guest; cockpit.socket, a real login, keeps 9090
COCKPIT_UNIT=policyhook-lab-cockpit   # a transient unit: gone when the guest stops
COCKPIT_TIMEOUT=120

# The pid of the ssh that forwards this machine's port to the guest's cockpit-ws, when it runs.
cockpit_forward_pid() {
    live_pid "$RUN_DIR/cockpit-ssh.pid" "127.0.0.1:$COCKPIT_PORT "
}

stop_cockpit_forward() {
    local pid
    if pid=$(cockpit_forward_pid); then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/cockpit-ssh.pid" "$RUN_DIR/cockpit.port"
}

# Whether http://127.0.0.1:PORT/ answers with a page, from this machine.
answers() {
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/cockpit/@localhost/manifests.json" % sys.argv[1], timeout=10).read()
PY
}

cmd_cockpit() {
    need_root
    [ "$VARIANT" = debian ] || die "cockpit: the Debian guest only (without --xen)"
    guest_pid >/dev/null || die "the guest is not running: scripts/vm-lab.sh up"
    # cockpit-ws is in /usr/lib/cockpit on Debian, /usr/libexec on Fedora.
    guest "systemctl is-active -q $COCKPIT_UNIT || { systemctl reset-failed $COCKPIT_UNIT 2>/dev/null; \
        ws=\$(ls /usr/lib/cockpit/cockpit-ws /usr/libexec/cockpit-ws 2>/dev/null | head -n 1); \
        [ -n \"\$ws\" ] && systemd-run --quiet --unit=$COCKPIT_UNIT \$ws --no-tls \
        --local-session=/usr/bin/cockpit-bridge --address=127.0.0.1 --port=$COCKPIT_PORT; }" \
        || die "could not start cockpit-ws in the guest (is cockpit-ws in its image?)"
    local port deadline=$((SECONDS + COCKPIT_TIMEOUT))
    if ! cockpit_forward_pid >/dev/null || ! port=$(cat "$RUN_DIR/cockpit.port" 2>/dev/null); then
        stop_cockpit_forward
        port=$(free_port) || die "no free port on 127.0.0.1"
        ssh_args
        # Its own connection (no ControlMaster), in the background, without the lab's lock.
        setsid ssh "${SSH_OPTS[@]}" -o ControlPath=none -o ExitOnForwardFailure=yes -N \
            -L "127.0.0.1:$port:127.0.0.1:$COCKPIT_PORT" root@127.0.0.1 \
            </dev/null >"$RUN_DIR/cockpit-ssh.log" 2>&1 9>&- &
        echo $! >"$RUN_DIR/cockpit-ssh.pid"
        echo "$port" >"$RUN_DIR/cockpit.port"
    fi
    until answers "$port"; do
        cockpit_forward_pid >/dev/null || { cat "$RUN_DIR/cockpit-ssh.log" >&2; die "the ssh forward to the guest's cockpit-ws stopped"; }
        if [ "$SECONDS" -ge "$deadline" ]; then
            guest "systemctl status --no-pager $COCKPIT_UNIT" >&2 || true
            die "cockpit-ws in the guest did not answer on 127.0.0.1:$port within ${COCKPIT_TIMEOUT}s"
        fi
        sleep 1
    done
    say "Cockpit answers on 127.0.0.1:$port (cockpit-ws in the guest, a test-only session as root)"
    echo "http://127.0.0.1:$port/policyhook"
}

cmd_status() {
    local pid
    if pid=$(guest_pid); then
        echo "running: QEMU pid $pid, ssh on 127.0.0.1:$(cat "$RUN_DIR/port"), image $(cat "$RUN_DIR/image")"
        if [ -s "$RUN_DIR/boot" ]; then echo "Xen's command line: $(cat "$RUN_DIR/boot")"; fi
    else
        echo "not running; image for this recipe: $(image_dir) ($([ -f "$(image_dir)/complete" ] && echo built || echo not built))"
    fi
}

main() {
    local xen=no
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) usage; return ;;
            --xen) xen=yes; shift ;;
            --sched) [ $# -ge 2 ] || die "--sched needs a name: credit or credit2"
                     XEN_SCHED=$2; shift 2 ;;
            --sched=*) XEN_SCHED=${1#--sched=}; shift ;;
            --) shift; break ;;
            -*) echo "vm-lab: unknown option '$1' (scripts/vm-lab.sh --help)" >&2; exit 2 ;;
            *) break ;;
        esac
    done
    case "$XEN_SCHED" in
        credit|credit2) ;;
        *) die "--sched: unknown Xen scheduler '$XEN_SCHED' (credit or credit2)" ;;
    esac
    if [ "$xen" = yes ]; then
        use_xen
    elif [ "$XEN_SCHED" != credit ]; then
        die "--sched goes with --xen"
    fi
    case "${1:-}" in
        help) usage ;;
        build) shift; need_root; locked; cmd_build "$@" ;;
        up) shift; cmd_up "$@" ;;
        run) shift; cmd_run "$@" ;;
        cockpit) shift; cmd_cockpit "$@" ;;
        down) shift; cmd_down "$@" ;;
        status) shift; cmd_status "$@" ;;
        "") usage >&2; exit 2 ;;
        *) echo "vm-lab: unknown command '$1' (scripts/vm-lab.sh --help)" >&2; exit 2 ;;
    esac
}

# One line: bash reads a script as it runs it, and this one may be edited meanwhile.
main "$@"; exit
