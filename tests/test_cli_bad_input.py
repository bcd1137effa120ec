"""policyctl through main(argv): every bad input gives its exit code, one exact line
`Error: ...` on stderr, no traceback, and leaves every file byte for byte as it was.
The good paths print what scripts rely on and write only what they say."""

import io
import json
import os

import oracle
import pytest
from unit_helpers import make_registry, policy, snapshot, write_raw

from policyhook import errors
from policyhook.cli import main
from policyhook.paths import Paths

# What --offline validates against: this machine's CPUs, read from sysfs by the test
# itself, so that neither the expected messages nor the skip below depend on the
# CpuSet parsing under test.
HOST_CPUS = oracle.host_cpus()
HOST = oracle.cpulist_text(HOST_CPUS)
LAST = HOST_CPUS[-1]
BEYOND = LAST + 1
NCPUS = len(HOST_CPUS)
if NCPUS < 2:
    pytest.skip("these tests occupy a CPU and need a host with two CPUs or more", allow_module_level=True)


@pytest.fixture
def root(tmp_path):
    """A registry with two policies and a host.json: vm1 pins vCPU 0 to CPU 0, weight 300,
    and occupies the last CPU; vm2 has cap 50."""
    make_registry(tmp_path, [policy("vm1", {0: "0"}, weight=300), policy("vm2", cap=50)],
                  {LAST: ["vm1"]})
    write_raw(Paths(str(tmp_path)).conf, "[policyctl]\nlock_timeout = 2\n")
    return str(tmp_path)


