"""Host isolation's logic with a fake systemctl: the host's units kept off occupied CPUs
while an occupant runs, what they had recorded before it is changed and given back after,
and a crash at any step leaving a record the next update completes or undoes."""

import contextlib
import os

import pytest

from policyhook import isolation
from policyhook.cpuset import CpuSet
from policyhook.model import HostPolicy
from policyhook.paths import Paths
from policyhook.registry import Registry
from policyhook.systemd import Systemd, SystemdError

HOST = CpuSet.parse("0-7")
UNITS = ("system.slice", "user.slice", "init.scope")


class FakeSystemctl:
    """systemctl's show and set-property, over a dict; `fail_after` calls, it dies."""

    def __init__(self, allowed=None, fail_after=None):
        self.allowed = dict(allowed or {})
        self.calls = []
        self.fail_after = fail_after

    def __call__(self, argv):
        self.calls.append(argv)
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise SystemdError("killed")

        class R:
            returncode, stderr = 0, ""
        r = R()
        if argv[1] == "show":
            r.stdout = self.allowed.get(argv[-1], "").replace(",", " ") + "\n"
        else:
            assert argv[3] == "--"     # a unit is never read as an option
            unit, prop = argv[4], argv[5]
            self.allowed[unit] = prop.split("=", 1)[1]
            r.stdout = ""
        return r


@pytest.fixture
def paths(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "run", "systemd", "system"))
    return Paths(str(tmp_path))


def nolock(_path, _timeout):
    return contextlib.nullcontext()


def update(paths, fake, held, units=UNITS):
    return isolation.update(Registry(paths, lock=nolock), Systemd(fake, paths.root), HOST, held, units)


def test_held_cpus_are_those_of_sets_with_a_running_occupant():
    host = HostPolicy({1: ["a", "b"], 2: ["a", "b"], 5: ["c"]})
    assert isolation.held_cpus(host, ["b", "x"]) == CpuSet.parse("1-2")
    assert isolation.held_cpus(host, ["x"]) == CpuSet()


def test_the_host_is_kept_off_and_given_back(paths):
    fake = FakeSystemctl({"user.slice": "0-5"})
    r = update(paths, fake, CpuSet.parse("2-3"))
    assert r.changed == {"system.slice": "0-1,4-7", "user.slice": "0-1,4-5", "init.scope": "0-1,4-7"}
    assert fake.allowed == {"system.slice": "0-1,4-7", "user.slice": "0-1,4-5", "init.scope": "0-1,4-7"}
    assert isolation.load(paths)["saved"] == {"system.slice": "", "user.slice": "0-5", "init.scope": ""}
    # Nothing changes when nothing needs to.
    assert update(paths, fake, CpuSet.parse("2-3")).changed == {}
    # The last occupant stopped: every unit gets what it had, and the record goes.
    r = update(paths, fake, CpuSet())
    assert r.restored == {"system.slice": "", "user.slice": "0-5", "init.scope": ""}
    assert fake.allowed == {"system.slice": "", "user.slice": "0-5", "init.scope": ""}
    assert not os.path.exists(os.path.join(paths.run, "isolation.json"))


def test_what_a_unit_had_is_recorded_before_it_is_changed(paths):
    for calls in range(1, 8):
        fake = FakeSystemctl({"user.slice": "0-5"}, fail_after=calls)
        with contextlib.suppress(SystemdError):
            update(paths, fake, CpuSet.parse("2-3"))
        saved = isolation.load(paths)["saved"]
        for unit, value in fake.allowed.items():
            if value != {"user.slice": "0-5"}.get(unit, ""):
                # Every unit changed has its original on record.
                assert unit in saved, (calls, fake.calls)
        # The next update, after the crash, undoes everything.
        fake.fail_after = None
        update(paths, fake, CpuSet())
        assert {u: v for u, v in fake.allowed.items() if v} == {"user.slice": "0-5"}
        assert isolation.load(paths) == {"saved": {}, "applied": {}}


def test_no_systemd_no_isolation(tmp_path):
    paths = Paths(str(tmp_path))
    fake = FakeSystemctl()
    r = isolation.update(Registry(paths, lock=nolock), Systemd(fake, paths.root), HOST, CpuSet.parse("1"),
                         UNITS)
    assert r.skipped == "systemd does not run this host: nothing to isolate the host's processes with"
    assert fake.calls == []


def test_a_unit_with_no_cpu_left_is_left_alone(paths):
    fake = FakeSystemctl({"user.slice": "2-3"})
    r = update(paths, fake, CpuSet.parse("2-3"))
    assert r.problems == ["user.slice: every CPU it may use (2-3) is occupied; left as it is"]
    assert fake.allowed["user.slice"] == "2-3"


def test_systemctl_failing_is_a_problem_reported_not_an_exception(paths):
    class Busy(FakeSystemctl):
        def __call__(self, argv):
            if argv[1] == "show" and argv[-1] == "user.slice":
                raise SystemdError("systemctl show user.slice: Connection timed out")
            return FakeSystemctl.__call__(self, argv)
    fake = Busy()
    r = update(paths, fake, CpuSet.parse("2-3"))
    assert r.problems == ["systemctl show user.slice: Connection timed out"]
    assert r.changed == {"system.slice": "0-1,4-7", "init.scope": "0-1,4-7"}
    r = update(paths, fake, CpuSet.parse("2-3"))   # steady state: the check fails again, reported
    assert r.problems == ["systemctl show user.slice: Connection timed out"]
