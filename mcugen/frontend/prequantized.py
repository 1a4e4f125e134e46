"""Pre-quantized ONNX models (QDQ, QLinear, int8 or uint8) -> IR with the model's own integers.

QLinear ops are first rewritten to QDQ (qlinear.py), Q/DQ are stripped (qdq.py),
and the float frontend imports what is left with the weighted ops wrapped: once
Conv / Gemm / MatMul has built its IR node from the dequantized weights, the
wrapper swaps in the model's integers (int8, uint8 moved to int8 with its zero
point, so the kernels' weight_offset keeps asymmetric weights exact) and its
int32 bias. The compiler then canonicalises as for a float model and quantizes
with `model_qparams` instead of calibration statistics.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx

from ..errors import Problem, UnsupportedModelError
from ..ir import Graph, QParams, Tensor
from ..kernels import conv2d, depthwise_conv2d, fully_connected
from ..kernels.common import round_half_away
from .context import Importer, OnnxNode, Unsupported
from .onnx import import_model
from .ops import OPS
from .qdq import QdqModel, QuantizedConstant, is_qdq, strip_qdq
from .qlinear import is_qlinear, qlinear_to_qdq

# The output-channel axis of each weighted op's IR weights.
IR_CHANNEL_AXIS = {m.OP: m.CHANNEL_AXIS for m in (conv2d, depthwise_conv2d, fully_connected)}
# Ops whose output QParams the int8 kernels impose (TFLite): the model's own are not used.
IMPOSING_OPS = ("average_pool", "max_pool", "softmax")
# A bias is used as stored when its scale is s_in * s_w up to float32 rounding.
BIAS_SCALE_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class PrequantizedImport:
    graph: Graph  # stage "float" before canonicalisation; weights int8 with QParams, biases int32
    activations: dict[str, QParams]  # the model's QParams per activation (ONNX names)
    input_dtype: str | None
    form: str  # "qdq" or "qlinear"


def is_prequantized(model: onnx.ModelProto) -> bool:
    return is_qdq(model) or is_qlinear(model)


def import_prequantized(model: onnx.ModelProto, name: str = "model") -> PrequantizedImport:
    form = "qlinear" if is_qlinear(model) else "qdq"
    qdq = strip_qdq(qlinear_to_qdq(model) if form == "qlinear" else model, name)
    ops = dict(OPS)
    ops["Conv"] = _weighted(OPS["Conv"], qdq, lambda node: 0)
    ops["MatMul"] = _weighted(OPS["MatMul"], qdq, lambda node: 1)
    ops["Gemm"] = _weighted(OPS["Gemm"], qdq, lambda node: 0 if node.attrs.get("transB", 0) else 1)
    ops["Add"] = _bias_add(qdq)
    ops.pop("BatchNormalization")  # would rescale integer weights: a quantized model has it folded
    graph = import_model(qdq.model, name, ops)
    meta = {**graph.meta, "quantized_input_dtype": qdq.input_dtype, "prequantized": form}
    return PrequantizedImport(graph.replace(meta=meta), qdq.activations, qdq.input_dtype, form)


def model_qparams(imported: PrequantizedImport, graph: Graph) -> tuple[dict[str, QParams], list[str]]:
    """The QParams `passes.quantize` needs for canonical `graph`, and notes on QParams the kernels impose.

    Every activation must be quantized by the model itself, except the outputs of
    ops that impose their QParams (TFLite requires them): a note names each such
    output whose model QParams differ, since there mcugen cannot follow the model."""
    table, missing, notes = {}, [], []
    imposing = {n.outputs[0]: n for n in graph.nodes if n.op in IMPOSING_OPS}
    for tensor in graph.activations():
        qp = imported.activations.get(tensor.name)
        if qp is not None:
            table[tensor.name] = qp
        if tensor.name in imposing:
            continue
        if qp is None:
            producer = graph.producer(tensor.name)
            missing.append(Problem(producer.name if producer else tensor.name, producer.op if producer else "input",
                                   f"output '{tensor.name}' has no QuantizeLinear", "quantize every activation"))
    if missing:
        raise UnsupportedModelError(missing, model=graph.meta.get("name", "model"))
    effective = dict(table)  # what passes.quantize will give each tensor, in execution order
    for node in graph.nodes:
        if node.op not in IMPOSING_OPS:
            continue
        source = next(n for n in node.inputs if not graph.tensor(n).is_const)
        imposed = QParams.per_tensor(1.0 / 256.0, -128) if node.op == "softmax" else effective[source]
        effective[node.outputs[0]] = imposed
        model_qp = imported.activations.get(node.outputs[0])
        if model_qp is not None and not _close(model_qp, imposed):
            notes.append(f"'{node.name}' ({node.op}): the model quantizes its output with scale "
                         f"{model_qp.scalar_scale:.6g}, zero point {model_qp.scalar_zero_point}; the int8 kernel "
                         f"uses scale {imposed.scalar_scale:.6g}, zero point {imposed.scalar_zero_point}")
    return table, notes


def _close(a: QParams, b: QParams) -> bool:
    return a.scalar_zero_point == b.scalar_zero_point and np.isclose(a.scalar_scale, b.scalar_scale, rtol=1e-3, atol=0)


def _weighted(float_op: Callable[[Importer, OnnxNode], None], qdq: QdqModel,
              onnx_channel_axis: Callable[[OnnxNode], int]) -> Callable[[Importer, OnnxNode], None]:
    """The float op, then the model's integers swapped into the IR node it built."""

    def op(ctx: Importer, node: OnnxNode) -> None:
        weights = qdq.constants.get(node.inputs[1])
        if weights is None:
            raise Unsupported("float weights in a quantized model (expected them behind a DequantizeLinear)")
        float_op(ctx, node)
        ir_node = ctx.nodes[-1]
        axis = IR_CHANNEL_AXIS[ir_node.op]
        ctx.tensors[ir_node.inputs[1]] = _int8_weights(ctx.tensors[ir_node.inputs[1]], weights,
                                                       onnx_channel_axis(node), axis)
        bias = qdq.constants.get(node.input(2))
        if bias is not None:
            _set_bias(ctx, qdq, ir_node.inputs[0], ir_node.inputs[1], ir_node.inputs[2], bias)

    return op


