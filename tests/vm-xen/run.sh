#!/bin/bash
# The Xen tier's tests in the lab's Xen guest (make e2e-vm-xen), with its failed tests
# run once more. Xen's dom0 there is emulated (QEMU's TCG), and now and then a process in
# it crashes while Xen builds a domain: measured in that dom0, one python3 in 78 ended
# with SIGSEGV while domains were built and destroyed beside it, whether Xen isolates
# dom0's page tables (xpti) or not; a hook run by libvirtd ended so at a domain's start,
# and a policyctl in a test was stopped by the dynamic loader (doc/vm-lab.md "The Xen
# guest"). A test that fails twice fails the tier; both runs' reports are shown.
#
#   tests/vm-xen/run.sh PYTEST_COMMAND -- SELECTION...
#   (make e2e-vm-xen: tests/vm-xen/run.sh $(VM_PYTEST) -- -m "not credit2" tests/vm-xen)
set -uo pipefail
cd "$(dirname "$0")/../.."
pytest=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do pytest+=("$1"); shift; done
[ "${1:-}" = -- ] && shift
[ "${#pytest[@]}" -gt 0 ] && [ $# -gt 0 ] || { echo "usage: $0 PYTEST_COMMAND -- SELECTION..." >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/vm-lab.sh --xen run "${pytest[@]}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" = 0 ] && exit 0
# pytest -rfE's summary: "FAILED node - reason" and "ERROR node - reason".
mapfile -t failed < <(sed -n 's/^\(FAILED\|ERROR\) \([^ ]*\).*/\2/p' "$log" | sort -u)
if [ "${#failed[@]}" = 0 ]; then
    exit "$status"
fi
echo "the Xen tier: ${#failed[@]} failed, run once more: ${failed[*]}"
scripts/vm-lab.sh --xen run "${pytest[@]}" "${failed[@]}"
