"""Placement orders (the strategies) and a bounded local search over them.

A plan is determined by the order buffers are placed in (placement.place puts each
at its lowest safe offset), so strategies differ only in that order:

- greedy_by_size: biggest first (TFLM's GreedyMemoryPlanner).
- greedy_by_breadth: the busiest step first, its buffers biggest first; then the
  next busiest step's remaining buffers (TFLM's "breadth" ordering, as in TVM's
  USMP hill-climb seed).
- greedy_by_conflict: buffers that collide with the most bytes first.
- overlap_chain: schedule order, each output placed on its dying input as far as
  the kernel's declared overlap allows (placement.place with chain=True).
- exhaustive: every order, for graphs of at most EXHAUSTIVE_MAX buffers.
- local_search: from the best of the above, move one buffer to another position in
  the order and keep the move if the arena does not grow (seeded, bounded).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Callable

from .lifetimes import Buffer
from .placement import Conflict, arena_of, place

EXHAUSTIVE_MAX = 6
SEARCH_STEPS = 600

Order = list[int]


@dataclass(frozen=True)
class Candidate:
    strategy: str
    offsets: tuple[int, ...]
    arena: int


def by_size(buffers: list[Buffer], table: list[list[Conflict]]) -> Order:
    return sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first, buffers[i].name))


def by_breadth(buffers: list[Buffer], table: list[list[Conflict]]) -> Order:
    steps = sorted({s for b in buffers for s in range(b.first, b.last + 1)})
    live = {s: [i for i, b in enumerate(buffers) if b.first <= s <= b.last] for s in steps}
    busiest = sorted(steps, key=lambda s: (-sum(buffers[i].size for i in live[s]), s))
    order: Order = []
    seen: set[int] = set()
    for s in busiest:
        for i in sorted(live[s], key=lambda i: (-buffers[i].size, buffers[i].name)):
            if i not in seen:
                seen.add(i)
                order.append(i)
    return order


def by_conflict(buffers: list[Buffer], table: list[list[Conflict]]) -> Order:
    def pressure(i: int) -> int:
        return buffers[i].size + sum(buffers[c.other].size for c in table[i])

    return sorted(range(len(buffers)), key=lambda i: (-pressure(i), -buffers[i].size, buffers[i].name))


def by_schedule(buffers: list[Buffer], table: list[list[Conflict]]) -> Order:
    return sorted(range(len(buffers)), key=lambda i: (buffers[i].first, -buffers[i].size, buffers[i].name))


# name -> (order, chain placement)
GREEDY: dict[str, tuple[Callable[[list[Buffer], list[list[Conflict]]], Order], bool]] = {
    "greedy_by_size": (by_size, False),
    "greedy_by_breadth": (by_breadth, False),
    "greedy_by_conflict": (by_conflict, False),
    "overlap_chain": (by_schedule, True),
}


def candidates(buffers: list[Buffer], table: list[list[Conflict]], bound: int) -> list[Candidate]:
    """Every strategy's plan; then the exhaustive or local search one."""
    sizes = [b.size for b in buffers]

    def evaluator(chain: bool) -> Callable[[Order], tuple[list[int], int]]:
        def evaluate(order: Order) -> tuple[list[int], int]:
            offsets = place(order, sizes, table, chain)
            return offsets, arena_of(offsets, sizes)

        return evaluate

    found: list[Candidate] = []
    starts: dict[bool, tuple[int, Order]] = {}  # per placement rule, its best greedy order
    for name, (strategy, chain) in GREEDY.items():
        order = strategy(buffers, table)
        offsets, arena = evaluator(chain)(order)
        found.append(Candidate(name, tuple(offsets), arena))
        if chain not in starts or arena < starts[chain][0]:
            starts[chain] = (arena, order)
    if min(c.arena for c in found) <= bound:
        return found
    if len(buffers) <= EXHAUSTIVE_MAX:
        results = [evaluator(chain)(list(p)) for chain in (False, True)
                   for p in itertools.permutations(range(len(buffers)))]
        offsets, arena = min(results, key=lambda r: r[1])
        found.append(Candidate("exhaustive", tuple(offsets), arena))
        return found
    for chain, (_, order) in starts.items():
        offsets, arena = local_search(order, evaluator(chain), bound)
        found.append(Candidate("local_search" + ("_chain" if chain else ""), tuple(offsets), arena))
    return found


def local_search(start: Order, evaluate: Callable[[Order], tuple[list[int], int]],
                 bound: int) -> tuple[list[int], int]:
    """Seeded hill climb over orders: move one buffer; keep moves that do not grow the arena."""
    rng = random.Random(0)
    order = list(start)
    offsets, arena = evaluate(order)
    for _ in range(SEARCH_STEPS):
        if arena <= bound:
            break
        trial = list(order)
        trial.insert(rng.randrange(len(trial)), trial.pop(rng.randrange(len(trial))))
        trial_offsets, trial_arena = evaluate(trial)
        if trial_arena <= arena:
            order, offsets, arena = trial, trial_offsets, trial_arena
    return offsets, arena
