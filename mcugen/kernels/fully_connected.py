"""fully_connected: TFLite Micro's int8 FullyConnected, per-channel (batch 1).

Weights (C_out, C_in), one bias per output channel; the input, of any shape,
is read flat in storage order (NHWC: a reordering reshape before it has been
folded into the weights), the output is (1, C_out). The accumulation and the
per-channel output stage are shared with the convolutions (kernels/weights.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, IRError, Node, QParams, Tensor
from . import activation_inputs
from .weights import (
    OutputStage,
    c_constants_of,
    constants,
    float_activation,
    lower_output_stage,
    output_stage,
    quantize_weighted,
    real_constants,
)

OP = "fully_connected"
SCRATCH = False
CHANNEL_AXIS = 0  # of the weights (C_out, C_in)


@dataclass(frozen=True, eq=False)
class FullyConnectedParams:
    """node.lowered; the C struct `mcugen_fully_connected_params` is (in_size, out_size, *stage.c_fields())."""

    in_size: int
    out_size: int
    stage: OutputStage


def _sizes(node: Node, graph: Graph) -> tuple[int, int]:
    (name,) = activation_inputs(node, graph)
    inp, out = graph.tensor(name), graph.tensor(node.outputs[0])
    weights, _ = constants(node, graph)
    if len(weights.shape) != 2 or weights.shape[1] != inp.size or out.shape != (1, weights.shape[0]):
        raise IRError(f"node '{node.name}' ({node.op}): weights {weights.shape} do not map input {inp.shape}"
                      f" to output {out.shape}")  # fmt: skip
    return inp.size, out.size


def _lowered(node: Node) -> FullyConnectedParams:
    if not isinstance(node.lowered, FullyConnectedParams):
        raise IRError(f"node '{node.name}' ({node.op}) is not lowered")
    return node.lowered


def float_reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    _sizes(node, graph)
    weights, bias = real_constants(node, graph, CHANNEL_AXIS)
    y = weights @ np.asarray(inputs[0], np.float64).ravel() + bias
    return float_activation(y.reshape(1, -1), node)


def output_qparams(node: Node, graph: Graph) -> QParams | None:
    return None


def quantize_constants(node: Node, graph: Graph) -> list[Tensor]:
    return quantize_weighted(node, graph, CHANNEL_AXIS)


def lower(node: Node, graph: Graph) -> FullyConnectedParams:
    return FullyConnectedParams(*_sizes(node, graph), lower_output_stage(node, graph, CHANNEL_AXIS))


def reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    stage = _lowered(node).stage
    weights, bias = constants(node, graph)
    x = np.asarray(inputs[0], np.float64).ravel() + stage.input_offset
    w = np.asarray(weights.data, np.float64) + stage.weight_offset
    # float64 is exact: lower bounds |acc| by 2^31, far below 2^53
    acc = (w @ x).astype(np.int64) + np.asarray(bias.data, np.int64)
    return output_stage(acc, stage).reshape(1, -1)


def macs(node: Node, graph: Graph) -> int:
    """C_in * C_out."""
    return constants(node, graph)[0].size


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """None: the output never overlaps the input (kernels/__init__.py)."""
    return (None,)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    p = _lowered(node)
    return {"in_size": p.in_size, "out_size": p.out_size, **p.stage.c_fields()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return c_constants_of(node, graph, _lowered(node).stage)
