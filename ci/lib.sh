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

# apt_mirror: the Debian mirror apt uses on this machine (deb822 sources, else
# sources.list), the -security archive left out; scripts/vm-lab.sh reads it the same way.
apt_mirror() {
    local url
    url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' | grep -v -- '-security' | head -n1)
    [ -n "$url" ] || url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" {print ($2 ~ /^\[/ ? $3 : $2)}' | grep -v -- '-security' | head -n1)
    [ -n "$url" ] || fail "no Debian mirror in /etc/apt/sources.list*"
    echo "$url"
}