def _bias_add(qdq: QdqModel) -> Callable[[Importer, OnnxNode], None]:
    """Add of a dequantized int32 constant after MatMul: its integers become the bias."""

    def op(ctx: Importer, node: OnnxNode) -> None:
        const = next((qdq.constants[n] for n in node.inputs if n in qdq.constants), None)
        x = next((n for n in node.inputs if n not in qdq.constants), node.inputs[0])
        producer = ctx.producer(x)
        OPS["Add"](ctx, node)
        if const is None or producer is None or producer.op not in IR_CHANNEL_AXIS:
            return
        bias = ctx.tensors[producer.inputs[2]]
        if bias.dtype == "float32" and const.data.dtype == np.int32 and const.data.size == bias.size:
            if np.array_equal(bias.data, const.dequantized().reshape(-1)):  # the bias was zero before
                _set_bias(ctx, qdq, producer.inputs[0], producer.inputs[1], bias.name, const)

    return op


def _int8_weights(tensor: Tensor, const: QuantizedConstant, onnx_axis: int, ir_axis: int) -> Tensor:
    """The IR weights (float, already in IR layout) as the model's integers, moved to int8."""
    qp = const.qparams
    if qp.axis is not None and qp.axis != onnx_axis:
        raise Unsupported(f"weights quantized per channel along axis {qp.axis}; expected the output-channel axis {onnx_axis}")
    if const.data.dtype not in (np.int8, np.uint8):
        raise Unsupported(f"{const.data.dtype} weights (int8 or uint8 only)")
    shape = [1] * len(tensor.shape)
    if qp.axis is not None:
        shape[ir_axis] = -1
    scale, zp = qp.scale.reshape(shape), qp.zero_point.reshape(shape)
    q = round_half_away(np.asarray(tensor.data, np.float64) / scale) + zp
    # The float op only reordered the dequantized weights: recovering the integers is exact, checked.
    if not np.array_equal(((q - zp) * scale).astype(np.float32), tensor.data):
        raise Unsupported("the weights were transformed (scaled or combined) on their way to the op")
    shift = 128 if const.data.dtype == np.uint8 else 0
    if qp.axis is not None and np.any(qp.zero_point != shift):
        raise Unsupported("per-channel weights need zero point 0 (int8) or 128 (uint8), as TFLite")
    int8_qp = QParams(qp.scale, qp.zero_point - shift, None if qp.axis is None else ir_axis)
    return dataclasses.replace(tensor, dtype="int8", data=(q - shift).astype(np.int8), qparams=int8_qp)


def _set_bias(ctx: Importer, qdq: QdqModel, x: str, weights_name: str, bias_name: str,
              const: QuantizedConstant) -> None:
    """The model's int32 bias, rescaled only if its scale is not s_in * s_w (as TFLite assumes)."""
    in_qp = qdq.activations.get(x)
    weights = ctx.tensors[weights_name]
    if in_qp is None or const.data.dtype != np.int32 or weights.qparams is None:
        return  # the float bias stays: passes.quantize quantizes it against the weights' scales
    channels = ctx.tensors[bias_name].size
    s_w = np.broadcast_to(weights.qparams.scale.astype(np.float32).astype(np.float64), (channels,))
    expected = float(np.float32(in_qp.scalar_scale)) * s_w
    s_b = np.broadcast_to(const.qparams.scale, (channels,))
    q = np.asarray(const.data, np.int64).reshape(-1) - np.broadcast_to(const.qparams.zero_point, (channels,))
    if not np.allclose(s_b, expected, rtol=BIAS_SCALE_RTOL, atol=0):
        q = round_half_away(q * s_b / expected).astype(np.int64)
    data = np.clip(q, -(1 << 31), (1 << 31) - 1).astype(np.int32)
    ctx.tensors[bias_name] = Tensor(bias_name, (channels,), "int32", data, QParams(expected, np.zeros(channels, np.int64), 0))
