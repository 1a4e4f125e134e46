"""QDQ ONNX graphs -> a float ONNX graph plus the model's own quantization.

A QDQ model (tf2onnx from an int8/uint8 .tflite, onnxruntime's quantize_static,
PyTorch QAT export) writes every quantized op as DequantizeLinear -> float op ->
QuantizeLinear. `strip_qdq` removes that scaffolding so the float frontend can
import the ops as they are, and keeps what the scaffolding said:

- a DequantizeLinear of a constant becomes a float initializer (the exact
  dequantized value) and its integers are kept in `QdqModel.constants`, so the
  compiler uses the model's weights and biases, never re-derives them;
- a QuantizeLinear / DequantizeLinear of an activation becomes an alias of its
  input, and its scale and zero point are recorded for the float tensor it
  quantizes (uint8 moved to int8: same scale, zero point - 128, exact).

Pure layout ops (Reshape, Transpose, ...) between a Q and a DQ keep their
input's quantization, so it is propagated through them both ways.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import Problem, UnsupportedModelError
from ..ir import QParams

QUANTIZE, DEQUANTIZE = "QuantizeLinear", "DequantizeLinear"
# Ops that move elements without changing their values: the quantization passes through.
VIEW_OPS = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
ACTIVATION_DTYPES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8"}


@dataclass(frozen=True, eq=False)
class QuantizedConstant:
    """A constant behind a DequantizeLinear: the integers the model stores and their QParams.

    `qparams.axis` is the ONNX axis of the per-channel quantization (non-negative)."""

    data: np.ndarray  # int8, uint8 or int32, as stored
    qparams: QParams

    def dequantized(self) -> np.ndarray:
        shape = [1] * self.data.ndim
        if self.qparams.axis is not None:
            shape[self.qparams.axis] = -1
        zp, scale = self.qparams.zero_point.reshape(shape), self.qparams.scale.reshape(shape)
        return ((self.data.astype(np.float64) - zp) * scale).astype(np.float32)


@dataclass(frozen=True, eq=False)
class QdqModel:
    model: onnx.ModelProto  # float ops only; activation Q/DQ removed, weight DQs turned into initializers
    activations: dict[str, QParams]  # float tensor name -> int8 per-tensor QParams
    constants: dict[str, QuantizedConstant]  # float initializer name -> the integers behind it
    input_dtype: str | None  # "int8" / "uint8" when the model's input is already quantized


def is_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in (QUANTIZE, DEQUANTIZE) for n in model.graph.node)


def strip_qdq(model: onnx.ModelProto, name: str = "model") -> QdqModel:
    constants = _constant_values(model.graph)
    problems: list[Problem] = []
    alias: dict[str, str] = {}
    activations: dict[str, QParams] = {}
    quantized: dict[str, QuantizedConstant] = {}
    kept: list[onnx.NodeProto] = []
    # the integer type of each quantized activation: a DequantizeLinear without zero point needs it
    int_types = {v.name: helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type) for v in model.graph.input
                 if v.type.tensor_type.elem_type in (TensorProto.INT8, TensorProto.UINT8)}

    def resolve(tensor: str) -> str:
        while tensor in alias:
            tensor = alias[tensor]
        return tensor

    def record(tensor: str, qparams: QParams, node: onnx.NodeProto) -> None:
        old = activations.get(tensor)
        if old is not None and not _same(old, qparams):
            problems.append(Problem(node.name or node.op_type, node.op_type,
                                    f"requantizes '{tensor}' to other QParams; only one quantization per tensor"))
        activations.setdefault(tensor, qparams)

    for index, proto in enumerate(model.graph.node):
        label = proto.name or f"{proto.op_type}_{index}"
        if proto.op_type not in (QUANTIZE, DEQUANTIZE):
            renamed = onnx.NodeProto()
            renamed.CopyFrom(proto)
            del renamed.input[:]
            renamed.input.extend(resolve(i) if i else i for i in proto.input)
            kept.append(renamed)
            if proto.op_type in VIEW_OPS and proto.input[0] in int_types:
                int_types[proto.output[0]] = int_types[proto.input[0]]
            continue
        try:
            x, scale, zero_point = _qdq_inputs(proto, constants, int_types)
        except ValueError as exc:
            problems.append(Problem(label, proto.op_type, str(exc)))
            continue
        if proto.op_type == DEQUANTIZE and proto.input[0] in constants:
            axis = _axis(proto, constants[proto.input[0]].ndim, scale)
            const = QuantizedConstant(np.asarray(constants[proto.input[0]]), _qparams(scale, zero_point, axis))
            quantized[proto.output[0]] = const
            constants[proto.output[0]] = const.dequantized()
            continue
        if scale.size != 1 or x.dtype not in ACTIVATION_DTYPES:
            what = "per-channel" if scale.size != 1 else f"{x.dtype}"
            problems.append(Problem(label, proto.op_type, f"{what} quantization of an activation (int8/uint8 per-tensor only)"))
            continue
        source = resolve(proto.input[0])
        alias[proto.output[0]] = source
        if proto.op_type == QUANTIZE:
            int_types[proto.output[0]] = zero_point.dtype
        record(source, _int8_qparams(scale, zero_point), proto)
    if problems:
        raise UnsupportedModelError(problems, model=name)

    graph = model.graph
    input_dtype = None
    inputs = []
    for value in graph.input:
        value = _copy(value)
        elem = value.type.tensor_type.elem_type
        if elem in (TensorProto.INT8, TensorProto.UINT8):
            input_dtype = "int8" if elem == TensorProto.INT8 else "uint8"
            value.type.tensor_type.elem_type = TensorProto.FLOAT
        inputs.append(value)
    outputs = []
    for value in graph.output:
        renamed = _copy(value)
        renamed.name = resolve(value.name)
        renamed.type.tensor_type.elem_type = TensorProto.FLOAT
        outputs.append(renamed)
    _propagate_through_views(kept, activations)
    new_inits = [t for t in graph.initializer]
    new_inits += [numpy_helper.from_array(constants[n], n) for n in quantized]
    new_graph = helper.make_graph(kept, graph.name, inputs, outputs, new_inits)
    stripped = helper.make_model(new_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    return QdqModel(stripped, activations, quantized, input_dtype)


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _qdq_inputs(node: onnx.NodeProto, constants: dict[str, np.ndarray],
                int_types: dict[str, np.dtype]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a value of x's dtype, scale, zero point); scale and zero point must be constants."""
    names = list(node.input) + [""] * (3 - len(node.input))
    if names[1] not in constants or (names[2] and names[2] not in constants):
        raise ValueError("scale and zero point must be constants")
    scale = np.asarray(constants[names[1]], np.float64).reshape(-1)
    if names[2]:
        zero_point = np.asarray(constants[names[2]])
    else:  # ONNX: no zero point means uint8 0 (QuantizeLinear) or x's type (DequantizeLinear)
        source = constants[names[0]].dtype if names[0] in constants else int_types.get(names[0], np.uint8)
        zero_point = np.zeros(1, source if node.op_type == DEQUANTIZE else np.uint8)
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise ValueError("scales must be finite and positive")
    x = constants[names[0]] if node.op_type == DEQUANTIZE and names[0] in constants else zero_point
    return np.asarray(x), scale, zero_point.reshape(-1)


