"""One function per supported ONNX op (named as in the ONNX spec): ONNX node -> IR node(s).

Activations arrive in ONNX semantics (NCHW); the IR stores 4-D ones NHWC, so
weights are transposed here to the IR's layouts: conv2d (C_out, KH, KW, C_in),
depthwise_conv2d (1, KH, KW, C_out), fully_connected (C_out, C_in). A function
raises Unsupported with the reason when a node is outside what mcugen compiles.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from ..ir import (
    Activation,
    ActivationAttrs,
    BatchNormAttrs,
    ClampAttrs,
    ConvAttrs,
    PadAttrs,
    PoolAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    Window,
)
from .context import Importer, OnnxNode, Unsupported
from .layout import view_gather
from .windows import pool_window, spatial_window


def _nchw_input(ctx: Importer, node: OnnxNode) -> tuple[str, tuple[int, ...]]:
    name = node.inputs[0]
    act = ctx.activation(name)
    if act.rank != 4 or not act.transposed:
        raise Unsupported(f"expects a 4-D NCHW input, got shape {list(act.shape)}")
    return name, act.shape


def Conv(ctx: Importer, node: OnnxNode) -> None:
    x, (_, c_in, h, w) = _nchw_input(ctx, node)
    weights = ctx.constant(node.inputs[1], "weights")
    if weights.ndim != 4:
        raise Unsupported(f"only 2-D convolutions are supported (weights have rank {weights.ndim})")
    c_out, group_in, kh, kw = weights.shape
    group = node.attrs.get("group", 1)
    if group_in * group != c_in:
        raise Unsupported(f"weights {list(weights.shape)} with group={group} do not match {c_in} input channels")
    bias = ctx.optional_constant(node.input(2), "bias")
    bias = np.zeros(c_out, np.float32) if bias is None else bias
    if bias.shape != (c_out,):
        raise Unsupported(f"bias of shape {list(bias.shape)} for {c_out} output channels")
    window = spatial_window(node, (h, w), (kh, kw))
    if group == 1:
        op, attrs, ir_weights = "conv2d", ConvAttrs(window), weights.transpose(0, 2, 3, 1)
    elif group == c_in and group_in == 1 and c_out % c_in == 0:
        # ONNX output channel o reads input channel o // m, exactly TFLite's depthwise order.
        attrs = ConvAttrs(window, depth_multiplier=c_out // c_in)
        op, ir_weights = "depthwise_conv2d", weights.transpose(1, 2, 3, 0)
    else:
        raise Unsupported(f"grouped convolution with group={group} (supported: 1, or the input channel count {c_in})")
    w_name = ctx.add_constant(node.inputs[1], ir_weights)
    b_name = ctx.add_constant(node.input(2) or f"{node.name}/bias", bias)
    ctx.emit(node, op, [x, w_name, b_name], node.outputs[0], (1, c_out) + window.output_hw(h, w), attrs)


def AveragePool(ctx: Importer, node: OnnxNode) -> None:
    x, (_, c, h, w) = _nchw_input(ctx, node)
    window = pool_window(node, (h, w))
    if node.attrs.get("count_include_pad", 0) and any(window.pads):
        raise Unsupported("count_include_pad=1 with padding (TFLite averages over the valid pixels only)")
    ctx.emit(node, "average_pool", [x], node.outputs[0], (1, c) + window.output_hw(h, w), PoolAttrs(window))


def MaxPool(ctx: Importer, node: OnnxNode) -> None:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("the Indices output is not supported")
    x, (_, c, h, w) = _nchw_input(ctx, node)
    window = pool_window(node, (h, w))
    ctx.emit(node, "max_pool", [x], node.outputs[0], (1, c) + window.output_hw(h, w), PoolAttrs(window))


def GlobalAveragePool(ctx: Importer, node: OnnxNode) -> None:
    x, (_, c, h, w) = _nchw_input(ctx, node)
    ctx.emit(node, "average_pool", [x], node.outputs[0], (1, c, 1, 1), PoolAttrs(Window((h, w))))


def ReduceMean(ctx: Importer, node: OnnxNode) -> None:
    x, (_, c, h, w) = _nchw_input(ctx, node)
    axes = node.attrs.get("axes")
    if ctx.opset >= 18 and node.input(1):
        axes = ctx.constant(node.inputs[1], "axes").tolist()
    if axes is None or {a % 4 for a in axes} != {2, 3}:
        raise Unsupported(f"only a mean over H and W (axes 2, 3) is supported, got axes {axes}")
    pool = PoolAttrs(Window((h, w)))
    if node.attrs.get("keepdims", 1):
        ctx.emit(node, "average_pool", [x], node.outputs[0], (1, c, 1, 1), pool)
        return
    pooled = f"{node.outputs[0]}/keepdims"
    ctx.emit(node, "average_pool", [x], pooled, (1, c, 1, 1), pool)
    ctx.emit(node, "reshape", [pooled], node.outputs[0], (1, c), ReshapeAttrs(None))  # [1,1,1,C] is [1,C]


def _clamp(ctx: Importer, node: OnnxNode, activation: Activation) -> None:
    x = node.inputs[0]
    ctx.emit(node, "clamp", [x], node.outputs[0], ctx.activation(x).shape, ClampAttrs(activation))


def Relu(ctx: Importer, node: OnnxNode) -> None:
    _clamp(ctx, node, Activation(0.0, math.inf))


def Clip(ctx: Importer, node: OnnxNode) -> None:
    if ctx.opset < 11:
        lo, hi = node.attrs.get("min", -math.inf), node.attrs.get("max", math.inf)
    else:
        low, high = ctx.optional_constant(node.input(1), "min"), ctx.optional_constant(node.input(2), "max")
        if any(b is not None and b.size != 1 for b in (low, high)):
            raise Unsupported("min and max must be scalars")
        lo = -math.inf if low is None else float(low.reshape(()))
        hi = math.inf if high is None else float(high.reshape(()))
    _clamp(ctx, node, Activation(float(lo), float(hi)))


def BatchNormalization(ctx: Importer, node: OnnxNode) -> None:
    x = node.inputs[0]
    act = ctx.activation(x)
    if node.attrs.get("training_mode", 0) or any(node.outputs[1:]):
        raise Unsupported("training mode (running statistics outputs) is not supported")
    if act.rank not in (2, 4):
        raise Unsupported(f"expects an NC or NCHW input, got shape {list(act.shape)}")
    roles = ("scale", "B", "input_mean", "input_var")
    values = [ctx.constant(n, role).reshape(-1) for n, role in zip(node.inputs[1:5], roles)]
    for role, value in zip(roles, values):
        if value.shape != (act.shape[1],):
            raise Unsupported(f"{role} has {value.size} values for {act.shape[1]} channels")
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    denominator = values[3].astype(np.float64) + epsilon
    if not (math.isfinite(epsilon) and np.all(denominator > 0) and np.all(np.isfinite(denominator))):
        # sqrt(var + epsilon) divides: NaN here would quantize to garbage weights, not fail
        raise Unsupported(f"input_var + epsilon must be positive and finite (epsilon {epsilon}, "
                          f"smallest sum {float(np.min(denominator))})")
    params = [ctx.add_constant(n, value) for n, value in zip(node.inputs[1:5], values)]
    attrs = BatchNormAttrs(epsilon)
    ctx.emit(node, "batch_norm", [x] + params, node.outputs[0], act.shape, attrs)


def Pad(ctx: Importer, node: OnnxNode) -> None:
    x, (_, c, h, w) = _nchw_input(ctx, node)
    if ctx.opset < 11:
        pads, value = node.attrs["pads"], node.attrs.get("value", 0.0)
    else:
        pads = ctx.constant(node.inputs[1], "pads").reshape(-1).tolist()
        value_array = ctx.optional_constant(node.input(2), "constant_value")
        if value_array is not None and value_array.size != 1:
            raise Unsupported(f"constant_value of shape {list(value_array.shape)} must be a scalar")
        value = 0.0 if value_array is None else float(value_array.reshape(()))
        if node.input(3):
            full = [0] * 8
            axes = ctx.constant(node.inputs[3], "axes").reshape(-1).tolist()
            if len(pads) != 2 * len(axes) or any(not -4 <= a < 4 for a in axes):
                raise Unsupported(f"pads {pads} do not match axes {axes} of a 4-D input")
            for i, axis in enumerate(axes):
                full[axis % 4], full[axis % 4 + 4] = pads[i], pads[i + len(pads) // 2]
            pads = full
    mode = node.attrs.get("mode", "constant")
    if mode != "constant":
        raise Unsupported(f"mode '{mode}' (only constant padding is supported)")
    if len(pads) != 8:
        raise Unsupported(f"pads {pads} must have 8 values (begin and end of the 4 axes)")
    n0, c0, top, left, n1, c1, bottom, right = (int(p) for p in pads)
    if n0 or c0 or n1 or c1:
        raise Unsupported(f"pads {pads} pad the batch or channel axis (only H and W can be padded)")
    if min(top, left, bottom, right) < 0:
        raise Unsupported(f"negative pads {pads} (cropping) are not supported")
    shape = (1, c, h + top + bottom, w + left + right)
    ctx.emit(node, "pad", [x], node.outputs[0], shape, PadAttrs((top, left, bottom, right), value))


def _fully_connected(ctx: Importer, node: OnnxNode, weights: np.ndarray, bias: np.ndarray) -> None:
    """weights (C_out, C_in) in the IR's order."""
    x = node.inputs[0]
    act = ctx.activation(x)
    if act.rank != 2 or act.shape[1] != weights.shape[1]:
        raise Unsupported(f"expects a [1, {weights.shape[1]}] input, got shape {list(act.shape)}")
    w_name = ctx.add_constant(node.inputs[1], weights)
    b_name = ctx.add_constant(node.input(2) or f"{node.name}/bias", bias)
    ctx.emit(node, "fully_connected", [x, w_name, b_name], node.outputs[0], (1, weights.shape[0]), ActivationAttrs())


