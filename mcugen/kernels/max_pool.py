"""max_pool: TFLite Micro's int8 MaxPool (NHWC, batch 1).

The max runs over the in-bounds taps only; the output shares the input's
QParams (TFLite requires it), so the max of the raw int8 values is the answer
before the fused clamp. Same parameters as average_pool (`PoolParams`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, Node, QParams, Tensor
from .average_pool import PoolParams, clamp, float_clamp, geometry, lower_pool, lowered_params, pool_input, windows
from .common import INT8_MIN

OP = "max_pool"
SCRATCH = False


def float_reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = geometry(node, graph)
    peak = windows(np.asarray(inputs[0], np.float64), p, -np.inf).max(axis=(-2, -1))
    return float_clamp(peak, node).reshape(1, p.out_h, p.out_w, p.channels).astype(np.float32)


def output_qparams(node: Node, graph: Graph) -> QParams | None:
    return pool_input(node, graph).qparams


def quantize_constants(node: Node, graph: Graph) -> list[Tensor]:
    return []


def lower(node: Node, graph: Graph) -> PoolParams:
    return lower_pool(node, graph)


def reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = lowered_params(node)
    # Padding taps read INT8_MIN, which never beats an in-bounds tap (lower refuses empty windows).
    peak = windows(np.asarray(inputs[0], np.int32), p, INT8_MIN).max(axis=(-2, -1))
    return clamp(peak, p).reshape(1, p.out_h, p.out_w, p.channels).astype(np.int8)


def macs(node: Node, graph: Graph) -> int:
    """0: pooling compares but multiplies nothing; MACs count conv/FC work only."""
    return 0


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """None: the output never overlaps the input (kernels/__init__.py)."""
    return (None,)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {k: int(v) for k, v in dataclasses.asdict(lowered_params(node)).items()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return []
