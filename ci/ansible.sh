#!/bin/bash
# The Ansible collection (contrib/ansible): ansible-test sanity, for the controller's
# Python and for every Python the modules claim (tests/config.yml: 3.9 and later) that
# this machine has. ansible-core from PyPI, in build/ansible-venv.
#
#   ci/ansible.sh
#
# ansible-test builds a virtualenv per sanity test and bootstraps pip in each with a
# script it downloads from its own file host, which CI cannot reach: ci/ansible-test-get-pip.py
# stands in for it, from Python's ensurepip and PyPI. The modules' logic is unit-tested
# with the rest (tests/test_ansible_tasks.py); the guest tier runs them for real.
set -euo pipefail
cd "$(dirname "$0")/.."
CI_NAME="ansible"
. ci/lib.sh

ANSIBLE_CORE=${ANSIBLE_CORE:-ansible-core==2.19.14}
VENV=build/ansible-venv
COLLECTION=contrib/ansible/ansible_collections/policyhook/libvirt
CONTROLLER=${CONTROLLER_PYTHON:-python3}

"$CONTROLLER" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "$CONTROLLER is older than 3.11, which ansible-core 2.19 needs as its controller"
[ -x "$VENV/bin/ansible-test" ] || { rm -rf "$VENV"; "$CONTROLLER" -m venv "$VENV"; }
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$ANSIBLE_CORE" 2>&1 | grep -v 'is ignored' || true
say "$("$VENV/bin/ansible" --version | sed -n 1p)"   # sed reads it all: head would break the pipe

# The pip release ansible-test bootstraps, named in its own source.
requirements=$("$VENV/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$requirements" | head -n 1)
[ -n "$pip_version" ] || fail "cannot find the pip release ansible-test bootstraps in $requirements"
mkdir -p "$HOME/.ansible/test/cache"
cp ci/ansible-test-get-pip.py "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

# Every CPython from 3.9 up this machine has (pyenv's, or on PATH), named python3.N on a
# PATH of its own: ansible-test runs the version-specific tests (compile, import) with each.
PYS=$PWD/build/ansible-pythons
rm -rf "$PYS"; mkdir -p "$PYS"
found=()
for minor in 9 10 11 12 13 14; do
    for candidate in "$(command -v "python3.$minor" 2>/dev/null || true)" \
                     "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3."$minor".*/bin/python3."$minor"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import ensurepip, venv' 2>/dev/null; then
            ln -s "$candidate" "$PYS/python3.$minor"
            found+=("3.$minor")
            break
        fi
    done
done
case " ${found[*]} " in *" 3.9 "*) ;; *) fail "no CPython 3.9 here: the modules claim 3.9 (RHEL 9)";; esac
say "Pythons for the modules: ${found[*]}"

# ansible-test works on the collection as a git tree: the files it checks are git's.
cd "$COLLECTION"
rm -rf tests/output
status=0
PATH="$PYS:$PATH" "$OLDPWD/$VENV/bin/ansible-test" sanity --venv --requirements --color no \
    >"$OLDPWD/build/ansible-sanity.log" 2>&1 || status=$?
grep -v "is ignored: it is neither a file\|^Collecting\|Downloading\|━━\|^Requirement already\|Using cached" \
    "$OLDPWD/build/ansible-sanity.log" || true
rm -rf tests/output
[ "$status" = 0 ] || fail "ansible-test sanity"
say "OK: ansible-test sanity on Python ${found[*]}"