def Gemm(ctx: Importer, node: OnnxNode) -> None:
    if node.attrs.get("transA", 0):
        raise Unsupported("transA=1 is not supported")
    b = ctx.constant(node.inputs[1], "B")
    if b.ndim != 2:
        raise Unsupported(f"B must be a 2-D constant, got shape {list(b.shape)}")
    weights = node.attrs.get("alpha", 1.0) * (b if node.attrs.get("transB", 0) else b.T)
    c = ctx.optional_constant(node.input(2), "C")
    bias = np.zeros(weights.shape[0], np.float32)
    if c is not None:
        try:
            bias = node.attrs.get("beta", 1.0) * np.broadcast_to(c, (1, weights.shape[0]))[0]
        except ValueError:
            raise Unsupported(f"C of shape {list(c.shape)} is not a per-output bias") from None
    _fully_connected(ctx, node, weights, bias)


def MatMul(ctx: Importer, node: OnnxNode) -> None:
    b = ctx.constant(node.inputs[1], "B")
    if b.ndim != 2:
        raise Unsupported(f"B must be a 2-D constant, got shape {list(b.shape)}")
    _fully_connected(ctx, node, b.T, np.zeros(b.shape[1], np.float32))


def Add(ctx: Importer, node: OnnxNode) -> None:
    a, b = node.inputs
    if a in ctx.constants or b in ctx.constants:
        _fold_bias(ctx, node)
        return
    shape_a, shape_b = ctx.activation(a), ctx.activation(b)
    if shape_a != shape_b:
        shapes = f"{list(shape_a.shape)} and {list(shape_b.shape)}"
        raise Unsupported(f"shapes {shapes} differ (broadcasting is not supported)")
    ctx.emit(node, "add", [a, b], node.outputs[0], shape_a.shape, ActivationAttrs())


