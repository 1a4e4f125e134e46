"""depthwise_conv2d 3x3 (depthwise_dsp) fed row by row by the pointwise layer before it
(pointwise_ring_dsp), which writes its int16 ring directly: no NHWC intermediate, no copy.

The function takes the feeder's params, its NHWC input and its constants besides its own
table. Per output row it has the feeder produce the input rows the row is first to need into
their ring slots (a padding row: the slot filled with the zero point), then runs
depthwise_dsp's blocks (`_rows`, unchanged) on the ring. One channel group: the feeder writes
a row of every channel at once. Scratch: the ring (stride 2: three slots of every channel's
plane row; stride 1: two of row pairs), then the feeder's pixel pair.

In profiling builds MCUGEN_FEED_BEGIN / MCUGEN_FEED_END around the feeder's rows charge their
instructions to the feeder's layer (the previous one), so per-layer counts stay per layer.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import raster_limit
from ..conv2d import geometry
from . import depthwise_dsp, pointwise_ring_dsp
from .common import KernelSource, fed_by, row_bytes, spec_name

OP = "depthwise_conv2d"
NAME = "depthwise_fed_dsp"
SCRATCH = True


def applies(node: Node, graph: Graph, target: Target) -> bool:
    return False


def feeder(node: Node, graph: Graph) -> Node:
    return fed_by(node, graph, pointwise_ring_dsp.NAME)


def _unshaped(node: Node, graph: Graph) -> depthwise_dsp.DepthwiseSpec:
    s = dataclasses.replace(depthwise_dsp.spec(node, graph), recopy=False)  # its one group never re-copies
    feed = pointwise_ring_dsp.c_kernel(feeder(node, graph), graph, graph.meta.get("optimize", "speed"))
    fn = spec_name("mcugen_dw_dsp", (s.stride, int(s.exact), int(s.clamps), int(s.ties), "f", feed.name))
    return dataclasses.replace(s, fn=fn, feed_fn=feed.name, feed_params=feed.params)


def shape(node: Node, graph: Graph) -> tuple[int, int, int]:
    """What a stride-2 layer's full blocks take as immediates: channels, plane row words, blocks a row."""
    g = geometry(node, graph)
    return g.in_c, depthwise_dsp.plane_width(g), g.out_w // 3


def spec(node: Node, graph: Graph) -> depthwise_dsp.DepthwiseSpec:
    """depthwise_dsp's, calling the feeder; at stride 2 with the shapes of every layer of the graph
    that shares the function (the template writes full blocks per shape, `c_params`' shape picks)."""
    s = _unshaped(node, graph)
    if s.stride != 2 or graph.meta.get("optimize") == "size":  # size: the shared `_rows` only, less flash
        return s
    peers = [n for n in graph.nodes if n.variant == NAME and _unshaped(n, graph) == s]
    return dataclasses.replace(s, shapes=tuple(sorted({shape(n, graph) for n in peers})))


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/depthwise_dsp.c.j2", s, ("mcugen_dsp.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    """depthwise_dsp's, one group of every channel, and the feeder's input bytes per row."""
    fields = depthwise_dsp.c_params(node, graph)
    fields["group"] = fields["channels"]
    fields["feed_row"] = row_bytes(feeder(node, graph), graph)
    s = spec(node, graph)
    if s.shapes:
        fields["shape"] = s.shapes.index(shape(node, graph))
    return fields


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return depthwise_dsp.c_constants(node, graph)


def ring_bytes(node: Node, graph: Graph) -> int:
    g = geometry(node, graph)
    return depthwise_dsp.slots(g) * g.in_c * depthwise_dsp.plane_width(g) * 4


def scratch_bytes(node: Node, graph: Graph) -> int:
    return ring_bytes(node, graph) + pointwise_ring_dsp.pair_bytes(feeder(node, graph), graph)


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """Against the feeder's input (its own input is never in the arena; plan/lifetimes.py asks
    about the feeder's): a band feeds the input rows it is first to need, 1x1 so the same rows
    of the feeder's input, before writing its outputs from the ring alone (lag 1)."""
    g, fed = geometry(node, graph), feeder(node, graph)
    feed_row = row_bytes(fed, graph)
    band_bytes = (2 if g.stride_h == 1 else 1) * g.out_w * g.out_c
    first = depthwise_dsp.band_first_reads(g, feed_row)
    return (raster_limit(first, band_bytes, geometry(fed, graph).in_h * feed_row, lag=1),)
