"""conv2d 1x1 on Helium run inside the depthwise_mve layer it feeds (depthwise_fed_mve), one
input row per call into that layer's ring of three NHWC rows: its output is never a tensor in
the arena. pointwise_mve's own function and params (`pixels` = the row's width). `--optimize
size` only (passes/stream_rows.py): VWW on M55 36,928 -> 26,136 B of arena for 2.50 -> 2.54 M
instructions and 2 KB more code (the fed depthwise function).

Only passes/stream_rows.py chooses this variant, together with its consumer's.
"""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..conv2d import geometry
from . import pointwise_mve
from .common import KernelSource

OP = "conv2d"
NAME = "pointwise_ring_mve"
SCRATCH = False
STREAMED = True  # runs inside its one consumer's step; its output has no arena buffer


def applies(node: Node, graph: Graph, target: Target) -> bool:
    return False


def fits(node: Node, graph: Graph, reader: Node) -> bool:
    """Always: the ring holds plain NHWC rows, the stream's offsets are pointwise_mve's own."""
    return True


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    return pointwise_mve.c_kernel(node, graph, optimize)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {**pointwise_mve.c_params(node, graph), "pixels": geometry(node, graph).in_w}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return pointwise_mve.c_constants(node, graph)


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0
