"""What conv2d, depthwise_conv2d and fully_connected share: constants and the output stage.

Each of the three ops reads (activation, weights, bias) and computes, per output
channel c, TFLite Micro's int8 per-channel accumulation

    acc[c] = bias[c] + sum over in-bounds taps of (x + input_offset) * (w + weight_offset)

followed by `requantize(acc, multiplier[c], shift[c], output_offset, act_min, act_max)`.

Quantization (compile time): weights become int8, symmetric per output channel
(zero point 0, values in [-127, 127]), the bias int32 at scale s_in * s_w[c].
`weight_offset` (= -zero point of per-tensor weights) is an extension that keeps
uint8 models with asymmetric weights exact once their weights are moved to int8
(zero point zp_w - 128); it is 0 for everything mcugen quantizes itself.

Scales are float32 in a .tflite file, and TFLite widens them to double when it
derives the multipliers: every scale goes through float32 here too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..ir import Graph, IRError, Node, QParams, Tensor
from ..quant.arith import INT32_MAX, INT32_MIN, quantize_multiplier, requantize
from .common import activation_range, io_qparams, round_half_away

_RANGE_HINT = ("the float weights are extreme (a corrupt file, or a batch norm with variance + epsilon near 0): "
               "check the model's weights")


class RangeError(IRError, UserError):
    """The model's numbers are beyond what int8 arithmetic represents: the model's to fix, not a compiler bug."""


WEIGHT_MAX = 127  # symmetric int8: -128 is never used, so -w is always representable
# A quantized bias stays within 2^30, leaving the other half of int32 to the products.
BIAS_LIMIT = 1 << 30


@dataclass(frozen=True, eq=False)
class OutputStage:
    """The integer parameters every weighted op shares; arrays have one entry per output channel."""

    input_offset: int  # -input zero point
    weight_offset: int  # -weight zero point (per-tensor weights), normally 0
    output_offset: int  # +output zero point
    act_min: int
    act_max: int
    multiplier: np.ndarray  # int32
    shift: np.ndarray  # int32

    def c_fields(self) -> dict[str, int]:
        """The scalar fields, as they end the op's C params struct."""
        return {
            "input_offset": self.input_offset,
            "weight_offset": self.weight_offset,
            "output_offset": self.output_offset,
            "act_min": self.act_min,
            "act_max": self.act_max,
        }


def float32(x: np.ndarray | float) -> np.ndarray:
    """Scales as the float32 a .tflite file holds, widened back to float64."""
    return np.asarray(x, np.float64).astype(np.float32).astype(np.float64)


def constants(node: Node, graph: Graph) -> tuple[Tensor, Tensor]:
    """The node's (weights, bias) tensors: inputs 1 and 2, both constant."""
    if len(node.inputs) != 3:
        raise IRError(f"node '{node.name}' ({node.op}): expected inputs (x, weights, bias), got {node.inputs}")
    weights, bias = graph.tensor(node.inputs[1]), graph.tensor(node.inputs[2])
    if not (weights.is_const and bias.is_const):
        raise IRError(f"node '{node.name}' ({node.op}): weights and bias must be constants")
    return weights, bias


def _channel_view(a: np.ndarray, axis: int) -> np.ndarray:
    """a with the channel axis first and everything else flattened: (C, -1)."""
    return np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)


def channel_scales(weights: np.ndarray, axis: int, bias: np.ndarray, input_scale: float) -> np.ndarray:
    """Per-channel symmetric scales max|w_c| / 127, as float32.

    Two guards, both only for degenerate channels (near-dead ones, common after
    folding a batch norm with tiny gamma): the scale is at least
    |b_c| / (s_in * BIAS_LIMIT), so the quantized bias fits int32 with room for
    the products instead of saturating (the weights then lose resolution, the
    bias does not); and a zero scale (weights and bias all zero, or a float32
    underflow) becomes 1.0 — the weights quantize to 0 whatever the scale.
    """
    max_abs = np.abs(_channel_view(np.asarray(weights, np.float64), axis)).max(axis=1)
    bias_floor = np.abs(np.asarray(bias, np.float64)) / (float32(input_scale) * BIAS_LIMIT)
    scales = float32(np.maximum(max_abs / WEIGHT_MAX, bias_floor))
    return np.where(scales > 0.0, scales, 1.0)