def run(root, *argv, offline=True):
    out, err = io.StringIO(), io.StringIO()
    prefix = ["--root", root] + (["--offline"] if offline else [])
    code = main(prefix + list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


BAD = [
    # (argv, exit code, the one line on stderr after "Error: ")
    # domain names
    (["vcpupin", "a/b", "0", "0"], errors.INVALID, "invalid domain name 'a/b': '/' is not allowed"),
    (["vcpupin", "../vm1", "0", "0"], errors.INVALID, "invalid domain name '../vm1': '/' is not allowed"),
    (["vcpupin", ".hidden", "0", "0"], errors.INVALID,
     "invalid domain name '.hidden': it cannot start with '.'"),
    (["vcpupin", "", "0", "0"], errors.INVALID, "invalid domain name '': a domain name cannot be empty"),
    (["vcpupin", "a\nb", "0", "0"], errors.INVALID,
     "invalid domain name 'a\\nb': control characters are not allowed"),
    (["schedweight", "a\x00b", "5"], errors.INVALID,
     "invalid domain name 'a\\x00b': control characters are not allowed"),
    (["schedcap", "x" * 201, "5"], errors.INVALID,
     "invalid domain name '%s': it is longer than 200 bytes" % ("x" * 201)),
    (["cpupolicy", "a/b"], errors.INVALID, "invalid domain name 'a/b': '/' is not allowed"),
    (["remove", "../x"], errors.INVALID, "invalid domain name '../x': '/' is not allowed"),
    (["unset", ".x", "weight"], errors.INVALID, "invalid domain name '.x': it cannot start with '.'"),
    # vCPU numbers
    (["vcpupin", "vm1", "-1", "0"], errors.INVALID, "invalid vCPU '-1': not a whole number"),
    (["vcpupin", "vm1", "x", "0"], errors.INVALID, "invalid vCPU 'x': not a whole number"),
    (["vcpupin", "vm1", "1.0", "0"], errors.INVALID, "invalid vCPU '1.0': not a whole number"),
    (["vcpupin", "vm1", "x\ny", "0"], errors.INVALID, "invalid vCPU 'x\\ny': not a whole number"),
    (["vcpupin", "vm1", "\u0661", "0"], errors.INVALID, "invalid vCPU '\u0661': not a whole number"),
    (["vcpupin", "vm1", "99999", "0"], errors.INVALID, "invalid vCPU 99999: must be 0..16383"),
    (["vcpupin", "vm1", "16384", "0"], errors.INVALID, "invalid vCPU 16384: must be 0..16383"),
    (["vcpupin", "vm1", "9" * 5000, "0"], errors.INVALID,
     "invalid vCPU 99999999999999999...: must be 0..16383"),
    (["unset", "vm1", "vcpupin", "x"], errors.INVALID, "invalid vCPU 'x': not a whole number"),
    # cpulists
    (["vcpupin", "vm1", "0", ""], errors.INVALID, "invalid cpulist '': it is empty"),
    (["vcpupin", "vm1", "0", "3-1"], errors.INVALID, "invalid cpulist '3-1': range 3-1 is reversed"),
    (["vcpupin", "vm1", "0", "1,,2"], errors.INVALID, "invalid cpulist '1,,2': empty item between commas"),
    (["vcpupin", "vm1", "0", "0,"], errors.INVALID, "invalid cpulist '0,': trailing comma"),
    (["vcpupin", "vm1", "0", "^0"], errors.INVALID, "invalid cpulist '^0': it names no CPU"),
    (["vcpupin", "vm1", "0", "01"], errors.INVALID, "invalid cpulist '01': '01' has a leading zero"),
    (["vcpupin", "vm1", "0", "a"], errors.INVALID, "invalid cpulist 'a': 'a' is not a CPU number"),
    (["vcpupin", "vm1", "0", "8192"], errors.INVALID,
     "invalid cpulist '8192': CPU 8192 is above the maximum 8191"),
    (["vcpupin", "vm1", "0", str(BEYOND)], errors.INVALID,
     "invalid cpulist '%d': CPU %d not on this host (host CPUs: %s)" % (BEYOND, BEYOND, HOST)),
    (["vcpupin", "vm1", "0", "0-%d" % (BEYOND + 2)], errors.INVALID,
     "invalid cpulist '0-%d': CPU %d-%d not on this host (host CPUs: %s)"
     % (BEYOND + 2, BEYOND, BEYOND + 2, HOST)),
    (["emulatorpin", "vm1", str(BEYOND)], errors.INVALID,
     "invalid cpulist '%d': CPU %d not on this host (host CPUs: %s)" % (BEYOND, BEYOND, HOST)),
    (["cpuoccupy", str(BEYOND), "vm1"], errors.INVALID,
     "invalid cpulist '%d': CPU %d not on this host (host CPUs: %s)" % (BEYOND, BEYOND, HOST)),
    (["cpuoccupy", "x", "vm1"], errors.INVALID, "invalid cpulist 'x': 'x' is not a CPU number"),
    # weight and cap
    (["schedweight", "vm1", "0"], errors.INVALID, "invalid weight 0: must be 1..65535"),
    (["schedweight", "vm1", "65536"], errors.INVALID, "invalid weight 65536: must be 1..65535"),
    (["schedweight", "vm1", "abc"], errors.INVALID, "invalid weight 'abc': not a whole number"),
    (["schedweight", "vm1", "256.0"], errors.INVALID, "invalid weight '256.0': not a whole number"),
    (["schedweight", "vm1", "-5"], errors.INVALID, "invalid weight '-5': not a whole number"),
    (["schedcap", "vm1", "-1"], errors.INVALID, "invalid cap '-1': not a whole number"),
    (["schedcap", "vm1", "50%"], errors.INVALID, "invalid cap '50%': not a whole number"),
    (["schedcap", "vm1", "99999999999999999999"], errors.INVALID,
     "invalid cap 99999999999999999999: must be 0..819200"),
    (["schedcap", "vm1", str(100 * NCPUS + 1)], errors.INVALID,
     "invalid cap %d: above %d (100 x %d host CPUs)" % (100 * NCPUS + 1, 100 * NCPUS, NCPUS)),
    # commands and arguments
    ([], errors.INVALID, "the following arguments are required: COMMAND (see 'policyctl --help')"),
    (["bogus"], errors.INVALID,
     "argument COMMAND: invalid choice: 'bogus' (choose from 'vcpupin', 'emulatorpin', 'iothreadpin', "
     "'schedweight', 'schedcap', 'vcpusched', 'cpuoccupy', 'unset', 'remove', 'rename', 'rebind', "
     "'cpupolicy', 'verify', 'list', 'occupancy', 'check', 'watch', 'apply') (see 'policyctl --help')"),
    (["vcpupin"], errors.INVALID,
     "the following arguments are required: DOMAIN (see 'policyctl vcpupin --help')"),
    (["vcpupin", "vm1", "0"], errors.INVALID,
     "the following arguments are required: CPULIST (see 'policyctl vcpupin --help')"),
    (["vcpupin", "vm1", "0", "1", "extra"], errors.INVALID,
     "unrecognized arguments: extra (see 'policyctl --help')"),
    (["schedweight", "vm1", "5", "--bogus"], errors.INVALID,
     "unrecognized arguments: --bogus (see 'policyctl --help')"),
    (["unset", "vm1", "colour"], errors.INVALID,
     "argument SETTING: invalid choice: 'colour' (choose from 'vcpupin', 'emulatorpin', 'iothreadpin', "
     "'weight', 'cap', 'vcpusched') (see 'policyctl unset --help')"),
    # a second '--' is a value argparse would turn into an empty list (found by the fuzz test)
    (["unset", "vm1", "--", "--"], errors.INVALID,
     "argument SETTING: expected one argument (see 'policyctl unset --help')"),
    (["rename", "--", "--", "--"], errors.INVALID,
     "argument NEW: expected one argument (see 'policyctl rename --help')"),
    (["iothreadpin", "vm1", "0", "0"], errors.INVALID, "invalid IOThread ID 0: must be 1..4294967295"),
    (["iothreadpin", "vm1", "x", "0"], errors.INVALID, "invalid IOThread ID 'x': not a whole number"),
    (["iothreadpin", "vm1", "4294967296", "0"], errors.INVALID,
     "invalid IOThread ID 4294967296: must be 1..4294967295"),
    (["iothreadpin", "vm1", "1"], errors.INVALID,
     "the following arguments are required: CPULIST (see 'policyctl iothreadpin --help')"),
    (["unset", "vm1", "iothreadpin", "3"], errors.INVALID, "domain 'vm1' has no pin for IOThread 3"),
    (["cpuoccupy", "0"], errors.INVALID,
     "give DOMAINS, or --clear to free the CPUs (see 'policyctl cpuoccupy --help')"),
    (["cpuoccupy", "0", "vm1", "--clear"], errors.INVALID,
     "give DOMAINS, or --clear to free the CPUs (see 'policyctl cpuoccupy --help')"),
    (["cpuoccupy", "0", "vm1,,vm2"], errors.INVALID, "invalid domain list 'vm1,,vm2': empty name"),
    (["cpuoccupy", "0", "vm1,vm1"], errors.INVALID,
     "invalid domain list 'vm1,vm1': a domain is listed twice"),
    (["cpuoccupy", "0", "vm1,a/b"], errors.INVALID, "invalid domain name 'a/b': '/' is not allowed"),
    (["apply"], errors.INVALID, "give DOMAIN names or --all (see 'policyctl apply --help')"),
    (["apply", "vm1"], errors.INVALID,
     "apply puts the policy in force through libvirt; it cannot work --offline"),
    (["apply", "--all"], errors.INVALID,
     "apply puts the policy in force through libvirt; it cannot work --offline"),
    # changes that make no sense for the stored policy
    (["unset", "vm1", "weight", "3"], errors.INVALID,
     "INDEX goes only with 'unset DOMAIN vcpupin VCPU' or 'unset DOMAIN iothreadpin IOTHREAD' "
     "or 'unset DOMAIN vcpusched VCPUS'"),
    (["unset", "vm1", "vcpupin", "3"], errors.INVALID, "domain 'vm1' has no pin for vCPU 3"),
    (["remove", "vm3"], errors.INVALID, "domain 'vm3' has no policy"),
    # conflicts with the occupancy: vm1 occupies the last CPU and pins vCPU 0 to CPU 0
    (["vcpupin", "vm2", "0", str(LAST)], errors.CONFLICT,
     "vCPU 0 of 'vm2' is pinned to %d (policy), which is occupied by vm1 (cpuoccupy); "
     "it would have no CPU left" % LAST),
    (["emulatorpin", "vm2", str(LAST)], errors.CONFLICT,
     "the emulator of 'vm2' is pinned to %d (policy), which is occupied by vm1 (cpuoccupy); "
     "it would have no CPU left" % LAST),
    (["cpuoccupy", "0", "vm2"], errors.CONFLICT,
     "vCPU 0 of 'vm1' is pinned to 0 (policy), which is occupied by vm2 (cpuoccupy); "
     "it would have no CPU left" if NCPUS > 2 else
     "cpuoccupy would occupy every host CPU (%s); domains outside the occupancy sets would have no "
     "CPU left" % HOST),
    (["cpuoccupy", str(HOST), "vm2"], errors.CONFLICT,
     "cpuoccupy would occupy every host CPU (%s); domains outside the occupancy sets would have no "
     "CPU left" % HOST),
]


@pytest.mark.parametrize("argv,code,message", BAD, ids=[repr(b[0])[:60] for b in BAD])
def test_bad_input(root, argv, code, message):
    before = snapshot(root)
    got, out, err = run(root, *argv)
    assert (got, err) == (code, "Error: %s\n" % message)
    assert out == ""
    assert "Traceback" not in err
    assert snapshot(root) == before


@pytest.mark.parametrize("argv,code,message", [b for b in BAD if b[1] == errors.INVALID][:12])
def test_bad_input_with_dry_run_and_json(root, argv, code, message):
    # The same refusals whatever the output options.
    before = snapshot(root)
    if len(argv) > 0 and argv[0] in ("vcpupin", "schedweight", "schedcap", "emulatorpin", "remove"):
        argv = argv[:1] + ["--dry-run", "--json"] + argv[1:]
    got, out, err = run(root, *argv)
    assert (got, err, out) == (code, "Error: %s\n" % message, "")
    assert snapshot(root) == before


def test_debug_shows_a_traceback(root):
    code, out, err = run(root, "--debug", "schedweight", "vm1", "0")
    assert code == errors.INVALID
    assert "Traceback" in err
    assert err.endswith("Error: invalid weight 0: must be 1..65535\n")


@pytest.mark.parametrize("path,data,message", [
    ("etc/policyhook/domains/vm1.json", b"{", "%s/etc/policyhook/domains/vm1.json: not valid JSON: Expecting "
     "property name enclosed in double quotes: line 1 column 2 (char 1); fix it or run 'policyctl check'"),
    ("etc/policyhook/host.json", b"[]", "%s/etc/policyhook/host.json: $: [] is not an object; "
     "fix it or run 'policyctl check'"),
    ("etc/policyhook/policyhook.conf", b"[hook]\non_error = maybe\n",
     "%s/etc/policyhook/policyhook.conf: [hook] on_error: 'maybe' is not one of start, refuse"),
])
def test_broken_registry_refuses_edits(root, path, data, message):
    write_raw(os.path.join(root, path), data)
    before = snapshot(root)
    code, out, err = run(root, "schedweight", "vm1", "5")
    # The same problem, the same exit code in every command (check's too).
    assert (code, err, out) == (errors.REGISTRY, "Error: %s\n" % (message % root), "")
    assert snapshot(root) == before


# ---- good paths --------------------------------------------------------------------------


def test_list_json(root):
    code, out, err = run(root, "list", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"domain": "vm1", "vcpupin": {"0": "0"}, "emulatorpin": None, "iothreadpin": {}, "weight": 300,
         "cap": None, "vcpusched": {}, "occupies": [LAST]},
        {"domain": "vm2", "vcpupin": {}, "emulatorpin": None, "iothreadpin": {}, "weight": None, "cap": 50,
         "vcpusched": {}, "occupies": []},
    ]


