# -*- coding: utf-8 -*-
# Copyright: policyhook maintainers
# GNU General Public License v2.0+ (see LICENSE or https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What every module of the collection takes to reach policyhook on the managed host.
    DOCUMENTATION = r"""
options:
  connect:
    description:
      - The libvirt URI; by default C(LIBVIRT_DEFAULT_URI), else policyhook.conf's
        C([libvirt] uri), else C(qemu:///system).
    type: str
  root:
    description:
      - Prefix of every policyhook path, as C(policyctl --root) takes it.
    type: path
    default: /
notes:
  - Supports check mode and diff mode.
  - The managed host needs policyhook installed for the Python that runs the module.
requirements:
  - policyhook
"""
