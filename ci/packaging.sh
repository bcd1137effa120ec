#!/bin/bash
# The packaging checks, two at a time: the RPM (ci/check-rpm.sh, then ci/rpmlint.sh)
# beside the Debian package (make deb, then ci/lintian.sh); then the sdist and the Ansible
# collection (ci/check-sdist.sh, ci/ansible.sh) beside the wheel built as on RHEL 9
# (ci/unit-py39.sh). Most of each is one single-threaded unit suite (RPM %check, pybuild's
# tests, the sdist's, Python 3.9's) and this machine kind has two CPUs. No two of a pair
# write the same files: check-rpm works in build/rpm and dist/, make deb in build/deb,
# check-sdist and ansible in build/sdist* and build/ansible*, unit-py39 in build/py39*.
# Each one's output is shown whole when it ends; the first to fail stops the rest.
#
#   ci/packaging.sh        (as root, with .venv made by scripts/setup-lab.sh and the
#                           Debian packages of ci/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
declare -A pids
background() {   # NAME CMD...: CMD in the background, its output in build/ci-NAME.log
    local name=$1; shift
    "$@" >"build/ci-$name.log" 2>&1 &
    pids[$name]=$!
}
finish() {       # NAME: wait for it, show its output, fail as it failed
    local name=$1 status=0
    wait "${pids[$name]}" || status=$?
    cat "build/ci-$name.log"
    [ "$status" = 0 ] || { echo "$name failed (exit status $status; build/ci-$name.log)" >&2; exit "$status"; }
}
deb() {
    local t0=$SECONDS
    make --no-print-directory deb >build/make-deb.log 2>&1 || { tail -n 40 build/make-deb.log; echo "make deb failed (build/make-deb.log)" >&2; return 1; }
    echo "make deb: $(ls build/deb/*.deb) in $((SECONDS - t0)) s ($(grep -Eo '[0-9]+ passed' build/make-deb.log | tail -n 1) at build time)"
    ci/lintian.sh
}
t0=$SECONDS
background rpm sh -c 'ci/check-rpm.sh && ci/rpmlint.sh'
background deb deb
finish rpm
finish deb
background py39 ci/unit-py39.sh
background sdist sh -c 'ci/check-sdist.sh && ci/ansible.sh'
finish sdist
finish py39
echo "packaging checks: $((SECONDS - t0)) s"