def quantize_weights(weights: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    """round_half_away(w / s_c) clipped to [-127, 127], int8."""
    shape = [1] * weights.ndim
    shape[axis] = -1
    q = round_half_away(np.asarray(weights, np.float64) / scales.reshape(shape))
    return np.clip(q, -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)


def quantize_bias(bias: np.ndarray, input_scale: float, scales: np.ndarray) -> np.ndarray:
    """round_half_away(b / (s_in * s_w[c])), saturated to int32."""
    q = round_half_away(np.asarray(bias, np.float64) / (float32(input_scale) * scales))
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)


def quantize_weighted(node: Node, graph: Graph, axis: int) -> list[Tensor]:
    """The `quantize_constants` of a weighted op whose weights have output channels on `axis`.

    Weights already int8 with QParams (a pre-quantized model) are kept, and so
    is an int32 bias; a float bias is quantized with the weights' scales.
    """
    weights, bias = constants(node, graph)
    s_in = io_qparams(node, graph)[0].scalar_scale
    channels = weights.shape[axis]
    if bias.shape != (channels,):
        raise IRError(f"node '{node.name}' ({node.op}): bias shape {bias.shape}, expected ({channels},)")
    updates = []
    if weights.dtype == "float32":
        if not (np.all(np.isfinite(weights.data)) and np.all(np.isfinite(bias.data))):
            # NaN would pass the scale guards (NaN > 0 is false) and cast to arbitrary int8
            raise RangeError(f"node '{node.name}' ({node.op}): the float weights or bias are not finite; "
                             f"hint: {_RANGE_HINT}")
        if bias.dtype != "float32":  # an integer bias was quantized against other weight scales
            raise IRError(f"node '{node.name}' ({node.op}): float weights with a {bias.dtype} bias")
        scales = channel_scales(weights.data, axis, bias.data, s_in)
        qparams = QParams(scales, np.zeros(channels, np.int64), axis)
        weights = dataclasses.replace(
            weights, dtype="int8", data=quantize_weights(weights.data, scales, axis), qparams=qparams
        )
        updates.append(weights)
    scales = weight_scales(node, weights, axis)
    if bias.dtype == "float32":
        bias_qparams = QParams(float32(s_in) * scales, np.zeros(channels, np.int64), 0)
        updates.append(
            dataclasses.replace(
                bias, dtype="int32", data=quantize_bias(bias.data, s_in, scales), qparams=bias_qparams
            )
        )
    elif bias.dtype != "int32":
        raise IRError(f"node '{node.name}' ({node.op}): bias is {bias.dtype}, expected float32 or int32")
    return updates


def weight_scales(node: Node, weights: Tensor, axis: int) -> np.ndarray:
    """The float32 scale of each output channel of int8 weights (per-tensor: broadcast)."""
    if weights.dtype != "int8" or weights.qparams is None:
        raise IRError(f"node '{node.name}' ({node.op}): weights are {weights.dtype} without int8 QParams")
    qp, channels = weights.qparams, weights.shape[axis]
    if qp.axis is None and qp.scale.size == 1:
        return np.full(channels, float32(qp.scale[0]))
    if qp.axis != axis or qp.scale.shape != (channels,):
        raise IRError(
            f"node '{node.name}' ({node.op}): weight QParams on axis {qp.axis} with {qp.scale.size} scales;"
            f" expected {channels} on axis {axis}"
        )
    return float32(qp.scale)


def weight_offset(node: Node, weights: Tensor) -> int:
    """-zero point of the weights: any int8 value per-tensor, 0 only per-channel (as TFLite)."""
    assert weights.qparams is not None
    zp = weights.qparams.zero_point
    if weights.qparams.axis is None and zp.size == 1:
        return -int(zp[0])
    if np.any(zp != 0):
        raise IRError(f"node '{node.name}' ({node.op}): per-channel weights need zero points 0")
    return 0


