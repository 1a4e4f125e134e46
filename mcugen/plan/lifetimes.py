"""What must sit in the arena, when, and which pairs may share bytes.

Steps are node indices. A buffer is live from the step that writes it to the last
step that reads it, inclusive: at step s every buffer with first <= s <= last is
in use at once. Scratch buffers live for their one step. A streamed node (a pointwise run
row by row inside the depthwise after it, passes/stream_rows.py) reads its input during the
next step and its output lives in that step's scratch.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph
from ..kernels import activation_inputs, kernel_of
from ..kernels.arm import feeder, streamed

ALIGNMENT = 4  # bytes; word-aligned buffers let kernels use 32-bit loads


def aligned(size: int) -> int:
    return (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int  # bytes, aligned
    first: int  # step that writes it (0 for the graph input)
    last: int  # last step that reads it

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class Overlap:
    """At `step`, `output` may start at offset(input) + d for any d <= `limit` (a kernel declaration).

    Only declared when `input` is last read at that step: its bytes are free once read."""

    input: str
    output: str
    limit: int
    step: int


def scratch_name(step: int) -> str:
    """Scratch buffers share the tensor namespace; ':' keeps them apart from any IR name."""
    return f"scratch:{step}"


def lifetimes(graph: Graph, io_in_arena: bool = False) -> list[Buffer]:
    """Arena buffers: activations (with the graph input and outputs only if `io_in_arena`) and scratch."""
    end = len(graph.nodes) - 1
    first: dict[str, int] = {name: 0 for name in graph.inputs}
    last: dict[str, int] = {name: 0 for name in graph.inputs}
    scratch: list[Buffer] = []
    for step, node in enumerate(graph.nodes):
        # a streamed node runs inside the next one's step: its output is never a buffer, its input lives on
        inside = streamed(node)
        for name in node.outputs:
            if not inside:
                first[name] = last[name] = step
        for name in node.inputs:
            if name in first:
                last[name] = step + inside
        size = kernel_of(node).scratch_bytes(node, graph)
        if size > 0:
            scratch.append(Buffer(scratch_name(step), aligned(size), step, step))
    outside = set() if io_in_arena else set(graph.inputs) | set(graph.outputs)
    for name in graph.outputs:
        last[name] = end  # the caller reads the outputs after the last step
    tensors = [
        Buffer(name, aligned(graph.tensor(name).nbytes), first[name], last[name])
        for name in first
        if name not in outside
    ]
    return tensors + scratch


def overlaps(graph: Graph, buffers: list[Buffer]) -> list[Overlap]:
    """The overlaps kernels declare (`overlap_limits`) between a dying input and the output, in the arena."""
    by_name = {b.name: b for b in buffers}
    found: dict[tuple[str, str], Overlap] = {}
    for step, node in enumerate(graph.nodes):
        declare = getattr(kernel_of(node), "overlap_limits", None)
        output = by_name.get(node.outputs[0])
        if declare is None or output is None:
            continue
        # a fed node's function reads its feeder's input (the feeder's own output is in its scratch)
        reads = activation_inputs(feeder(node, graph) or node, graph)
        for name, limit in zip(reads, declare(node, graph)):
            buf = by_name.get(name)
            if limit is None or buf is None or buf.last != step:
                continue
            key = (name, output.name)
            if key in found:  # the same tensor read twice (add(x, x)): both reads must be safe
                limit = min(limit, found[key].limit)
            found[key] = Overlap(name, output.name, limit, step)
    return list(found.values())
