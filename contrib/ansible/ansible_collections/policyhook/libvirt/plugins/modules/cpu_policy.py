#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: policyhook maintainers
# GNU General Public License v2.0+ (see LICENSE or https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cpu_policy
short_description: Set the CPU policy of a libvirt domain with policyhook
description:
  - Sets the CPU policy policyhook keeps for one libvirt domain, running or not (where its
    vCPUs, emulator threads and IOThreads may run, and its CPU weight and cap).
  - The policy is saved in C(/etc/policyhook/domains) on the managed host and, when the
    domain runs, put in force live at once; policyhook's hook puts it in force at every
    later start.
  - Runs on the managed host through the installed policyhook's Python API, as
    C(policyctl) would. A value policyctl refuses fails the task with policyctl's own
    message, and nothing is saved.
  - Every setting of one task is checked before anything is saved and saved at once.
version_added: "0.1.0"
author:
  - policyhook maintainers (@policyhook)
options:
  domain:
    description:
      - The domain, as virsh names it (a name, a UUID or an Id).
    type: str
    required: true
  vcpupin:
    description:
      - vCPU number to the physical CPUs it may run on, in virsh's cpulist syntax
        (C(0-3,^2,8)).
    type: dict
  emulatorpin:
    description:
      - The physical CPUs the domain's emulator threads may run on (a cpulist).
    type: str
  iothreadpin:
    description:
      - IOThread ID (as C(virsh iothreadinfo) lists it) to a cpulist.
    type: dict
  weight:
    description:
      - Relative CPU weight, 1 to 65535; libvirt's default is what 256 means.
    type: int
  cap:
    description:
      - At most this percent of one physical CPU for the whole domain (50 is half a CPU,
        400 four CPUs); 0 is no cap.
    type: int
  state:
    description:
      - C(present) records the settings given; C(absent) removes the domain's whole
        policy (a running domain gets libvirt's defaults back live).
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - With C(true), the settings not given in the task are removed from the policy, so
        the policy is exactly what the task says.
    type: bool
    default: false
  undefined:
    description:
      - Record a policy for a domain libvirt does not know yet (as policyctl's
        C(--undefined)). Without it such a domain fails the task.
    type: bool
    default: false
extends_documentation_fragment:
  - policyhook.libvirt.policyhook
seealso:
  - module: policyhook.libvirt.cpu_occupancy
"""

EXAMPLES = r"""
- name: Pin vm1's vCPUs one to one and give it twice the default weight
  policyhook.libvirt.cpu_policy:
    domain: vm1
    vcpupin:
      0: "2"
      1: "3"
    emulatorpin: "0-1"
    weight: 512

- name: Cap a batch domain at half a CPU, and nothing else
  policyhook.libvirt.cpu_policy:
    domain: batch1
    cap: 50
    exclusive: true

- name: Forget vm2's policy
  policyhook.libvirt.cpu_policy:
    domain: vm2
    state: absent
"""

RETURN = r"""
domain:
  description: The domain's name, as the policy is stored.
  returned: always
  type: str
  sample: vm1
policy:
  description: The domain's policy after the task, as the policy file holds it; null when it has none.
  returned: always
  type: dict
  sample: {"version": 1, "domain": "vm1", "vcpupin": {"0": "2"}, "weight": 512}
status:
  description: >-
    What became of the change: C(applied) (saved and in force on the running domain),
    C(saved-not-running), C(not-defined), C(offline), C(dry-run) in check mode,
    C(unchanged), C(absent).
  returned: always
  type: str
  sample: applied
applied_live:
  description: Whether the change was put in force on the running domain.
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.policyhook.libvirt.plugins.module_utils.policy import COMMON_ARGS, policy_task, run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            domain=dict(type="str", required=True),
            vcpupin=dict(type="dict"),
            emulatorpin=dict(type="str"),
            iothreadpin=dict(type="dict"),
            weight=dict(type="int"),
            cap=dict(type="int"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            exclusive=dict(type="bool", default=False),
            undefined=dict(type="bool", default=False),
            **COMMON_ARGS
        ),
        supports_check_mode=True,
    )
    run(module, policy_task)


if __name__ == "__main__":
    main()
