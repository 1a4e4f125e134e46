"""The planner: no two simultaneously live buffers share a byte except as a kernel declares safe,
the lower bound is a true lower bound, and every strategy's plan passes the checker."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen.ir import IRError
from mcugen.plan import Plan, check_plan
from mcugen.plan.bound import lower_bound
from mcugen.plan.lifetimes import Buffer, Overlap
from mcugen.plan.placement import arena_of, conflicts, place
from mcugen.plan.strategies import GREEDY, candidates


@st.composite
def buffer_sets(draw, max_buffers: int = 25, max_words: int = 64):
    """Buffers over a schedule, and overlaps declared between a buffer and one born the step it dies."""
    n = draw(st.integers(1, max_buffers))
    bufs = []
    for i in range(n):
        first = draw(st.integers(0, 12))
        last = draw(st.integers(first, first + 4))
        bufs.append(Buffer(f"t{i}", draw(st.integers(1, max_words)) * 4, first, last))
    declared = {}
    for a, b in itertools.permutations(bufs, 2):
        if a.last == b.first and (a.name, b.name) not in declared and draw(st.booleans()):
            declared[a.name, b.name] = Overlap(a.name, b.name, draw(st.integers(-b.size, a.size)), a.last)
    return bufs, list(declared.values())


def _peak_live(bufs: list[Buffer]) -> int:
    return max(sum(b.size for b in bufs if b.first <= s <= b.last) for s in range(13 + 4))


@settings(max_examples=50, deadline=None)
@given(buffer_sets())
def test_every_strategy_gives_a_safe_plan_within_bounds(case):
    bufs, declared = case
    bound = lower_bound(bufs, declared)
    for cand in candidates(bufs, conflicts(bufs, declared), bound):
        offsets = dict(zip((b.name for b in bufs), cand.offsets))
        check_plan(Plan(offsets, cand.arena, cand.strategy, tuple(bufs), tuple(declared)))  # raises on overlap
        assert cand.arena >= bound, cand.strategy
    # without declarations the bound is the plain peak of live bytes, and greedy never needs more than all
    plain = place(GREEDY["greedy_by_size"][0](bufs, []), [b.size for b in bufs], conflicts(bufs, []))
    assert _peak_live(bufs) == lower_bound(bufs, []) <= arena_of(plain, [b.size for b in bufs]) <= sum(
        b.size for b in bufs)


def _smallest_arena(bufs: list[Buffer], declared: list[Overlap]) -> int:
    """Brute force over every word-aligned offset below the sum of sizes (tiny cases only)."""
    top = sum(b.size for b in bufs)
    best = top
    for offs in itertools.product(range(0, top, 4), repeat=len(bufs)):
        arena = max(o + b.size for o, b in zip(offs, bufs))
        if arena >= best:
            continue
        try:
            check_plan(Plan(dict(zip((b.name for b in bufs), offs)), arena, "brute", tuple(bufs), tuple(declared)))
        except IRError:
            continue
        best = arena
    return best


@settings(max_examples=40, deadline=None)
@given(buffer_sets(max_buffers=3, max_words=4))
def test_lower_bound_never_exceeds_the_true_optimum(case):
    bufs, declared = case
    optimum = _smallest_arena(bufs, declared)
    assert lower_bound(bufs, declared) <= optimum
    found = candidates(bufs, conflicts(bufs, declared), lower_bound(bufs, declared))
    assert min(c.arena for c in found) == optimum  # up to 6 buffers the exhaustive search is run


def test_overlap_is_detected():
    a, b = Buffer("a", 8, 0, 2), Buffer("b", 8, 1, 3)
    with pytest.raises(IRError, match="'a' and 'b'"):
        check_plan(Plan({"a": 0, "b": 4}, 12, "hand", (a, b)))


def test_declared_overlap_is_allowed_up_to_its_limit_only():
    a, b = Buffer("a", 16, 0, 1), Buffer("b", 16, 1, 2)  # b written at step 1, where a dies
    declared = (Overlap("a", "b", -4, 1),)
    check_plan(Plan({"a": 4, "b": 0}, 20, "hand", (a, b), declared))  # b starts 4 bytes below a
    with pytest.raises(IRError):
        check_plan(Plan({"a": 0, "b": 0}, 16, "hand", (a, b), declared))
    with pytest.raises(IRError):  # the same offsets with no declaration
        check_plan(Plan({"a": 4, "b": 0}, 20, "hand", (a, b)))


def test_chain_reuses_memory():
    # A chain x0 -> x1 -> x2 -> x3: only two neighbours are live at once.
    bufs = [Buffer(f"x{i}", 100 * 4, i, i + 1) for i in range(4)]
    offsets = place(GREEDY["greedy_by_size"][0](bufs, []), [b.size for b in bufs], conflicts(bufs, []))
    assert arena_of(offsets, [b.size for b in bufs]) == 800


def test_in_place_chain_stacks_instead_of_alternating():
    # Six same-size layers, each allowed to start 8 bytes below its input (streaming) or on it (in place):
    # two regions would need 2 * 400 bytes; stacking needs 400 + the drift.
    bufs = [Buffer(f"x{i}", 400, i, i + 1) for i in range(6)]
    declared = [Overlap(f"x{i}", f"x{i + 1}", -8 if i % 2 else 0, i + 1) for i in range(5)]
    assert lower_bound(bufs, declared) == 408
    best = min(candidates(bufs, conflicts(bufs, declared), 408), key=lambda c: c.arena)
    assert best.arena == 400 + 8 + 8
