"""policyhook.conf: defaults, every key, and exact messages for bad files."""

import os
import re

import pytest
from unit_helpers import REPO, write_raw

from policyhook import errors
from policyhook.cpuset import CpuSet
from policyhook.errors import PolicyError
from policyhook.paths import Paths
from policyhook.settings import KEYS, REFUSE, START, Settings, load_settings, parse_settings

SRC = "/etc/policyhook/policyhook.conf"


def values(settings):
    return {k: getattr(settings, k) for k in Settings.__slots__ if k != "source"}


DEFAULTS = {"uri": "qemu:///system", "lxc_uri": "lxc:///system", "libxl_uri": "xen:///system",
            "persistent": False, "on_drift": "report", "watch_interval": 60.0, "watch_settle": 2.0,
            "metrics_file": "", "isolate_host": False, "housekeeping": False,
            "host_units": ("system.slice", "user.slice", "init.scope"), "occupancy_mode": "static",
            "on_conflict": "refuse", "on_error": "start",
            "hook_lock_timeout": 0.5, "lock_timeout": 10.0, "applier_timeout": 120.0,
            "reserved": CpuSet([0]), "memory": "leave"}


def test_defaults():
    assert values(Settings()) == DEFAULTS
    assert values(parse_settings("")) == DEFAULTS
    assert values(parse_settings("# nothing\n\n[hook]\n; still nothing\n")) == DEFAULTS


def test_shipped_file_documents_every_key_with_its_default():
    with open(os.path.join(REPO, "etc", "policyhook.conf")) as f:
        text = f.read()
    assert values(parse_settings(text, SRC)) == DEFAULTS
    # Uncommenting every documented key gives the defaults again.
    uncommented = re.sub(r"(?m)^#(\w+ =)", r"\1", text)
    assert uncommented != text
    settings = parse_settings(uncommented, SRC)
    assert values(settings) == DEFAULTS
    for section, key in KEYS:
        assert "[%s]" % section in text
        assert re.search(r"(?m)^#%s =" % key, text), key


GOOD = [
    ("[libvirt]\nuri = qemu:///session\n", "uri", "qemu:///session"),
    ("[libvirt]\nuri = qemu+ssh://root@host/system\n", "uri", "qemu+ssh://root@host/system"),
    ('[libvirt]\nuri = "test:///default"\n', "uri", "test:///default"),
    ("[libvirt]\npersistent = yes\n", "persistent", True),
    ("[watch]\non_drift = repair\n", "on_drift", "repair"),
    ("[occupancy]\nisolate_host = yes\n", "isolate_host", True),
    ("[occupancy]\nhousekeeping = yes\n", "housekeeping", True),
    ("[occupancy]\nreserved = 0-1,8\n", "reserved", CpuSet([0, 1, 8])),
    ("[occupancy]\nreserved =\n", "reserved", CpuSet()),
    ("[occupancy]\nmemory = follow\n", "memory", "follow"),
    ("[occupancy]\nmode = running\n", "occupancy_mode", "running"),
    ("[occupancy]\nhost_units = system.slice  machine-extra.slice\n", "host_units",
     ("system.slice", "machine-extra.slice")),
    ("[watch]\ninterval = 5\n", "watch_interval", 5.0),
    ("[watch]\nmetrics_file = /var/lib/node_exporter/policyhook.prom\n", "metrics_file",
     "/var/lib/node_exporter/policyhook.prom"),
    ("[libvirt]\npersistent = no\n", "persistent", False),
    ("[hook]\non_conflict = start\n", "on_conflict", START),
    ("[hook]\non_conflict = refuse\n", "on_conflict", REFUSE),
    ("[hook]\non_error = refuse\n", "on_error", REFUSE),
    ("[hook]\non_error = start  # the default\n", "on_error", START),
    ("[hook]\nOn_Error = refuse\n", "on_error", REFUSE),     # keys are case-insensitive, as in INI
    ("[hook]\nlock_timeout = 0\n", "hook_lock_timeout", 0.0),
    ("[hook]\nlock_timeout = 5\n", "hook_lock_timeout", 5.0),
    ("[hook]\nlock_timeout: 0.25\n", "hook_lock_timeout", 0.25),
    ("[policyctl]\nlock_timeout = 3600\n", "lock_timeout", 3600.0),
    ("[policyctl]\nlock_timeout = 0.5 ; short\n", "lock_timeout", 0.5),
    ("[applier]\ntimeout = 1\n", "applier_timeout", 1.0),
    ("[applier]\ntimeout = 600\n", "applier_timeout", 600.0),
]


