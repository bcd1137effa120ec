"""`policyctl check`: every problem of every policy file and of the settings, one line
each, and what keeps the hook from doing its work (SELinux confinement, a policy bound to
another domain of the same name)."""

import os

from ..errors import REGISTRY, PolicyError
from ..registry import Registry
from ..settings import load_settings
from . import show


def selinux_warnings(paths):
    """libvirt runs hooks confined unless virt_hooks_unconfined is on; confined, the hook
    may be denied its state, its log and starting the applier."""
    if not os.path.exists(os.path.join(paths.selinux, "enforce")):
        return []
    try:
        with open(os.path.join(paths.selinux, "booleans", "virt_hooks_unconfined")) as f:
            value = f.read().split()
    except OSError:
        return []  # a policy without the boolean: nothing we can tell
    if value[:1] == ["1"]:
        return []
    return ["SELinux is enabled and the boolean virt_hooks_unconfined is off: libvirt runs the hook "
            "confined and the applier may be denied, so policies may not be put in force at start "
            "(setsebool -P virt_hooks_unconfined on)"]


def uuid_problems(paths, settings, uri, connect):
    """A policy recorded for a UUID other than the one of the domain libvirt now has under
    its name. libvirt not reachable: nothing to say (check is about files first)."""
    try:
        if connect is None:
            from .. import virt
            connect = virt.connect
        conn = connect(uri)
    except PolicyError:
        return []
    from .. import virt
    from ..describe import elsewhere_line

    found = []
    for policy in Registry(paths).readable()[0]:
        if not policy.uuid:
            continue
        dom = virt.lookup(conn, policy.domain)
        uuid = dom.UUIDString() if dom is not None else None
        if policy.bound_elsewhere(uuid):
            found.append("%s: %s" % (paths.domain_file(policy.domain),
                                     elsewhere_line(policy.domain, policy.uuid, uuid)))
    return found


def check(paths, args, out, err, connect, environ):
    problems, warnings = [], []
    settings = None
    if not os.path.lexists(paths.etc):
        problems.append("%s: does not exist (nothing is installed under %s; see --root)"
                        % (paths.etc, paths.root))
    else:
        settings = load_settings(paths, problems)
        problems += Registry(paths).check()
    warnings += selinux_warnings(paths)
    if settings is not None and not args.offline:
        uri = args.connect or environ.get("LIBVIRT_DEFAULT_URI") or settings.uri
        problems += uuid_problems(paths, settings, uri, connect)
    if args.json:
        show.dump_json({"ok": not problems, "problems": problems, "warnings": warnings}, out)
    else:
        for p in problems:
            out.write(p + "\n")
        for w in warnings:
            out.write("warning: %s\n" % w)
        if not problems:
            out.write("%s: the registry is valid\n" % paths.etc)
    return REGISTRY if problems else 0
