"""The one error type. Its code is the process exit code."""

OK = 0
INTERNAL = 1    # a bug, or an unexpected failure of our own
INVALID = 2     # bad input: arguments, values, names (argparse uses 2 as well)
CONFLICT = 3    # the policy cannot be satisfied (host CPUs, vCPU count, occupancy)
REGISTRY = 4    # a policy or settings file is corrupt, unsafe or cannot be written
LOCKED = 5      # the registry lock was not obtained in time
LIBVIRT = 6     # libvirt refused or could not be reached where it was required
NOT_IN_FORCE = 7  # verify: a policy is not in force on a running domain

EXIT_CODES = {
    OK: "success",
    INTERNAL: "internal error",
    INVALID: "invalid argument or value",
    CONFLICT: "policy conflicts with the host, the domain or CPU occupancy",
    REGISTRY: "a policy file or policyhook.conf is corrupt, unsafe or could not be written",
    LOCKED: "the registry is locked by another process",
    LIBVIRT: "libvirt refused the change, or the connection URI is wrong",
    NOT_IN_FORCE: "verify: a policy is not in force on a running domain (drift, conflict, other UUID)",
}


class PolicyError(Exception):
    """An error meant for a human: one line, and an exit code."""

    def __init__(self, message, code=INVALID):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self):
        return self.message


class StepFailed(PolicyError):
    """libvirt refused one setting of a plan (virt.apply_plan): the plan, the setting (a
    pin's (kind, index), or None for the scheduler parameters) and libvirt's words. The
    caller names the step (describe.step_failed)."""

    def __init__(self, plan, step, detail):
        super().__init__("%s: %s" % (plan.domain, detail), LIBVIRT)
        self.plan = plan
        self.step = step
        self.detail = detail


def quote(value, limit=40):
    """`value` for a one-line message: repr() (so a newline shows as \\n), cut to `limit`."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def printable(text):
    """`text` with its control and other unprintable characters escaped as repr() does,
    for words that come from elsewhere (argv, file keys, another process): one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def invalid(message):
    return PolicyError(message, INVALID)


def conflict(message):
    return PolicyError(message, CONFLICT)


def registry_error(path, message):
    # Like firewalld: the file comes first, so the admin knows what to open.
    return PolicyError("%s: %s" % (path, message), REGISTRY)


def write_error(path, what, error):
    """REGISTRY for an OSError while changing `path` ("cannot be written"): as a user who is
    not root and was denied, one line saying that root is needed, naming the file."""
    import errno
    import os

    if error.errno in (errno.EACCES, errno.EPERM) and os.geteuid() != 0:
        return PolicyError("changing the policy needs root (%s %s: %s)"
                           % (path, what, error.strerror), REGISTRY)
    return registry_error(path, "%s: %s" % (what, error.strerror))