def test_list_text(root):
    code, out, err = run(root, "list")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "DOMAIN  VCPUPIN  EMULATOR  IOTHREADPIN  WEIGHT  CAP  OCCUPIES",
        "vm1     0:0      -         -            300     -    %d" % LAST,
        "vm2     -        -         -            -       50   -",
    ]


def test_list_empty(tmp_path):
    assert run(str(tmp_path), "list") == (0, "No domain has a policy.\n", "")
    assert run(str(tmp_path), "list", "--json") == (0, "[]\n", "")


def test_cpupolicy_json(root):
    code, out, err = run(root, "cpupolicy", "--json", "vm1")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert {k: doc[k] for k in ("domain", "vcpupin", "weight", "cap", "occupies")} == {
        "domain": "vm1", "vcpupin": {"0": "0"}, "weight": 300, "cap": None, "occupies": [LAST]}
    # --offline: libvirt was not asked, so nothing is said of the domain's definition.
    assert doc["stored"] is True and doc["running"] is False and doc["defined"] is None
    assert doc["host_cpus"] == str(HOST)
    assert doc["conflict"] is None and doc["live"] is None and doc["drift"] == []
    assert doc["effective"]["vcpupin"] == {"0": "0"}


def test_cpupolicy_of_a_domain_without_policy(root):
    code, out, err = run(root, "cpupolicy", "--json", "vm9")
    doc = json.loads(out)
    assert (code, err) == (0, "")
    assert doc["stored"] is False
    assert (doc["domain"], doc["vcpupin"], doc["weight"], doc["cap"], doc["occupies"]) == ("vm9", {}, None,
                                                                                            None, [])


