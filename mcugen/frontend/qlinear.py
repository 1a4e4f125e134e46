"""QLinear ONNX ops (onnxruntime's optimised quantized form) -> the equivalent QDQ nodes.

QLinearConv(x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, B) computes exactly what
DequantizeLinear(x), DequantizeLinear(w), DequantizeLinear(B at x_s * w_s) ->
Conv -> QuantizeLinear(y_s, y_zp) describes; so does every other QLinear op with
its float op. Rewriting them that way lets one frontend (qdq.py) handle both forms.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import Problem, UnsupportedModelError

MS_DOMAIN = "com.microsoft"
Rewrite = Callable[[onnx.NodeProto, "_Builder"], None]


class _Builder:
    """The rewritten node list, fresh tensor names and the initializers the rewrite adds."""

    def __init__(self, constants: dict[str, np.ndarray]) -> None:
        self.constants = constants
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, base: str) -> str:
        self._count += 1
        return f"{base}__qlinear{self._count}"

    def dequantize(self, x: str, scale: str, zero_point: str, axis: int | None = None) -> str:
        out = self.fresh(x)
        attrs = {} if axis is None else {"axis": axis}
        inputs = [x, scale] + ([zero_point] if zero_point else [])
        self.nodes.append(helper.make_node("DequantizeLinear", inputs, [out], name=out, **attrs))
        return out

    def quantize(self, x: str, scale: str, zero_point: str, out: str) -> None:
        inputs = [x, scale] + ([zero_point] if zero_point else [])
        self.nodes.append(helper.make_node("QuantizeLinear", inputs, [out], name=self.fresh(out)))

    def op(self, node: onnx.NodeProto, op_type: str, inputs: list[str], drop: tuple[str, ...] = ()) -> str:
        out = self.fresh(node.output[0])
        attrs = [a for a in node.attribute if a.name not in drop]
        float_node = helper.make_node(op_type, inputs, [out], name=node.name or out)
        float_node.attribute.extend(attrs)
        self.nodes.append(float_node)
        return out

    def constant(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name


def _inputs(node: onnx.NodeProto, count: int) -> list[str]:
    return list(node.input) + [""] * (count - len(node.input))


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _conv(node: onnx.NodeProto, b: _Builder) -> None:
    x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, bias = _inputs(node, 9)
    args = [b.dequantize(x, x_s, x_zp), b.dequantize(w, w_s, w_zp, axis=0)]
    if bias:
        # The bias is int32 at scale x_s * w_s (per output channel), zero point 0.
        scale = (np.float32(b.constants[x_s]) * b.constants[w_s].astype(np.float32)).reshape(-1)
        args.append(b.dequantize(bias, b.constant(bias + "_scale", scale), "", axis=0 if scale.size > 1 else None))
    b.quantize(b.op(node, "Conv", args), y_s, y_zp, node.output[0])


def _gemm(node: onnx.NodeProto, b: _Builder) -> None:
    """com.microsoft QGemm: Gemm of dequantized A and B plus an int32 C at a_s * b_s."""
    a, a_s, a_zp, w, w_s, w_zp, bias, y_s, y_zp = _inputs(node, 9)
    if not y_s:
        raise ValueError("a float output (no y_scale) is not supported")
    per_channel = np.asarray(b.constants[w_s]).size > 1
    axis = (0 if _attr(node, "transB", 0) else 1) if per_channel else None
    args = [b.dequantize(a, a_s, a_zp), b.dequantize(w, w_s, w_zp, axis=axis)]
    if bias:
        scale = (np.float32(b.constants[a_s]) * b.constants[w_s].astype(np.float32)).reshape(-1)
        args.append(b.dequantize(bias, b.constant(bias + "_scale", scale), "", axis=0 if per_channel else None))
    b.quantize(b.op(node, "Gemm", args), y_s, y_zp, node.output[0])


def _matmul(node: onnx.NodeProto, b: _Builder) -> None:
    a, a_s, a_zp, w, w_s, w_zp, y_s, y_zp = _inputs(node, 8)
    per_column = np.asarray(b.constants.get(w_s, 0)).size > 1
    args = [b.dequantize(a, a_s, a_zp), b.dequantize(w, w_s, w_zp, axis=1 if per_column else None)]
    b.quantize(b.op(node, "MatMul", args), y_s, y_zp, node.output[0])


def _add(node: onnx.NodeProto, b: _Builder) -> None:
    a, a_s, a_zp, c, c_s, c_zp, y_s, y_zp = _inputs(node, 8)
    args = [b.dequantize(a, a_s, a_zp), b.dequantize(c, c_s, c_zp)]
    b.quantize(b.op(node, "Add", args), y_s, y_zp, node.output[0])


def _unary(op_type: str, drop: tuple[str, ...] = ()) -> Rewrite:
    def rewrite(node: onnx.NodeProto, b: _Builder) -> None:
        if _attr(node, "channels_last", 0):
            raise ValueError("channels_last=1 is not supported")
        x, x_s, x_zp, y_s, y_zp = _inputs(node, 5)
        b.quantize(b.op(node, op_type, [b.dequantize(x, x_s, x_zp)], drop), y_s, y_zp, node.output[0])

    return rewrite


REWRITES: dict[tuple[str, str], Rewrite] = {
    ("", "QLinearConv"): _conv,
    ("", "QLinearMatMul"): _matmul,
    (MS_DOMAIN, "QGemm"): _gemm,
    (MS_DOMAIN, "QLinearAdd"): _add,
    (MS_DOMAIN, "QLinearAveragePool"): _unary("AveragePool", ("channels_last",)),
    (MS_DOMAIN, "QLinearGlobalAveragePool"): _unary("GlobalAveragePool", ("channels_last",)),
    (MS_DOMAIN, "QLinearSoftmax"): _unary("Softmax", ("opset",)),
}


def _key(node: onnx.NodeProto) -> tuple[str, str]:
    return ("" if node.domain in ("", "ai.onnx") else node.domain, node.op_type)


def is_qlinear(model: onnx.ModelProto) -> bool:
    return any(_key(n) in REWRITES for n in model.graph.node)


def qlinear_to_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    builder = _Builder(constants)
    problems = []
    for node in model.graph.node:
        rewrite = REWRITES.get(_key(node))
        if rewrite is None:
            builder.nodes.append(node)
            continue
        try:
            rewrite(node, builder)
        except (ValueError, KeyError) as exc:
            problems.append(Problem(node.name or node.op_type, node.op_type, f"cannot rewrite ({exc})"))
    if problems:
        raise UnsupportedModelError(problems, model=model.graph.name or "model")
    graph = model.graph
    initializers = list(graph.initializer) + builder.initializers
    new_graph = helper.make_graph(builder.nodes, graph.name, list(graph.input), list(graph.output), initializers)
    # Q/DQ are read by qdq.py itself, so the model's opsets stay as they are.
    return helper.make_model(new_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
