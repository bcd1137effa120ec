#!/bin/bash
# policyhook as RHEL 9 builds and runs it:
#   1. the wheel, built with RHEL 9's build stack: CPython 3.9, pip 21.2.3, setuptools
#      53.0.0 and wheel 0.36.2, `pip wheel --no-build-isolation` (setuptools 53 reads
#      setup.cfg, not pyproject.toml's [project] table);
#   2. checked: its name and version, policyctl's entry point, every module of the tree;
#   3. installed into a virtualenv with jsonschema 3.2 and filelock 3.7, the versions
#      RHEL 9 ships, from PyPI;
#   4. the unit suite run against that installed package, from a copy of the test tree
#      that holds no policyhook package of its own.
#
# The interpreter, in this order:
#   1. PY39=/path/to/python3.9, if set;
#   2. a CPython 3.9 on this machine: python3.9 on PATH, or pyenv's 3.9;
#   3. Debian 11's python3.9, in a bullseye chroot made with debootstrap from the mirror
#      apt uses here (build/py39-root; about 3 minutes the first time), where this script
#      runs again with the source tree bind-mounted in a private mount namespace and
#      Debian's python3-libvirt. PY39_FROM=chroot picks this one directly.
#
#   ci/unit-py39.sh        (the chroot needs root; the rest does not)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
CI_NAME="unit-py39"
. ci/lib.sh

# RHEL 9's build stack; what RHEL 9 ships at run time; the test tools as the suite needs them.
BUILD_PINS=("pip==21.2.3" "setuptools==53.0.0" "wheel==0.36.2")
PINS=("jsonschema==3.2.0" "filelock==3.7.*")
TOOLS=(pytest hypothesis tomli)   # tomli: tests/test_packaging.py reads pyproject.toml
MARKS="not e2e and not stress"
# Inside the chroot (PY39_LIBVIRT=system) the virtualenvs are the chroot's own.
WORK=build/py39${PY39_LIBVIRT:+-$PY39_LIBVIRT}
VENV=build/py39-venv${PY39_LIBVIRT:+-$PY39_LIBVIRT}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' policyhook/__init__.py)
WHEEL_NAME=policyhook-$VERSION-py3-none-any.whl
PIP=(-m pip install -q --disable-pip-version-check)

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

quiet_pip() { grep -v -e 'is ignored' -e 'DEPRECATION:' -e 'pip 21.3 will remove' -e 'pypa/pip/issues/7555' || true; }

# The sources as a release has them: no build output, virtualenvs or caches.
export_tree() {   # export_tree DIR
    rm -rf "$1"
    mkdir -p "$1"
    tar -C "$SRC" -cf - --exclude=./.git --exclude=./build --exclude=./dist --exclude='./.venv*' \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis \
        --exclude=.ruff_cache . | tar -C "$1" -xf -
}

