"""Where policyhook keeps its files, under an optional root (as `rpm --root` does)."""

import os

from .names import check_name


class Paths:
    def __init__(self, root="/"):
        self.root = root or "/"
        join = os.path.join
        self.etc = join(self.root, "etc", "policyhook")
        self.domains = join(self.etc, "domains")
        self.host_file = join(self.etc, "host.json")
        self.conf = join(self.etc, "policyhook.conf")
        self.run = join(self.root, "run", "policyhook")
        self.lock = join(self.run, "registry.lock")
        self.state = join(self.run, "state")
        self.log = join(self.root, "var", "log", "policyhook", "policyhook.log")
        self.selinux = join(self.root, "sys", "fs", "selinux")
        self.sysfs = join(self.root, "sys", "devices", "system")
        self.lib = join(self.root, "var", "lib", "policyhook")
        self.originals = join(self.lib, "originals")

    @classmethod
    def from_env(cls, environ=None):
        environ = os.environ if environ is None else environ
        return cls(environ.get("POLICYHOOK_ROOT") or "/")

    def host_sysfs(self):
        """This machine's /sys/devices/system, or the tree under the root when it has one
        (a host prepared elsewhere, tests)."""
        return self.sysfs if os.path.isdir(self.sysfs) else "/sys/devices/system"

    def domain_file(self, name):
        # check_name refuses '/', a leading '.', NUL and control characters, so the
        # joined path cannot leave the domains directory.
        return os.path.join(self.domains, check_name(name) + ".json")

    def originals_file(self, name):
        return os.path.join(self.originals, check_name(name) + ".json")

    def state_file(self, name):
        return os.path.join(self.state, check_name(name) + ".json")
