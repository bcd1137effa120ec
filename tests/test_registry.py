"""The registry: atomic, validated policy files; hand-broken and unsafe files refused with
a message that starts with the file's path."""

import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_helpers import pinned, policy, store, write_raw

from policyhook import errors, jsondoc, safeio
from policyhook.cpuset import CpuSet
from policyhook.errors import PolicyError
from policyhook.model import DomainPolicy, HostPolicy
from policyhook.paths import Paths
from policyhook.registry import Registry, read_domain, read_host
from policyhook.results import Writes

FIX = "; fix it or run 'policyctl check'"


@pytest.fixture
def paths(tmp_path):
    p = Paths(str(tmp_path))
    safeio.ensure_dir(p.domains)
    return p


@pytest.fixture
def reg(paths):
    return Registry(paths, lock_timeout=2)


def save(reg, *policies, host=None):
    store(reg, policies, host)


def refused(fn):
    with pytest.raises(PolicyError) as info:
        fn()
    return info.value


# ---- round trips -------------------------------------------------------------------

ROUND_TRIP = [
    policy("vm1", {0: "0-1"}),
    policy("vm1", {0: "0", 3: "2-3,7"}, emulator="0-1", weight=512, cap=50),
    policy("vm1", weight=1),
    policy("vm1", cap=0),
    policy("web-01.example", uuid="6f1a5d7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f", weight=65535),
    policy("\u00e9t\u00e9", {1: "8191"}),
]


@pytest.mark.parametrize("stored", ROUND_TRIP, ids=[repr(p.to_doc()) for p in ROUND_TRIP])
def test_save_load_round_trip(reg, paths, stored):
    save(reg, stored)
    assert reg.load(stored.domain) == stored
    assert read_domain(paths, stored.domain) == stored
    assert reg.names() == [stored.domain]
    assert reg.check() == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pins=st.dictionaries(st.integers(0, 64), st.frozensets(st.integers(0, 100), min_size=1), max_size=4),
       weight=st.none() | st.integers(1, 65535), cap=st.none() | st.integers(0, 800))
def test_save_load_round_trip_random(tmp_path, pins, weight, cap):
    paths = Paths(str(tmp_path))
    reg = Registry(paths)
    safeio.ensure_dir(paths.domains)
    stored = pinned("vm", {v: CpuSet(c) for v, c in pins.items()}, None, weight, cap)
    save(reg, stored)
    if stored.is_empty():
        assert reg.load("vm") is None
    else:
        assert reg.load("vm") == stored
    assert [f for f in os.listdir(paths.domains) if f.startswith(".")] == []


def test_file_format(reg, paths):
    save(reg, policy("vm1", {2: "0-1", 10: "3"}, emulator="1", weight=300, cap=25))
    with open(paths.domain_file("vm1")) as f:
        assert f.read() == (
            '{\n  "version": 1,\n  "domain": "vm1",\n  "vcpupin": {\n    "2": "0-1",\n'
            '    "10": "3"\n  },\n  "emulatorpin": "1",\n  "weight": 300,\n  "cap": 25\n}\n')


def test_host_round_trip(reg, paths):
    assert read_host(paths) == HostPolicy()
    host = HostPolicy({1: ["vm2", "vm1"], 3: ["vm1"]})
    save(reg, host=host)
    assert read_host(paths) == host
    assert read_host(paths).occupancy == {1: ("vm1", "vm2"), 3: ("vm1",)}
    with open(paths.host_file) as f:
        assert f.read() == ('{\n  "version": 1,\n  "cpuoccupy": {\n    "1": [\n      "vm1",\n'
                            '      "vm2"\n    ],\n    "3": [\n      "vm1"\n    ]\n  }\n}\n')
    # An empty host policy removes the file.
    save(reg, host=HostPolicy())
    assert not os.path.exists(paths.host_file)
    assert read_host(paths) == HostPolicy()


