#!/bin/bash
# rpmlint on the RPMs (policyhook, cockpit-policyhook) and the SRPM that ci/check-rpm.sh
# built, as a Fedora reviewer runs it: rpmlint 2.10 with Fedora's configuration (from rpmlint's own release on PyPI), the
# spelling check on (en_US), checkbashisms for the scriptlets, and policyhook.rpmlintrc.
# Fails on any error, and on any warning doc/packaging.md does not explain.
#
#   ci/rpmlint.sh            (as root, after ci/check-rpm.sh; installs what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
CI_NAME="rpmlint"
. ci/lib.sh

RPMLINT_VERSION=2.10.0
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' policyhook/__init__.py)
RPM=build/rpm/RPMS/noarch/policyhook-$VERSION-1.noarch.rpm
SRPM=build/rpm/SRPMS/policyhook-$VERSION-1.src.rpm
COCKPIT_RPM=build/rpm/RPMS/noarch/cockpit-policyhook-$VERSION-1.noarch.rpm
[ -f "$RPM" ] && [ -f "$COCKPIT_RPM" ] && [ -f "$SRPM" ] || fail "no $RPM, $COCKPIT_RPM or $SRPM: run ci/check-rpm.sh first"

# shellcheck disable=SC2086  # a list (ci/lib.sh says why these)
install_missing $PKGS_RPMLINT

WORK=$(mktemp -d /tmp/rpmlint.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
VENV=$PWD/build/rpmlint-venv
PIP="$VENV/bin/pip --disable-pip-version-check -q"
[ -x "$VENV/bin/pip" ] || /usr/bin/python3 -m venv --system-site-packages "$VENV"
# Fedora's configuration is not in the wheel, only in the source release: take both
# from the one sdist.
(cd "$WORK" && $PIP download --no-deps --no-binary :all: "rpmlint==$RPMLINT_VERSION" 2>&1 | grep -v 'is ignored' || true)
SDIST=$WORK/rpmlint-$RPMLINT_VERSION.tar.gz
[ -f "$SDIST" ] || fail "could not download rpmlint $RPMLINT_VERSION's source release from PyPI"
tar -xzf "$SDIST" -C "$WORK" "rpmlint-$RPMLINT_VERSION/configs/Fedora"
CONFIG=$WORK/rpmlint-$RPMLINT_VERSION/configs/Fedora
if [ "$("$VENV/bin/rpmlint" --version 2>/dev/null)" != "$RPMLINT_VERSION" ]; then
    $PIP install "$SDIST" 2>&1 | grep -v 'is ignored' || true
fi
[ "$("$VENV/bin/rpmlint" --version 2>/dev/null)" = "$RPMLINT_VERSION" ] || fail "rpmlint $RPMLINT_VERSION did not install into $VENV"

# checkbashisms (Fedora's rpmlint runs it on scriptlets) is one Perl script of Debian's
# devscripts: unpacked, not installed, with its few dozen dependencies.
(cd "$WORK" && apt-get download -q devscripts >/dev/null 2>&1) || fail "apt-get download devscripts failed"
dpkg-deb -x "$WORK"/devscripts_*.deb "$WORK/devscripts"
export PATH="$WORK/devscripts/usr/bin:$PATH"
say "rpmlint $RPMLINT_VERSION with $CONFIG (Fedora) and policyhook.rpmlintrc"

LOG=build/rpm/rpmlint.log
status=0
"$VENV/bin/rpmlint" -c "$CONFIG" -r policyhook.rpmlintrc "$RPM" "$COCKPIT_RPM" "$SRPM" >"$LOG" 2>&1 || status=$?
grep -E '^(cockpit-)?policyhook[.:]' "$LOG" || true
summary=$(grep -E '[0-9]+ errors, [0-9]+ warnings' "$LOG") || { cat "$LOG" >&2; fail "rpmlint printed no summary (see $LOG)"; }
echo "$summary"
grep -q 'unable to init enchant' "$LOG" && fail "the spelling check did not run (see $LOG)"
errors=$(sed -E 's/.* ([0-9]+) errors,.*/\1/' <<<"$summary")
[ "$errors" = 0 ] || fail "rpmlint reports $errors errors"
[ "$status" = 0 ] || fail "rpmlint exited $status (see $LOG)"
unexplained=$(grep -oE ': W: [a-z0-9-]+' "$LOG" | sed 's/: W: //' | sort -u \
    | while read -r w; do grep -q "\`$w\`" doc/packaging.md || echo "$w"; done)
[ -z "$unexplained" ] || fail "warnings doc/packaging.md does not explain: $(echo $unexplained)"
say "OK: 0 errors; every warning is explained in doc/packaging.md"
