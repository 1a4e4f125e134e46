"""softmax: TFLite Micro's int8 -> int8 Softmax over the last axis.

The arithmetic (fixed-point exp and reciprocal) is quant/arith.py's
`softmax_s8`; this module fixes the output QParams TFLite requires (scale
1/256, zero point -128, so the int8 range covers probabilities [0, 255/256])
and runs one row per slice along the last axis.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, IRError, Node, QParams, Tensor
from ..quant.arith import softmax_params, softmax_s8
from . import activation_inputs

OP = "softmax"
SCRATCH = False
OUTPUT_SCALE, OUTPUT_ZERO_POINT = 1.0 / 256.0, -128
MAX_DEPTH = 4095  # the longest row softmax_s8 (and its C twin) accepts


@dataclass(frozen=True)
class SoftmaxParams:
    """The fields of `mcugen_softmax_params`, in declaration order."""

    rows: int
    depth: int
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def _input(node: Node, graph: Graph) -> Tensor:
    (name,) = activation_inputs(node, graph)
    return graph.tensor(name)


def float_reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    x = node.attrs.beta * np.asarray(inputs[0], np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def output_qparams(node: Node, graph: Graph) -> QParams | None:
    return QParams.per_tensor(OUTPUT_SCALE, OUTPUT_ZERO_POINT)


def quantize_constants(node: Node, graph: Graph) -> list[Tensor]:
    return []


def lower(node: Node, graph: Graph) -> SoftmaxParams:
    inp, out = _input(node, graph), graph.tensor(node.outputs[0])
    assert inp.qparams is not None and out.qparams is not None
    # TFLite's own check, tolerance included (TF_LITE_ENSURE_NEAR with 0.1% of 1/256)
    if out.qparams.scalar_zero_point != OUTPUT_ZERO_POINT or not np.isclose(
        out.qparams.scalar_scale, OUTPUT_SCALE, rtol=1e-3, atol=0.0
    ):
        raise IRError(f"node '{node.name}' (softmax): TFLite requires output scale 1/256 and zero point -128")
    # fold_reshape lets softmax read a reshaped view ([1,1,1,C] for [1,C]): rows and depth must agree
    if inp.size != out.size or inp.shape[-1] != out.shape[-1]:
        raise IRError(f"node '{node.name}' (softmax): input shape {inp.shape} does not match output shape {out.shape}")
    depth = inp.shape[-1]
    if not 1 <= depth <= MAX_DEPTH:
        raise IRError(f"node '{node.name}' (softmax): last axis of {depth} is outside 1..{MAX_DEPTH}")
    multiplier, left_shift, diff_min = softmax_params(node.attrs.beta, inp.qparams.scalar_scale)
    return SoftmaxParams(inp.size // depth, depth, multiplier, left_shift, diff_min)


def _params(node: Node) -> SoftmaxParams:
    if not isinstance(node.lowered, SoftmaxParams):
        raise IRError(f"node '{node.name}' (softmax) is not lowered")
    return node.lowered


def reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = _params(node)
    return softmax_s8(np.asarray(inputs[0], np.int8), p.input_multiplier, p.input_left_shift, p.diff_min, axis=-1)


def macs(node: Node, graph: Graph) -> int:
    """0: softmax's fixed-point exp is not multiply-accumulate work; MACs count conv/FC only."""
    return 0


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """None: the output never overlaps the input (kernels/__init__.py)."""
    return (None,)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {k: int(v) for k, v in dataclasses.asdict(_params(node)).items()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return []
