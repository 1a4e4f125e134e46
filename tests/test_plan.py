"""The planner never lets two simultaneously live buffers share a byte."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen.plan import Plan, check_plan
from mcugen.plan.greedy import greedy_by_size
from mcugen.plan.lifetimes import Buffer


@st.composite
def buffer_sets(draw):
    n = draw(st.integers(1, 25))
    bufs = []
    for i in range(n):
        first = draw(st.integers(0, 30))
        last = draw(st.integers(first, first + 8))
        bufs.append(Buffer(f"t{i}", draw(st.integers(1, 64)) * 4, first, last))
    return bufs


def _peak_live(bufs: list[Buffer]) -> int:
    steps = range(min(b.first for b in bufs), max(b.last for b in bufs) + 1)
    return max(sum(b.size for b in bufs if b.first <= s <= b.last) for s in steps)


@settings(max_examples=300, deadline=None)
@given(buffer_sets())
def test_greedy_plan_is_safe_and_within_bounds(bufs):
    offsets = greedy_by_size(bufs)
    size = max(offsets[b.name] + b.size for b in bufs)
    check_plan(Plan(offsets, size, "greedy_by_size", tuple(bufs)))  # raises on any overlap
    # An arena can never be smaller than what is live at once, nor need more than everything.
    assert _peak_live(bufs) <= size <= sum(b.size for b in bufs)


def test_overlap_is_detected():
    a, b = Buffer("a", 8, 0, 2), Buffer("b", 8, 1, 3)
    try:
        check_plan(Plan({"a": 0, "b": 4}, 12, "hand", (a, b)))
    except ValueError as exc:
        assert "'a'" in str(exc) and "'b'" in str(exc)
    else:
        raise AssertionError("overlapping plan accepted")


def test_chain_reuses_memory():
    # A chain x0 -> x1 -> x2 -> x3: only two neighbours are live at once.
    bufs = [Buffer(f"x{i}", 100, i, i + 1) for i in range(4)]
    offsets = greedy_by_size(bufs)
    assert max(offsets[b.name] + b.size for b in bufs) == 200
