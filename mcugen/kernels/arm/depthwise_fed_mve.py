"""depthwise_conv2d 3x3 on Helium (depthwise_mve) fed row by row by the pointwise layer before
it (pointwise_ring_mve), which writes its input rows, NHWC, into a ring of three in the scratch.

Same blocks as depthwise_mve, reading rows from the ring; before each output row the feeder
writes the input rows that row is first to need. Scratch: the padding pixel, then the ring.
Order: output rows top to bottom, each after its feeds, so the output may overlap the feeder's
input a row behind its reads (`overlap_limits`, lag 1 in units of output rows).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import NO_READ, raster_limit
from ..conv2d import ConvGeometry, geometry
from . import depthwise_mve, pointwise_ring_mve
from .common import KernelSource, fed_by, row_bytes, spec_name

OP = "depthwise_conv2d"
NAME = "depthwise_fed_mve"
SCRATCH = True


def applies(node: Node, graph: Graph, target: Target) -> bool:
    return False


def feeder(node: Node, graph: Graph) -> Node:
    return fed_by(node, graph, pointwise_ring_mve.NAME)


def spec(node: Node, graph: Graph) -> depthwise_mve.DepthwiseMveSpec:
    s = depthwise_mve.spec(node, graph)
    feed = pointwise_ring_mve.c_kernel(feeder(node, graph), graph, graph.meta.get("optimize", "speed"))
    fn = spec_name("mcugen_dw_mve", (int(s.stage.any_left), int(s.stage.all_right), int(s.wide), "f", feed.name))
    return dataclasses.replace(s, fn=fn, feed_fn=feed.name, feed_params=feed.params)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/depthwise_mve.c.j2", s, ("mcugen_mve.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {**depthwise_mve.c_params(node, graph), "feed_row": row_bytes(feeder(node, graph), graph)}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return depthwise_mve.c_constants(node, graph)


def ring_bytes(node: Node, graph: Graph) -> int:
    g = geometry(node, graph)
    return 3 * g.in_w * g.in_c


def scratch_bytes(node: Node, graph: Graph) -> int:
    return geometry(node, graph).in_c + ring_bytes(node, graph)


def _row_first_reads(g: ConvGeometry, feed_row: int) -> np.ndarray:
    """Per output row: the lowest byte of the feeder's input its feeds read (NO_READ: no feed)."""
    first, fed = np.full(g.out_h, NO_READ, np.int64), 0
    for oy in range(g.out_h):
        upto = min(oy * g.stride_h - g.pad_top + 3, g.in_h)
        if upto > fed:
            first[oy] = fed * feed_row
            fed = upto
    return first


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """Against the feeder's input (plan/lifetimes.py asks about it): an output row is written
    after its feeds, which read the feeder's input rows below every later feed (lag 1)."""
    g, fed = geometry(node, graph), feeder(node, graph)
    feed_row = row_bytes(fed, graph)
    first = _row_first_reads(g, feed_row)
    return (raster_limit(first, g.out_w * g.out_c, geometry(fed, graph).in_h * feed_row, lag=1),)