def _fold_bias(ctx: Importer, node: OnnxNode) -> None:
    """Add(activation, per-channel constant) right after Conv/Gemm/MatMul: into the bias."""
    x, c = node.inputs if node.inputs[1] in ctx.constants else node.inputs[::-1]
    act = ctx.activation(x)
    producer = ctx.producer(x)
    has_bias = producer is not None and producer.op in ("conv2d", "depthwise_conv2d", "fully_connected")
    if not has_bias or not ctx.has_single_use(x):
        raise Unsupported("adding a constant is only supported right after Conv, Gemm or MatMul (folded into the bias)")
    const = ctx.constants[c]
    channels = act.shape[1]
    # ONNX broadcasting aligns trailing axes: the constant must vary along axis 1 only.
    padded = const.reshape((1,) * (act.rank - const.ndim) + const.shape) if const.ndim <= act.rank else const
    per_channel = padded.ndim == act.rank and padded.shape[1] in (1, channels)
    if not per_channel or any(d != 1 for i, d in enumerate(padded.shape) if i != 1):
        raise Unsupported(f"constant of shape {list(const.shape)} is not a per-channel bias")
    bias = ctx.tensors[producer.inputs[2]]  # the frontend gives each node its own constants
    data = bias.data + np.broadcast_to(padded.reshape(-1), (channels,))
    ctx.tensors[bias.name] = dataclasses.replace(bias, data=data.astype(np.float32))
    del ctx.tensors[x]
    ctx.add_activation(node.outputs[0], act.shape)
    ctx.replace_node(producer, dataclasses.replace(producer, outputs=(node.outputs[0],)))