@pytest.mark.parametrize("text,attr,value", GOOD, ids=[g[0] for g in GOOD])
def test_every_key(text, attr, value):
    settings = parse_settings(text, SRC)
    assert getattr(settings, attr) == value
    assert settings.source == SRC
    expected = dict(DEFAULTS, **{attr: value})
    assert values(settings) == expected


BAD = [
    ("[occupancy]\nreserved = 0-\n",
     "[occupancy] reserved: invalid cpulist '0-': '0-' is missing a CPU number"),
    ("[occupancy]\nreserved = 3-1\n", "[occupancy] reserved: invalid cpulist '3-1': range 3-1 is reversed"),
    ("[occupancy]\nmemory = bind\n", "[occupancy] memory: 'bind' is not one of leave, follow"),
    ("[libvirt]\nuri = no uri\n", "[libvirt] uri: 'no uri' is not a libvirt URI"),
    ("[libvirt]\nuri = qemu\n", "[libvirt] uri: 'qemu' is not a libvirt URI"),
    ("[libvirt]\nuri =\n", "[libvirt] uri: '' is not a libvirt URI"),
    ("[libvirt]\npersistent = true\n", "[libvirt] persistent: 'true' is not yes or no"),
    ("[watch]\non_drift = fix\n", "[watch] on_drift: 'fix' is not one of report, repair"),
    ("[occupancy]\nmode = dynamic\n", "[occupancy] mode: 'dynamic' is not one of static, running"),
    ("[occupancy]\nhost_units = --host=x.example\n",
     "[occupancy] host_units: '--host=x.example' is not a systemd unit name"),
    ("[occupancy]\nhost_units = /etc/passwd\n",
     "[occupancy] host_units: '/etc/passwd' is not a systemd unit name"),
    ("[watch]\ninterval = 0\n", "[watch] interval: 0 is not in 1..86400"),
    ("[watch]\nmetrics_file = x.prom\n", "[watch] metrics_file: 'x.prom' is not an absolute path"),
    ("[hook]\non_conflict = maybe\n", "[hook] on_conflict: 'maybe' is not one of refuse, start"),
    ("[hook]\non_conflict = Refuse\n", "[hook] on_conflict: 'Refuse' is not one of refuse, start"),
    ("[hook]\non_error = ignore\n", "[hook] on_error: 'ignore' is not one of start, refuse"),
    ("[hook]\non_error = start\n  refuse\n", "[hook] on_error: 'start\\nrefuse' is not one of start, refuse"),
    ("[hook]\nlock_timeout = 9\n", "[hook] lock_timeout: 9 is not in 0..5"),
    ("[hook]\nlock_timeout = -0.1\n", "[hook] lock_timeout: -0.1 is not in 0..5"),
    ("[hook]\nlock_timeout = abc\n", "[hook] lock_timeout: 'abc' is not a number of seconds"),
    ("[hook]\nlock_timeout = 1s\n", "[hook] lock_timeout: '1s' is not a number of seconds"),
    ("[hook]\nlock_timeout = nan\n", "[hook] lock_timeout: nan is not in 0..5"),
    ("[policyctl]\nlock_timeout = inf\n", "[policyctl] lock_timeout: inf is not in 0..3600"),
    ("[policyctl]\nlock_timeout = 3601\n", "[policyctl] lock_timeout: 3601 is not in 0..3600"),
    ("[applier]\ntimeout = 0.5\n", "[applier] timeout: 0.5 is not in 1..600"),
    ("[applier]\ntimeout =\n", "[applier] timeout: '' is not a number of seconds"),
    # unknown keys and sections
    ("[applier]\ncolour = red\n", "[applier] colour: unknown key"),
    ("[hook]\nuri = qemu:///system\n", "[hook] uri: unknown key"),
    ("[bogus]\nx = 1\n", "[bogus] x: unknown key"),
    ("[Hook]\non_conflict = start\n", "[Hook] on_conflict: unknown key"),
    ("[DEFAULT]\non_conflict = start\n", "[DEFAULT] on_conflict: unknown key"),
    # not INI
    ("uri = qemu:///system\n", "line 1: 'uri = qemu:///system' comes before any [section]"),
    ("[hook\non_error = start\n", "line 1: '[hook' comes before any [section]"),
    ("[hook]\non_error = start\non_error = refuse\n", "line 3: [hook] on_error is set twice"),
    ("[hook]\n[libvirt]\n[hook]\n", "line 3: section [hook] appears twice"),
    ("[hook]\non_conflict\n", "line 2: 'on_conflict' is not 'key = value'"),
    ("[hook]\non_conflict\non_error\n", "line 2: 'on_conflict' is not 'key = value'"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[b[0] for b in BAD])
def test_bad_values_name_section_and_key(text, message):
    with pytest.raises(PolicyError) as info:
        parse_settings(text, SRC)
    assert info.value.code == errors.REGISTRY
    assert str(info.value) == "%s: %s" % (SRC, message)
    assert "\n" not in str(info.value)


# ---- the file itself ----------------------------------------------------------------------


def test_load_missing_file_gives_defaults(tmp_path):
    assert values(load_settings(Paths(str(tmp_path)))) == DEFAULTS


def test_load_file(tmp_path):
    paths = Paths(str(tmp_path))
    write_raw(paths.conf, "[policyctl]\nlock_timeout = 0.5\n")
    settings = load_settings(paths)
    assert settings.lock_timeout == 0.5
    assert settings.source == paths.conf


@pytest.mark.parametrize("data,message", [
    (b"[hook]\non_error = \xff\n", "not valid UTF-8"),
    (b"# " + b"x" * 70000 + b"\n", "larger than 65536 bytes"),
    (b"[hook]\non_error = maybe\n", "[hook] on_error: 'maybe' is not one of start, refuse"),
])
def test_load_bad_file(tmp_path, data, message):
    paths = Paths(str(tmp_path))
    write_raw(paths.conf, data)
    with pytest.raises(PolicyError) as info:
        load_settings(paths)
    assert info.value.code == errors.REGISTRY
    assert str(info.value) == "%s: %s" % (paths.conf, message)


def test_unsafe_file_is_refused(tmp_path):
    paths = Paths(str(tmp_path))
    write_raw(paths.conf, "[hook]\non_error = refuse\n", mode=0o666)
    with pytest.raises(PolicyError) as info:
        load_settings(paths)
    assert info.value.code == errors.REGISTRY
    assert str(info.value) == "%s: is group- or world-writable (mode 0666); refusing it (chmod go-w %s)" \
        % (paths.conf, paths.conf)
    os.chmod(paths.conf, 0o644)
    os.rename(paths.conf, paths.conf + ".real")
    os.symlink(paths.conf + ".real", paths.conf)
    with pytest.raises(PolicyError) as info:
        load_settings(paths)
    assert str(info.value) == "%s: is a symlink; refusing to follow it" % paths.conf


def test_every_problem_is_reported_when_asked():
    problems = []
    settings = parse_settings("[hook]\non_error = maybe\nlock_timeout = 9\nbogus = 1\non_conflict = start\n",
                              SRC, problems)
    assert problems == [
        "%s: [hook] on_error: 'maybe' is not one of start, refuse" % SRC,
        "%s: [hook] lock_timeout: 9 is not in 0..5" % SRC,
        "%s: [hook] bogus: unknown key" % SRC,
    ]
    assert settings.on_conflict == "start"   # the good values are kept
