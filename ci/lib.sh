# What the CI scripts share; sourced after `cd` to the checkout, with CI_NAME set.
# shellcheck shell=bash
T0=$(date +%s%N)
say() { local ms=$((($(date +%s%N) - T0) / 1000000)); printf '[%s %3d.%ds] %s\n' "$CI_NAME" $((ms / 1000)) $((ms % 1000 / 100)) "$*"; }
fail() { printf '%s: FAILED: %s\n' "$CI_NAME" "$*" >&2; exit 1; }

# The Debian packages each check needs (each installs its own with install_missing);
# ci/install-deps.sh installs them all at once, as .ci/run does before it starts the
# checks beside the tests: two apt-get run at once fail on apt's lock.
PKGS_CHECK_RPM="rpm make git python3 python3-pip python3-setuptools python3-wheel
      python3-pytest python3-hypothesis python3-jsonschema python3-filelock python3-libvirt"
# rpm's Python binding comes from Debian (python3-rpm), so rpmlint's venv is Debian's
# python3's and sees its packages; libenchant and the dictionary make the spelling check run.
PKGS_RPMLINT="python3-rpm python3-venv libenchant-2-2 hunspell-en-us libmagic1"
PKGS_LINTIAN="lintian"
PKGS_SDIST="python3-venv make git rpm"
PKGS_PY39="debootstrap"    # for the bullseye chroot, where no CPython 3.9 is at hand

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
