"""add: TFLite Micro's int8 Add of two same-shape activations (no broadcasting).

Both inputs are brought to a common fixed-point scale before the sum: each is
offset to zero, shifted left by LEFT_SHIFT (20: headroom so the rescale keeps
precision) and multiplied by s_i / (2 max(s1, s2)) <= 1/2, so the sum cannot
overflow int32; the sum is then rescaled to the output by
2 max(s1, s2) / (2^20 s_out).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, IRError, Node, QParams, Tensor
from ..quant.arith import mbqm, quantize_multiplier
from . import activation_inputs, raster_limit
from .common import activation_range

OP = "add"
SCRATCH = False
LEFT_SHIFT = 20  # TFLite's value for int8 (int16 uses 15)


@dataclass(frozen=True)
class AddParams:
    """The fields of `mcugen_add_params`, in declaration order (TFLite's ArithmeticParams)."""

    size: int
    input1_offset: int  # -zero point
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int  # +zero point
    output_multiplier: int
    output_shift: int
    left_shift: int
    act_min: int
    act_max: int


def _float32(x: float) -> float:
    """TFLite stores scales as float32 and widens them to double for these divisions."""
    return float(np.float32(x))


def float_reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    act = node.attrs.activation
    total = np.asarray(inputs[0], np.float64) + np.asarray(inputs[1], np.float64)
    return np.minimum(np.maximum(total, act.lo), act.hi).astype(np.float32)


def output_qparams(node: Node, graph: Graph) -> QParams | None:
    return None


def quantize_constants(node: Node, graph: Graph) -> list[Tensor]:
    return []


def lower(node: Node, graph: Graph) -> AddParams:
    names = activation_inputs(node, graph)
    if len(names) != 2:
        raise IRError(f"node '{node.name}' (add): expected two activation inputs, got {len(names)}")
    in1, in2 = (graph.tensor(n) for n in names)
    out = graph.tensor(node.outputs[0])
    if not in1.shape == in2.shape == out.shape:
        raise IRError(f"node '{node.name}' (add): shapes {in1.shape} + {in2.shape} -> {out.shape}; no broadcasting")
    assert in1.qparams is not None and in2.qparams is not None and out.qparams is not None
    s1, s2, s_out = (_float32(t.qparams.scalar_scale) for t in (in1, in2, out))
    twice_max = 2 * max(s1, s2)
    m1, shift1 = quantize_multiplier(s1 / twice_max)
    m2, shift2 = quantize_multiplier(s2 / twice_max)
    m_out, shift_out = quantize_multiplier(twice_max / ((1 << LEFT_SHIFT) * s_out))
    if shift_out > 0:  # TFLite's QuantizeMultiplierSmallerThanOneExp refuses such a model too
        raise IRError(f"node '{node.name}' (add): output scale {s_out} is over 2^20 times smaller than the inputs'")
    act_min, act_max = activation_range(node.attrs.activation, out.qparams)
    return AddParams(
        out.size, -in1.qparams.scalar_zero_point, m1, shift1, -in2.qparams.scalar_zero_point, m2, shift2,
        out.qparams.scalar_zero_point, m_out, shift_out, LEFT_SHIFT, act_min, act_max,
    )  # fmt: skip


def lowered_params(node: Node) -> AddParams:
    if not isinstance(node.lowered, AddParams):
        raise IRError(f"node '{node.name}' (add) is not lowered")
    return node.lowered


def reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = lowered_params(node)
    x1, x2 = (np.asarray(x, np.int64) for x in inputs)
    scaled1 = mbqm((x1 + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift)
    scaled2 = mbqm((x2 + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift)
    raw = mbqm(scaled1 + scaled2, p.output_multiplier, p.output_shift) + p.output_offset
    return np.minimum(np.maximum(raw, p.act_min), p.act_max).astype(np.int8)


def macs(node: Node, graph: Graph) -> int:
    """0: an elementwise add has no multiply-accumulates; MACs count conv/FC work only."""
    return 0


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """Per input, the largest d with the output at input_start + d (kernels/__init__.py).

    Element i reads input[i] and input2[i], then writes output[i], in ascending i: the
    output may coincide with either input (d = 0) or start below it."""
    size = graph.tensor(node.outputs[0]).nbytes
    limit = raster_limit(np.arange(size), 1, size, lag=1)
    return (limit, limit)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {k: int(v) for k, v in dataclasses.asdict(lowered_params(node)).items()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return []