def test_a_transaction_saves_all_or_nothing(reg, paths):
    """Every policy of a transaction is validated before the first is saved; a function
    that raises saves nothing; the result is what the caller gets back."""
    save(reg, policy("vm1", weight=5))
    before = snapshot_files(paths)
    bad = policy("vm2", weight=5)
    bad.sched["weight"] = 0      # below the schema's minimum
    e = refused(lambda: reg.transact(lambda _snap: Writes(domains=[policy("vm1", weight=7), bad],
                                                          host=HostPolicy({1: ("vm1",)}))))
    assert e.code == errors.REGISTRY
    assert snapshot_files(paths) == before

    def fails(snap):
        assert snap.domain("vm1") == policy("vm1", weight=5)
        raise errors.conflict("no")
    assert refused(lambda: reg.transact(fails)).code == errors.CONFLICT
    assert snapshot_files(paths) == before
    def bump(snap):
        return Writes(domains=[policy("vm1", weight=snap.domain("vm1").sched["weight"] + 1)], result="done")
    got = reg.transact(bump)
    assert got == "done" and reg.load("vm1") == policy("vm1", weight=6)


def test_a_snapshot_reads_each_file_once(reg, paths):
    save(reg, policy("vm1", weight=5), host=HostPolicy({1: ("vm1",)}))

    def twice(snap):
        first = (snap.host(), snap.domain("vm1"), snap.policies())
        os.unlink(paths.domain_file("vm1"))
        return first, (snap.host(), snap.domain("vm1"), snap.policies())
    first, second = reg.read(twice)
    assert first == second and first[1] == policy("vm1", weight=5)


def snapshot_files(paths):
    found = {}
    for f in sorted(os.listdir(paths.domains)):
        with open(os.path.join(paths.domains, f), "rb") as fh:
            found[f] = fh.read()
    return found, os.path.exists(paths.host_file)


def test_empty_policy_removes_the_file(reg, paths):
    save(reg, policy("vm1", weight=5))
    assert os.path.exists(paths.domain_file("vm1"))
    save(reg, DomainPolicy("vm1"))
    assert not os.path.exists(paths.domain_file("vm1"))
    save(reg, DomainPolicy("vm1"))
    assert reg.load("vm1") is None
    reg.transact(lambda _snap: Writes(remove=["vm1"]))
    assert not os.path.exists(paths.domain_file("vm1"))


def test_missing_registry_reads_as_empty(tmp_path):
    paths = Paths(str(tmp_path / "nothing"))
    reg = Registry(paths)
    assert reg.names() == []
    assert reg.load("vm1") is None
    assert read_host(paths) == HostPolicy()
    assert reg.check() == []


# ---- atomic writes and modes ---------------------------------------------------------


def test_atomic_write_leaves_no_temp_files_and_mode_0644(reg, paths):
    old = os.umask(0o077)   # the mode must not depend on the caller's umask
    try:
        for weight in range(1, 6):
            save(reg, policy("vm1", weight=weight), host=HostPolicy({0: ["vm1"]}))
    finally:
        os.umask(old)
    assert sorted(os.listdir(paths.domains)) == ["vm1.json"]
    assert sorted(os.listdir(paths.etc)) == ["domains", "host.json"]
    for path in (paths.domain_file("vm1"), paths.host_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(paths.domains).st_mode) & 0o022 == 0
    assert reg.load("vm1").sched.get("weight") == 5


def test_failed_write_removes_its_temp_file(reg, paths):
    # The target is a directory, so os.replace fails after the temp file was written.
    os.makedirs(paths.domain_file("vm1"))
    e = refused(lambda: save(reg, policy("vm1", weight=5)))
    assert e.code == errors.REGISTRY
    assert str(e) == "%s: cannot be written: Is a directory" % paths.domain_file("vm1")
    assert os.listdir(paths.domains) == ["vm1.json"]
    assert os.listdir(paths.domain_file("vm1")) == []


