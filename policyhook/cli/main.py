"""policyctl's entry point: parse, call the API, print. No policy logic here.

Each command imports what it uses, when it runs: `policyctl list` or `--version` should
start about as fast as `virsh list` (benchmarks/cli_latency.py), and libvirt, the
planner and jsonschema are most of what a Python process would load first otherwise.
tests/test_cli_imports.py holds each command to its share.
"""

import os
import sys

from ..errors import INTERNAL, INVALID, LIBVIRT, NOT_IN_FORCE, REGISTRY, PolicyError, printable


def main(argv=None, stdout=None, stderr=None, connect=None, environ=None, **adapters):
    """Run policyctl; returns the exit code. `connect(uri)` replaces libvirt.open,
    `environ` os.environ and `adapters` (lock, systemd, threads: session.Session) the registry
    lock, systemd and the vCPU threads in tests."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    if argv == ["--version"]:   # what scripts and packagers ask first: no parser to build
        from .. import __version__
        out.write("policyctl %s\n" % __version__)
        return 0
    try:
        args = parse(argv)
        return run(args, out, err, connect, os.environ if environ is None else environ, adapters)
    except PolicyError as e:
        if debug:
            import traceback
            traceback.print_exc(file=err)
        err.write("Error: %s\n" % printable(str(e)))  # one line, whatever it quotes
        return e.code
    except KeyboardInterrupt:
        err.write("Error: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`policyctl list | head`): stop quietly, as ls does, with
        # stdout on /dev/null so that the interpreter's flush at exit cannot fail either.
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell shows for ls in the same place
    except Exception as e:  # noqa: BLE001 - the last resort: one line, not a traceback
        if debug:
            raise
        err.write("Error: internal error: %s: %s (run with --debug for a traceback)\n"
                  % (type(e).__name__, printable(str(e))))
        return INTERNAL


def parse(argv):
    """argparse's namespace: from a parser of the one command asked for, else (no plain
    command word, or a usage error, whose words come from the whole parser) of all."""
    from .parser import build, command_word

    only = command_word(argv)
    if only is not None:
        try:
            return build(only).parse_args(argv)
        except PolicyError:
            pass
    return build().parse_args(argv)


def run(args, out, err, connect, environ, adapters=None):
    from ..paths import Paths
    from ..settings import load_settings
    from . import show

    adapters = adapters or {}
    paths = Paths(args.root)
    if args.command == "check":
        from . import checks
        return checks.check(paths, args, out, err, connect, environ)
    settings = load_settings(paths)
    if args.command == "list":
        return list_policies(paths, settings, args, out, err)
    from ..api import PolicyManager
    from ..tunables import SCHED_BY_KEY, SETTINGS, VCPUSCHED

    # virsh's order: -c, then LIBVIRT_DEFAULT_URI; then ours.
    uri = args.connect or environ.get("LIBVIRT_DEFAULT_URI") or settings.uri
    pm = PolicyManager(paths, uri=uri, settings=settings, connect=connect, offline=args.offline, **adapters)
    cmd = args.command
    dry = getattr(args, "dry_run", False)
    undefined = getattr(args, "undefined", False)
    if getattr(args, "auto", False) is True:   # vcpupin DOMAIN --auto
        if args.index is not None or args.cpulist is not None:
            raise PolicyError("vcpupin --auto takes DOMAIN alone: no VCPU or CPULIST (see "
                              "'policyctl vcpupin --help')", INVALID)
        return report(pm.pin_auto(args.domain, dry, undefined), args, out, err)
    if getattr(args, "pin", None):
        index = getattr(args, "index", None)
        if args.pin == "vcpu" and (index is None or args.cpulist is None):
            raise PolicyError("the following arguments are required: %s (see 'policyctl vcpupin --help')"
                              % ", ".join(m for m, v in (("VCPU", index), ("CPULIST", args.cpulist))
                                          if v is None), INVALID)
        return report(pm.set_pin(args.domain, args.pin, index, args.cpulist, dry, undefined), args, out, err)
    if getattr(args, "sched", None):
        return report(pm.set_sched(args.domain, args.sched, args.value, dry, undefined), args, out, err)
    if getattr(args, "vcpusched", None):
        return report(pm.set_vcpusched(args.domain, args.vcpus, args.policy, args.priority, dry, undefined),
                      args, out, err)
    if cmd == "unset":
        row = SETTINGS[args.setting]
        if args.setting == VCPUSCHED.key:
            return report(pm.unset_vcpusched(args.domain, args.index, dry), args, out, err)
        if args.index is not None and not getattr(row, "indexed", False):
            from ..tunables import PINS
            raise PolicyError("INDEX goes only with %s" % " or ".join(
                ["'unset DOMAIN %s %s'" % (r.key, r.index_name) for r in PINS if r.indexed]
                + ["'unset DOMAIN %s VCPUS'" % VCPUSCHED.key]), INVALID)
        if args.setting in SCHED_BY_KEY:
            outcome = pm.unset_sched(args.domain, args.setting, dry)
        else:
            outcome = pm.unset_pin(args.domain, row.kind, args.index, dry)
        return report(outcome, args, out, err)
    if cmd == "remove":
        return report(pm.remove(args.domain, dry), args, out, err)
    if cmd == "rename":
        return report(pm.rename(args.old, args.new, dry, undefined), args, out, err)
    if cmd == "rebind":
        return report(pm.rebind(args.domain, dry), args, out, err)
    if cmd == "cpuoccupy":
        return cpuoccupy(pm, args, out, err)
    if cmd == "cpupolicy":
        r = pm.report(args.domain)
        show.dump_json(r.to_doc(), out) if args.json else show.policy_report(r, out)
        warn(show.libvirt_warning(pm.libvirt_error, saved=False), err)
        return 0
    if cmd == "verify":
        return verify(pm, args, out, err)
    if cmd == "occupancy":
        doc = pm.host_map()
        show.dump_json(doc, out) if args.json else show.occupancy_map(doc, out)
        warn(show.libvirt_warning(pm.libvirt_error, saved=False), err)
        return 0
    if cmd == "apply":
        return apply(pm, args, out, err)
    if cmd == "watch":
        return watch(paths, settings, uri if args.connect or environ.get("LIBVIRT_DEFAULT_URI") else None,
                     connect, err)
    raise PolicyError("unknown command %r" % cmd, INVALID)  # argparse stops this first


def warn(message, err):
    if message:
        err.write("Warning: %s\n" % printable(message))


def report(outcome, args, out, err):
    from . import show

    if args.json:
        show.dump_json(outcome.to_doc(), out)
    else:
        show.outcome(outcome, out)
    warn(show.libvirt_warning(outcome.libvirt_error), err)
    warn(outcome.memory_error, err)    # [occupancy] memory = follow: libvirt's refusal, as it says it
    return 0


def list_policies(paths, settings, args, out, err):
    """`list` reads files only (PolicyManager.list without the manager): no libvirt, no
    planner."""
    from ..registry import Registry
    from . import show

    rows, problems = Registry(paths, settings.lock_timeout).listing()
    if args.json:
        from ..report import policy_row
        show.dump_json([policy_row(p, occ) for p, occ in rows], out)
    else:
        show.policy_list(rows, out)
    for problem in problems:
        err.write("Error: %s\n" % printable(problem))
    return REGISTRY if problems else 0


def cpuoccupy(pm, args, out, err):
    from . import show

    if args.pcpus is None:
        raise PolicyError("the following arguments are required: %s (see 'policyctl cpuoccupy --help')"
                          % ("DOMAINS" if args.auto is not None else "PCPUS"), INVALID)
    if args.auto is not None:
        # cpuoccupy --auto N DOMAINS: the one positional is DOMAINS.
        if args.domains is not None or args.clear or args.whole_cores:
            raise PolicyError("cpuoccupy --auto N takes DOMAINS alone: no PCPUS, --clear or --whole-cores "
                              "(see 'policyctl cpuoccupy --help')", INVALID)
        outcome = pm.occupy_auto(args.auto, args.pcpus, args.dry_run, args.undefined)
    elif args.clear == bool(args.domains):
        raise PolicyError("give DOMAINS, or --clear to free the CPUs (see 'policyctl cpuoccupy "
                          "--help')", INVALID)
    else:
        outcome = pm.occupy(args.pcpus, None if args.clear else args.domains, args.dry_run, args.undefined,
                            args.whole_cores)
    if args.json:
        show.dump_json(outcome.to_doc(), out)
    else:
        show.occupancy_outcome(outcome, out)
    warn(show.libvirt_warning(outcome.libvirt_error), err)
    for line in show.sibling_warnings(outcome):
        warn(line, err)
    host_isolation(outcome.isolation, args, out, err)
    if outcome.failures:
        err.write("Error: cpuoccupy saved, but %d running domain%s could not be re-pinned; "
                  "run 'policyctl apply --all' to finish\n"
                  % (len(outcome.failures), "" if len(outcome.failures) == 1 else "s"))
        return LIBVIRT
    return 0


def apply(pm, args, out, err):
    from ..results import Status
    from . import show

    if args.all == bool(args.domains):
        raise PolicyError("give DOMAIN names or --all (see 'policyctl apply --help')", INVALID)
    results = pm.apply(None if args.all else args.domains, args.config)
    if args.json:
        show.dump_json([r.to_doc() for r in results], out)
    else:
        show.apply_results(results, out, pm.settings.persistent)
    if args.all and not args.config:
        host_isolation(pm.update_host(), args, out, err)
    failed = sum(1 for r in results if r.status is Status.FAILED)
    if failed:
        err.write("Error: %d domain%s could not be brought in line with the policy\n"
                  % (failed, "" if failed == 1 else "s"))
        return LIBVIRT
    return 0


def host_isolation(result, args, out, err):
    """Host isolation's part of cpuoccupy and apply --all: a line, or a warning when it
    could do nothing (no systemd) or systemctl refused."""
    from ..describe import isolation_line as describe

    text = describe(result)
    if text is None or args.json:
        return
    quiet = result.quiet
    if result.skipped or result.problems or (quiet and (quiet.problems or quiet.skipped or quiet.drift)):
        warn(text, err)
    else:
        out.write(text + "\n")


def verify(pm, args, out, err):
    from ..quietcpus import host_drift
    from . import show

    results = pm.verify(args.domains or None)
    # Quiet CPUs ([occupancy] housekeeping) belong to the host: checked with every domain.
    quiet, names = (host_drift(pm) or ([], {})) if not args.domains else ([], {})
    if args.json:
        show.dump_json([r.to_doc() for r in results] + show.quiet_drift_docs(quiet, names), out)
    else:
        show.verified(results, out, bool(quiet))
        show.quiet_drift(quiet, names, out)
    if quiet:
        err.write("Error: the host's interrupts or kernel work are not kept as [occupancy] housekeeping "
                  "says (%d mask%s)\n" % (len(quiet), "" if len(quiet) == 1 else "s"))
    bad = [r for r in results if not r.ok]
    if quiet and not bad:
        return NOT_IN_FORCE
    if bad:
        err.write("Error: %d of %d domain%s not in force: %s\n"
                  % (len(bad), len(results), "" if len(results) == 1 else "s",
                     ", ".join(r.domain for r in bad)))
        return NOT_IN_FORCE
    return 0


def watch(paths, settings, uri, connect, err):
    """policyctl watch: every configured connection ([libvirt] uri, lxc_uri, libxl_uri),
    or the one -c (or $LIBVIRT_DEFAULT_URI) names."""
    from ..api import PolicyManager
    from ..watch import run

    uris = [uri] if uri else list(dict.fromkeys([settings.uri, settings.lxc_uri, settings.libxl_uri]))

    def open_manager(u):
        pm = PolicyManager(paths, uri=u, settings=settings, connect=connect)
        if pm.connection() is None:
            e = PolicyError(pm.libvirt_error, LIBVIRT)
            e.unreachable = True
            raise e
        return pm

    tty = hasattr(err, "isatty") and err.isatty()

    def say(message, level="info"):
        from ..log import log
        log(paths, "watch: " + message, level)
        if tty:
            err.write("%s\n" % printable(message))
    return run(paths, settings, uris, open_manager, say)