def Softmax(ctx: Importer, node: OnnxNode) -> None:
    x = node.inputs[0]
    act = ctx.activation(x)
    default_axis = -1 if ctx.opset >= 13 else 1
    axis = node.attrs.get("axis", default_axis) % act.rank
    # Before opset 13 the input is coerced to 2-D: softmax runs over all axes from `axis` on.
    axes = {axis} if ctx.opset >= 13 else set(range(axis, act.rank))
    storage_axis = {1: 3, 2: 1, 3: 2, 0: 0} if act.transposed else {i: i for i in range(act.rank)}
    reduced = {storage_axis[a] for a in axes if act.shape[a] != 1}
    if not reduced <= {len(act.shape) - 1}:
        where = f"axes {sorted(axes)} of shape {list(act.shape)}"
        raise Unsupported(f"softmax over {where} (only the channel axis is supported)")
    ctx.emit(node, "softmax", [x], node.outputs[0], act.shape, SoftmaxAttrs())


def _view(ctx: Importer, node: OnnxNode) -> None:
    """Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Identity: an IR reshape with a gather."""
    x = node.inputs[0]
    act = ctx.activation(x)
    constants = {n: ctx.constant(n, "shape/axes input") for n in node.inputs[1:] if n}
    try:
        shape, gather = view_gather(node.proto, x, act.shape, act.transposed, constants, ctx.opset)
    except Exception as exc:  # the reference evaluator raises whatever NumPy raises on bad shapes
        raise Unsupported(f"cannot apply to shape {list(act.shape)} ({exc})") from None
    ctx.emit(node, "reshape", [x], node.outputs[0], shape, ReshapeAttrs(gather))


Transpose = Reshape = Flatten = Squeeze = Unsqueeze = Identity = _view

OPS: dict[str, Callable[[Importer, OnnxNode], None]] = {
    "Add": Add,
    "AveragePool": AveragePool,
    "BatchNormalization": BatchNormalization,
    "Clip": Clip,
    "Conv": Conv,
    "Flatten": Flatten,
    "Gemm": Gemm,
    "GlobalAveragePool": GlobalAveragePool,
    "Identity": Identity,
    "MatMul": MatMul,
    "MaxPool": MaxPool,
    "Pad": Pad,
    "ReduceMean": ReduceMean,
    "Relu": Relu,
    "Reshape": Reshape,
    "Softmax": Softmax,
    "Squeeze": Squeeze,
    "Transpose": Transpose,
    "Unsqueeze": Unsqueeze,
}
