"""The planner: policy + host + domain facts + occupancy -> concrete pins, or CONFLICT."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit_helpers import pinned, policy

from policyhook import errors
from policyhook.cpuset import CpuSet
from policyhook.describe import note_lines
from policyhook.domxml import DomainFacts, parse_domain_xml
from policyhook.errors import PolicyError
from policyhook.model import DomainPolicy, HostPolicy
from policyhook.planner import Plan, plan

HOST4 = CpuSet.parse("0-3")


def facts(name="vm", vcpus=2, pins=None, emulator=None, driver="qemu", iothreads=(), iopins=None):
    found = {("vcpu", v): CpuSet.parse(c) for v, c in (pins or {}).items()}
    found.update((("iothread", i), CpuSet.parse(c)) for i, c in (iopins or {}).items())
    if emulator is not None:
        found[("emulator", 0)] = CpuSet.parse(emulator)
    return DomainFacts(name, driver, vcpus, None, found, iothreads=iothreads if vcpus is not None else None)


def shown(p):
    """A plan as plain strings, for exact comparison."""
    doc = p.to_doc()
    return doc["vcpupin"], doc["emulatorpin"], doc["sched"]


CASES = [
    # (id, policy, occupancy, facts, (vcpupin, emulatorpin, sched))
    ("no policy, nothing occupied: empty plan",
     None, {}, facts(), ({}, None, {})),
    ("empty policy: empty plan",
     DomainPolicy("vm"), {}, facts(), ({}, None, {})),
    ("pins as stored",
     policy("vm", {0: "0", 1: "2-3"}), {}, facts(), ({"0": "0", "1": "2-3"}, None, {})),
    ("only the pinned vCPU is touched",
     policy("vm", {1: "1"}), {}, facts(vcpus=4), ({"1": "1"}, None, {})),
    ("vCPU count unknown: the stored pins",
     policy("vm", {7: "1"}), {}, facts(vcpus=None), ({"7": "1"}, None, {})),
    ("emulator pin",
     policy("vm", emulator="0-1"), {}, facts(), ({}, "0-1", {})),
    ("weight and cap, cgroup v1",
     policy("vm", weight=512, cap=50), {}, facts(),
     ({}, None, {"cpu_shares": 2048, "global_period": 100000, "global_quota": 50000})),
    ("XML pins alone are libvirt's business",
     None, {}, facts(pins={0: "1"}, emulator="2"), ({}, None, {})),
    ("policy pin wins over the XML pin",
     policy("vm", {0: "3"}), {}, facts(pins={0: "1"}), ({"0": "3"}, None, {})),
    ("occupancy moves a non-occupant off the occupied CPUs",
     None, {1: ["other"]}, facts(), ({"0": "0,2-3", "1": "0,2-3"}, "0,2-3", {})),
    ("occupancy of several CPUs by several domains",
     None, {0: ["a", "b"], 3: ["c"]}, facts(vcpus=1), ({"0": "1-2"}, "1-2", {})),
    ("occupancy takes the CPU out of a policy pin",
     policy("vm", {0: "0-1"}, emulator="1-2"), {1: ["other"]}, facts(),
     ({"0": "0", "1": "0,2-3"}, "2", {})),
    ("XML pins are the base under occupancy",
     None, {2: ["other"]}, facts(pins={0: "1-2", 1: "3"}, emulator="2-3"),
     ({"0": "1", "1": "3"}, "3", {})),
    ("an occupant keeps its pins",
     policy("vm", {0: "1", 1: "0-1"}, emulator="1"), {1: ["vm"], 2: ["other"]}, facts(),
     ({"0": "1", "1": "0-1"}, "1", {})),
    ("an occupant with no pins runs on its CPUs and the shared ones",
     None, {1: ["vm", "x"], 2: ["other"]}, facts(), ({"0": "0-1,3", "1": "0-1,3"}, "0-1,3", {})),
    ("an occupant only of its own CPUs: nothing to keep it off",
     policy("vm", {0: "1"}), {1: ["vm"]}, facts(), ({"0": "1"}, None, {})),
    ("occupied CPUs not on this host are ignored",
     None, {9: ["other"]}, facts(), ({}, None, {})),
]


@pytest.mark.parametrize("stored,occupancy,domain,expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan(stored, occupancy, domain, expected):
    p = plan(stored, HostPolicy(occupancy), domain, HOST4)
    assert shown(p) == expected
    assert p.domain == "vm" and p.driver == "qemu"
    assert Plan.from_doc(p.to_doc()) == p


CONFLICTS = [
    ("vCPU beyond the count",
     policy("vm", {2: "0"}), {}, facts(vcpus=2),
     "vCPU 2 of 'vm' has a pin, but the domain has 2 vCPUs (0-1)"),
    ("vCPU beyond a single vCPU",
     policy("vm", {0: "0", 5: "1"}), {}, facts(vcpus=1),
     "vCPU 5 of 'vm' has a pin, but the domain has 1 vCPU (0)"),
    ("vCPU pin beyond the host",
     policy("vm", {0: "2-5"}), {}, facts(),
     "vCPU 0 of 'vm' is pinned to 2-5, but the host's CPUs are 0-3"),
    ("emulator pin beyond the host",
     policy("vm", emulator="4"), {}, facts(),
     "the emulator of 'vm' is pinned to 4, but the host's CPUs are 0-3"),
    ("a policy pin left empty by occupancy",
     policy("vm", {1: "2-3"}), {2: ["a"], 3: ["b", "c"]}, facts(),
     "vCPU 1 of 'vm' is pinned to 2-3 (policy), which is occupied by a, b, c (cpuoccupy); "
     "it would have no CPU left"),
    ("an XML pin left empty by occupancy",
     None, {1: ["other"]}, facts(pins={0: "1"}),
     "vCPU 0 of 'vm' is pinned to 1 (domain XML), which is occupied by other (cpuoccupy); "
     "it would have no CPU left"),
    ("the emulator pin left empty by occupancy",
     policy("vm", emulator="0"), {0: ["other"]}, facts(),
     "the emulator of 'vm' is pinned to 0 (policy), which is occupied by other (cpuoccupy); "
     "it would have no CPU left"),
    ("every CPU occupied by others",
     None, {0: ["a"], 1: ["a"], 2: ["b"], 3: ["b"]}, facts(),
     "vCPU 0 of 'vm' has no pin, and every host CPU (0-3) is occupied by a, b (cpuoccupy); "
     "it would have no CPU left"),
    ("every CPU occupied by others, vCPU count unknown",
     None, {0: ["a"], 1: ["a"], 2: ["b"], 3: ["b"]}, facts(vcpus=None),
     "the emulator of 'vm' has no pin, and every host CPU (0-3) is occupied by a, b (cpuoccupy); "
     "it would have no CPU left"),
]


@pytest.mark.parametrize("stored,occupancy,domain,message", [c[1:] for c in CONFLICTS],
                         ids=[c[0] for c in CONFLICTS])
def test_conflict(stored, occupancy, domain, message):
    with pytest.raises(PolicyError) as info:
        plan(stored, HostPolicy(occupancy), domain, HOST4)
    assert info.value.code == errors.CONFLICT
    assert str(info.value) == message


def test_notes_say_why_a_pin_differs():
    p = plan(policy("vm", {0: "0-1"}), HostPolicy({1: ["other"], 2: ["x"]}),
             facts(pins={1: "1-3"}, emulator="2-3"), HOST4)
    assert note_lines(p) == [
        "CPUs 1-2 are occupied by other domains (cpuoccupy); kept off them",
        "vCPU 0: 0-1 minus 1 occupied by other",
        "vCPU 1: 1-3 minus 1-2 occupied by other, x",
        "emulator: 2-3 minus 2 occupied by x",
    ]
    assert note_lines(plan(policy("vm", {0: "0"}), HostPolicy(), facts(), HOST4)) == []


@pytest.mark.parametrize("driver,cgroup,sched", [
    ("qemu", 2, {"cpu_shares": 200, "global_period": 100000, "global_quota": -1}),
    ("lxc", 1, {"cpu_shares": 2048, "vcpu_period": 100000, "vcpu_quota": -1}),
    ("libxl", 1, {"weight": 512, "cap": 0}),
])
def test_sched_per_driver(driver, cgroup, sched):
    p = plan(policy("vm", weight=512, cap=0), HostPolicy(), facts(driver=driver), HOST4, cgroup)
    assert p.sched == sched
    assert p.driver == driver


def test_plan_from_hook_xml():
    xml = """<domain type='kvm'><name>vm</name><vcpu placement='static'>3</vcpu>
      <cputune><vcpupin vcpu='2' cpuset='0-1'/><emulatorpin cpuset='3'/></cputune></domain>"""
    p = plan(policy("vm", {0: "2"}), HostPolicy({0: ["other"]}), parse_domain_xml(xml), HOST4)
    assert shown(p) == ({"0": "2", "1": "1-3", "2": "1"}, "3", {})


# ---- properties over random hosts, policies and occupancy --------------------------------

NAMES = ["a", "b", "c"]


@st.composite
def scenarios(draw):
    ncpus = draw(st.integers(1, 16))
    host = CpuSet.range(ncpus)
    cpu = st.integers(0, ncpus + 1)      # now and then a CPU the host does not have
    host_cpus = st.frozensets(st.integers(0, ncpus - 1), min_size=1, max_size=5).map(CpuSet)
    any_cpus = st.frozensets(cpu, min_size=1, max_size=4).map(CpuSet)
    some_cpus = st.one_of(host_cpus, host_cpus, host_cpus, any_cpus)
    occupancy = draw(st.dictionaries(cpu, st.lists(st.sampled_from(NAMES + ["e"]), min_size=1,
                                                   max_size=3, unique=True), max_size=4))
    domains = []
    for name in NAMES:
        vcpus = draw(st.none() | st.integers(1, 4))
        top = (vcpus or 3) + 1               # now and then a pin for a vCPU the domain lacks
        pins = draw(st.dictionaries(st.integers(0, top - 1), some_cpus, max_size=3))
        stored = None
        if draw(st.booleans()):
            stored = pinned(name, pins, draw(st.none() | some_cpus),
                            draw(st.none() | st.integers(1, 65535)),
                            draw(st.none() | st.integers(0, 400)))
        xml_pins = draw(st.dictionaries(st.integers(0, (vcpus or 1) - 1), host_cpus, max_size=2))
        xml_emulator = draw(st.none() | host_cpus)
        found = {("vcpu", v): c for v, c in xml_pins.items()}
        if xml_emulator is not None:
            found[("emulator", 0)] = xml_emulator
        domains.append((stored, DomainFacts(name, "qemu", vcpus, None, found,
                                            iothreads=() if vcpus is not None else None)))
    return host, HostPolicy(occupancy), domains


def expected_refusal(stored, host, domain, host_cpus):
    """Whether the policy cannot be satisfied, by the rules of doc/design.md, computed independently."""
    pins = stored.pins_of("vcpu") if stored else {}
    emulator = stored.pins_of("emulator").get(0) if stored else None
    if domain.vcpus is not None and any(v >= domain.vcpus for v in pins):
        return True
    if any(not set(c) <= set(host_cpus) for c in pins.values()):
        return True
    if emulator is not None and not set(emulator) <= set(host_cpus):
        return True
    taken = {c for c, names in host.occupancy.items() if domain.name not in names} & set(host_cpus)
    if not taken:
        return False
    vcpus = range(domain.vcpus) if domain.vcpus is not None else sorted(pins)
    for v in vcpus:
        base = pins.get(v) or domain.pins.get(("vcpu", v)) or host_cpus
        if set(base) <= taken:
            return True
    base = emulator or domain.pins.get(("emulator", 0)) or host_cpus
    return set(base) <= taken


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_plans_keep_everyone_off_cpus_occupied_by_others(scenario):
    host_cpus, host, domains = scenario
    for stored, domain in domains:
        name = domain.name
        try:
            p = plan(stored, host, domain, host_cpus)
        except PolicyError as e:
            assert e.code == errors.CONFLICT
            assert expected_refusal(stored, host, domain, host_cpus), str(e)
            continue
        assert not expected_refusal(stored, host, domain, host_cpus)
        others = set(host.occupied_by_others(name)) & set(host_cpus)
        vcpupin, emulatorpin = p.pins_of("vcpu"), p.pins.get(("emulator", 0))
        effective = list(p.pins.values())
        for cpus in effective:
            # (a) never on a CPU occupied by a set it is not part of; (b) never empty
            assert not set(cpus) & others
            assert cpus
        if others and domain.vcpus is not None:
            # every vCPU and the emulator are pinned, so none can wander onto those CPUs
            assert sorted(vcpupin) == list(range(domain.vcpus))
            assert emulatorpin is not None
        pins = stored.pins_of("vcpu") if stored else {}
        stored_emulator = stored.pins_of("emulator").get(0) if stored else None
        for vcpu, cpus in pins.items():
            # (c) a policy pin loses only CPUs occupied by others; an occupant keeps its own
            assert vcpupin[vcpu] == cpus - CpuSet(others)
            for cpu in host.occupies(name):
                if cpu in cpus:
                    assert cpu in vcpupin[vcpu]
        if stored_emulator is not None:
            assert emulatorpin == stored_emulator - CpuSet(others)
        if not others:
            # nothing to keep off: exactly the stored policy, libvirt's own placement for the rest
            assert vcpupin == pins
            assert emulatorpin == stored_emulator
        for cpus in p.pins.values():
            assert cpus.issubset(host_cpus)


@settings(max_examples=30, deadline=None)
@given(scenarios())
def test_plan_is_pure_and_deterministic(scenario):
    host_cpus, host, domains = scenario
    for stored, domain in domains:
        before = None if stored is None else stored.to_doc()
        try:
            first = plan(stored, host, domain, host_cpus)
        except PolicyError as e:
            with pytest.raises(PolicyError) as again:
                plan(stored, host, domain, host_cpus)
            assert str(again.value) == str(e)
            continue
        assert plan(stored, host, domain, host_cpus) == first
        assert (None if stored is None else stored.to_doc()) == before


# ---- IOThreads: a row of the table like the others ---------------------------------------


def test_iothread_pins_as_stored():
    p = plan(policy("vm", iothreads={1: "2", 2: "0-1"}), HostPolicy(), facts(iothreads=(1, 2)), HOST4)
    assert p.to_doc()["iothreadpin"] == {"1": "2", "2": "0-1"}


def test_iothreads_kept_off_occupied_cpus():
    p = plan(policy("vm", iothreads={2: "1-2"}), HostPolicy({1: ["other"]}),
             facts(iothreads=(1, 2)), HOST4)
    assert p.to_doc()["iothreadpin"] == {"1": "0,2-3", "2": "2"}
    assert note_lines(p)[1:] == ["IOThread 2: 1-2 minus 1 occupied by other"]


@pytest.mark.parametrize("stored,occupancy,domain,message", [
    (policy("vm", iothreads={3: "0"}), {}, facts(iothreads=(1, 2)),
     "IOThread 3 of 'vm' has a pin, but the domain has 2 IOThreads (1-2)"),
    (policy("vm", iothreads={1: "0"}), {}, facts(iothreads=()),
     "IOThread 1 of 'vm' has a pin, but the domain has no IOThreads"),
    (policy("vm", iothreads={1: "9"}), {}, facts(iothreads=(1,)),
     "IOThread 1 of 'vm' is pinned to 9, but the host's CPUs are 0-3"),
    (None, {1: ["other"]}, facts(iothreads=(5,), iopins={5: "1"}),
     "IOThread 5 of 'vm' is pinned to 1 (domain XML), which is occupied by other (cpuoccupy); "
     "it would have no CPU left"),
])
def test_iothread_conflicts(stored, occupancy, domain, message):
    with pytest.raises(PolicyError) as info:
        plan(stored, HostPolicy(occupancy), domain, HOST4)
    assert (info.value.code, str(info.value)) == (errors.CONFLICT, message)


def test_iothread_ids_from_the_xml():
    xml = """<domain type='kvm'><name>vm</name><vcpu>1</vcpu><iothreads>3</iothreads>
      <iothreadids><iothread id='7'/><iothread id='2'/></iothreadids>
      <cputune><iothreadpin iothread='7' cpuset='3'/></cputune></domain>"""
    f = parse_domain_xml(xml)
    assert f.indexes["iothread"] == (1, 2, 7)
    assert f.pins == {("iothread", 7): CpuSet.parse("3")}
    assert parse_domain_xml("<domain><name>x</name><vcpu>1</vcpu></domain>").indexes["iothread"] == ()


@pytest.mark.parametrize("xml,message", [
    ("<domain><iothreads>x</iothreads></domain>", "domain XML: <iothreads> 'x' is not a number"),
    ("<domain><iothreads>99999</iothreads></domain>", "domain XML: <iothreads> '99999' is not in 0..16384"),
    ("<domain><iothreadids><iothread id='0'/></iothreadids></domain>",
     "domain XML: <iothread id='0'> is not in 1..4294967295"),
    ("<domain><iothreadids><iothread id='a'/></iothreadids></domain>",
     "domain XML: <iothread id='a'> is not a number"),
    ("<domain><cputune><iothreadpin iothread='x' cpuset='1'/></cputune></domain>",
     "domain XML: bad <cputune>: invalid literal for int() with base 10: 'x'"),
])
def test_bad_iothreads_in_the_xml(xml, message):
    with pytest.raises(PolicyError) as info:
        parse_domain_xml(xml)
    assert str(info.value) == message


def test_cputune_holds_every_kind_of_pin_in_libvirt_order():
    import xml.etree.ElementTree as ET

    from policyhook.cputune import with_cputune

    xml = """<domain type='kvm'><name>vm</name><vcpu>2</vcpu><iothreads>1</iothreads>
      <cputune><iothreadpin iothread='1' cpuset='0'/><shares>5</shares></cputune></domain>"""
    p = plan(policy("vm", {1: "2"}, emulator="3", weight=512, iothreads={1: "1-2"}), HostPolicy(),
             parse_domain_xml(xml), HOST4)
    tune = ET.fromstring(with_cputune(xml, p)).find("cputune")
    assert [(e.tag, e.text, dict(e.attrib)) for e in tune] == [
        ("shares", "2048", {}), ("vcpupin", None, {"vcpu": "1", "cpuset": "2"}),
        ("emulatorpin", None, {"cpuset": "3"}), ("iothreadpin", None, {"iothread": "1", "cpuset": "1-2"})]
