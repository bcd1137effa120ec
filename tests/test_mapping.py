"""Xen credit weight and cap mapped onto each driver's scheduler parameters, and back."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhook import mapping
from policyhook.limits import CAP_MAX, WEIGHT_DEFAULT, WEIGHT_MAX, WEIGHT_MIN
from policyhook.mapping import driver_of, from_live, sched_params, sets, shares

# cgroup v1: cpu.shares = 4 * weight. cgroup v2: cpu.weight = clamp(round(weight * 100 / 256), 1, 10000).
WEIGHTS = [
    # (weight, v1 cpu_shares, v2 cpu_shares)
    (1, 4, 1),
    (2, 8, 1),
    (3, 12, 1),
    (4, 16, 2),
    (128, 512, 50),
    (256, 1024, 100),
    (512, 2048, 200),
    (1000, 4000, 391),
    (25600, 102400, 10000),
    (25601, 102404, 10000),
    (65535, 262140, 10000),
]


@pytest.mark.parametrize("driver", ["qemu", "lxc"])
@pytest.mark.parametrize("weight,v1,v2", WEIGHTS, ids=[str(w[0]) for w in WEIGHTS])
def test_weight_to_cpu_shares(driver, weight, v1, v2):
    assert shares(weight, 1) == v1
    assert shares(weight, 2) == v2
    assert sched_params(driver, 1, weight=weight) == {"cpu_shares": v1}
    assert sched_params(driver, 2, weight=weight) == {"cpu_shares": v2}


CAPS = [
    # (cap in % of one CPU, global_quota in us per 100000 us)
    (0, -1),
    (1, 1000),
    (50, 50000),
    (100, 100000),
    (400, 400000),
    (CAP_MAX, CAP_MAX * 1000),
]


@pytest.mark.parametrize("cgroup", [1, 2])
@pytest.mark.parametrize("cap,quota", CAPS, ids=[str(c[0]) for c in CAPS])
def test_cap_to_global_quota(cgroup, cap, quota):
    assert sched_params("qemu", cgroup, cap=cap) == {"global_period": 100000, "global_quota": quota}


@pytest.mark.parametrize("cgroup", [1, 2])
@pytest.mark.parametrize("cap,quota", CAPS, ids=[str(c[0]) for c in CAPS])
def test_cap_on_lxc_is_the_container_cgroups_quota(cgroup, cap, quota):
    # libvirt's LXC driver accepts only cpu_shares, vcpu_period and vcpu_quota (measured on
    # 9.0: global_* raise "Attribute name ... could not be recognized"); the container is one
    # cgroup, so vcpu_quota limits the whole domain, as global_quota does for QEMU.
    assert sched_params("lxc", cgroup, cap=cap) == {"vcpu_period": 100000, "vcpu_quota": quota}


def test_weight_and_cap_together():
    assert sched_params("qemu", 1, weight=512, cap=50) == {
        "cpu_shares": 2048, "global_period": 100000, "global_quota": 50000}
    assert sched_params("qemu", 2, weight=512, cap=0) == {
        "cpu_shares": 200, "global_period": 100000, "global_quota": -1}


def test_nothing_set_means_no_parameters():
    for driver in mapping.DRIVERS:
        for cgroup in (1, 2):
            assert sched_params(driver, cgroup) == {}


@pytest.mark.parametrize("cgroup", [1, 2])
@pytest.mark.parametrize("weight,cap", [(1, 0), (256, 50), (65535, 400), (None, 7), (9, None)])
def test_libxl_passes_weight_and_cap_as_they_are(cgroup, weight, cap):
    expected = {}
    if weight is not None:
        expected["weight"] = weight
    if cap is not None:
        expected["cap"] = cap
    assert sched_params("libxl", cgroup, weight=weight, cap=cap) == expected
    assert from_live("libxl", cgroup, expected) == (weight, cap)


def test_unknown_driver_is_an_error():
    with pytest.raises(ValueError) as info:
        sched_params("vbox", 1, weight=5)
    assert str(info.value) == "unknown driver 'vbox'"


@pytest.mark.parametrize("driver,cgroup,weight,cap,expected", [
    ("qemu", 1, True, False, {"cpu_shares": 1024}),
    ("qemu", 2, True, False, {"cpu_shares": 100}),
    ("qemu", 1, False, True, {"global_period": 100000, "global_quota": -1}),
    ("lxc", 2, True, True, {"cpu_shares": 100, "vcpu_period": 100000, "vcpu_quota": -1}),
    ("libxl", 1, True, True, {"weight": 256, "cap": 0}),
])
def test_restores_put_back_the_defaults(driver, cgroup, weight, cap, expected):
    from policyhook.cpuset import CpuSet
    from policyhook.domxml import DomainFacts
    from policyhook.planner import Plan, restores

    old = Plan("vm", driver, sched=sched_params(driver, cgroup, weight=7 if weight else None,
                                                cap=30 if cap else None))
    assert sets(driver, "weight", old.sched) == weight and sets(driver, "cap", old.sched) == cap
    back = restores(Plan("vm", driver), old, DomainFacts("vm", driver), CpuSet.parse("0-3"), cgroup)
    assert back.sched == expected
    assert WEIGHT_DEFAULT == 256


LIVE = [
    # (cgroup version, live parameters, (weight, cap))
    (1, {"cpu_shares": 1024, "global_period": 100000, "global_quota": -1}, (256, 0)),
    (1, {"cpu_shares": 2048, "global_period": 100000, "global_quota": 50000}, (512, 50)),
    (1, {"cpu_shares": 1026}, (256, None)),               # set by hand, not a multiple of 4
    (1, {"global_period": 50000, "global_quota": 100000}, (None, 200)),   # another period
    (1, {"global_quota": 150000}, (None, 150)),           # period missing: the default
    (2, {"cpu_shares": 100, "global_period": 100000, "global_quota": -1}, (256, 0)),
    (2, {"cpu_shares": 200, "global_quota": 400000, "global_period": 100000}, (512, 400)),
    (2, {"cpu_shares": 10000}, (25600, None)),
    # cgroup v2's no limit (cpu.max "max"): libvirt 11 reads it back as its largest quota
    # (measured in the lab guest), and larger spellings mean the same.
    (2, {"global_period": 100000, "global_quota": 18446744073709551}, (None, 0)),
    (2, {"global_period": 100000, "global_quota": 17592186044415}, (None, 0)),
    (2, {"global_period": 100000, "global_quota": 17592186044414}, (None, 17592186044)),
    (1, {"global_period": 100000, "global_quota": 0}, (None, 0)),
    (1, {"vcpu_quota": 5, "emulator_period": 3}, (None, None)),
    (1, {}, (None, None)),
]


@pytest.mark.parametrize("cgroup,params,expected", LIVE, ids=[repr(x[1]) for x in LIVE])
def test_from_live(cgroup, params, expected):
    assert from_live("qemu", cgroup, params) == expected
    if "vcpu_quota" not in params:
        # The same values as LXC reports them: the cap in vcpu_period/vcpu_quota.
        lxc = {k.replace("global_", "vcpu_"): v for k, v in params.items()}
        assert from_live("lxc", cgroup, lxc) == expected
        assert from_live("lxc", cgroup, params)[1] is None


def test_from_live_on_lxc_ignores_global_parameters():
    assert from_live("lxc", 1, {"cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": 50000,
                                "global_quota": 7}) == (512, 50)


def test_unlimited_quota():
    for quota in (-1, 0, 18446744073709551, 2 ** 63 - 1, 17592186044415):
        assert mapping.quota_is_unlimited(quota)
    for quota in (1, 1000, 819200000, 17592186044414):
        assert not mapping.quota_is_unlimited(quota)


def test_from_live_inverse_on_cgroup_v1_for_every_weight():
    for weight in range(WEIGHT_MIN, WEIGHT_MAX + 1):
        assert from_live("qemu", 1, sched_params("qemu", 1, weight=weight)) == (weight, None)


def test_from_live_inverse_on_cgroup_v2_up_to_rounding():
    # cpu.weight has 10000 steps for 65535 weights: reading back gives a weight with the same
    # cpu.weight, so a round trip never reports drift.
    for weight in range(WEIGHT_MIN, WEIGHT_MAX + 1):
        back, _ = from_live("qemu", 2, sched_params("qemu", 2, weight=weight))
        assert shares(back, 2) == shares(weight, 2)
        if weight <= 25600:
            assert abs(back - weight) <= 2


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, 2]), st.sampled_from(["qemu", "lxc", "libxl"]),
       st.none() | st.integers(WEIGHT_MIN, WEIGHT_MAX), st.none() | st.integers(0, CAP_MAX))
def test_from_live_inverts_sched_params(cgroup, driver, weight, cap):
    params = sched_params(driver, cgroup, weight=weight, cap=cap)
    back_weight, back_cap = from_live(driver, cgroup, params)
    assert back_cap == cap
    if weight is None:
        assert back_weight is None
    elif driver == "qemu" and cgroup == 2 or driver == "lxc" and cgroup == 2:
        assert shares(back_weight, 2) == shares(weight, 2)
    else:
        assert back_weight == weight


@pytest.mark.parametrize("text,driver", [
    ("qemu", "qemu"), ("kvm", "qemu"), ("KVM", "qemu"), ("hvf", "qemu"), ("tcg", "qemu"),
    ("lxc", "lxc"), ("xen", "libxl"), ("libxl", "libxl"), ("vbox", None), ("", None), (None, None),
])
def test_driver_of(text, driver):
    assert driver_of(text) == driver


def test_local_cgroup_version(tmp_path):
    assert mapping.local_cgroup_version(str(tmp_path)) == 1
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert mapping.local_cgroup_version(str(tmp_path)) == 2


@pytest.mark.parametrize("live_quota,expected", [
    (-1, []),
    (18446744073709551, []),          # cgroup v2's "max"
    (None, []),
    (50000, ["global_quota: policy -1, live 50000"]),
])
def test_drift_knows_every_spelling_of_no_cap(live_quota, expected):
    from policyhook.describe import drift_line
    from policyhook.planner import Live, Plan, drift

    effective = Plan("vm", "qemu", sched={"global_period": 100000, "global_quota": -1})
    sched = {"global_period": 100000}
    if live_quota is not None:
        sched["global_quota"] = live_quota
    assert [drift_line(d) for d in drift(effective, Live(sched=sched))] == expected
