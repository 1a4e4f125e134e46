"""When each arena buffer is live, over the schedule (node index = step)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph

ALIGNMENT = 4  # bytes; word-aligned buffers let kernels use 32-bit loads


def aligned(size: int) -> int:
    return (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int  # bytes, aligned
    first: int  # step that writes it
    last: int  # last step that reads it

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


def lifetimes(graph: Graph) -> list[Buffer]:
    """Buffers for every activation except the graph's input and outputs (the caller owns those)."""
    outside = set(graph.inputs) | set(graph.outputs)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for step, node in enumerate(graph.nodes):
        for name in node.outputs:
            first[name] = last[name] = step
        for name in node.inputs:
            if name in first:
                last[name] = step
    return [
        Buffer(name, aligned(graph.tensor(name).nbytes), first[name], last[name])
        for name in first
        if name not in outside
    ]