def real_constants(node: Node, graph: Graph, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) as float64, dequantized if they are integers (a pre-quantized model)."""

    def real(t: Tensor, axis: int) -> np.ndarray:
        data = np.asarray(t.data, np.float64)
        if t.dtype == "float32":
            return data
        if t.qparams is None:
            raise IRError(f"node '{node.name}' ({node.op}): {t.dtype} constant '{t.name}' has no QParams")
        shape = [1] * data.ndim
        if t.qparams.scale.size > 1:
            shape[axis] = -1
        return (data - t.qparams.zero_point.reshape(shape)) * t.qparams.scale.reshape(shape)

    weights, bias = constants(node, graph)
    return real(weights, axis), real(bias, 0)


def lower_output_stage(node: Node, graph: Graph, axis: int) -> OutputStage:
    """Offsets, clamp and per-channel (multiplier, shift) of M_c = s_in * s_w[c] / s_out.

    Refuses a node whose int32 accumulator could overflow for some input (TFLite
    would be undefined there; the C must never differ from the int64 reference).
    """
    weights, bias = constants(node, graph)
    if bias.dtype != "int32":
        raise IRError(f"node '{node.name}' ({node.op}): bias is {bias.dtype}, not quantized to int32")
    in_qp, out_qp = io_qparams(node, graph)
    scales = weight_scales(node, weights, axis)
    w_offset = weight_offset(node, weights)
    s_in, s_out = float(float32(in_qp.scalar_scale)), float(float32(out_qp.scalar_scale))
    if not np.all(np.isfinite(scales)):
        raise RangeError(f"node '{node.name}' ({node.op}): the weight scales are not finite; hint: {_RANGE_HINT}")
    multipliers = [quantize_multiplier(s_in * float(s_w) / s_out) for s_w in scales]
    if any(shift > 31 for _, shift in multipliers):
        raise RangeError(f"node '{node.name}' ({node.op}): output scale {s_out} is over 2^31 times too small "
                         f"for the weights; hint: {_RANGE_HINT}")
    zp_in = in_qp.scalar_zero_point
    max_input = max(128 + zp_in, 127 - zp_in)  # largest |x + input_offset| over int8 x
    weight_sums = np.abs(_channel_view(weights.data.astype(np.int64) + w_offset, axis)).sum(axis=1)
    worst = np.abs(bias.data.astype(np.int64)) + max_input * weight_sums
    if np.any(worst > INT32_MAX):
        raise RangeError(f"node '{node.name}' ({node.op}): the int32 accumulator could overflow (bound "
                         f"{worst.max()}); hint: {_RANGE_HINT}")
    act_min, act_max = activation_range(node.attrs.activation, out_qp)
    return OutputStage(
        input_offset=-zp_in,
        weight_offset=w_offset,
        output_offset=out_qp.scalar_zero_point,
        act_min=act_min,
        act_max=act_max,
        multiplier=np.array([q for q, _ in multipliers], np.int32),
        shift=np.array([s for _, s in multipliers], np.int32),
    )


def output_stage(acc: np.ndarray, stage: OutputStage) -> np.ndarray:
    """int8 outputs of int64 accumulators whose last axis is the output channel."""
    return requantize(acc, stage.multiplier, stage.shift, stage.output_offset, stage.act_min, stage.act_max)


def c_constants_of(node: Node, graph: Graph, stage: OutputStage) -> list[tuple[str, np.ndarray]]:
    """The arrays after the activations, in argument order: weights, bias, multiplier, shift."""
    weights, bias = constants(node, graph)
    return [
        ("weights", np.asarray(weights.data, np.int8)),
        ("bias", np.asarray(bias.data, np.int32)),
        ("multiplier", stage.multiplier),
        ("shift", stage.shift),
    ]


def float_activation(v: np.ndarray, node: Node) -> np.ndarray:
    """The fused clamp in the real domain, as float32 (the float semantics' result type)."""
    act = node.attrs.activation
    return np.minimum(np.maximum(v, act.lo), act.hi).astype(np.float32)
