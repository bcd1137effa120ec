"""policyctl's entry point: parse, call the API, print. No policy logic here."""

import sys

from ..api import PolicyManager
from ..errors import INTERNAL, INVALID, LIBVIRT, REGISTRY, PolicyError, printable
from ..paths import Paths
from ..settings import load_settings
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
        outcome = getattr(e, "outcome", None)
        if outcome is not None:
            for line in outcome.lines():
                out.write(line + "\n")
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
    if cmd == "vcpupin":
        return report(pm.set_vcpupin(args.domain, args.vcpu, args.cpulist, dry), args, out, err)
    if cmd == "emulatorpin":
        return report(pm.set_emulatorpin(args.domain, args.cpulist, dry), args, out, err)
    if cmd == "schedweight":
        return report(pm.set_weight(args.domain, args.weight, dry), args, out, err)
    if cmd == "schedcap":
        return report(pm.set_cap(args.domain, args.cap, dry), args, out, err)
    if cmd == "unset":
        if args.vcpu is not None and args.setting != "vcpupin":
            raise PolicyError("a VCPU goes only with 'unset DOMAIN vcpupin VCPU'", INVALID)
        if args.setting == "vcpupin":
            outcome = pm.unset_vcpupin(args.domain, args.vcpu, dry)
        else:
            outcome = getattr(pm, "unset_" + args.setting)(args.domain, dry)
        return report(outcome, args, out, err)
    if cmd == "remove":
        return report(pm.remove(args.domain, dry), args, out, err)
    if cmd == "cpuoccupy":
        return cpuoccupy(pm, args, out, err)
    if cmd == "cpupolicy":
        doc = pm.report(args.domain)
        show.dump_json(doc, out) if args.json else show.policy_report(doc, out)
        warn(pm.warning, err)
        return 0
    if cmd == "list":
        rows = pm.list()
        show.dump_json(rows, out) if args.json else show.policy_list(rows, out)
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
        out.write(outcome.message() + "\n")
        if args.dry_run and outcome.plan is not None:
            out.write("plan: %s\n" % outcome.plan.describe())
        for step in outcome.steps:
            out.write("  %s\n" % step)
        for text in outcome.plan.unsupported if outcome.plan is not None else ():
            out.write("  unsupported: %s\n" % text)
    warn(outcome.warning, err)
    return 0


def cpuoccupy(pm, args, out, err):
    from ..occupancy import change

    if args.clear == bool(args.domains):
        raise PolicyError("give DOMAINS, or --clear to free the CPUs (see 'policyctl cpuoccupy "
                          "--help')", INVALID)
    outcome = change(pm, args.pcpus, None if args.clear else args.domains, args.dry_run)
    if args.json:
        show.dump_json(outcome.to_doc(), out)
    else:
        for line in outcome.lines():
            out.write(line + "\n")
    warn(outcome.warning, err)
    return 0


def apply(pm, args, out, err):
    if args.all == bool(args.domains):
        raise PolicyError("give DOMAIN names or --all (see 'policyctl apply --help')", INVALID)
    results = pm.apply(None if args.all else args.domains)
    failed = 0
    docs = []
    for name, steps, error in results:
        docs.append({"domain": name, "steps": steps, "error": error,
                     "unsupported": pm.unsupported.get(name, [])})
        if steps is not None:
            line = "%s: applied live%s" % (name, "" if steps else " (nothing to apply)")
        elif error == "not running":
            line = "%s: not running; applies at next start" % name
        else:
            failed += 1
            line = "%s: FAILED: %s" % (name, error)
        if not args.json:
            out.write(line + "\n")
            for step in steps or []:
                out.write("  %s\n" % step)
            for text in pm.unsupported.get(name, []):
                out.write("  unsupported: %s\n" % text)
    if args.json:
        show.dump_json(docs, out)
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
