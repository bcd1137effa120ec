"""policyctl's argparse parser read as data: the one source of its man page and its
shell completion. Standard library only; imports policyhook from this source tree."""

import argparse
import os
import sys

SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def use_source_tree(srcdir=SRCDIR):
    """Import policyhook from srcdir, not from whatever is installed."""
    if srcdir not in sys.path:
        sys.path.insert(0, srcdir)


class Option:
    """An optional argument: flags such as ['-c', '--connect'], its METAVAR or None."""

    def __init__(self, flags, metavar, help_text, choices):
        self.flags = flags
        self.metavar = metavar
        self.help = help_text
        self.choices = choices

    @property
    def takes_value(self):
        return self.metavar is not None


class Positional:
    def __init__(self, metavar, help_text, nargs, choices):
        self.metavar = metavar
        self.help = help_text
        self.nargs = nargs
        self.choices = choices

    @property
    def repeats(self):
        return self.nargs in ("*", "+")

    @property
    def optional(self):
        return self.nargs in ("?", "*")


class Command:
    def __init__(self, name, help_text, parser):
        self.name = name
        self.help = help_text
        self.description = parser.description or help_text
        self.options = options(parser)
        self.positionals = positionals(parser)


def _help(action, prog):
    """The help text as argparse prints it (with its %(...)s expanded)."""
    if action.help is None or action.help == argparse.SUPPRESS:
        return action.help
    params = dict(vars(action), prog=prog)
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return action.help % params


def _metavar(action):
    if action.nargs == 0:
        return None
    if action.metavar is not None:
        return action.metavar
    return action.dest.upper() if action.option_strings else action.dest


def options(parser):
    found = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        found.append(Option(list(action.option_strings), _metavar(action),
                            _help(action, parser.prog), action.choices))
    return found


def positionals(parser):
    found = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        found.append(Positional(_metavar(action), _help(action, parser.prog), action.nargs,
                                list(action.choices) if action.choices else None))
    return found


def commands(parser):
    """The subcommands in the order they were defined."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [Command(choice.dest, choice.help, action.choices[choice.dest])
                    for choice in action._choices_actions]
    return []
