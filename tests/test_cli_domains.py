"""policyctl as a libvirt admin expects it, against libvirt's test driver: domains resolved
as virsh resolves them, UUIDs recorded and honoured, verify, rename, rebind, the
connection's URI, and nothing hidden by one broken file. Exact messages, table-driven."""

import io
import json
import os
import shutil
import subprocess
import sys

import libvirt
import pytest
from testdriver import URI, RecordingConn
from unit_helpers import REPO, snapshot_policy_files, write_raw

from policyhook import errors
from policyhook.cli import main
from policyhook.errors import PolicyError
from policyhook.paths import Paths

UUID2 = "11111111-2222-3333-4444-555555555555"   # running2, Id 1
OTHER = "99999999-2222-3333-4444-555555555555"


@pytest.fixture
def root(tmp_path):
    """An installed registry: /etc/policyhook/domains and /run/policyhook exist."""
    paths = Paths(str(tmp_path))
    os.makedirs(paths.domains)
    os.makedirs(paths.run)
    return str(tmp_path)


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield RecordingConn(c)
    c.close()


def run(root, conn, *argv, environ=None, connect=None):
    """policyctl on the test driver's host (-c URI unless `environ` is given, to see which
    URI it picks)."""
    out, err = io.StringIO(), io.StringIO()
    head = ["--root", root] + ([] if environ is not None or "-c" in argv else ["-c", URI])
    code = main(head + list(argv), out, err, connect=connect or (lambda uri: conn), environ=environ or {})
    return code, out.getvalue(), err.getvalue()


