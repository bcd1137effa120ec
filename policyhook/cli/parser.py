"""policyctl's arguments. Also the source of the policyctl(8) man page."""

import argparse
import os
import sys

from .. import __version__
from ..errors import EXIT_CODES, INVALID, PolicyError, printable
from ..tunables import PINS, SCHED, VCPUSCHED

DESCRIPTION = """\
Record runtime CPU policy for libvirt domains, running or not: vCPU, emulator and
IOThread pins, scheduler weight and cap, and physical CPUs owned exclusively by a set of
domains. A change is saved in /etc/policyhook; when the domain is running it is
applied live at once, otherwise libvirt's hook puts it in force at the next start.

A DOMAIN is resolved as virsh resolves it: an Id, then a UUID, then a name; the policy
is stored under the domain's name and records its UUID. A domain libvirt does not know
is refused (with the closest name libvirt knows) unless --undefined is given, to record
a policy for a domain still to be defined; --offline accepts any name and asks libvirt
nothing. A policy recorded for one UUID is never applied to another domain that later
takes its name: the hook logs it, cpupolicy, verify and check show it, and 'policyctl
rebind DOMAIN' or 'policyctl remove DOMAIN' settles it. After 'virsh domrename',
'policyctl rename OLD NEW' moves the policy and its occupancy memberships.

The connection is -c URI, else $LIBVIRT_DEFAULT_URI, else [libvirt] uri in
policyhook.conf, else qemu:///system. A wrong URI, or a driver libvirt does not have, is
an error and nothing is saved; a daemon that does not answer is a warning, and the
change is saved to apply at the next start."""

EPILOG = """\
exit status:
%s

examples:
  policyctl vcpupin vm1 0 0-3,^2      pin vCPU 0 of vm1 to CPUs 0,1,3
  policyctl iothreadpin vm1 1 4       pin IOThread 1 of vm1 to CPU 4
  policyctl schedweight vm1 512       twice the default CPU weight (256)
  policyctl schedcap vm1 50           at most half of one physical CPU
  policyctl cpuoccupy 1 vm1,vm2       only vm1 and vm2 may run on CPU 1
  policyctl cpuoccupy --auto 2 vm1    choose 2 CPUs (a whole core, one node) for vm1 alone
  policyctl vcpupin vm1 --auto        pin vm1's vCPUs 1:1 to the CPUs it occupies
  policyctl cpupolicy vm1             stored, effective and live policy
  policyctl verify --json             is every policy in force? (exit 7 if not)
  policyctl check                     validate every policy file
""" % "\n".join("  %d  %s" % kv for kv in sorted(EXIT_CODES.items()))


_THREADS = {"vcpu": "a vCPU of a domain", "emulator": "a domain's emulator threads",
            "iothread": "an IOThread of a domain"}
_INDEX_HELP = {"vcpu": "vCPU number, from 0",
               "iothread": "IOThread ID, from 1 (virsh iothreadinfo lists them)"}


# Two forms of one command: with CPUs given, or chosen (--auto).
_AUTO_USAGE = ("policyctl %s [-h] [--json] [--dry-run] [--undefined] %s\n"
               "       policyctl %s [-h] [--json] [--dry-run] [--undefined] %s")


def _columns():
    """shutil.get_terminal_size().columns, without importing shutil (and with it zlib,
    bz2 and lzma) for every policyctl run: argparse sizes a formatter for each argument."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and an INVALID PolicyError."""

    def error(self, message):
        # argparse quotes the arguments as given: escape what would break the line.
        raise PolicyError("%s (see '%s --help')" % (printable(message), self.prog), INVALID)

    def _get_formatter(self):
        return self.formatter_class(prog=self.prog, width=_columns() - 2)

    def _get_values(self, action, arg_strings):
        # argparse drops a '--' from a positional's strings even after the first '--'
        # (`unset vm1 -- --`), and then gives a one-value argument an empty list.
        value = super()._get_values(action, arg_strings)
        if action.nargs is None and isinstance(value, list) and not value:
            self.error("argument %s: expected one argument" % argparse._get_action_name(action))
        return value


# The global options that take a value (argparse also takes any unambiguous prefix of
# the long ones), and --help.
_VALUED = ("-c", "--connect", "--root")


def command_word(argv):
    """The command argparse will find in `argv`, or None when that is not plain (no
    command, --help before it, `--`): build(only=) then builds every command."""
    valued = False
    for arg in argv:
        if valued:
            valued = False
        elif arg == "--" or (arg.startswith("--h") and "--help".startswith(arg)) or arg == "-h":
            return None
        elif arg in _VALUED or (len(arg) > 2 and "=" not in arg
                                and any(o.startswith(arg) for o in _VALUED[1:])):
            valued = True
        elif not arg.startswith("-"):
            return arg
    return None


class _Skipped:
    """A command build(only=...) was not asked for: its arguments are not built."""

    def add_argument(self, *args, **kwargs):
        pass

    def set_defaults(self, **kwargs):
        pass


