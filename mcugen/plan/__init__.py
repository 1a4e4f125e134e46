"""Static memory planning: every activation gets an offset in one arena."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, IRError
from .greedy import greedy_by_size
from .lifetimes import Buffer, lifetimes


@dataclass(frozen=True)
class Plan:
    offsets: dict[str, int]
    arena_size: int
    strategy: str
    buffers: tuple[Buffer, ...]


def plan_memory(graph: Graph) -> Plan:
    buffers = lifetimes(graph)
    offsets = greedy_by_size(buffers)
    size = max((offsets[b.name] + b.size for b in buffers), default=0)
    plan = Plan(offsets, size, "greedy_by_size", tuple(buffers))
    check_plan(plan)
    return plan


def check_plan(plan: Plan) -> None:
    """No two buffers live at the same step may share a byte."""
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        for b in bufs[i + 1 :]:
            if a.overlaps_in_time(b):
                a0, b0 = plan.offsets[a.name], plan.offsets[b.name]
                if a0 < b0 + b.size and b0 < a0 + a.size:
                    raise IRError(f"memory plan overlaps '{a.name}' and '{b.name}'")
