"""conv2d 1x1 run inside the depthwise layer it feeds (depthwise_fed_dsp), row by row into that
layer's int16 ring: its output is never an NHWC tensor in the arena.

depthwise_dsp widens every input row it reads into int16 planes before SMLAD can use it: on
VWW's layer 3 (48x48x16, stride 2, M7) that copy took 67,641 of the layer's 212,866
instructions. Here pointwise_dsp's own blocks (pointwise_dsp8's under `--optimize size`)
store straight into those planes: STRH of the int16 output instead of STRB, the channel's
word in the stream holding its plane offset (channel x plane bytes) instead of its index,
pixels `pixel_bytes` apart (stride 2: a row's pixels pair up in a word; stride 1: a word
pairs two rows, this row its half). The stores cost what they cost before, the copy is gone,
and so is the intermediate tensor (VWW: 36,864 bytes, the arena's peak); the ring holds
three input rows (stride 1: two row pairs) of every channel.

Only passes/stream_rows.py chooses this variant, together with its consumer's; `applies` is
never true on its own. The consumer calls it per input row (`pixels` = the row's width, its
input pointer at the row) and its scratch holds this kernel's pixel pair (`scratch_bytes` 0).
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from ...ir import Graph, IRError, Node
from ...targets import Target, get_target
from ..conv2d import geometry
from . import depthwise_dsp, pointwise_dsp, pointwise_dsp8
from .common import KernelSource

OP = "conv2d"
NAME = "pointwise_ring_dsp"
SCRATCH = True
STREAMED = True  # runs inside its one consumer's step; its output has no arena buffer


def applies(node: Node, graph: Graph, target: Target) -> bool:
    return False


def consumer(node: Node, graph: Graph) -> Node:
    (reader,) = graph.consumers(node.outputs[0])
    if reader.variant != "depthwise_fed_dsp":
        raise IRError(f"node '{node.name}' ({node.op}): {NAME} feeds '{reader.name}', which runs {reader.variant}")
    return reader


def base(node: Node, graph: Graph) -> ModuleType:
    """The pointwise variant whose blocks write the ring: pointwise_dsp8 where it applies (`--optimize
    size`), else pointwise_dsp."""
    target = get_target(graph.meta.get("target", "host"))
    return pointwise_dsp8 if pointwise_dsp8.applies(node, graph, target) else pointwise_dsp


def fits(node: Node, graph: Graph, reader: Node) -> bool:
    """Whether every channel's plane offset fits the stream (pointwise_dsp8 packs it in 16 bits)."""
    offset = 4 * depthwise_dsp.plane_width(geometry(reader, graph))
    return base(node, graph) is pointwise_dsp or geometry(node, graph).out_c * offset < 1 << 15


def channel_bytes(node: Node, graph: Graph) -> int:
    """Bytes from one channel's plane row to the next in the consumer's ring."""
    return 4 * depthwise_dsp.plane_width(geometry(consumer(node, graph), graph))


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    return base(node, graph).c_kernel(node, graph, optimize, ring=True)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    """The base variant's fields for one input row, without the NHWC output's (out_c, row_bytes)."""
    fields = base(node, graph).c_params(node, graph)
    del fields["out_c"], fields["row_bytes"]
    fields["pixels"] = geometry(node, graph).in_w
    fields["constants"] = len(pointwise_dsp.channels(node, graph).constant)
    fields["pixel_bytes"] = 4 if geometry(consumer(node, graph), graph).stride_w == 1 else 2
    return fields


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    offset = channel_bytes(node, graph)
    return [("weights", base(node, graph).stream_words(node, graph, offset)),
            ("constants", pointwise_dsp.fills(node, graph, offset))]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def pair_bytes(node: Node, graph: Graph) -> int:
    """The consumer's scratch this kernel uses: its pixel pair's input as int16."""
    return base(node, graph).scratch_bytes(node, graph)
