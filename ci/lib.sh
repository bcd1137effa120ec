# What the CI scripts share; sourced after `cd` to the checkout, with CI_NAME set.
# shellcheck shell=bash
T0=$(date +%s%N)
say() { local ms=$((($(date +%s%N) - T0) / 1000000)); printf '[%s %3d.%ds] %s\n' "$CI_NAME" $((ms / 1000)) $((ms % 1000 / 100)) "$*"; }
fail() { printf '%s: FAILED: %s\n' "$CI_NAME" "$*" >&2; exit 1; }

# install_missing PKG...: apt-get installs those of the Debian packages not installed.
install_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Abbrev}\n' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "apt-get install ${missing[*]} failed"
    say "installed ${missing[*]}"
}
