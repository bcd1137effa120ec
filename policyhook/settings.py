"""policyhook.conf: INI settings with documented defaults; a bad value names its key."""

from .errors import PolicyError
from .safeio import read_file

REFUSE, START = "refuse", "start"
MAX_BYTES = 65536


class Settings:
    __slots__ = ("uri", "lxc_uri", "libxl_uri", "on_conflict", "on_error", "hook_lock_timeout",
                 "lock_timeout", "applier_timeout", "source")

    def __init__(self):
        self.uri = "qemu:///system"
        self.lxc_uri = "lxc:///system"     # the LXC hook's applier
        self.libxl_uri = "xen:///system"   # the libxl (Xen) hook's applier
        self.on_conflict = REFUSE      # a policy that cannot be satisfied refuses the start
        self.on_error = START          # our own failure lets the domain start, logged
        self.hook_lock_timeout = 0.5   # seconds the hook waits for the registry lock
        self.lock_timeout = 10.0       # seconds policyctl waits for the registry lock
        self.applier_timeout = 30.0    # seconds the detached applier keeps trying
        self.source = None


# (section, key) -> (attribute, parser)
def _choice(*allowed):
    def parse(value):
        if value not in allowed:
            raise ValueError("%r is not one of %s" % (value, ", ".join(allowed)))
        return value
    return parse


def _seconds(lo, hi):
    def parse(value):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("%r is not a number of seconds" % value) from None
        if not lo <= number <= hi:
            raise ValueError("%s is not in %g..%g" % (value, lo, hi))
        return number
    return parse


def _uri(value):
    if not value or "://" not in value or any(c.isspace() for c in value):
        raise ValueError("%r is not a libvirt URI" % value)
    return value


KEYS = {
    ("libvirt", "uri"): ("uri", _uri),
    ("libvirt", "lxc_uri"): ("lxc_uri", _uri),
    ("libvirt", "libxl_uri"): ("libxl_uri", _uri),
    ("hook", "on_conflict"): ("on_conflict", _choice(REFUSE, START)),
    ("hook", "on_error"): ("on_error", _choice(START, REFUSE)),
    ("hook", "lock_timeout"): ("hook_lock_timeout", _seconds(0, 5)),
    ("policyctl", "lock_timeout"): ("lock_timeout", _seconds(0, 3600)),
    ("applier", "timeout"): ("applier_timeout", _seconds(1, 600)),
}


def parse_settings(text, source="policyhook.conf"):
    import configparser

    settings = Settings()
    settings.source = source
    # No DEFAULT section: its keys would silently apply to every section.
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"),
                                       default_section="\0")
    try:
        parser.read_string(text, source=source)
    except configparser.Error as e:
        raise PolicyError("%s: %s" % (source, _ini_error(e)), 2) from None
    for section in parser.sections():
        for key, value in parser.items(section):
            if (section, key) not in KEYS:
                raise PolicyError("%s: [%s] %s: unknown key" % (source, section, key), 2)
            attr, parse = KEYS[(section, key)]
            try:
                setattr(settings, attr, parse(value.strip().strip('"')))
            except ValueError as e:
                raise PolicyError("%s: [%s] %s: %s" % (source, section, key, e), 2) from None
    return settings


def _ini_error(e):
    import configparser

    if isinstance(e, configparser.MissingSectionHeaderError):
        return "line %d: %r comes before any [section]" % (e.lineno, e.line.strip())
    if isinstance(e, configparser.DuplicateSectionError):
        return "line %s: section [%s] appears twice" % (e.lineno, e.section)
    if isinstance(e, configparser.DuplicateOptionError):
        return "line %s: [%s] %s is set twice" % (e.lineno, e.section, e.option)
    if isinstance(e, configparser.ParsingError) and e.errors:
        lineno, line = e.errors[0]
        if line[:1] in "'\"":  # configparser keeps repr(line)
            import ast
            line = ast.literal_eval(line)
        return "line %d: %r is not 'key = value'" % (lineno, line.strip())
    return str(e).splitlines()[0]


def load_settings(paths):
    """The settings in force: the file's values over the defaults."""
    data = read_file(paths.conf, MAX_BYTES)
    if data is None:
        return Settings()
    if len(data) > MAX_BYTES:
        raise PolicyError("%s: larger than %d bytes" % (paths.conf, MAX_BYTES), 2)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("%s: not valid UTF-8" % paths.conf, 2) from None
    return parse_settings(text, paths.conf)