# ---- 1. the wheel, with RHEL 9's build stack ----------------------------------------------
build_wheel() {   # build_wheel PY
    local bv=$WORK/build-venv
    if ! [ -x "$bv/bin/python" ] || ! is_py39 "$bv/bin/python"; then
        rm -rf "$bv"
        "$1" -m venv "$bv"
    fi
    "$bv/bin/python" "${PIP[@]}" "${BUILD_PINS[@]}" 2>&1 | quiet_pip
    local stack
    stack=$("$bv/bin/python" -c 'from importlib.metadata import version as v
print("pip %s, setuptools %s, wheel %s" % (v("pip"), v("setuptools"), v("wheel")))')
    [ "$stack" = "pip 21.2.3, setuptools 53.0.0, wheel 0.36.2" ] || fail "the build virtualenv has $stack"
    export_tree "$WORK/src"
    rm -rf "$WORK/wheel"
    (cd "$WORK/src" && "$SRC/$bv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
        --no-build-isolation -w "$SRC/$WORK/wheel" .) 2>&1 | quiet_pip
    say "built with Python $("$bv/bin/python" -c 'import platform; print(platform.python_version())'), $stack, --no-build-isolation: $(cd "$WORK/wheel" && ls)"
}

# ---- 2. what the wheel holds ----------------------------------------------------------------
INSPECT='
import os, sys, zipfile
wheel, version, srcdir = sys.argv[1:]
z = zipfile.ZipFile(wheel)
names = z.namelist()
info = "policyhook-%s.dist-info/" % version
problems = []
meta = z.read(info + "METADATA").decode()
fields = [line.split(": ", 1) for line in meta.split("\n\n")[0].splitlines() if ": " in line]
if ("Name", "policyhook") not in [tuple(f) for f in fields]:
    problems.append("METADATA does not name policyhook")
if ("Version", version) not in [tuple(f) for f in fields]:
    problems.append("METADATA does not give version %s" % version)
requires = sorted(v.split(";")[0].strip() for k, v in fields if k == "Requires-Dist" and "extra ==" not in v)
if requires != ["filelock", "jsonschema", "libvirt-python"]:
    problems.append("Requires-Dist is %s" % requires)
entry = z.read(info + "entry_points.txt").decode().split()
if entry[:4] != ["[console_scripts]", "policyctl", "=", "policyhook.cli:main"]:
    problems.append("entry_points.txt is %r" % " ".join(entry))
modules = sorted(os.path.relpath(os.path.join(d, f), srcdir) for d, _, fs in os.walk(os.path.join(srcdir, "policyhook"))
                 for f in fs if f.endswith(".py"))
missing = [m for m in modules if m not in names]
if missing:
    problems.append("modules missing: %s" % " ".join(missing))
extra = [n for n in names if not n.startswith(info) and n not in modules]
if extra:
    problems.append("files that are not modules of the tree: %s" % " ".join(extra))
print("--- %s" % os.path.basename(wheel))
for i in z.infolist():
    print("%8d  %s" % (i.file_size, i.filename))
print("---")
if problems:
    sys.exit("\n".join(problems))
print("%d modules, Requires-Dist %s, console script policyctl = policyhook.cli:main" % (len(modules), ", ".join(requires)))
'
inspect_wheel() {   # inspect_wheel PY
    [ -f "$WORK/wheel/$WHEEL_NAME" ] || fail "the wheel is not $WHEEL_NAME: $(ls "$WORK/wheel")"
    local out
    out=$("$1" -c "$INSPECT" "$WORK/wheel/$WHEEL_NAME" "$VERSION" "$WORK/src" 2>&1) \
        || { echo "$out" >&2; fail "$WHEEL_NAME is not whole (above)"; }
    echo "$out" | sed '$d'
    say "$WHEEL_NAME: $(echo "$out" | tail -n 1)"
}

# ---- 3. installed, with RHEL 9's jsonschema and filelock -----------------------------------
install_wheel() {   # install_wheel PY
    local flags=()
    [ "${PY39_LIBVIRT:-}" = system ] && flags=(--system-site-packages)   # Debian's python3-libvirt
    if ! [ -x "$VENV/bin/python" ] || ! is_py39 "$VENV/bin/python"; then
        rm -rf "$VENV"
        "$1" -m venv "${flags[@]}" "$VENV"
    fi
    local libvirt=(libvirt-python)   # no wheels: pip builds it against this machine's libvirt
    [ "${PY39_LIBVIRT:-}" = system ] && libvirt=()
    "$VENV/bin/python" "${PIP[@]}" "${PINS[@]}" "${libvirt[@]}" "${TOOLS[@]}" 2>&1 | quiet_pip
    "$VENV/bin/python" "${PIP[@]}" --no-deps --force-reinstall "$WORK/wheel/$WHEEL_NAME" 2>&1 | quiet_pip
    local got
    got=$("$VENV/bin/policyctl" --version) || fail "the installed policyctl does not run"
    [ "${got##* }" = "$VERSION" ] || fail "the installed policyctl says '$got', not version $VERSION"
    say "installed into $VENV: $got; $("$VENV/bin/python" -c "$REPORT")"
}

# ---- 4. the unit suite against the installed package ----------------------------------------
test_installed() {
    local tree=$WORK/tree found site
    export_tree "$tree"
    # tests/conftest.py puts the tree first on sys.path: its policyhook is a link to the
    # installed one, which the tests, and the hooks and policyctl they run, import (the
    # spec's %check does the same with make check-tree).
    site=$("$VENV/bin/python" -c 'import os, sysconfig; print(os.path.realpath(sysconfig.get_path("purelib")))')
    rm -rf "$tree/policyhook"
    ln -s "$site/policyhook" "$tree/policyhook"
    found=$(cd "$tree" && "$SRC/$VENV/bin/python" -c 'import os, sys; sys.path.insert(0, os.getcwd())
import policyhook; print(os.path.realpath(policyhook.__file__))')
    case $found in "$site"/policyhook/*) ;; *) fail "the test tree imports $found, not the package installed in $site" ;; esac
    say "unit tests (-m '$MARKS') in $tree, importing $found"
    (cd "$tree" && PATH="$SRC/$VENV/bin:$PATH" "$SRC/$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "$MARKS" tests)
}

run_local() {   # run_local PY
    build_wheel "$1"
    inspect_wheel "$1"
    install_wheel "$1"
    test_installed
}

# ---- in a Debian 11 (bullseye) chroot ----------------------------------------------------
ROOT=build/py39-root
run_chroot() {
    [ "$(id -u)" = 0 ] || fail "the bullseye chroot needs root (debootstrap, chroot, mounts)"
    # shellcheck disable=SC2086  # a list
    install_missing $PKGS_PY39
    if ! [ -x "$ROOT/usr/bin/python3.9" ]; then
        local mirror
        mirror=$(apt_mirror)
        rm -rf "$ROOT"
        mkdir -p "$(dirname "$ROOT")"
        say "debootstrap bullseye into $ROOT from $mirror (python3.9, Debian's python3-libvirt)"
        debootstrap --variant=minbase --include=python3,python3-venv,python3-libvirt,ca-certificates,make \
            bullseye "$ROOT" "$mirror" >"$ROOT.log" 2>&1 \
            || { tail -n 20 "$ROOT.log" >&2; fail "debootstrap bullseye failed (see $ROOT.log)"; }
    fi
    # Name resolution and certificate authorities as this machine has them (a proxy's
    # own authority among them, where one stands between it and PyPI), and its pip settings.
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
    [ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
    mkdir -p "$ROOT/src"
    # This script again, inside: the tree at /src, /proc and /dev for the hook tests; the
    # mounts live in a namespace of their own and go when it ends.
    # shellcheck disable=SC2016
    unshare --mount --propagation private /bin/sh -ec '
        mount --bind "$1" "$2/src"
        mount -t proc proc "$2/proc"
        mount --rbind /dev "$2/dev"
        shift 2
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
            PY39=/usr/bin/python3.9 PY39_LIBVIRT=system chroot "$@"' sh "$SRC" "$ROOT" "$ROOT" \
        /bin/bash /src/ci/unit-py39.sh
}

REPORT='import sys, jsonschema, filelock, pytest, hypothesis
from importlib.metadata import version
print("Python %s, jsonschema %s, filelock %s, libvirt-python %s, pytest %s, hypothesis %s" % (
    sys.version.split()[0], jsonschema.__version__, filelock.__version__, version("libvirt-python"),
    pytest.__version__, hypothesis.__version__))'

if [ "${PY39_FROM:-}" = chroot ]; then
    run_chroot
elif py=$(find_py39) && [ -n "$py" ]; then
    say "CPython 3.9: $py"
    run_local "$py"
else
    say "no CPython 3.9 on this machine: Debian 11's, in a chroot"
    run_chroot
fi
say "OK"
