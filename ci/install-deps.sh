#!/bin/bash
# Every Debian package the packaging checks need, installed at once: debian/control's
# Build-Depends (make deb) and each check's own list (ci/lib.sh). .ci/run calls it before
# it starts the checks beside `make test`, whose setup and guest tiers run apt-get too.
#
#   ci/install-deps.sh        (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
CI_NAME="install-deps"
. ci/lib.sh

[ "$(id -u)" = 0 ] || fail "run as root: it installs Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 build-dep -y -qq ./ >/dev/null || fail "apt-get build-dep ./ failed"
# shellcheck disable=SC2086  # lists
install_missing $PKGS_CHECK_RPM $PKGS_RPMLINT $PKGS_LINTIAN $PKGS_SDIST $PKGS_PY39
say "Build-Depends and the checks' packages installed"