def stored(root, name):
    path = Paths(root).domain_file(name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# ---- domains resolved as virsh resolves them ----------------------------------------------

REFUSED = [
    (["vcpupin", "runing2", "0", "0"],
     "domain 'runing2' is not defined in libvirt (%s); did you mean 'running2'?; --undefined records a "
     "policy for a domain not defined yet" % URI),
    (["schedweight", "zzz", "300"],
     "domain 'zzz' is not defined in libvirt (%s); --undefined records a policy for a domain not "
     "defined yet" % URI),
    (["cpuoccupy", "0", "running2,stoped"],
     "domain 'stoped' is not defined in libvirt (%s); did you mean 'stopped'?; --undefined records a "
     "policy for a domain not defined yet" % URI),
    # Read commands cannot record a policy: no --undefined offered (tests/test_cli_flags.py).
    (["cpupolicy", "pinned"],
     "domain 'pinned' is not defined in libvirt (%s) and has no policy; did you mean 'pinned1'?" % URI),
    (["verify", "nosuch"],
     "domain 'nosuch' is not defined in libvirt (%s) and has no policy" % URI),
    (["rebind", "nosuch"],
     "domain 'nosuch' is not defined in libvirt (%s); rebind binds a policy to a defined domain" % URI),
    (["remove", "running2"], "domain 'running2' has no policy"),
]


@pytest.mark.parametrize("argv,message", REFUSED, ids=[" ".join(r[0]) for r in REFUSED])
def test_unknown_domains_are_refused_and_nothing_is_saved(root, conn, argv, message):
    before = snapshot_policy_files(root)
    assert run(root, conn, *argv) == (errors.INVALID, "", "Error: %s\n" % message)
    assert snapshot_policy_files(root) == before


@pytest.mark.parametrize("text", ["1", UUID2, UUID2.upper(), "running2"])
def test_id_uuid_and_name_name_the_same_domain(root, conn, text):
    code, out, err = run(root, conn, "schedweight", text, "300")
    assert (code, out, err) == (0, "running2: weight 300: saved; applied live\n"
                                   "  schedinfo cpu_shares=1200\n", "")
    assert stored(root, "running2") == {"version": 1, "domain": "running2", "uuid": UUID2, "weight": 300}
    assert os.listdir(Paths(root).domains) == ["running2.json"]


def test_undefined_records_a_policy_ahead_of_the_domain(root, conn):
    code, out, err = run(root, conn, "schedweight", "newvm", "300", "--undefined")
    assert (code, out, err) == (
        0, "newvm: weight 300: saved; applies at next start (libvirt does not know the domain yet)\n", "")
    assert stored(root, "newvm") == {"version": 1, "domain": "newvm", "weight": 300}
    # Known to the registry now: later changes need no flag.
    assert run(root, conn, "schedcap", "newvm", "50")[0] == 0


def test_offline_takes_any_safe_name(root, conn):
    code, out, err = run(root, conn, "--offline", "vcpupin", "1", "0", "0")
    assert (code, err) == (0, "")
    assert stored(root, "1") == {"version": 1, "domain": "1", "vcpupin": {"0": "0"}}


# ---- a policy bound to its domain's UUID -------------------------------------------------


def test_a_policy_for_another_uuid_is_not_applied_and_says_how_to_settle(root, conn):
    write_raw(Paths(root).domain_file("running2"),
              '{"version": 1, "domain": "running2", "uuid": "%s", "vcpupin": {"0": "4"}}' % OTHER)
    fix = ("the policy of 'running2' was recorded for the domain with UUID %s, but this 'running2' has "
           "UUID %s; {} (run 'policyctl rebind running2' to keep it for this domain, or "
           "'policyctl remove running2')" % (OTHER, UUID2))
    before = snapshot_policy_files(root)
    assert run(root, conn, "schedweight", "running2", "300") == (
        errors.CONFLICT, "", "Error: %s\n" % fix.format("nothing saved"))
    assert snapshot_policy_files(root) == before
    code, out, err = run(root, conn, "cpupolicy", "running2")
    assert "Not applied: %s\n" % fix.format("it is not applied") in out
    code, out, err = run(root, conn, "verify", "running2")
    assert (code, out) == (errors.NOT_IN_FORCE,
                           "running2: NOT APPLIED: %s\n" % fix.format("it is not applied"))
    code, out, err = run(root, conn, "check")
    assert (code, out) == (errors.REGISTRY, "%s: %s\n" % (Paths(root).domain_file("running2"),
                                                           fix.format("it is not applied")))
    # rebind keeps the policy for this domain and puts it in force.
    code, out, err = run(root, conn, "rebind", "running2")
    assert (code, out, err) == (0, "running2: policy bound to this domain (UUID %s): saved; applied live\n"
                                   "  vcpupin 0 4\n" % UUID2, "")
    assert stored(root, "running2")["uuid"] == UUID2
    assert run(root, conn, "verify", "running2") == (0, "running2: in force\n", "")


def test_rename_moves_the_policy_and_its_occupancy(root, conn):
    # After `virsh domrename`: the policy still sits under the old name.
    paths = Paths(root)
    write_raw(paths.domain_file("oldname"),
              '{"version": 1, "domain": "oldname", "uuid": "%s", "weight": 7}' % UUID2)
    write_raw(paths.host_file, '{"version": 1, "cpuoccupy": {"2": ["oldname", "pinned1"]}}')
    code, out, err = run(root, conn, "rename", "oldname", "running2")
    assert (code, out, err) == (0, "oldname: policy moved to 'running2': saved\n", "")
    assert stored(root, "oldname") is None
    assert stored(root, "running2") == {"version": 1, "domain": "running2", "uuid": UUID2, "weight": 7}
    assert json.load(open(paths.host_file))["cpuoccupy"] == {"2": ["pinned1", "running2"]}


@pytest.mark.parametrize("old,new,message", [
    ("nosuch", "running2", "domain 'nosuch' has no policy"),
    ("oldname", "pinned1", "the policy of 'oldname' was recorded for the domain with UUID %s, but "
     "'pinned1' has UUID 11111111-2222-3333-4444-666666666666: not the same domain; nothing saved" % UUID2),
    ("oldname", "stopped",
     "domain 'stopped' has a policy already; remove it first (policyctl remove stopped)"),
    ("oldname", "oldname", "'oldname' is the name the policy has already"),
])
def test_rename_refusals(root, conn, old, new, message):
    paths = Paths(root)
    write_raw(paths.domain_file("oldname"), '{"version": 1, "domain": "oldname", "uuid": "%s"}' % UUID2)
    write_raw(paths.domain_file("stopped"), '{"version": 1, "domain": "stopped", "weight": 3}')
    before = snapshot_policy_files(root)
    code, out, err = run(root, conn, "rename", old, new)
    assert (out, err) == ("", "Error: %s\n" % message)
    assert code in (errors.INVALID, errors.CONFLICT)
    assert snapshot_policy_files(root) == before


# ---- verify --------------------------------------------------------------------------------


def test_verify_says_what_is_in_force(root, conn):
    assert run(root, conn, "verify") == (0, "No running domain has a policy.\n", "")
    assert run(root, conn, "vcpupin", "running2", "0", "2")[0] == 0
    assert run(root, conn, "schedweight", "stopped", "300")[0] == 0
    assert run(root, conn, "verify") == (0, "running2: in force\n", "")
    assert run(root, conn, "verify", "running2", "stopped") == (
        0, "running2: in force\nstopped: not running; applies at next start\n", "")
    conn.lookupByName("running2").pinVcpu(0, tuple(c == 4 for c in range(8)))   # behind our back
    code, out, err = run(root, conn, "verify")
    assert (code, out, err) == (errors.NOT_IN_FORCE,
                                "running2: DRIFT: vCPU 0: policy 2, live 4 (policyctl apply running2)\n",
                                "Error: 1 of 1 domain not in force: running2\n")
    code, out, err = run(root, conn, "verify", "--json")
    assert json.loads(out) == [{"domain": "running2", "status": "drift", "in_force": False, "error": None,
                                "uuid": None, "drift": [{"setting": "vcpupin", "index": 0, "policy": "2",
                                                         "live": "4"}]}]
    assert run(root, conn, "apply", "running2")[0] == 0
    assert run(root, conn, "verify")[0] == 0


def test_verify_needs_libvirt(root, conn):
    assert run(root, conn, "--offline", "verify") == (
        errors.INVALID, "", "Error: verify reads the live values from libvirt; it cannot work --offline\n")


def test_offline_vcpus_are_not_drift(root, conn):
    # <vcpu current='1'>2</vcpu>: libvirt keeps vCPU 1's pin and applies it at hotplug (QEMU;
    # the test driver refuses to pin an offline vCPU, so the pin is taken as stored).
    from policyhook import virt
    from policyhook.cpuset import CpuSet
    from policyhook.planner import Plan, drift

    dom = conn.defineXML("<domain type='test'><name>half</name><memory>65536</memory>"
                         "<vcpu current='1'>2</vcpu><os><type arch='i686'>hvm</type></os></domain>")
    dom.create()
    dom.pinVcpu(0, CpuSet.parse("0").to_bools(8))
    live = virt.live_values(dom)
    assert live.offline == {("vcpu", 1)}
    plan = Plan("half", "qemu", {("vcpu", 0): CpuSet.parse("0"), ("vcpu", 1): CpuSet.parse("2")})
    assert drift(plan, live) == []
    write_raw(Paths(root).domain_file("half"),
              '{"version": 1, "domain": "half", "vcpupin": {"0": "0", "1": "2"}}')
    assert run(root, conn, "verify", "half") == (0, "half: in force\n", "")
    code, out, err = run(root, conn, "cpupolicy", "half")
    assert "vCPU 1    2       2          offline\n" in out
    assert "Drift:       none; the live values match the policy\n" in out


# ---- the connection ---------------------------------------------------------------------


def _refusing(unreachable):
    def connect(uri):
        e = PolicyError("cannot connect to %s: %s" % (uri, "no daemon" if unreachable else
                                                      "no connection driver available for %s" % uri),
                        errors.LIBVIRT)
        e.unreachable = unreachable
        raise e
    return connect


def test_a_wrong_uri_is_an_error_and_nothing_is_saved(root, conn):
    before = snapshot_policy_files(root)
    code, out, err = run(root, conn, "-c", "bogus:///x", "schedweight", "running2", "300",
                         connect=_refusing(False))
    assert (code, out, err) == (errors.LIBVIRT, "", "Error: cannot connect to bogus:///x: no connection "
                                                    "driver available for bogus:///x\n")
    assert snapshot_policy_files(root) == before


def test_a_daemon_that_does_not_answer_is_a_warning(root, conn):
    code, out, err = run(root, conn, "schedweight", "running2", "300", connect=_refusing(True))
    assert (code, out, err) == (0, "running2: weight 300: saved; not applied live (libvirt unreachable)\n",
                                "Warning: cannot connect to %s: no daemon; the change is saved "
                                "but not applied live\n" % URI)


@pytest.mark.parametrize("argv,environ,conf,expected", [
    (["-c", "test:///a"], {"LIBVIRT_DEFAULT_URI": "test:///b"}, "test:///c", "test:///a"),
    ([], {"LIBVIRT_DEFAULT_URI": "test:///b"}, "test:///c", "test:///b"),
    ([], {}, "test:///c", "test:///c"),
    ([], {}, None, "qemu:///system"),
])
def test_uri_order(root, conn, argv, environ, conf, expected):
    if conf:
        write_raw(Paths(root).conf, "[libvirt]\nuri = %s\n" % conf)
    seen = []
    run(root, conn, *(argv + ["cpupolicy", "running2"]), environ=environ,
        connect=lambda uri: seen.append(uri) or conn)
    assert seen == [expected]


# ---- one broken file hides nothing ----------------------------------------------------------


def test_list_shows_what_it_can_and_names_what_it_cannot(root, conn):
    paths = Paths(root)
    write_raw(paths.domain_file("good"), '{"version": 1, "domain": "good", "weight": 5}')
    write_raw(paths.domain_file("bad"), '{"version": 1, "domain": "bad", "weight": 0}')
    write_raw(paths.domain_file("worse"), 'not json')
    code, out, err = run(root, conn, "list")
    assert code == errors.REGISTRY
    assert out.splitlines()[1].split() == ["good", "-", "-", "-", "5", "-", "-"]
    assert len(out.splitlines()) == 2
    assert err.splitlines() == [
        "Error: %s: $.weight: 0 is not in 1..65535; fix it or run 'policyctl check'"
        % paths.domain_file("bad"),
        "Error: %s: not valid JSON: Expecting value: line 1 column 1 (char 0); fix it or run 'policyctl "
        "check'" % paths.domain_file("worse")]


def test_check_reports_a_missing_root(tmp_path, conn):
    root = str(tmp_path / "nothing-here")
    code, out, err = run(root, conn, "check")
    assert (code, out, err) == (errors.REGISTRY, "%s/etc/policyhook: does not exist (nothing is installed "
                                                 "under %s; see --root)\n" % (root, root), "")


@pytest.mark.parametrize("enforce,boolean,warned", [
    (True, "0 0", True), (True, "1 1", False), (False, None, False), (True, None, False)])
def test_check_warns_when_selinux_confines_the_hook(root, conn, enforce, boolean, warned):
    selinux = Paths(root).selinux
    if enforce:
        write_raw(os.path.join(selinux, "enforce"), "1")
    if boolean is not None:
        write_raw(os.path.join(selinux, "booleans", "virt_hooks_unconfined"), boolean)
    code, out, err = run(root, conn, "check")
    warning = ("warning: SELinux is enabled and the boolean virt_hooks_unconfined is off: libvirt runs the "
               "hook confined and the applier may be denied, so policies may not be put in force at start "
               "(setsebool -P virt_hooks_unconfined on)\n")
    assert code == 0
    assert (warning in out) == warned


def test_a_user_is_told_that_changes_need_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root, to run policyctl as another user")
    import tempfile

    root = tempfile.mkdtemp(prefix="policyhook-user-")   # a tree every user may walk
    os.chmod(root, 0o755)
    paths = Paths(root)
    os.makedirs(paths.domains)
    os.makedirs(paths.run)
    before = snapshot_policy_files(root)
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
    env = dict(os.environ, PYTHONPATH=REPO)
    if subprocess.run(as_user + ["-c", "import filelock"], capture_output=True, env=env).returncode:
        shutil.rmtree(root)
        pytest.skip("this interpreter cannot run as another user (its files are root's alone)")
    r = subprocess.run(as_user + ["-m", "policyhook.cli", "--root", root, "--offline", "schedweight", "vm1",
                                  "300"], capture_output=True, text=True, cwd=REPO, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (
        errors.REGISTRY, "",
        "Error: changing the policy needs root (%s cannot be locked: Permission denied)\n" % paths.lock)
    assert snapshot_policy_files(root) == before
    shutil.rmtree(root)