def build(only=None):
    """policyctl's parser; with `only` (a command word), the arguments of that command
    alone (every other command is left out: a quick command spends no time building
    the rest). tools/mkman.py and tools/mkcompletion.py read the whole one."""
    parser = Parser(prog="policyctl", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="policyctl " + __version__)
    parser.add_argument("-c", "--connect", metavar="URI",
                        help="libvirt connection URI (default: $LIBVIRT_DEFAULT_URI, else "
                             "[libvirt] uri in policyhook.conf, else qemu:///system)")
    parser.add_argument("--root", metavar="DIR", default="/",
                        help="act on DIR/etc/policyhook and DIR/run/policyhook (default: /)")
    parser.add_argument("--offline", action="store_true",
                        help="do not contact libvirt: edit the files only")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")

    # Options that several commands share, each added to the command itself: argparse's
    # parents= would build a parser for each of them at every run (benchmarks/cli_latency.py).
    common = ("--json", {"action": "store_true", "help": "print JSON instead of text"})
    change = ("--dry-run", {"action": "store_true",
                            "help": "validate and show the plan; save and apply nothing"})
    ahead = ("--undefined", {"action": "store_true",
                             "help": "record a policy for a domain libvirt does not know yet"})

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def command(name, help_text, parents=(common,), details=None, **kw):
        if only is not None and name != only:
            return _Skipped()
        text = help_text[0].upper() + help_text[1:] + "." + (" " + details if details else "")
        p = sub.add_parser(name, help=help_text, description=text, **kw)
        for flag, options in parents:
            p.add_argument(flag, **options)
        return p

    for row in PINS:
        p = command(row.command, "pin %s to physical CPUs" % _THREADS[row.kind], (common, change, ahead),
                    **({"usage": _AUTO_USAGE % ("vcpupin", "DOMAIN VCPU CPULIST", "vcpupin", "DOMAIN --auto")}
                       if row.kind == "vcpu" else {}))
        p.set_defaults(pin=row.kind)
        p.add_argument("domain", metavar="DOMAIN", help="domain name")
        auto = row.kind == "vcpu"   # vcpupin DOMAIN --auto: VCPU and CPULIST left out
        if row.indexed:
            p.add_argument("index", metavar=row.index_name, help=_INDEX_HELP[row.kind],
                           nargs="?" if auto else None)
        p.add_argument("cpulist", metavar="CPULIST", nargs="?" if auto else None,
                       help="physical CPUs in virsh syntax, e.g. 0-3,^2,8")
        if auto:
            p.add_argument("--auto", action="store_true",
                           help="instead of VCPU CPULIST: each vCPU to a CPU of its own among those "
                                "the domain occupies (cpuoccupy), thread pairs of a guest with "
                                "threads='2' on host sibling pairs; the emulator to the CPUs of the "
                                "same NUMA node outside every occupancy set")

    for row in SCHED:
        p = command(row.command, row.help, (common, change, ahead))
        p.set_defaults(sched=row.key)
        p.add_argument("domain", metavar="DOMAIN", help="domain name")
        p.add_argument("value", metavar=row.metavar, help=row.arg_help)

    row = VCPUSCHED
    p = command(row.command, row.help, (common, change, ahead),
                details="fifo and rr are real-time (SCHED_FIFO, SCHED_RR) with a PRIORITY; other "
                        "is the kernel's default, where every vCPU starts. A real-time vCPU must "
                        "be pinned inside CPUs its domain occupies (vcpupin, cpuoccupy): on a "
                        "shared CPU it can starve the host. libvirt sets the policy at start from "
                        "<vcpusched> but has no live call: on a running domain policyhook sets it "
                        "on the vCPU threads, all of them or none.")
    p.set_defaults(vcpusched=True)
    p.add_argument("domain", metavar="DOMAIN", help="domain name")
    p.add_argument("vcpus", metavar="VCPUS", help="vCPU numbers, e.g. 0, 0-1 or 0,2")
    p.add_argument("policy", metavar="POLICY", help="fifo, rr or other")
    p.add_argument("priority", metavar="PRIORITY", nargs="?",
                   help="%d-%d, with fifo and rr (higher runs first)" % (row.lo, row.hi))

    p = command("cpuoccupy", "let only the given domains run on physical CPUs",
                (common, change, ahead),
                usage=_AUTO_USAGE % ("cpuoccupy", "[--clear] [--whole-cores] PCPUS [DOMAINS]",
                                     "cpuoccupy", "--auto N DOMAINS"))
    # Optional to argparse: with --auto the one argument is DOMAINS (cli/main.py says which is missing).
    p.add_argument("pcpus", metavar="PCPUS", nargs="?", help="physical CPUs, e.g. 1 or 2-3")
    p.add_argument("domains", metavar="DOMAINS", nargs="?",
                   help="comma-separated domain names, e.g. vm1,vm2")
    p.add_argument("--clear", action="store_true", help="free PCPUS: any domain may run there")
    p.add_argument("--whole-cores", action="store_true",
                   help="extend PCPUS to whole cores: every hyperthread sibling of each CPU too")
    p.add_argument("--auto", metavar="N",
                   help="choose N CPUs instead of PCPUS ('cpuoccupy --auto N DOMAINS'): never one "
                        "in [occupancy] reserved or already occupied; whole cores where the host "
                        "has SMT; one NUMA node (the one <numatune> binds the domains' memory to, "
                        "else the one with the most free whole cores); one L3 cache where the node "
                        "has several; CPUs no running domain is pinned to first. Exit 3 when "
                        "nothing fits")

    p = command("unset", "remove one setting from a domain's policy", (common, change))
    p.add_argument("domain", metavar="DOMAIN", help="domain name")
    keys = [row.key for row in PINS + SCHED] + [VCPUSCHED.key]
    p.add_argument("setting", metavar="SETTING", choices=keys,
                   help="%s or %s" % (", ".join(keys[:-1]), keys[-1]))
    indexed = [row for row in PINS if row.indexed]
    p.add_argument("index", metavar="INDEX", nargs="?",
                   help="with %s: the %s whose pin goes; with %s: the VCPUS whose policy goes "
                        "(default: all)"
                   % (" or ".join(r.key for r in indexed), " or ".join(r.index_word for r in indexed),
                      VCPUSCHED.key))

    p = command("remove", "remove a domain's whole policy", (common, change))
    p.add_argument("domain", metavar="DOMAIN", help="domain name")

    p = command("rename", "move a policy to a domain's new name after virsh domrename",
                (common, change, ahead),
                details="Its occupancy memberships and runtime state move with it. NEW must be "
                        "the same domain (the UUID the policy recorded) and have no policy yet.")
    p.add_argument("old", metavar="OLD", help="the name the policy is stored under")
    p.add_argument("new", metavar="NEW", help="the domain's new name")

    p = command("rebind", "keep a policy for the domain now defined under its name",
                (common, change),
                details="A policy records the UUID of its domain and is not applied to another "
                        "domain that takes the name; rebind records the UUID of the domain "
                        "libvirt now has under the name, and applies the policy if it runs.")
    p.add_argument("domain", metavar="DOMAIN", help="domain name")

    p = command("cpupolicy", "show a domain's stored, effective and live policy")
    p.add_argument("domain", metavar="DOMAIN", help="domain name")

    p = command("verify", "check that the policies are in force on the running domains",
                details="Compares the live values of every running domain with a policy (or of "
                        "the DOMAINs named) with its effective plan. Exit status 0 when all are "
                        "in force, 7 when any is not (drift, a conflict, a policy recorded for "
                        "another UUID); offline vCPUs are not drift. Without DOMAINs, also the "
                        "host's quiet CPUs ([occupancy] housekeeping): an IRQ back on an occupied "
                        "CPU, a workqueue mask changed, a mask not given back (exit 7 too). For "
                        "monitoring: --json.")
    p.add_argument("domains", metavar="DOMAIN", nargs="*", help="domains to verify (default: all)")

    command("list", "list the domains that have a policy",
            details="A policy file that cannot be read is named on stderr and the exit status "
                    "is 4; every other policy is still listed.")
    command("occupancy", "show which domains occupy which physical CPUs",
            details="One CPU a row, as lscpu -e draws it, with the domains occupying it and the "
                    "running domains pinned there; then the shared cores, the NUMA nodes, and with "
                    "[occupancy] housekeeping the kernel-managed IRQs that stay on each occupied CPU.")
    command("check", "validate every policy file and the settings; report each problem",
            details="One line per problem of every file and of policyhook.conf; a policy "
                    "recorded for another UUID than the domain libvirt has under its name; a "
                    "warning when SELinux confines the hook (virt_hooks_unconfined off).")

    command("watch", "keep the policies in force without the hook, until stopped",
            parents=(),
            details="Runs in the foreground (policyhook-watch.service runs it under systemd). "
                    "Watches every configured connection ([libvirt] uri, lxc_uri, libxl_uri; or "
                    "-c URI) for domains that start and for pins, weight or cap that change: a "
                    "policy no hook put in force is applied, a drift is reported or repaired as "
                    "[watch] on_drift says, every running domain is reconciled every [watch] "
                    "interval seconds, and a lost connection is tried again. Logs to the journal "
                    "and policyhook's log; [watch] metrics_file for node_exporter. SIGTERM ends it.")

    p = command("apply", "put the stored policy in force on running domains now",
                details="With --config, into the persistent definitions of defined domains "
                        "instead: in persistent mode ([libvirt] persistent = yes) each definition "
                        "then holds its policy, for domains defined before the mode was turned "
                        "on; otherwise each gets back what policyhook wrote there.")
    p.add_argument("domains", metavar="DOMAIN", nargs="*", help="domain names")
    p.add_argument("--all", action="store_true", help="every running domain (with --config: every "
                   "defined domain)")
    p.add_argument("--config", action="store_true", help="the persistent definitions, not the running "
                   "domains")
    if only is not None and only not in sub.choices:
        return build()   # no such command: argparse's error lists them all
    return parser
