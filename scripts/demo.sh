#!/bin/bash
# `make demo`: on a Debian machine, as root, show policyhook doing its job.
# Sets up what it needs (packages, a libvirtd if none runs, a virtualenv), installs
# policyhook with `make install`, defines a throwaway 2-vCPU domain, records a policy
# with policyctl while the domain is off, starts it with `virsh start`, shows the
# policy in force with virsh, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "make demo: run as root (it installs packages and a libvirt hook)" >&2; exit 1; }
VENV=${VENV:-.venv}
DOM=policyhook-demo
scripts/setup-lab.sh "$VENV"
make --no-print-directory install PYTHON="$VENV/bin/python" >/dev/null
POLICYCTL="$VENV/bin/policyctl"
show() { printf '\n$ %s\n' "$*"; "$@"; }
cleanup() {
    virsh destroy "$DOM" >/dev/null 2>&1 || true
    virsh undefine "$DOM" >/dev/null 2>&1 || true
    "$POLICYCTL" remove "$DOM" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
cat > "/tmp/$DOM.xml" <<XML
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/><memballoon model='none'/></devices>
</domain>
XML
virsh define "/tmp/$DOM.xml" >/dev/null
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
