#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: policyhook maintainers
# GNU General Public License v2.0+ (see LICENSE or https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cpu_occupancy
short_description: Give a set of libvirt domains physical CPUs of their own with policyhook
description:
  - Makes the given domains the only ones that may run on the given physical CPUs
    (C(policyctl cpuoccupy)), or frees the CPUs.
  - Every other domain, running or started later, is kept off them; the running ones are
    re-pinned live at once.
  - Runs on the managed host through the installed policyhook's Python API. A change
    policyctl refuses fails the task with policyctl's own message, and nothing is saved.
version_added: "0.1.0"
author:
  - policyhook maintainers (@policyhook)
options:
  cpus:
    description:
      - The physical CPUs, in virsh's cpulist syntax (C(6-7)).
    type: str
    required: true
  domains:
    description:
      - The domains that own the CPUs, as virsh names them. Required with
        C(state=present).
    type: list
    elements: str
  state:
    description:
      - C(present) makes O(domains) the only occupants of O(cpus); C(absent) frees them.
    type: str
    choices: [present, absent]
    default: present
  whole_cores:
    description:
      - Occupy every hyperthread sibling of the CPUs given too, so no other domain
        shares their cores.
    type: bool
    default: false
extends_documentation_fragment:
  - policyhook.libvirt.policyhook
seealso:
  - module: policyhook.libvirt.cpu_policy
"""

EXAMPLES = r"""
- name: CPUs 6 and 7, both threads of one core, for the latency-sensitive pair
  policyhook.libvirt.cpu_occupancy:
    cpus: "6-7"
    domains: [rt1, rt2]

- name: Give CPU 5 and its sibling to one domain
  policyhook.libvirt.cpu_occupancy:
    cpus: "5"
    domains: [db1]
    whole_cores: true

- name: Free them again
  policyhook.libvirt.cpu_occupancy:
    cpus: "4-7"
    state: absent
"""

RETURN = r"""
cpus:
  description: The CPUs the task acted on, with any sibling O(whole_cores) added.
  returned: always
  type: str
  sample: "6-7"
domains:
  description: The occupants, as stored; null when the CPUs were freed.
  returned: always
  type: list
  elements: str
occupancy:
  description: The host's whole occupancy map after the task, CPU to its occupants.
  returned: always
  type: dict
  sample: {"6": ["rt1", "rt2"], "7": ["rt1", "rt2"]}
status:
  description: C(applied), C(offline), C(dry-run) in check mode, or C(failed).
  returned: changed
  type: str
repinned:
  description: The running domains moved off the CPUs (or onto them again).
  returned: changed
  type: list
  elements: str
failures:
  description: The domains libvirt did not re-pin, each with libvirt's error.
  returned: changed
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.policyhook.libvirt.plugins.module_utils.policy import COMMON_ARGS, occupancy_task, run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cpus=dict(type="str", required=True),
            domains=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            whole_cores=dict(type="bool", default=False),
            **COMMON_ARGS
        ),
        required_if=[("state", "present", ("domains",))],
        supports_check_mode=True,
    )
    run(module, occupancy_task)


if __name__ == "__main__":
    main()
