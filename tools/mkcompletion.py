#!/usr/bin/env python3
"""Write policyctl's bash completion: the template with what policyctl's argument parser
accepts (commands, options, what each positional argument is) filled in.

    tools/mkcompletion.py TEMPLATE OUTPUT
"""

import os
import sys

import argspec

MARK = "# @SPEC@\n"


def kind(pos):
    """What a positional argument completes to, in the template's terms."""
    if pos.choices:
        word = "words:" + ",".join(map(str, pos.choices))
    elif pos.metavar == "DOMAIN":
        word = "domain"
    elif pos.metavar == "DOMAINS":
        word = "domains"        # comma-separated names
    else:
        word = "-"              # nothing to offer: CPU lists, numbers
    return word + ("*" if pos.repeats else "")


def case(name, opts, positionals):
    flags = [f for o in opts for f in o.flags]
    valued = [f for o in opts if o.takes_value for f in o.flags]
    args = [kind(p) for p in positionals]
    for word in flags + valued + args:
        if "'" in word or " " in word:
            raise ValueError("cannot put %r in the completion" % word)
    return "        %s) opts='%s'; valued='%s'; args='%s' ;;" % (
        '""' if name is None else name, " ".join(flags), " ".join(valued), " ".join(args))


def spec():
    argspec.use_source_tree()
    from policyhook.cli.parser import build

    parser = build()
    commands = argspec.commands(parser)
    lines = ["# Generated from policyhook.cli.parser by tools/mkcompletion.py.",
             "_policyctl_commands='%s'" % " ".join(c.name for c in commands),
             "",
             "# _policyctl_spec COMMAND (\"\" for the global options) sets opts, valued (the",
             "# options that take a value) and args (what each positional argument is:",
             "# domain, domains, words:A,B or -; a trailing * repeats it); 1 if unknown.",
             "_policyctl_spec()",
             "{",
             "    case $1 in",
             case(None, argspec.options(parser), [])]
    lines += [case(c.name, c.options, c.positionals) for c in commands]
    lines += ["        *) return 1 ;;",
              "    esac",
              "}"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.stderr.write("usage: tools/mkcompletion.py TEMPLATE OUTPUT\n")
        return 2
    template, output = argv
    with open(template, encoding="utf-8") as f:
        text = f.read()
    if text.count(MARK) != 1:
        sys.stderr.write("mkcompletion: %s: needs exactly one line '%s'\n" % (template, MARK.strip()))
        return 1
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text.replace(MARK, spec()))
    os.replace(tmp, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