def test_write_replaces_a_symlink_rather_than_following_it(reg, paths, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    os.symlink(str(target), paths.domain_file("vm1"))
    save(reg, policy("vm1", weight=5))
    assert target.read_text() == "keep"
    assert not os.path.islink(paths.domain_file("vm1"))
    assert reg.load("vm1").sched.get("weight") == 5


def test_save_validates_with_the_schema(reg, paths):
    bad = DomainPolicy("vm1", sched={"weight": 0})
    e = refused(lambda: save(reg, bad))
    assert e.code == errors.REGISTRY
    assert str(e) == "%s: $.weight: 0 is less than the minimum of 1" % paths.domain_file("vm1")
    assert os.listdir(paths.domains) == []


# ---- hand-broken files ---------------------------------------------------------------

BROKEN = [
    # (file content, message after "PATH: ", message from check after "PATH: ")
    (b"{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
     None),
    (b"", "not valid JSON: Expecting value: line 1 column 1 (char 0)", None),
    (b'{"version": 1, "domain": "vm1"} x', "not valid JSON: Extra data: line 1 column 33 (char 32)", None),
    (b'{"version": 1, "domain": "vm1", "weight": "x"}', "$.weight: 'x' is not an integer",
     "$.weight: 'x' is not of type 'integer'"),
    (b'{"version": 1, "domain": "vm1", "weight": 256.0}', "$.weight: 256.0 is not an integer",
     "$.weight: 256.0 is not of type 'integer'"),
    (b'{"version": 1, "domain": "vm1", "vcpupin": {"0": "1,0"}}',
     "$.vcpupin.0: '1,0' is not in canonical form (write '0-1')",
     "$.vcpupin.0: '1,0' is not a cpulist in canonical form"),
    (b'{"version": 1, "domain": "vm1", "domain": "vm1"}', "not valid JSON: duplicate key 'domain'", None),
    (b'{"version": 1, "domain": "vm1", "weight": NaN}', "not valid JSON: NaN is not allowed", None),
    (b'{"version": 1, "domain": "vm1", "cap": Infinity}', "not valid JSON: Infinity is not allowed", None),
    (b'{"version": 1, "domain": "vm1\xff"}', "not valid UTF-8 (byte 29)", None),
    (b"\xef\xbb\xbf{}", "not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): "
                        "line 1 column 1 (char 0)", None),
    (b"[" * 100000, "nested too deeply", None),
    (b"[" * 33 + b"]" * 33, "nested too deeply", None),
    (b'{"version": 1, "domain": "vm1", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "nested too deeply", None),
    (b"[]", "$: [] is not an object", "$: [] is not of type 'object'"),
    (b'{"version": 2, "domain": "vm1"}', "$.version: 2 is not a supported version (this policyhook reads 1)",
     "$.version: 1 was expected"),
    (b" " * (jsondoc.MAX_BYTES + 1), "larger than 1048576 bytes", None),
]


@pytest.mark.parametrize("data,message,check_message", BROKEN, ids=[b[1][:40] for b in BROKEN])
def test_hand_broken_domain_file(reg, paths, data, message, check_message):
    path = write_raw(paths.domain_file("vm1"), data)
    for load in (lambda: reg.load("vm1"), lambda: read_domain(paths, "vm1")):
        e = refused(load)
        assert e.code == errors.REGISTRY
        assert str(e) == "%s: %s%s" % (path, message, FIX)
        assert str(e).startswith(path + ": ")
        assert "\n" not in str(e)
    assert reg.check() == ["%s: %s" % (path, check_message or message)]
    # A broken file is never rewritten behind the admin's back: an edit refuses too.
    e = refused(lambda: reg.transact(lambda snap: Writes(domains=[snap.domain("vm1")])))
    with open(path, "rb") as f:
        assert f.read() == data


def test_hand_broken_host_file(reg, paths):
    path = write_raw(paths.host_file, b'{"version": 1, "cpuoccupy": {"1": ["vm1", "vm1"]}}')
    e = refused(lambda: read_host(paths))
    assert e.code == errors.REGISTRY
    assert str(e) == "%s: $.cpuoccupy.1: 'vm1' is listed twice%s" % (path, FIX)
    assert reg.check() == ["%s: $.cpuoccupy.1: ['vm1', 'vm1'] has non-unique elements" % path]


def test_nesting_in_host_file_does_not_crash_check(reg, paths):
    deep = "[" * 300 + "]" * 300
    path = write_raw(paths.host_file, '{"version": 1, "cpuoccupy": {"1": [%s, %s]}}' % (deep, deep))
    assert reg.check() == ["%s: nested too deeply" % path]
    assert str(refused(lambda: read_host(paths))) == "%s: nested too deeply%s" % (path, FIX)


def test_file_of_another_domain_is_refused(reg, paths):
    path = write_raw(paths.domain_file("vm2"), '{"version": 1, "domain": "vm1", "weight": 5}')
    for load in (lambda: reg.load("vm2"), lambda: read_domain(paths, "vm2")):
        e = refused(load)
        assert e.code == errors.REGISTRY
        assert str(e) == "%s: holds the policy of 'vm1', not 'vm2'" % path
    assert reg.check() == ["%s: $.domain: holds the policy of 'vm1', not 'vm2'" % path]


# ---- unsafe files and directories ------------------------------------------------------


def test_symlinked_policy_file_is_refused(reg, paths, tmp_path):
    real = write_raw(str(tmp_path / "real.json"), '{"version": 1, "domain": "vm1", "weight": 5}')
    path = paths.domain_file("vm1")
    os.symlink(real, path)
    for load in (lambda: reg.load("vm1"), lambda: read_domain(paths, "vm1")):
        e = refused(load)
        assert e.code == errors.REGISTRY
        assert str(e) == "%s: is a symlink; refusing to follow it" % path
    assert reg.check() == ["%s: is a symlink; refusing to follow it" % path]


def test_symlinked_host_file_is_refused(paths, tmp_path):
    real = write_raw(str(tmp_path / "real.json"), '{"version": 1}')
    os.symlink(real, paths.host_file)
    assert str(refused(lambda: read_host(paths))) == "%s: is a symlink; refusing to follow it" \
        % paths.host_file


def test_symlinked_domains_directory_is_refused(tmp_path):
    paths = Paths(str(tmp_path))
    os.makedirs(paths.etc)
    os.makedirs(str(tmp_path / "real"))
    os.symlink(str(tmp_path / "real"), paths.domains)
    reg = Registry(paths)
    message = "%s: is a symlink; refusing to follow it" % paths.domains
    assert str(refused(lambda: reg.load("vm1"))) == message
    assert str(refused(reg.names)) == message
    assert reg.check() == [message]


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o620])
def test_group_or_world_writable_file_is_refused(reg, paths, mode):
    path = write_raw(paths.domain_file("vm1"), '{"version": 1, "domain": "vm1"}', mode=mode)
    message = "%s: is group- or world-writable (mode %04o); refusing it (chmod go-w %s)" % (path, mode, path)
    for load in (lambda: reg.load("vm1"), lambda: read_domain(paths, "vm1")):
        e = refused(load)
        assert e.code == errors.REGISTRY
        assert str(e) == message
    assert reg.check() == [message]


