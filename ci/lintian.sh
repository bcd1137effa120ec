#!/bin/bash
# lintian on the Debian package `make deb` built, as a Debian reviewer runs it: the
# lintian of Debian's own packages, every tag shown (--pedantic, --display-info).
# Fails on any error, and on any warning doc/packaging.md does not explain.
#
#   make deb && ci/lintian.sh      (as root, or any user with lintian installed)
set -euo pipefail
cd "$(dirname "$0")/.."
CI_NAME="lintian"
. ci/lib.sh

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' policyhook/__init__.py)
DEB_VERSION=$(sed -n '1s/^policyhook (\(.*\)) .*/\1/p' debian/changelog)
DEB=build/deb/policyhook_${DEB_VERSION}_all.deb
CHANGES=$(ls build/deb/policyhook_"${DEB_VERSION}"_*.changes 2>/dev/null | head -n 1)
[ -f "$DEB" ] && [ -n "$CHANGES" ] || fail "no $DEB or its .changes: run make deb first"
# The Cockpit page's package is built with it, and the .changes names both.
COCKPIT_DEB=build/deb/cockpit-policyhook_${DEB_VERSION}_all.deb
[ -f "$COCKPIT_DEB" ] || fail "no $COCKPIT_DEB: run make deb first"
case "$DEB_VERSION" in "$VERSION"-*) ;; *) fail "debian/changelog's $DEB_VERSION is not policyhook $VERSION" ;; esac

# shellcheck disable=SC2086  # a list
[ "$(id -u)" = 0 ] && install_missing $PKGS_LINTIAN
command -v lintian >/dev/null || fail "no lintian (Debian: apt-get install lintian)"
say "lintian $(lintian --print-version) on $CHANGES (the two .debs and the .buildinfo)"

LOG=build/deb/lintian.log
# lintian says it should not run as root, and does all the same. It exits 1 for tags
# at --fail-on's level (counted below), 2 when it could not run.
status=0
lintian --pedantic --display-info --show-overrides --fail-on error "$CHANGES" >"$LOG.raw" 2>&1 || status=$?
grep -v 'running with root privileges is not recommended' "$LOG.raw" >"$LOG" || true
rm -f "$LOG.raw"
[ "$status" -le 1 ] || { cat "$LOG" >&2; fail "lintian could not run (exit $status)"; }
[ -s "$LOG" ] && cat "$LOG"
count() { grep -c "^$1: " "$LOG" || true; }
say "$(count E) errors, $(count W) warnings, $(count I) info, $(count P) pedantic, $(count O) overridden"
[ "$(count E)" = 0 ] || fail "lintian reports errors (above)"
unexplained=$(sed -n 's/^[WO]: [^ ]*: \([a-z0-9-]*\).*/\1/p' "$LOG" | sort -u \
    | while read -r tag; do grep -q "\`$tag\`" doc/packaging.md || echo "$tag"; done)
[ -z "$unexplained" ] || fail "warnings or overrides doc/packaging.md does not explain: $(echo $unexplained)"
say "OK: 0 errors; every warning is explained in doc/packaging.md"