def _axis(node: onnx.NodeProto, rank: int, scale: np.ndarray) -> int | None:
    if scale.size == 1:
        return None
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
    if not -rank <= axis < rank:
        raise UnsupportedModelError([Problem(node.name or node.op_type, node.op_type, f"axis {axis} out of range")])
    return axis % rank


def _qparams(scale: np.ndarray, zero_point: np.ndarray, axis: int | None) -> QParams:
    zero_point = zero_point.astype(np.int64)
    if axis is not None and zero_point.size == 1:
        zero_point = np.full(scale.size, zero_point[0])
    return QParams(scale.astype(np.float64), zero_point, axis)


def _int8_qparams(scale: np.ndarray, zero_point: np.ndarray) -> QParams:
    """Activation QParams in the IR's int8: a uint8 zero point moves down by 128 (the values do too)."""
    zp = int(zero_point[0]) - (128 if zero_point.dtype == np.uint8 else 0)
    return QParams.per_tensor(float(scale[0]), zp)


def _same(a: QParams, b: QParams) -> bool:
    return np.float32(a.scalar_scale) == np.float32(b.scalar_scale) and a.scalar_zero_point == b.scalar_zero_point


def _copy(value: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    copied = onnx.ValueInfoProto()
    copied.CopyFrom(value)
    return copied


def _propagate_through_views(nodes: list[onnx.NodeProto], activations: dict[str, QParams]) -> None:
    views = [(n.input[0], n.output[0]) for n in nodes if n.op_type in VIEW_OPS]
    changed = True
    while changed:
        changed = False
        for a, b in views:
            for src, dst in ((a, b), (b, a)):
                if src in activations and dst not in activations:
                    activations[dst] = activations[src]
                    changed = True
