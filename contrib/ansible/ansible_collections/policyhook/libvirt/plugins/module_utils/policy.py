# -*- coding: utf-8 -*-
# Copyright: policyhook maintainers
# GNU General Public License v2.0+ (see LICENSE or https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt)
"""What the two modules do, on the managed host, through policyhook's Python API.

No Ansible here: each task takes a PolicyManager and the module's parameters and
returns the module's result as a dict, or raises policyhook's PolicyError, whose text
is policyctl's own one-line message. A change is computed with dry_run first, so check
mode and a real run agree on what changes, and a real run saves only when something
does; every setting of one task is saved in one transaction of the registry, so a bad
value saves nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# The options every module takes to reach policyhook (doc fragment policyhook.libvirt.policyhook).
COMMON_ARGS = dict(connect=dict(type="str"), root=dict(type="path", default="/"))

PIN_PARAMS = (("vcpupin", "vcpu"), ("emulatorpin", "emulator"), ("iothreadpin", "iothread"))
SCHED_PARAMS = ("weight", "cap")


def manager(root="/", uri=None):
    """A PolicyManager as policyctl makes one: settings from ROOT/etc/policyhook, the
    connection from `uri`, else LIBVIRT_DEFAULT_URI, else [libvirt] uri."""
    import os

    from policyhook.api import PolicyManager
    from policyhook.paths import Paths
    from policyhook.settings import load_settings

    paths = Paths(root or "/")
    settings = load_settings(paths)
    uri = uri or os.environ.get("LIBVIRT_DEFAULT_URI") or settings.uri
    return PolicyManager(paths, uri=uri, settings=settings)


def _doc(policy):
    return policy.to_doc() if policy is not None else {}


def _diff(before, after, header):
    # Ansible prints before and after as text when --diff is given: stable JSON, one key
    # a line, as the policy files themselves are written.
    return {"before": json.dumps(before, indent=2, sort_keys=True) + "\n" if before else "",
            "after": json.dumps(after, indent=2, sort_keys=True) + "\n" if after else "",
            "before_header": header, "after_header": header}


def wanted(params):
    """({(kind, index): cpulist}, {key: value}) of the settings the task gives."""
    pins = {}
    for param, kind in PIN_PARAMS:
        value = params.get(param)
        if value is None:
            continue
        if kind == "emulator":
            pins[(kind, 0)] = value
        else:
            for index, cpulist in value.items():
                pins[(kind, str(index))] = cpulist
    sched = dict((key, params[key]) for key in SCHED_PARAMS if params.get(key) is not None)
    return pins, sched


def policy_task(pm, params, check_mode):
    """policyhook.libvirt.cpu_policy: the domain's policy holds the given settings
    (state=present) or is gone (state=absent)."""
    ctx = pm.context(params["domain"])
    name = ctx.name
    before = pm.registry.load(name)
    header = pm.paths.domain_file(name)
    result = {"changed": False, "domain": name}
    if params.get("state", "present") == "absent":
        result["policy"] = None
        result["status"] = "absent"
        if before is None:
            return result
        outcome = pm.remove(name, dry_run=True)
        if not check_mode:
            outcome = pm.remove(name)
        result.update(changed=True, diff=_diff(_doc(before), {}, header), status=outcome.status.value,
                      applied_live=outcome.status.value == "applied")
        return result
    pins, sched = wanted(params)
    exclusive = bool(params.get("exclusive"))
    undefined = bool(params.get("undefined"))
    planned = pm.put(name, pins, sched, exclusive=exclusive, dry_run=True, undefined=undefined)
    after = _doc(planned.policy)
    if after == _doc(before):
        result.update(policy=after or None, status="unchanged", applied_live=False)
        return result
    outcome = planned if check_mode else pm.put(name, pins, sched, exclusive=exclusive, undefined=undefined)
    after = _doc(outcome.policy)
    result.update(changed=True, diff=_diff(_doc(before), after, header), policy=after or None,
                  status=outcome.status.value, applied_live=outcome.status.value == "applied")
    if outcome.libvirt_error:
        result["warning"] = "not applied live: %s" % outcome.libvirt_error
    return result


def occupancy_task(pm, params, check_mode):
    """policyhook.libvirt.cpu_occupancy: CPUS are occupied by exactly DOMAINS
    (state=present) or by no one (state=absent)."""
    from policyhook.cpuset import CpuSet
    from policyhook.occupancy import occupied

    cpus = CpuSet.parse(params["cpus"])
    present = params.get("state", "present") == "present"
    names = params.get("domains") or []
    if present and not names:
        from policyhook.errors import invalid
        raise invalid("domains is required with state=present (state=absent frees the CPUs)")
    before = pm.host()
    if present and params.get("whole_cores"):
        cpus = cpus | pm.topology().whole_cores(cpus)
    if present:
        resolved = sorted(pm.context(text).name for text in names)
        after = occupied(before, cpus, resolved)
    else:
        resolved = None
        after = occupied(before, cpus, None)
    result = {"changed": False, "cpus": str(cpus), "domains": resolved,
              "occupancy": after.to_doc()["cpuoccupy"]}
    if after == before:
        return result
    planned = pm.occupy(cpus, resolved, dry_run=True)
    outcome = planned if check_mode else pm.occupy(cpus, resolved)
    doc = outcome.to_doc()
    result.update(changed=True, diff=_diff(before.to_doc()["cpuoccupy"], after.to_doc()["cpuoccupy"],
                                           pm.paths.host_file),
                  status=doc["status"], repinned=[r["domain"] for r in doc["repinned"]],
                  failures=doc["failures"])
    if doc["failures"]:
        result["failed"] = True
        result["msg"] = "CPU %s occupied, but libvirt did not re-pin %s; run 'policyctl apply --all'" % (
            cpus, ", ".join("%s (%s)" % (f["domain"], f["error"]) for f in doc["failures"]))
    return result


def run(module, task):
    """A module's whole run: `task(manager, params, check_mode)` on the managed host,
    policyhook's refusal as the task's failure in policyctl's words."""
    try:
        from policyhook.errors import PolicyError
    except ImportError:
        import traceback

        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("policyhook"), exception=traceback.format_exc())
    try:
        result = task(manager(module.params["root"], module.params["connect"]), module.params,
                      module.check_mode)
    except PolicyError as e:
        module.fail_json(msg=str(e), rc=e.code)
    if not module._diff:
        result.pop("diff", None)
    warning = result.pop("warning", None)
    if warning:
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)
