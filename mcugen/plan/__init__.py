"""Static memory planning: every activation and scratch buffer gets an offset in one arena.

Public API:
- `plan_memory(graph, io_in_arena=False, allow_overlap=True) -> Plan`: the smallest
  plan any strategy finds (plan/strategies.py), checked by `check_plan`.
- `check_plan(plan)`: raises IRError unless every two buffers live at the same step
  are disjoint or overlap the way their kernel declares safe.
- `memory_by_step(plan) -> list[StepUsage]` and `peak_step(plan) -> StepUsage`:
  the per-step live bytes, lower bound and address top (plan/bound.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, IRError
from .bound import StepUsage, lower_bound, step_usage
from .lifetimes import Buffer, Overlap, lifetimes, overlaps
from .placement import conflicts, forbidden_delta
from .strategies import candidates


@dataclass(frozen=True)
class Plan:
    offsets: dict[str, int]
    arena_size: int
    strategy: str  # the strategy whose plan won
    buffers: tuple[Buffer, ...]
    overlaps: tuple[Overlap, ...] = ()  # the declared overlaps the planner was allowed to use
    lower_bound: int = 0  # no plan of these buffers can be smaller (plan/bound.py)
    io_in_arena: bool = False  # the graph input and outputs are arena buffers too
    candidates: tuple[tuple[str, int], ...] = ()  # (strategy, arena bytes) of every strategy tried
    steps: int = 0  # nodes in the schedule

    @property
    def ratio(self) -> float:
        """arena / lower bound (1.0 is optimal)."""
        return self.arena_size / self.lower_bound if self.lower_bound else 1.0


def plan_memory(graph: Graph, io_in_arena: bool = False, allow_overlap: bool = True) -> Plan:
    """The smallest plan found; `allow_overlap=False` ignores every kernel overlap declaration."""
    buffers = lifetimes(graph, io_in_arena)
    declared = overlaps(graph, buffers) if allow_overlap else []
    bound = lower_bound(buffers, declared)
    found = candidates(buffers, conflicts(buffers, declared), bound)
    best = min(found, key=lambda c: c.arena) if found else None
    offsets = {b.name: off for b, off in zip(buffers, best.offsets)} if best else {}
    plan = Plan(offsets, best.arena if best else 0, best.strategy if best else "empty", tuple(buffers),
                tuple(declared), bound, io_in_arena, tuple((c.strategy, c.arena) for c in found), len(graph.nodes))
    check_plan(plan)
    return plan


def check_plan(plan: Plan) -> None:
    """No two buffers live at the same step may share a byte, except as a declared overlap allows."""
    limits = {(o.input, o.output): o.limit for o in plan.overlaps}
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        for b in bufs[i + 1 :]:
            if a.overlaps_in_time(b):
                lo, hi = forbidden_delta(a, b, limits)
                if lo < plan.offsets[b.name] - plan.offsets[a.name] < hi:
                    raise IRError(f"memory plan overlaps '{a.name}' and '{b.name}'")
        if plan.offsets[a.name] < 0 or plan.offsets[a.name] + a.size > plan.arena_size:
            raise IRError(f"memory plan puts '{a.name}' outside the arena")


def memory_by_step(plan: Plan) -> list[StepUsage]:
    """Per step of the schedule: live bytes, the lower bound and the highest address used."""
    return step_usage(plan.buffers, plan.overlaps, plan.offsets, plan.steps)


def peak_step(plan: Plan) -> StepUsage:
    """The step that needs the most memory: highest address top, then most bytes that must be live."""
    return max(memory_by_step(plan), key=lambda r: (r.top, r.bound_bytes, -r.step))