def test_occupancy(root):
    # This machine's topology (the root has no sysfs of its own); --offline: no PINNED column.
    code, out, err = run(root, "occupancy", "--json")
    assert (code, err) == (0, "")
    cpus = {c["cpu"]: c for n in json.loads(out)["nodes"] for s in n["sockets"] for k in s["cores"]
            for c in k["cpus"]}
    assert sorted(cpus) == HOST_CPUS
    assert [c for c in cpus if cpus[c]["occupied_by"]] == [LAST] and cpus[LAST]["occupied_by"] == ["vm1"]
    code, out, err = run(root, "occupancy")
    lines = out.splitlines()
    assert lines[0].split() == ["NODE", "SOCKET", "CORE", "CPU", "OCCUPIED", "BY"]
    assert [line.split()[3:] for line in lines[1:1 + NCPUS]] == [
        [str(c), "vm1" if c == LAST else "-"] for c in HOST_CPUS]


def stored(root, name):
    path = Paths(root).domain_file(name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def test_set_and_unset(root):
    assert run(root, "vcpupin", "vm1", "1", "0-%d" % LAST) == (
        0, "vm1: vCPU 1 pinned to %s: saved; not applied live (--offline)\n" % HOST, "")
    assert run(root, "schedweight", "vm1", "512")[0] == 0
    assert run(root, "schedcap", "vm1", "0") == (
        0, "vm1: cap 0 (no cap): saved; not applied live (--offline)\n", "")
    assert run(root, "emulatorpin", "vm1", "0")[0] == 0
    assert stored(root, "vm1") == {"version": 1, "domain": "vm1", "vcpupin": {"0": "0", "1": str(HOST)},
                                   "emulatorpin": "0", "weight": 512, "cap": 0}
    assert run(root, "unset", "vm1", "vcpupin", "1") == (
        0, "vm1: vCPU 1 pin removed: saved; not applied live (--offline)\n", "")
    assert run(root, "unset", "vm1", "weight") == (
        0, "vm1: weight unset (default 256): saved; not applied live (--offline)\n", "")
    assert run(root, "unset", "vm1", "cap")[0] == 0
    assert run(root, "unset", "vm1", "emulatorpin")[0] == 0
    assert stored(root, "vm1") == {"version": 1, "domain": "vm1", "vcpupin": {"0": "0"}}
    # Removing the last setting removes the file.
    assert run(root, "unset", "vm1", "vcpupin")[0] == 0
    assert stored(root, "vm1") is None
    assert run(root, "check") == (0, "%s/etc/policyhook: the registry is valid\n" % root, "")


def test_new_domain(root):
    assert run(root, "schedweight", "new-vm", "1") == (
        0, "new-vm: weight 1: saved; not applied live (--offline)\n", "")
    assert stored(root, "new-vm") == {"version": 1, "domain": "new-vm", "weight": 1}


def test_json_outcome(root):
    code, out, err = run(root, "schedweight", "--json", "vm2", "512")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["domain"], doc["change"], doc["saved"], doc["status"]) == (
        "vm2", {"op": "set", "setting": "weight", "index": None, "value": 512}, True, "offline")
    assert doc["plan"]["sched"]["global_quota"] == 50000


