"""policyhook.conf: INI settings with documented defaults; a bad value names its key."""

from .cpuset import CpuSet
from .errors import REGISTRY, PolicyError
from .safeio import read_file

REFUSE, START = "refuse", "start"
MAX_BYTES = 65536


class Settings:
    __slots__ = ("uri", "lxc_uri", "libxl_uri", "persistent", "on_conflict", "on_error",
                 "hook_lock_timeout", "lock_timeout", "applier_timeout", "on_drift", "watch_interval",
                 "watch_settle", "metrics_file", "isolate_host", "host_units", "occupancy_mode",
                 "housekeeping", "reserved", "memory", "source")

    def __init__(self):
        self.uri = "qemu:///system"
        self.lxc_uri = "lxc:///system"     # the LXC hook's applier
        self.libxl_uri = "xen:///system"   # the libxl (Xen) hook's applier
        self.persistent = False        # policyctl also writes the policy into definitions
        self.on_conflict = REFUSE      # a policy that cannot be satisfied refuses the start
        self.on_error = START          # our own failure lets the domain start, logged
        self.hook_lock_timeout = 0.5   # seconds the hook waits for the registry lock
        self.lock_timeout = 10.0       # seconds policyctl waits for the registry lock
        # Seconds the detached applier keeps trying. Its first call waits for the start job,
        # which can outlast libvirt's own 30 s wait (a large guest preallocating its memory,
        # QEMU under TCG): the applier is detached, so waiting longer delays nothing.
        self.applier_timeout = 120.0
        self.on_drift = "report"       # policyctl watch: report drift, or repair it
        self.watch_interval = 60.0     # seconds between the watcher's full reconciles
        self.watch_settle = 2.0        # seconds after a start before the watcher checks it
        self.metrics_file = ""         # node_exporter textfile the watcher writes; "" = none
        self.isolate_host = False      # keep the host's own units off CPUs occupants use
        self.host_units = ("system.slice", "user.slice", "init.scope")
        self.occupancy_mode = "static"  # occupied CPUs kept from others always, or while one runs
        self.housekeeping = False      # keep the host's IRQs, workqueues, kernel threads off them too
        self.reserved = CpuSet([0])    # CPUs cpuoccupy --auto never chooses: the host's own
        self.memory = "leave"          # follow: memory bound to the node a domain's vCPUs are pinned in
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


def _yes_no(value):
    if value not in ("yes", "no"):
        raise ValueError("%r is not yes or no" % value)
    return value == "yes"


def _path(value):
    import os
    if value and not os.path.isabs(value):
        raise ValueError("%r is not an absolute path" % value)
    return value


def _units(value):
    units = tuple(value.split())
    if not units:
        raise ValueError("no unit named")
    for unit in units:
        if "/" in unit or "." not in unit or unit.startswith("-") or not unit.isprintable():
            raise ValueError("%r is not a systemd unit name" % unit)
    return units


def _cpulist(value):
    if not value:
        return CpuSet()   # nothing reserved
    try:
        return CpuSet.parse(value)
    except PolicyError as e:
        raise ValueError(str(e)) from None


def _uri(value):
    if not value or "://" not in value or any(c.isspace() for c in value):
        raise ValueError("%r is not a libvirt URI" % value)
    return value


KEYS = {
    ("libvirt", "uri"): ("uri", _uri),
    ("libvirt", "lxc_uri"): ("lxc_uri", _uri),
    ("libvirt", "libxl_uri"): ("libxl_uri", _uri),
    ("libvirt", "persistent"): ("persistent", _yes_no),
    ("hook", "on_conflict"): ("on_conflict", _choice(REFUSE, START)),
    ("hook", "on_error"): ("on_error", _choice(START, REFUSE)),
    ("hook", "lock_timeout"): ("hook_lock_timeout", _seconds(0, 5)),
    ("policyctl", "lock_timeout"): ("lock_timeout", _seconds(0, 3600)),
    ("applier", "timeout"): ("applier_timeout", _seconds(1, 600)),
    ("watch", "on_drift"): ("on_drift", _choice("report", "repair")),
    ("watch", "interval"): ("watch_interval", _seconds(1, 86400)),
    ("watch", "settle"): ("watch_settle", _seconds(0, 60)),
    ("watch", "metrics_file"): ("metrics_file", _path),
    ("occupancy", "mode"): ("occupancy_mode", _choice("static", "running")),
    ("occupancy", "isolate_host"): ("isolate_host", _yes_no),
    ("occupancy", "host_units"): ("host_units", _units),
    ("occupancy", "housekeeping"): ("housekeeping", _yes_no),
    ("occupancy", "reserved"): ("reserved", _cpulist),
    ("occupancy", "memory"): ("memory", _choice("leave", "follow")),
}


def parse_settings(text, source="policyhook.conf", problems=None):
    """Settings from policyhook.conf's text. A bad line, key or value is a REGISTRY error
    naming it (a file of ours is wrong, as for a policy file); with a `problems` list,
    every one is appended there instead and the good values are kept."""
    import configparser

    def bad(message):
        error = PolicyError("%s: %s" % (source, message), REGISTRY)
        if problems is None:
            raise error
        problems.append(str(error))

    settings = Settings()
    settings.source = source
    # No DEFAULT section: its keys would silently apply to every section.
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"),
                                       default_section="\0")
    try:
        parser.read_string(text, source=source)
    except configparser.Error as e:
        bad(_ini_error(e))
        return settings
    for section in parser.sections():
        for key, value in parser.items(section):
            if (section, key) not in KEYS:
                bad("[%s] %s: unknown key" % (section, key))
                continue
            attr, parse = KEYS[(section, key)]
            try:
                setattr(settings, attr, parse(value.strip().strip('"')))
            except ValueError as e:
                bad("[%s] %s: %s" % (section, key, e))
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


def load_settings(paths, problems=None):
    """The settings in force: the file's values over the defaults. With a `problems`
    list, every problem goes there (policyctl check) instead of raising the first."""
    try:
        data = read_file(paths.conf, MAX_BYTES)
        if data is not None and len(data) > MAX_BYTES:
            raise PolicyError("%s: larger than %d bytes" % (paths.conf, MAX_BYTES), REGISTRY)
        try:
            text = data.decode("utf-8") if data is not None else None
        except UnicodeDecodeError:
            raise PolicyError("%s: not valid UTF-8" % paths.conf, REGISTRY) from None
    except PolicyError as e:
        if problems is None:
            raise
        problems.append(str(e))
        return Settings()
    if text is None:
        return Settings()
    return parse_settings(text, paths.conf, problems)
