#!/bin/bash
# Build policyhook's RPM as a packager would and check what it holds:
#   1. make rpm: rpmbuild -ta on the release tarball (git archive of HEAD), %check included;
#   2. the RPM's files, modes, owners and %config flags are the expected ones;
#   3. make install DESTDIR=... lays out the same files with the same modes;
#   4. installed into a scratch root with rpm --root, it verifies, and policyctl and the
#      hook run from there.
# Exits non-zero with the reason at the first failure. On Debian, the rpm package
# provides rpmbuild and Debian's python3 packages stand in for the BuildRequires.
#
#   ci/check-rpm.sh            (as root; installs the Debian packages it needs)
#   CHECK_RPM_TESTS=0 ci/check-rpm.sh   builds --without tests, and says so loudly
set -euo pipefail
cd "$(dirname "$0")/.."
CI_NAME="check-rpm"
. ci/lib.sh

[ "$(id -u)" = 0 ] || fail "run as root: it installs packages and an RPM into a scratch root (rpm --root)"

# ---- what the build needs -------------------------------------------------------------
PY=/usr/bin/python3   # the interpreter the spec builds and tests with (%{python3})
# shellcheck disable=SC2086  # a list
install_missing $PKGS_CHECK_RPM
command -v rpmbuild >/dev/null || fail "no rpmbuild after installing rpm"

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' policyhook/__init__.py)
SITELIB=$(DEB_PYTHON_INSTALL_LAYOUT=deb_system $PY -c 'import sysconfig; print(sysconfig.get_path("purelib", vars={"base": "/usr", "platbase": "/usr"}))')
WORK=$(mktemp -d /tmp/check-rpm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
umask 022

# ---- 1. make rpm -----------------------------------------------------------------------
rm -rf build/rpm
mkdir -p build/rpm
LOG=build/rpm/rpmbuild.log
ARGS=
if [ "${CHECK_RPM_TESTS:-1}" = 0 ]; then
    ARGS="--without tests"
    echo "check-rpm: WARNING: CHECK_RPM_TESTS=0: building --without tests; %check does not run the unit tests" >&2
fi
say "make rpm (rpmbuild -ta dist/policyhook-$VERSION.tar.gz${ARGS:+ $ARGS}; log: $LOG)"
if ! make --no-print-directory rpm RPMBUILD_ARGS="$ARGS" >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    if grep -q 'Bad exit status.*(%check)' "$LOG"; then
        fail "the unit tests in the spec's %check failed against this distribution's packages ($($PY -c 'import sys, jsonschema, filelock; print("Python %d.%d, jsonschema %s, filelock %s" % (sys.version_info[:2] + (jsonschema.__version__, filelock.__version__)))' 2>/dev/null)); see $LOG"
    fi
    fail "make rpm failed (see $LOG)"
fi
if [ -z "$ARGS" ]; then
    grep -q '^build/check-tree: policyhook is .*/BUILDROOT/' "$LOG" \
        || fail "%check did not test the policyhook package installed in the buildroot (see $LOG)"
    grep -Eq '^[0-9]+ passed' "$LOG" || fail "%check did not run the unit tests (see $LOG)"
    grep -E '[0-9]+ passed' "$LOG" | tail -n 1 | sed 's/^/  %check: /'
fi
RPM=build/rpm/RPMS/noarch/policyhook-$VERSION-1.noarch.rpm
SRPM=build/rpm/SRPMS/policyhook-$VERSION-1.src.rpm
[ -f "$RPM" ] || fail "no $RPM (a noarch package) after make rpm"
[ -f "$SRPM" ] || fail "no $SRPM after make rpm"
# The Cockpit page is a package of its own (doc/packaging.md, "The Cockpit page").
COCKPIT_RPM=build/rpm/RPMS/noarch/cockpit-policyhook-$VERSION-1.noarch.rpm
[ -f "$COCKPIT_RPM" ] || fail "no $COCKPIT_RPM (a noarch package) after make rpm"
say "built $RPM ($(stat -c %s "$RPM") bytes; installed size $(rpm -qp --qf '%{SIZE}' "$RPM") bytes)"

# ---- 1b. the spec's branch is the distribution's -------------------------------------------
# Fedora and RHEL/EPEL 9+ take the pyproject macros' branch, all others the plain one,
# whether or not the macros are defined where the spec is read (a Fedora build system
# makes the SRPM in a root without them): the SRPM and the RPM stage agree.
branch() {   # branch DEFINE...: the BuildRequires rpmspec reads with these macros
    local args=() d
    for d in "$@"; do args+=(--define "$d"); done
    rpmspec -q --buildrequires "${args[@]}" policyhook.spec 2>/dev/null | tr '\n' ' '
}
for case in "fedora 41:pyproject" "rhel 9:pyproject" "rhel 10:pyproject" "rhel 8:plain" \
            "pyproject_wheel %{nil}:plain" "suse_version 1600:plain" ":plain"; do
    define=${case%:*} want=${case##*:}
    got=$(branch ${define:+"$define"})
    if [ "$want" = pyproject ]; then
        grep -q 'pyproject-rpm-macros' <<<"$got" && ! grep -q 'python3-pip' <<<"$got" \
            || fail "with '$define' the spec takes the plain branch (BuildRequires: $got)"
    else
        grep -q 'python3-pip' <<<"$got" && ! grep -q 'pyproject-rpm-macros' <<<"$got" \
            || fail "with '${define:-no distribution macro}' the spec takes the pyproject branch (BuildRequires: $got)"
    fi
done
# The SRPM a Fedora build system makes records the pyproject branch's BuildRequires.
rpmbuild -bs --nodeps --define "_topdir $WORK/srpm" --define "_sourcedir $PWD/dist" --define "fedora 41" \
    policyhook.spec >"$WORK/srpm.log" 2>&1 || { cat "$WORK/srpm.log" >&2; fail "rpmbuild -bs with fedora 41 failed"; }
srpm_requires=$(rpm -qp --requires "$WORK"/srpm/SRPMS/*.src.rpm | tr '\n' ' ')
grep -q 'pyproject-rpm-macros' <<<"$srpm_requires" && grep -q 'rpmlib(DynamicBuildRequires)' <<<"$srpm_requires" \
    || fail "the SRPM made with fedora 41 requires $srpm_requires"
say "the spec's branch: pyproject macros on Fedora and RHEL 9+, plain elsewhere, the SRPM's too"

# ---- 2. what the RPM holds -------------------------------------------------------------
echo "--- rpm -qlpv $RPM"
rpm -qlpv "$RPM"
echo "--- rpm -qlpv $COCKPIT_RPM"
rpm -qlpv "$COCKPIT_RPM"
echo "---"
# mode owner group f:flags path, one line per entry of both packages; man pages without
# the .gz that rpm's brp-compress adds where it compresses them.
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} f:%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM" "$COCKPIT_RPM" \
    | sed -E 's#(/man/man[0-9]/[^ ]+)\.gz$#\1#' > "$WORK/rpm.entries"

entry() {   # entry PATH MODE [FLAG]: PATH is packaged with MODE, owned by root, with FLAG
    local line
    line=$(awk -v p="$1" '$5 == p' "$WORK/rpm.entries")
    [ -n "$line" ] || fail "the RPM has no $1"
    set -- "$1" "$2" "${3:-}" $line
    [ "$4" = "$2" ] || fail "$1 is packaged with mode $4, expected $2"
    [ "$5 $6" = "root root" ] || fail "$1 is owned by $5:$6, expected root:root"
    case "$7" in *"$3"*) ;; *) fail "$1 has file flags '$7', expected '$3' among them" ;; esac
}
# The hook: one program, linked from each driver's hook directory (not a %config file).
entry /usr/sbin/policyhook -rwxr-xr-x
for driver in qemu lxc libxl; do
    entry /etc/libvirt/hooks/$driver.d drwxr-xr-x
    entry /etc/libvirt/hooks/$driver.d/policyhook lrwxrwxrwx
    target=$(rpm -qp --qf '[%{FILENAMES} %{FILELINKTOS}\n]' "$RPM" | awk -v p=/etc/libvirt/hooks/$driver.d/policyhook '$1 == p {print $2}')
    [ "$target" = /usr/sbin/policyhook ] || fail "/etc/libvirt/hooks/$driver.d/policyhook links to '$target', expected /usr/sbin/policyhook"
done
entry /etc/policyhook drwxr-xr-x
entry /etc/policyhook/domains drwxr-xr-x
entry /etc/policyhook/policyhook.conf -rw-r--r-- cn        # %config(noreplace)
entry /run/policyhook drwxr-xr-x
entry /var/log/policyhook drwxr-xr-x
entry /var/lib/policyhook drwxr-xr-x
entry /usr/lib/systemd/system/policyhook-watch.service -rw-r--r--
entry /etc/logrotate.d/policyhook -rw-r--r-- cn           # %config(noreplace)
entry /usr/lib/tmpfiles.d/policyhook.conf -rw-r--r--
# %license: /usr/share/licenses/NAME on Fedora, NAME-VERSION where rpm's default
# %_docdir_fmt holds (Debian's rpm).
license=$(awk '$5 ~ "^/usr/share/licenses/policyhook(-[0-9.]+)?/LICENSE$" {print $5}' "$WORK/rpm.entries")
entry "${license:-/usr/share/licenses/policyhook/LICENSE}" -rw-r--r-- l
entry /usr/bin/policyctl -rwxr-xr-x
entry /usr/share/man/man8/policyctl.8 -rw-r--r-- d
entry /usr/share/man/man5/policyhook.conf.5 -rw-r--r-- d
entry /usr/share/man/man8/policyhook.8 -rw-r--r-- d
entry /usr/share/man/man5/policyhook-policy.5 -rw-r--r-- d
entry /usr/share/bash-completion/completions/policyctl -rw-r--r--
entry /usr/share/doc/policyhook/README.md -rw-r--r-- d
for f in __init__.py hook.py registry.py cli/__init__.py cli/main.py cli/parser.py; do
    entry "$SITELIB/policyhook/$f" -rw-r--r--
done
entry "$SITELIB/policyhook-$VERSION.dist-info/METADATA" -rw-r--r--
entry /usr/share/cockpit/policyhook drwxr-xr-x
for f in manifest.json index.html policyhook.js policyhook.css; do
    entry /usr/share/cockpit/policyhook/$f -rw-r--r--
    rpm -qlp "$RPM" | grep -qx "/usr/share/cockpit/policyhook/$f" && fail "$f is in $RPM, not only in $COCKPIT_RPM"
done
entry "$SITELIB/policyhook-$VERSION.dist-info/entry_points.txt" -rw-r--r--
# (a symlink's own mode is lrwxrwxrwx and means nothing)
awk '$1 !~ /^l/ && $1 ~ /^.....w|^........w/ {print}' "$WORK/rpm.entries" | grep . \
    && fail "group- or world-writable entries in the RPM (above)"
awk '$2 != "root" || $3 != "root" {print}' "$WORK/rpm.entries" | grep . \
    && fail "entries not owned by root:root (above)"
# Debian's rpm byte-compiles nothing, so bytecode here was left by %check's tests.
grep /__pycache__ "$WORK/rpm.entries" && fail "bytecode in the RPM (above)"

requires=$(rpm -qp --requires "$RPM")
# By hand where the spec has no pyproject macros (here), generated where it has.
for dist in libvirt-python:libvirt jsonschema:jsonschema filelock:filelock; do
    grep -Eqx "python3-${dist#*:}|python3(\.[0-9]+)?dist\(${dist%:*}\)" <<<"$requires" \
        || fail "the RPM requires neither python3-${dist#*:} nor python3dist(${dist%:*})"
done
for dep in '(libvirt-daemon-driver-qemu or libvirt-daemon-driver-lxc or libvirt-daemon-driver-libxl)' /usr/bin/python3; do
    grep -qxF "$dep" <<<"$requires" || fail "the RPM does not require $dep"
done
cockpit_requires=$(rpm -qp --requires "$COCKPIT_RPM")
for dep in cockpit-bridge cockpit-system "policyhook = $VERSION-1"; do
    grep -qxF "$dep" <<<"$cockpit_requires" || fail "$COCKPIT_RPM does not require $dep (it requires: $(echo $cockpit_requires))"
done
[ "$(rpm -qp --qf '%{ARCH}' "$COCKPIT_RPM")" = noarch ] || fail "$COCKPIT_RPM is not noarch"
scripts=$(rpm -qp --scripts "$RPM")
grep -q 'try-reload-or-restart' <<<"$scripts" || fail "no libvirtd/virtqemud reload in the scriptlets"
for tag in POSTIN POSTUN; do
    rpm -qp --qf "%{$tag}\n" "$RPM" > "$WORK/$tag.sh"
    sh -n "$WORK/$tag.sh" || fail "the %$tag scriptlet is not valid sh"
done
# Run the scriptlets as rpm would ($1: 1 install, 2 upgrade, 0 erase), with a running
# systemd and systemd-tmpfiles faked in WORK: libvirtd reloads on install and erase only.
mkdir -p "$WORK/systemd-running" "$WORK/fakebin"
printf '#!/bin/sh\necho "$*" >> "%s/systemctl.calls"\n' "$WORK" > "$WORK/fakebin/systemctl"
printf '#!/bin/sh\nexit 0\n' > "$WORK/fakebin/systemd-tmpfiles"
chmod 0755 "$WORK/fakebin/systemctl" "$WORK/fakebin/systemd-tmpfiles"
scriptlet() {   # scriptlet TAG ARG: how many units it reloads
    rm -f "$WORK/systemctl.calls"
    sed -e "s#/run/systemd/system#$WORK/systemd-running#g" \
        -e "s#/usr/bin/systemd-tmpfiles#$WORK/fakebin/systemd-tmpfiles#g" \
        -e "s#/usr/bin/systemctl#$WORK/fakebin/systemctl#g" "$WORK/$1.sh" > "$WORK/$1.run"
    PATH="$WORK/fakebin:$PATH" sh "$WORK/$1.run" "$2" || fail "the %$1 scriptlet failed with \$1 = $2"
    if [ -f "$WORK/systemctl.calls" ]; then
        grep try-reload-or-restart "$WORK/systemctl.calls" | grep -o '[a-z]*\.service' | wc -l
    else echo 0; fi
}
for case in "POSTIN 1 4" "POSTIN 2 0" "POSTUN 0 4" "POSTUN 1 0"; do
    set -- $case
    got=$(scriptlet "$1" "$2")
    [ "$got" = "$3" ] || fail "the %$1 scriptlet with \$1 = $2 reloads $got units, expected $3"
done
rpm -qp --qf '%{DESCRIPTION}\n' "$RPM" | grep -q 'setsebool -P virt_hooks_unconfined on' \
    || fail "the description lacks the SELinux note (virt_hooks_unconfined)"
say "file list, modes, owners, %config, requires and scriptlets as expected ($(wc -l <"$WORK/rpm.entries") entries)"

# ---- 3. make install DESTDIR lays out the same files ---------------------------------------
DEST=$WORK/destdir
make --no-print-directory install DESTDIR="$DEST" PYTHON=$PY >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log" >&2; fail "make install DESTDIR=$DEST failed"; }
# Files and symlinks must match exactly, modes included. Bytecode is left out: the
# build host's rpm may byte-compile (Fedora's brp-python-bytecompile), pip here does not.
(cd "$DEST" && find . -mindepth 1 ! -type d -printf '%M /%P\n') \
    | grep -Ev '\.pyc$|/__pycache__/' | sort > "$WORK/destdir.files"
# %license files come from the source tree, not from make install.
awk '$1 !~ /^d/ && $4 !~ /l/ {print $1, $5}' "$WORK/rpm.entries" | grep -Ev '\.pyc$|/__pycache__/' \
    | sort > "$WORK/rpm.files"
if ! diff -u "$WORK/rpm.files" "$WORK/destdir.files" > "$WORK/files.diff"; then
    cat "$WORK/files.diff" >&2
    fail "make install DESTDIR lays out other files than the RPM packages (- RPM, + DESTDIR)"
fi
# Every directory the RPM owns is made by make install, with the same mode.
awk '$1 ~ /^d/ && $5 !~ "^/usr/share/licenses/" {print $1, $5}' "$WORK/rpm.entries" | while read -r mode path; do
    [ -d "$DEST$path" ] || fail "make install does not create $path, which the RPM owns"
    got=$(stat -c %A "$DEST$path")
    [ "$got" = "$mode" ] || fail "make install creates $path with mode $got, the RPM with $mode"
done
say "make install DESTDIR=... lays out the RPM's $(wc -l <"$WORK/rpm.files") files and its directories, modes included"

# ---- 4. install into a scratch root and run it ------------------------------------------
ROOT=$WORK/root
rpm --root "$ROOT" --initdb
# No scriptlets: the scratch root has no shell; they are checked with sh -n above.
# (Debian's rpm warns on stderr that it is not Debian's package manager.)
rpm --root "$ROOT" -i --nodeps --nosignature --noscripts "$RPM" "$COCKPIT_RPM" 2>"$WORK/rpm-i.err" \
    || { cat "$WORK/rpm-i.err" >&2; fail "rpm --root $ROOT -i $RPM $COCKPIT_RPM failed"; }
rpm --root "$ROOT" -V --nodeps policyhook cockpit-policyhook 2>"$WORK/rpm-V.err" \
    || { cat "$WORK/rpm-V.err" >&2; fail "rpm -V: the installed files differ from the package (above)"; }
hook=$ROOT/usr/sbin/policyhook
[ "$(head -n 1 "$hook")" = "#!$PY -I" ] || fail "the hook's shebang is '$(head -n 1 "$hook")', expected '#!$PY -I'"
export PYTHONPATH=$ROOT$SITELIB
help=$("$ROOT/usr/bin/policyctl" --help) || fail "policyctl --help exited non-zero"
grep -q '^usage: policyctl' <<<"$help" || fail "policyctl --help printed no usage line"
echo "--- policyctl --help (from $ROOT)"
head -n 12 <<<"$help"
echo "---"
check=$("$ROOT/usr/bin/policyctl" --root "$ROOT" check) || fail "policyctl --root $ROOT check failed: $check"
say "policyctl --root ROOT check: ${check#"$ROOT"}"
# The links name /usr/sbin/policyhook of the real root: run the scratch root's hook
# through links of the same name in directories of the same names, as libvirtd would.
for driver in qemu lxc libxl; do
    mkdir -p "$WORK/hooks/$driver.d"
    ln -s "$hook" "$WORK/hooks/$driver.d/policyhook"
    POLICYHOOK_ROOT=$ROOT $PY "$WORK/hooks/$driver.d/policyhook" vm1 stopped end - </dev/null \
        || fail "the installed hook run as $driver.d/policyhook failed on 'stopped end'"
done
out=$(POLICYHOOK_ROOT=$ROOT $PY "$hook" vm1 stopped end - </dev/null 2>&1) && fail "the hook run by hand exited 0"
grep -q 'runs as /etc/libvirt/hooks/DRIVER.d/policyhook' <<<"$out" || fail "the hook run by hand said: $out"
bash -n "$ROOT/usr/share/bash-completion/completions/policyctl" || fail "the installed completion is not valid bash"
$PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$ROOT/usr/share/cockpit/policyhook/manifest.json" \
    || fail "the installed Cockpit manifest is not JSON"
if command -v man >/dev/null; then
    for page in man8/policyctl.8:POLICYCTL man5/policyhook.conf.5:POLICYHOOK.CONF \
                man8/policyhook.8:POLICYHOOK man5/policyhook-policy.5:POLICYHOOK-POLICY; do
        file=${page%%:*} title=${page#*:}
        man -l "$ROOT"/usr/share/man/$file* 2>/dev/null | head -n 3 | grep -q "$title(${file:3:1})" \
            || fail "man cannot render the installed ${file#*/}"
    done
fi
unset PYTHONPATH
say "installed into a scratch root: rpm -V clean, policyctl --help and check run, the hooks run"
say "OK"