def test_remove(root):
    assert run(root, "remove", "vm2") == (0, "vm2: policy removed: saved; not applied live (--offline)\n", "")
    assert stored(root, "vm2") is None
    assert run(root, "remove", "vm2") == (errors.INVALID, "", "Error: domain 'vm2' has no policy\n")
    assert sorted(os.listdir(Paths(root).domains)) == ["vm1.json"]


def test_cpuoccupy_and_clear_offline(root):
    host_file = Paths(root).host_file
    assert run(root, "cpuoccupy", str(LAST), "vm1,vm2") == (
        0, "CPU %d occupied by vm1, vm2: saved; not applied live (--offline)\n" % LAST, "")
    with open(host_file) as f:
        assert json.load(f) == {"version": 1, "cpuoccupy": {str(LAST): ["vm1", "vm2"]}}
    assert run(root, "cpuoccupy", str(LAST), "--clear") == (
        0, "CPU %d no longer occupied: saved; not applied live (--offline)\n" % LAST, "")
    assert not os.path.exists(host_file)
    assert all(line.split()[4] == "-" for line in run(root, "occupancy")[1].splitlines()[1:1 + NCPUS])


@pytest.mark.parametrize("argv", [
    ["vcpupin", "vm1", "1", "0"],
    ["vcpupin", "new", "0", "0"],
    ["emulatorpin", "vm1", "0"],
    ["schedweight", "vm1", "1"],
    ["schedcap", "vm2", "100"],
    ["unset", "vm1", "vcpupin", "0"],
    ["unset", "vm1", "weight"],
    ["remove", "vm1"],
    ["cpuoccupy", str(LAST), "vm2"],
    ["cpuoccupy", str(LAST), "--clear"],
])
def test_dry_run_writes_nothing(root, argv):
    before = snapshot(root)
    code, out, err = run(root, *(argv[:1] + ["--dry-run"] + argv[1:]))
    assert (code, err) == (0, "")
    assert "would be saved (dry run)" in out.splitlines()[0]
    assert snapshot(root) == before