def test_world_writable_directory_is_refused(reg, paths):
    os.chmod(paths.domains, 0o777)
    message = "%s: is group- or world-writable (mode 0777); refusing it (chmod go-w %s)" \
        % (paths.domains, paths.domains)
    assert str(refused(lambda: read_domain(paths, "vm1"))) == message
    assert reg.check() == [message]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_file_owned_by_another_user_is_refused(reg, paths):
    path = write_raw(paths.domain_file("vm1"), '{"version": 1, "domain": "vm1"}')
    os.chown(path, 4242, 4242)
    assert str(refused(lambda: read_domain(paths, "vm1"))) == \
        "%s: is owned by uid 4242, not 0; refusing it (chown 0 %s)" % (path, path)


def test_fifo_is_refused_without_blocking(reg, paths):
    os.mkfifo(paths.domain_file("vm1"), 0o644)
    assert str(refused(lambda: read_domain(paths, "vm1"))) == "%s: is not a regular file" \
        % paths.domain_file("vm1")


# ---- names, check, path traversal -----------------------------------------------------


def test_names_ignore_dotfiles_temp_files_and_others(reg, paths):
    save(reg, policy("vm1", weight=5), policy("vm2", cap=5))
    for entry in (".vm3.json", ".vm1.json.1234.tmp", "notes.txt", "vm4.json~", "vm5.json.rpmnew",
                  "a\x01b.json"):
        write_raw(os.path.join(paths.domains, entry), "{}")
    os.makedirs(os.path.join(paths.domains, "subdir"))
    assert reg.names() == ["vm1", "vm2"]


