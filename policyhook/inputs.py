"""Values as admins type them (policyctl's arguments, the API's strings), checked."""

from .errors import invalid, quote
from .names import check_name


def parse_int(text, what, lo, hi):
    """An integer lo..hi from an int or a decimal string; INVALID saying which `what`."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.isascii() and text.strip().isdigit():
        digits = text.strip().lstrip("0") or "0"
        if len(digits) > len(str(hi)):  # out of range; and int() refuses over 4300 digits
            raise invalid("invalid %s %s: must be %d..%d"
                          % (what, digits if len(digits) <= 20 else digits[:17] + "...", lo, hi))
        value = int(digits)
    else:
        raise invalid("invalid %s %s: not a whole number" % (what, quote(text)))
    if not lo <= value <= hi:
        raise invalid("invalid %s %d: must be %d..%d" % (what, value, lo, hi))
    return value


def parse_domains(text):
    """Domain names from 'vm1,vm2' (or a list): each safe, none twice."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    if not names or any(not n for n in names):
        raise invalid("invalid domain list %s: empty name" % quote(text))
    for name in names:
        check_name(name)
    if len(set(names)) != len(names):
        raise invalid("invalid domain list %s: a domain is listed twice" % quote(text))
    return names
