"""Stands in for the pip bootstrap script ansible-test downloads into
~/.ansible/test/cache/ before it creates a virtualenv for a sanity test.

ansible-test fetches that script from its own file host, which CI's machines cannot
reach; they reach PyPI. This does what the script does, with Python's own ensurepip:
pip into the running (virtual) environment, then the pip release and the packages
ansible-test asked for, from PyPI. ci/ansible.sh copies it into the cache.
"""

import subprocess
import sys

# In a process of its own: ensurepip points PIP_CONFIG_FILE at /dev/null in its own
# environment, which would hide pip's configuration (its index and certificates) from
# the install that follows.
subprocess.check_call([sys.executable, "-m", "ensurepip"])
# get-pip's own flags, which pip install does not take: leaving those packages out is
# what they ask for, and ensurepip installs neither setuptools nor wheel here.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
