"""CpuSet: strict virsh cpulist parsing, canonical output, set operations."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhook import errors
from policyhook.cpuset import MAX_CPU, CpuSet, is_canonical
from policyhook.errors import PolicyError, quote

GOOD = [
    # (input, canonical string)
    ("0-7,^2,9", "0-1,3-7,9"),
    ("0-3,^2,8", "0-1,3,8"),
    ("5", "5"),
    ("0", "0"),
    ("8191", "8191"),
    ("0-8191", "0-%d" % MAX_CPU),
    (" 0 - 3 , 5 ", "0-3,5"),
    ("\t1,2\n", "1-2"),
    ("3,1,2", "1-3"),
    ("1,1,1", "1"),
    ("0-2,1-4", "0-4"),
    ("0-9,^3-5,^7", "0-2,6,8-9"),
    ("^3,1-4", "1-4"),              # an exclusion removes only what was named before it
    ("1-4,^3,3", "1-4"),
    ("^0-3,5", "5"),
    ("2-2", "2"),
]

BAD = [
    # (input, exact message)
    ("", "invalid cpulist '': it is empty"),
    ("   ", "invalid cpulist '   ': it is empty"),
    ("1,,2", "invalid cpulist '1,,2': empty item between commas"),
    ("1,", "invalid cpulist '1,': trailing comma"),
    (",1", "invalid cpulist ',1': leading comma"),
    (",", "invalid cpulist ',': leading comma"),
    ("1, ,2", "invalid cpulist '1, ,2': empty item between commas"),
    ("3-1", "invalid cpulist '3-1': range 3-1 is reversed"),
    ("0-3,^5-4", "invalid cpulist '0-3,^5-4': range 5-4 is reversed"),
    ("a", "invalid cpulist 'a': 'a' is not a CPU number"),
    ("1-b", "invalid cpulist '1-b': 'b' is not a CPU number"),
    ("-1", "invalid cpulist '-1': '-1' is missing a CPU number"),
    ("0-", "invalid cpulist '0-': '0-' is missing a CPU number"),
    ("-", "invalid cpulist '-': '-' is missing a CPU number"),
    ("^", "invalid cpulist '^': '^' is missing a CPU number"),
    ("1-2-3", "invalid cpulist '1-2-3': '2-3' is not a CPU number"),
    ("01", "invalid cpulist '01': '01' has a leading zero"),
    ("0-07", "invalid cpulist '0-07': '07' has a leading zero"),
    ("8192", "invalid cpulist '8192': CPU 8192 is above the maximum 8191"),
    ("0-99999999999999999999", "invalid cpulist '0-99999999999999999999': CPU 99999999999999999999 is "
                               "above the maximum 8191"),
    ("^1", "invalid cpulist '^1': it names no CPU"),
    ("1,^1", "invalid cpulist '1,^1': it names no CPU"),
    ("0-3,^0-3", "invalid cpulist '0-3,^0-3': it names no CPU"),
    ("+1", "invalid cpulist '+1': '+1' is not a CPU number"),
    ("0x1", "invalid cpulist '0x1': '0x1' is not a CPU number"),
    ("1 2", "invalid cpulist '1 2': '1 2' is not a CPU number"),
    ("1;2", "invalid cpulist '1;2': '1;2' is not a CPU number"),
    ("\u0661", "invalid cpulist '\u0661': '\u0661' is not a CPU number"),   # Arabic-Indic one
    ("\uff11", "invalid cpulist '\uff11': '\uff11' is not a CPU number"),   # fullwidth one
    ("\u00b2", "invalid cpulist '\u00b2': '\u00b2' is not a CPU number"),   # superscript two
    # Control characters are shown escaped and long input is cut: a message stays one short line.
    ("1\x00", "invalid cpulist '1\\x00': '1\\x00' is not a CPU number"),
    ("1\n2", "invalid cpulist '1\\n2': '1\\n2' is not a CPU number"),
    ("0-3,x\n", "invalid cpulist '0-3,x\\n': 'x' is not a CPU number"),
    ("0-3," * 20 + "x", "invalid cpulist '0-3,0-3,0-3,0-3,0-3,0-3,0-3,0-3,0-3,...: 'x' is not a CPU number"),
    ("1" * 5000, "invalid cpulist '111111111111111111111111111111111111...: CPU 11111111111111111... "
                 "is above the maximum 8191"),
    ("0-" + "9" * 5000, "invalid cpulist '0-9999999999999999999999999999999999...: CPU 99999999999999999... "
                        "is above the maximum 8191"),
    ("^^1", "invalid cpulist '^^1': '^1' is not a CPU number"),
]


@pytest.mark.parametrize("text,canonical", GOOD, ids=[g[0] for g in GOOD])
def test_parse_good(text, canonical):
    cpus = CpuSet.parse(text)
    assert str(cpus) == canonical
    assert CpuSet.parse(canonical) == cpus
    assert is_canonical(canonical)


@pytest.mark.parametrize("text,message", BAD, ids=[repr(b[0]) for b in BAD])
def test_parse_bad(text, message):
    with pytest.raises(PolicyError) as info:
        CpuSet.parse(text)
    assert str(info.value) == message
    assert info.value.code == errors.INVALID
    assert not is_canonical(text)


@pytest.mark.parametrize("value", [None, 3, 1.5, b"1", ["1"]])
def test_parse_not_a_string(value):
    with pytest.raises(PolicyError) as info:
        CpuSet.parse(value)
    assert str(info.value) == "invalid cpulist %r: not a string" % (value,)


@pytest.mark.parametrize("text", ["0-1,3-7,9", "0", "1-3", "0,2,4"])
def test_is_canonical(text):
    assert is_canonical(text)


@pytest.mark.parametrize("text", ["1,0", "0-1,2", "1-1", " 1", "1 ", "0,1", "^3,1", "01"])
def test_is_not_canonical(text):
    assert not is_canonical(text)


@pytest.mark.parametrize("cpus,message", [
    ([-1], "CPU -1 is not a number from 0 to 8191"),
    ([8192], "CPU 8192 is not a number from 0 to 8191"),
    ([True], "CPU True is not a number from 0 to 8191"),
    (["1"], "CPU '1' is not a number from 0 to 8191"),
    ([1.0], "CPU 1.0 is not a number from 0 to 8191"),
])
def test_constructor_refuses(cpus, message):
    with pytest.raises(PolicyError) as info:
        CpuSet(cpus)
    assert str(info.value) == message


def test_value_type_basics():
    a = CpuSet.parse("0-3")
    b = CpuSet.parse("2-5")
    assert str(a | b) == "0-5"
    assert str(a & b) == "2-3"
    assert str(a - b) == "0-1"
    assert str(CpuSet()) == ""
    assert not CpuSet() and a
    assert len(a) == 4 and 2 in a and 4 not in a
    assert list(b) == [2, 3, 4, 5]
    assert a.max() == 3 and CpuSet().max() is None
    assert CpuSet.parse("1-2").issubset(a) and not b.issubset(a)
    assert CpuSet.range(3) == CpuSet.parse("0-2")
    assert repr(a) == "CpuSet('0-3')"
    assert hash(a) == hash(CpuSet([3, 2, 1, 0]))
    assert a != "0-3" and a != {0, 1, 2, 3}
    assert {a: 1}[CpuSet.parse("0-3")] == 1


def test_to_bools_and_from_bools():
    cpus = CpuSet.parse("0,2")
    assert cpus.to_bools(4) == (True, False, True, False)
    assert CpuSet.from_bools((False, True, True)) == CpuSet.parse("1-2")
    assert CpuSet().to_bools(2) == (False, False)
    with pytest.raises(PolicyError) as info:
        CpuSet.parse("0-4").to_bools(4)
    assert str(info.value) == "CPU 4 does not exist (host has 4 CPUs)"


# ---- properties --------------------------------------------------------------

cpu_sets = st.frozensets(st.integers(0, MAX_CPU), max_size=40) | st.frozensets(st.integers(0, 70))
nonempty_sets = cpu_sets.filter(bool)


@st.composite
def cpulists(draw):
    """Random virsh cpulist text that names at least one CPU, with the set it names."""
    cpus = set()
    items = []
    for _ in range(draw(st.integers(1, 8))):
        lo = draw(st.integers(0, 64))
        hi = draw(st.integers(lo, lo + draw(st.sampled_from([0, 0, 1, 5]))))
        exclude = bool(items) and draw(st.booleans())
        text = str(lo) if lo == hi else "%d-%d" % (lo, hi)
        pad = draw(st.sampled_from(["", " "]))
        items.append(pad + ("^" if exclude else "") + text + pad)
        if exclude:
            cpus.difference_update(range(lo, hi + 1))
        else:
            cpus.update(range(lo, hi + 1))
    return ",".join(items), frozenset(cpus)


@settings(max_examples=300, deadline=None)
@given(cpulists())
def test_parse_agrees_with_meaning_and_round_trips(case):
    text, expected = case
    if not expected:
        with pytest.raises(PolicyError) as info:
            CpuSet.parse(text)
        assert str(info.value) == "invalid cpulist %s: it names no CPU" % quote(text)
        return
    cpus = CpuSet.parse(text)
    assert set(cpus) == expected
    canonical = str(cpus)
    assert CpuSet.parse(canonical) == cpus
    assert str(CpuSet.parse(canonical)) == canonical
    assert is_canonical(canonical)


@settings(max_examples=300, deadline=None)
@given(nonempty_sets)
def test_str_then_parse_is_identity(cpus):
    value = CpuSet(cpus)
    text = str(value)
    assert CpuSet.parse(text) == value
    assert is_canonical(text)
    assert " " not in text and "^" not in text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-^, x", max_size=12))
def test_parse_never_fails_unexpectedly(text):
    # Any input is either a set that round-trips or an INVALID error, never another exception.
    try:
        cpus = CpuSet.parse(text)
    except PolicyError as e:
        assert e.code == errors.INVALID
        assert str(e).startswith("invalid cpulist %s: " % quote(text))
        assert "\n" not in str(e)
    else:
        assert cpus
        assert CpuSet.parse(str(cpus)) == cpus


@settings(max_examples=200, deadline=None)
@given(cpu_sets, cpu_sets)
def test_set_operations_agree_with_python_sets(a, b):
    x, y = CpuSet(a), CpuSet(b)
    assert set(x | y) == a | b
    assert set(x & y) == a & b
    assert set(x - y) == a - b
    assert x.issubset(y) == (a <= b)
    assert (x == y) == (a == b)
    assert len(x) == len(a)
    assert bool(x) == bool(a)
    assert x.max() == (max(a) if a else None)
    assert list(x) == sorted(a)
    assert all(c in x for c in a)


@settings(max_examples=200, deadline=None)
@given(st.frozensets(st.integers(0, 300)), st.integers(0, 40))
def test_bools_round_trip(cpus, extra):
    value = CpuSet(cpus)
    length = (value.max() + 1 if value else 0) + extra
    flags = value.to_bools(length)
    assert len(flags) == length
    assert CpuSet.from_bools(flags) == value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), max_size=100))
def test_from_bools_then_to_bools(flags):
    value = CpuSet.from_bools(flags)
    assert value.to_bools(len(flags)) == tuple(flags)
