"""Which domain names may key a policy file."""

from .errors import invalid

MAX_NAME = 200  # bytes; leaves room for ".json" and a temp suffix within NAME_MAX


def name_problem(name):
    """Why `name` cannot key a policy file, or None when it can."""
    if not isinstance(name, str):
        return "a domain name must be a string"
    if not name:
        return "a domain name cannot be empty"
    if "/" in name:
        return "'/' is not allowed"
    if name.startswith("."):
        return "it cannot start with '.'"
    # C0, DEL and C1 (U+0080-U+009F: 8-bit terminal escapes, NEL). isprintable() is
    # False for every one of them: the loop runs only then.
    if not name.isprintable() and any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in name):
        return "control characters are not allowed"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if len(encoded) > MAX_NAME:
        return "it is longer than %d bytes" % MAX_NAME
    return None


def check_name(name):
    """Return `name` if it is safe as a file name, else raise an INVALID error."""
    problem = name_problem(name)
    if problem:
        raise invalid("invalid domain name %r: %s" % (name, problem))
    return name