def test_check_reports_every_problem_one_line_each(reg, paths):
    save(reg, policy("good", weight=5))
    d = paths.domains
    write_raw(os.path.join(d, "json.json"), "{")
    write_raw(os.path.join(d, "types.json"), '{"version": 1, "domain": "types", "weight": 0, "cap": "x"}')
    write_raw(os.path.join(d, "other.json"), '{"version": 1, "domain": "good"}')
    write_raw(os.path.join(d, "mode.json"), '{"version": 1, "domain": "mode"}', mode=0o666)
    write_raw(os.path.join(d, "notes.txt"), "hello")
    write_raw(os.path.join(d, ".hidden.json"), "{")          # dotfiles are not policy files
    write_raw(os.path.join(d, "a\x01b.json"), "{}")
    write_raw(os.path.join(d, "new\nline.txt"), "{}")
    os.symlink("/etc/passwd", os.path.join(d, "link.json"))
    write_raw(paths.host_file, '{"version": 1, "cpuoccupy": {"01": ["vm1"]}}')
    found = reg.check()
    assert all("\n" not in line for line in found)
    # File-name problems first, then host.json, then each policy file, in name order.
    assert found == [
        "%s/'a\\x01b.json': file name is not a valid domain name: control characters are not allowed" % d,
        "%s/'new\\nline.txt': not a policy file (names end in .json)" % d,
        "%s/notes.txt: not a policy file (names end in .json)" % d,
        "%s: $.cpuoccupy: '01' is not a CPU number" % paths.host_file,
        "%s/json.json: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)" % d,
        "%s/link.json: is a symlink; refusing to follow it" % d,
        "%s/mode.json: is group- or world-writable (mode 0666); refusing it "
        "(chmod go-w %s/mode.json)" % (d, d),
        "%s/other.json: $.domain: holds the policy of 'good', not 'other'" % d,
        "%s/types.json: $.cap: 'x' is not of type 'integer'" % d,
        "%s/types.json: $.weight: 0 is less than the minimum of 1" % d,
    ]
    assert reg.check() == found
    # The good file and the others are left as they were.
    assert reg.load("good").sched.get("weight") == 5


@pytest.mark.parametrize("name,problem", [
    ("../x", "'/' is not allowed"),
    ("a/b", "'/' is not allowed"),
    ("/etc/passwd", "'/' is not allowed"),
    (".hidden", "it cannot start with '.'"),
    ("..", "it cannot start with '.'"),
    ("", "a domain name cannot be empty"),
    ("a\x00b", "control characters are not allowed"),
    ("a\nb", "control characters are not allowed"),
    ("x" * 201, "it is longer than 200 bytes"),
    ("\ud800", "it is not valid UTF-8"),
    (None, "a domain name must be a string"),
])
def test_domain_file_refuses_unsafe_names(paths, name, problem):
    e = refused(lambda: paths.domain_file(name))
    assert e.code == errors.INVALID
    assert str(e) == "invalid domain name %r: %s" % (name, problem)
    e = refused(lambda: paths.state_file(name))
    assert str(e) == "invalid domain name %r: %s" % (name, problem)


@pytest.mark.parametrize("name", ["vm1", "a.b", "x" * 200, "a..b", "-rf", "with space"])
def test_domain_file_stays_in_the_domains_directory(paths, name):
    path = paths.domain_file(name)
    assert os.path.dirname(path) == paths.domains
    assert os.path.basename(path) == name + ".json"
