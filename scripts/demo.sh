#!/bin/bash
# `make demo`: on a Debian machine, as root, show policyhook doing its job.
# Sets up what it needs (packages, a libvirtd if none runs, a virtualenv), installs
# policyhook with `make install`, defines a throwaway 2-vCPU domain, records a policy
# with policyctl while the domain is off, starts it with `virsh start`, shows the
# policy in force with virsh, and removes the domain and its policy. It never runs
# cpuoccupy, so no other domain is moved; it checks at the end that the other domains'
# pins and every other file under /etc/policyhook are as they were.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "make demo: run as root (it installs packages and a libvirt hook)" >&2; exit 1; }
VENV=${VENV:-.venv}
DOM=policyhook-demo
MARK="policyhook make demo: a throwaway domain, removed when the demo ends"
ETC=/etc/policyhook
cat <<EOF
make demo installs and changes, on this host:
  - Debian packages, when missing: libvirt's daemon with its QEMU and LXC drivers, its
    clients, qemu-system-x86, libvirt-dev, pkg-config (scripts/setup-lab.sh); it starts
    libvirtd when none runs, and restarts it only after installing its LXC driver or
    moving cgroup controllers left on cgroup2 to v1 hierarchies of their own (running
    domains keep running); it writes /etc/libvirt/qemu.conf only when there is none,
    and adds the libvirt-qemu user and group when missing
  - a virtualenv in $VENV with policyhook and its dependencies
  - policyhook, with make install: the hook /etc/libvirt/hooks/policyhook and its links
    /etc/libvirt/hooks/{qemu,lxc,libxl}.d/policyhook (replacing any there), /etc/policyhook
    (its settings only when there are none; no policy), /run, /var/log and
    /var/lib/policyhook, a logrotate file, and under /usr/local the watcher's unit, the
    tmpfiles entry, man pages and bash completion; libvirtd is reloaded to see the hook
    (make uninstall removes it all but /etc/policyhook and the log)
  - a domain $DOM and its policy, both removed at the end; no other domain and no
    other policy is changed (checked at the end)

EOF
scripts/setup-lab.sh "$VENV"
make --no-print-directory install PYTHON="$VENV/bin/python" >/dev/null
POLICYCTL="$VENV/bin/policyctl"
show() { printf '\n$ %s\n' "$*"; "$@"; }

# A domain of that name that is not the demo's own (its description says so) is left
# alone, and so is a policy of that name recorded by someone else.
if virsh dominfo "$DOM" >/dev/null 2>&1; then
    [ "$(virsh desc "$DOM" 2>/dev/null)" = "$MARK" ] \
        || { echo "make demo: a domain named $DOM exists and is not the demo's; nothing done" >&2; exit 1; }
    virsh destroy "$DOM" >/dev/null 2>&1 || true
    virsh undefine "$DOM" >/dev/null
    "$POLICYCTL" --offline remove "$DOM" >/dev/null 2>&1 || true
fi
if [ -e "$ETC/domains/$DOM.json" ]; then
    echo "make demo: $ETC/domains/$DOM.json exists and no domain of the demo's has it; nothing done" \
         "(policyctl remove $DOM, if it is left by an earlier demo)" >&2
    exit 1
fi

# What must be as it was at the end: every file under /etc/policyhook (content, mode,
# owner) and the pins of every other domain.
registry() {
    find "$ETC" -path "$ETC/domains/$DOM.json" -prune -o -printf '%p %y %m %U:%G\n' | sort
    find "$ETC" -type f -not -path "$ETC/domains/$DOM.json" -print0 | sort -z | xargs -0r sha256sum
}
others() {
    local name
    for name in $(virsh list --all --name); do
        [ "$name" = "$DOM" ] && continue
        echo "== $name $(virsh domstate "$name")"
        virsh vcpupin "$name"
        virsh emulatorpin "$name"
        virsh dumpxml --inactive "$name" | sed -n '/<cputune>/,/<\/cputune>/p'
    done
}
registry_before=$(registry)
others_before=$(others)

cleanup() {
    virsh destroy "$DOM" >/dev/null 2>&1 || true
    virsh undefine "$DOM" >/dev/null 2>&1 || true
    "$POLICYCTL" remove "$DOM" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cat > "/tmp/$DOM.xml" <<XML
<domain type='qemu'>
  <name>$DOM</name>
  <description>$MARK</description>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/><memballoon model='none'/></devices>
</domain>
XML
virsh define "/tmp/$DOM.xml" >/dev/null
rm -f "/tmp/$DOM.xml"
last=$(( $(nproc) - 1 ))
show "$POLICYCTL" vcpupin "$DOM" 0 "$last"
show "$POLICYCTL" vcpupin "$DOM" 1 0
show "$POLICYCTL" schedweight "$DOM" 512
show "$POLICYCTL" schedcap "$DOM" 50
show virsh start "$DOM"
sleep 0.2
show virsh vcpupin "$DOM"
show virsh schedinfo "$DOM"
show "$POLICYCTL" cpupolicy "$DOM"
echo
echo "demo done: the policy recorded while $DOM was off is in force; cleaning up."
cleanup
trap - EXIT
status=0
if [ "$(registry)" != "$registry_before" ]; then
    echo "make demo: files under $ETC changed (other than $DOM's policy):" >&2
    diff <(echo "$registry_before") <(registry) >&2 || true
    status=1
fi
if [ "$(others)" != "$others_before" ]; then
    echo "make demo: other domains changed:" >&2
    diff <(echo "$others_before") <(others) >&2 || true
    status=1
fi
[ "$status" = 0 ] && echo "$DOM and its policy removed; $ETC and the other domains are as they were."
exit "$status"