def test_dry_run_shows_the_plan(root):
    assert run(root, "vcpupin", "--dry-run", "vm1", "1", "0") == (
        0, "vm1: vCPU 1 pinned to 0: would be saved (dry run)\n"
           "plan: vCPU 0 -> 0, vCPU 1 -> 0, cpu_shares=%d\n"
           % oracle.cpu_shares(300, oracle.cgroup_version()), "")


# ---- check -----------------------------------------------------------------------------


def test_check_valid(root):
    assert run(root, "check") == (0, "%s/etc/policyhook: the registry is valid\n" % root, "")
    code, out, err = run(root, "check", "--json")
    assert (code, json.loads(out), err) == (0, {"ok": True, "problems": [], "warnings": []}, "")


def test_check_reports_every_problem(root):
    paths = Paths(root)
    write_raw(paths.domain_file("bad"), '{"version": 1, "domain": "bad", "weight": 0}')
    write_raw(paths.domain_file("vm2"), '{"version": 1, "domain": "vm2", "cap": 50}', mode=0o666)
    write_raw(paths.conf, "[hook]\non_error = maybe\n")
    before = snapshot(root)
    problems = [
        "%s: [hook] on_error: 'maybe' is not one of start, refuse" % paths.conf,
        "%s: $.weight: 0 is less than the minimum of 1" % paths.domain_file("bad"),
        "%s: is group- or world-writable (mode 0666); refusing it (chmod go-w %s)"
        % (paths.domain_file("vm2"), paths.domain_file("vm2")),
    ]
    assert run(root, "check") == (errors.REGISTRY, "".join(p + "\n" for p in problems), "")
    code, out, err = run(root, "check", "--json")
    assert (code, err) == (errors.REGISTRY, "")
    assert json.loads(out) == {"ok": False, "problems": problems, "warnings": []}
    assert snapshot(root) == before


def test_check_needs_no_libvirt(root):
    # libvirt unreachable (no daemon for this URI): check is about the files first.
    write_raw(Paths(root).conf, "[libvirt]\nuri = qemu:///system?socket=/nonexistent\n")
    assert run(root, "check", offline=False)[0] == 0
