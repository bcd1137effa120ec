#!/bin/bash
# The unit suite as RHEL 9 runs policyhook: CPython 3.9 with jsonschema 3.2 and
# filelock 3.7, the versions RHEL 9 ships, in a virtualenv from PyPI.
#
# The interpreter, in this order:
#   1. PY39=/path/to/python3.9, if set;
#   2. a CPython 3.9 on this machine: python3.9 on PATH, or pyenv's 3.9;
#   3. Debian 11's python3.9, in a bullseye chroot made with debootstrap (build/py39-root;
#      about 3 minutes the first time), where the suite runs with the source tree bind-
#      mounted in a private mount namespace. PY39_FROM=chroot picks this one directly.
#
#   ci/unit-py39.sh        (the chroot needs root; the rest does not)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
CI_NAME="unit-py39"
. ci/lib.sh

# What RHEL 9 ships; the test tools as the suite needs them.
PINS=("jsonschema==3.2.0" "filelock==3.7.*")
TOOLS=(pytest hypothesis)
MARKS="not e2e and not stress"
VENV=build/py39-venv

is_py39() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9) or sys.implementation.name != "cpython")' 2>/dev/null; }

find_py39() {
    local candidate
    if [ -n "${PY39:-}" ]; then
        is_py39 "$PY39" || fail "PY39=$PY39 is not a CPython 3.9"
        echo "$PY39"; return
    fi
    for candidate in "$(command -v python3.9 2>/dev/null || true)" \
                     "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.9*/bin/python3.9; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && is_py39 "$candidate"; then
            echo "$candidate"; return
        fi
    done
}

report() { "$1" -c "$REPORT"; }   # the versions a run uses

# ---- on this machine's CPython 3.9 ----------------------------------------------------
run_local() {
    local py=$1
    if ! [ -x "$VENV/bin/python" ] || ! is_py39 "$VENV/bin/python"; then
        rm -rf "$VENV"
        "$py" -m venv "$VENV"
    fi
    # libvirt-python has no wheels: pip builds it against this machine's libvirt.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "${PINS[@]}" libvirt-python "${TOOLS[@]}" 2>&1 | grep -v 'is ignored' || true
    say "$(report "$VENV/bin/python")"
    make --no-print-directory unit PYTHON="$VENV/bin/python"
}

# ---- in a Debian 11 (bullseye) chroot --------------------------------------------------
ROOT=build/py39-root
run_chroot() {
    [ "$(id -u)" = 0 ] || fail "the bullseye chroot needs root (debootstrap, chroot, mounts)"
    command -v debootstrap >/dev/null || apt-get -o DPkg::Lock::Timeout=300 install -y -qq debootstrap >/dev/null
    if ! [ -x "$ROOT/usr/bin/python3.9" ]; then
        rm -rf "$ROOT"
        mkdir -p "$(dirname "$ROOT")"
        say "debootstrap bullseye into $ROOT (python3.9, Debian's python3-libvirt)"
        debootstrap --variant=minbase --include=python3,python3-venv,python3-libvirt,ca-certificates \
            bullseye "$ROOT" http://deb.debian.org/debian >"$ROOT.log" 2>&1 \
            || { tail -n 20 "$ROOT.log" >&2; fail "debootstrap bullseye failed (see $ROOT.log)"; }
    fi
    # Name resolution and certificate authorities as this machine has them (a proxy's
    # own authority among them, where one stands between it and PyPI).
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
    mkdir -p "$ROOT/src"
    # The suite runs inside: the tree at /src, /proc and /dev for the hook tests; the
    # mounts live in a namespace of their own and go when it ends.
    # shellcheck disable=SC2016
    unshare --mount --propagation private /bin/sh -ec '
        mount --bind "$1" "$2/src"
        mount -t proc proc "$2/proc"
        mount --rbind /dev "$2/dev"
        shift 2
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
            REPORT="$REPORT" MARKS="$MARKS" chroot "$@"' sh "$SRC" "$ROOT" "$ROOT" /bin/sh -ec '
        cd /src
        [ -x /opt/py39/bin/python ] || python3.9 -m venv --system-site-packages /opt/py39
        /opt/py39/bin/python -m pip install -q --disable-pip-version-check "$@"
        /opt/py39/bin/python -c "$REPORT"
        /opt/py39/bin/python -m pytest -q -p no:cacheprovider -m "$MARKS" tests' \
        sh "${PINS[@]}" "${TOOLS[@]}"
}

REPORT='import sys, jsonschema, filelock, pytest, hypothesis
from importlib.metadata import version
print("Python %s, jsonschema %s, filelock %s, libvirt-python %s, pytest %s, hypothesis %s" % (
    sys.version.split()[0], jsonschema.__version__, filelock.__version__, version("libvirt-python"),
    pytest.__version__, hypothesis.__version__))'
export REPORT MARKS

if [ "${PY39_FROM:-}" = chroot ]; then
    run_chroot
elif py=$(find_py39) && [ -n "$py" ]; then
    say "CPython 3.9 on this machine: $py"
    run_local "$py"
else
    say "no CPython 3.9 on this machine: Debian 11's, in a chroot"
    run_chroot
fi
say "OK"
