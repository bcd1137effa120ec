#!/bin/bash
# The sdist is a whole source release:
#   1. python -m build --sdist writes dist/policyhook-VERSION.tar.gz, and twine check
#      --strict passes (its metadata and README render on PyPI);
#   2. it holds every file git tracks but the CI runner's own (.ci/, .gitignore): the
#      package, the hooks, the Makefile, etc/, doc/, contrib/, tools/, tests/, the spec,
#      LICENSE, README, and debian/ where the tree has one;
#   3. unpacked, `make build` builds from it, rpmbuild -ts makes the SRPM from it as from
#      make dist's tarball, and the unit tests pass in it (about a minute of CPU).
#
#   ci/check-sdist.sh        (needs git and network access to PyPI; as root it installs
#                             the Debian packages it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
CI_NAME="check-sdist"
. ci/lib.sh

# shellcheck disable=SC2086  # a list
[ "$(id -u)" = 0 ] && install_missing $PKGS_SDIST

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' policyhook/__init__.py)
NAME=policyhook-$VERSION
OUT=build/sdist
VENV=build/sdist-venv
rm -rf "$OUT"
mkdir -p "$OUT"

# ---- 1. build and twine check ----------------------------------------------------------
[ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check build twine 2>&1 | grep -v 'is ignored' || true
"$VENV/bin/python" -m build --sdist -o "$OUT" . >"$OUT/build.log" 2>&1 \
    || { tail -n 30 "$OUT/build.log" >&2; fail "python -m build --sdist failed (see $OUT/build.log)"; }
SDIST=$OUT/$NAME.tar.gz
[ -f "$SDIST" ] || fail "python -m build --sdist wrote $(ls "$OUT"), not $NAME.tar.gz"
"$VENV/bin/twine" check --strict "$SDIST" || fail "twine check --strict $SDIST failed"
say "built $SDIST ($(stat -c %s "$SDIST") bytes) with $("$VENV/bin/python" -m build --version | cut -d' ' -f1-2); twine check --strict passed"

# ---- 2. every tracked file is in it ----------------------------------------------------
tar -tzf "$SDIST" | sed -n "s|^$NAME/||p" | grep -v '/$' | sort > "$OUT/files"
git ls-files | grep -v -e '^\.ci/' -e '^\.gitignore$' | sort > "$OUT/tracked"
missing=$(comm -23 "$OUT/tracked" "$OUT/files")
[ -z "$missing" ] || fail "the sdist lacks tracked files: $(echo $missing)"
for f in hooks/policyhook hooks/qemu hooks/lxc hooks/libxl Makefile etc/policyhook.conf doc/packaging.md \
         contrib/systemd/policyhook-watch.service.in tools/check-prereqs tests/conftest.py \
         policyhook.spec LICENSE README.md setup.cfg pyproject.toml policyhook/__init__.py; do
    grep -qxF "$f" "$OUT/files" || fail "the sdist has no $f"
done
grep -E '(^|/)__pycache__/|\.pyc$' "$OUT/files" && fail "bytecode in the sdist (above)"
debian=$(grep -c '^debian/' "$OUT/files" || true)
say "the sdist holds all $(wc -l <"$OUT/tracked") tracked files ($(wc -l <"$OUT/files") in all; debian/: $debian)"

# ---- 3. it builds, makes the SRPM and passes the unit tests ----------------------------------
tar -xzf "$SDIST" -C "$OUT"
TREE=$OUT/$NAME
make -C "$TREE" --no-print-directory build PYTHON=/usr/bin/python3 >"$OUT/make-build.log" 2>&1 \
    || { tail -n 30 "$OUT/make-build.log" >&2; fail "make build in the unpacked sdist failed (see $OUT/make-build.log)"; }
for f in policyhook policyctl.8 policyhook.conf.5 policyhook.8 \
         policyhook-policy.5 policyctl.bash policyhook-watch.service; do
    [ -s "$TREE/build/$f" ] || fail "make build in the unpacked sdist did not make build/$f"
done
say "make build in the unpacked sdist: hooks, man pages, completion and unit"
if command -v rpmbuild >/dev/null; then
    rpmbuild -ts --nodeps --define "_topdir $SRC/$OUT/rpm" "$SDIST" >"$OUT/rpmbuild.log" 2>&1 \
        || { cat "$OUT/rpmbuild.log" >&2; fail "rpmbuild -ts $SDIST failed"; }
    say "rpmbuild -ts on the sdist: $(cd "$OUT/rpm/SRPMS" && ls)"
else
    fail "no rpmbuild to make the SRPM from the sdist (Debian: apt-get install rpm)"
fi
PY=$SRC/.venv/bin/python
[ -x "$PY" ] || fail "no $PY with the test tools (scripts/setup-lab.sh .venv makes it)"
say "unit tests in the unpacked sdist (-m 'not e2e and not stress')"
(cd "$TREE" && "$PY" -m pytest -q -p no:cacheprovider -m "not e2e and not stress" tests)
say "OK"
