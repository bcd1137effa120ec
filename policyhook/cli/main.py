"""policyctl's entry point: parse, call the API, print. No policy logic here."""

import sys

from ..api import PolicyManager
from ..errors import INTERNAL, INVALID, LIBVIRT, REGISTRY, PolicyError, printable
from ..paths import Paths
from ..report import policy_row
from ..results import Status
from ..settings import load_settings
from ..tunables import PINS, SCHED_BY_KEY, SETTINGS
from . import show
from .parser import build


def main(argv=None, stdout=None, stderr=None, connect=None):
    """Run policyctl; returns the exit code. `connect(uri)` replaces libvirt.open in tests."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build().parse_args(argv)
        return run(args, out, err, connect)
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
            import os
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell shows for ls in the same place
    except Exception as e:  # noqa: BLE001 - the last resort: one line, not a traceback
        if debug:
            raise
        err.write("Error: internal error: %s: %s (run with --debug for a traceback)\n"
                  % (type(e).__name__, printable(str(e))))
        return INTERNAL


def run(args, out, err, connect):
    paths = Paths(args.root)
    if args.command == "check":
        return check(paths, args, out, err)
    settings = load_settings(paths)
    pm = PolicyManager(paths, uri=args.connect, settings=settings, connect=connect,
                       offline=args.offline)
    cmd = args.command
    dry = getattr(args, "dry_run", False)
    if getattr(args, "pin", None):
        index = getattr(args, "index", None)
        return report(pm.set_pin(args.domain, args.pin, index, args.cpulist, dry), args, out, err)
    if getattr(args, "sched", None):
        return report(pm.set_sched(args.domain, args.sched, args.value, dry), args, out, err)
    if cmd == "unset":
        row = SETTINGS[args.setting]
        if args.index is not None and not getattr(row, "indexed", False):
            raise PolicyError("INDEX goes only with %s" % " or ".join(
                "'unset DOMAIN %s %s'" % (r.key, r.index_name) for r in PINS if r.indexed), INVALID)
        if args.setting in SCHED_BY_KEY:
            outcome = pm.unset_sched(args.domain, args.setting, dry)
        else:
            outcome = pm.unset_pin(args.domain, row.kind, args.index, dry)
        return report(outcome, args, out, err)
    if cmd == "remove":
        return report(pm.remove(args.domain, dry), args, out, err)
    if cmd == "cpuoccupy":
        return cpuoccupy(pm, args, out, err)
    if cmd == "cpupolicy":
        doc = pm.report(args.domain)
        show.dump_json(doc.to_doc(), out) if args.json else show.policy_report(doc, out)
        warn(show.libvirt_warning(pm.libvirt_error, saved=False), err)
        return 0
    if cmd == "list":
        rows = pm.list()
        if args.json:
            show.dump_json([policy_row(p, occ) for p, occ in rows], out)
        else:
            show.policy_list(rows, out)
        return 0
    if cmd == "occupancy":
        host = pm.host()
        show.dump_json(host.to_doc()["cpuoccupy"], out) if args.json else show.occupancy(host, out)
        return 0
    if cmd == "apply":
        return apply(pm, args, out, err)
    raise PolicyError("unknown command %r" % cmd, INVALID)  # argparse stops this first


def warn(message, err):
    if message:
        err.write("Warning: %s\n" % printable(message))


def report(outcome, args, out, err):
    if args.json:
        show.dump_json(outcome.to_doc(), out)
    else:
        show.outcome(outcome, out)
    warn(show.libvirt_warning(outcome.libvirt_error), err)
    return 0


def cpuoccupy(pm, args, out, err):
    if args.clear == bool(args.domains):
        raise PolicyError("give DOMAINS, or --clear to free the CPUs (see 'policyctl cpuoccupy "
                          "--help')", INVALID)
    outcome = pm.occupy(args.pcpus, None if args.clear else args.domains, args.dry_run)
    if args.json:
        show.dump_json(outcome.to_doc(), out)
    else:
        show.occupancy_outcome(outcome, out)
    warn(show.libvirt_warning(outcome.libvirt_error), err)
    if outcome.failures:
        err.write("Error: cpuoccupy saved, but %d running domain%s could not be re-pinned; "
                  "run 'policyctl apply --all' to finish\n"
                  % (len(outcome.failures), "" if len(outcome.failures) == 1 else "s"))
        return LIBVIRT
    return 0


def apply(pm, args, out, err):
    if args.all == bool(args.domains):
        raise PolicyError("give DOMAIN names or --all (see 'policyctl apply --help')", INVALID)
    results = pm.apply(None if args.all else args.domains)
    if args.json:
        show.dump_json([r.to_doc() for r in results], out)
    else:
        show.apply_results(results, out)
    failed = sum(1 for r in results if r.status is Status.FAILED)
    if failed:
        err.write("Error: %d domain%s could not be brought in line with the policy\n"
                  % (failed, "" if failed == 1 else "s"))
        return LIBVIRT
    return 0


def check(paths, args, out, err):
    from ..registry import Registry

    problems = []
    try:
        load_settings(paths)
    except PolicyError as e:
        problems.append(str(e))
    problems += Registry(paths).check()
    if args.json:
        show.dump_json({"ok": not problems, "problems": problems}, out)
    elif problems:
        for p in problems:
            out.write(p + "\n")
    else:
        out.write("%s: the registry is valid\n" % paths.etc)
    return REGISTRY if problems else 0
