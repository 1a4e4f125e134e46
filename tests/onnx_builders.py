"""Small ONNX graphs for tests, built with onnx.helper, plus the two references to check them.

`OnnxGraph` builds a float NCHW model one op at a time (seeded random weights),
`tiny_mobilenet` a small MobileNetV1/V2-like model as framework exporters emit
them (Conv without bias -> BatchNormalization -> Clip(0, 6)). `run_onnxruntime`
runs a model (any intermediate tensor can be fetched); `run_ir_float` evaluates
an IR graph with plain NumPy, independently of mcugen's kernels, layout ops
included, so the frontend and each pass can be checked against onnxruntime.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

from mcugen.ir import Graph, Node

Dim = int | str | None  # str or None: a dynamic dimension


class OnnxGraph:
    """Append ops, then `build(outputs)`. Every op returns its output's name."""

    def __init__(self, seed: int = 0, opset: int = 13) -> None:
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._count = 0

    # Plumbing ---------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def input(self, name: str, shape: Sequence[Dim], elem_type: int = TensorProto.FLOAT) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def const(self, array: Any, name: str | None = None) -> str:
        name = name or self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], name: str | None = None, outputs: int = 1, **attrs: Any) -> str:
        """Adds the node; returns its first output. `name=""` leaves the node unnamed."""
        name = self.fresh(op_type) if name is None else name
        outs = [f"{name or self.fresh(op_type)}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0]

    def shape(self, name: str) -> tuple[int, ...]:
        """Static ONNX shape of `name` (dynamic dims read as 1), by onnx shape inference."""
        dims = self._dims(self._graph([]), name)
        if dims is None:
            raise KeyError(f"onnx cannot infer the shape of '{name}'; pass the size explicitly")
        return tuple(d if isinstance(d, int) else 1 for d in dims)

    def build(self, outputs: Sequence[str]) -> onnx.ModelProto:
        """The model, its outputs typed with their inferred shapes where known (the checker wants them)."""
        model = self._graph([])
        values = [helper.make_tensor_value_info(o, TensorProto.FLOAT, self._dims(model, o)) for o in outputs]
        model.graph.output.extend(values)
        return model

    def _graph(self, outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "test", self.inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        return model

    @staticmethod
    def _dims(model: onnx.ModelProto, name: str) -> list[int | str] | None:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        for value in list(inferred.graph.value_info) + list(inferred.graph.input):
            if value.name == name:
                dims = value.type.tensor_type.shape.dim
                return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
        return None

    def weights(self, *shape: int, fan_in: int | None = None) -> np.ndarray:
        fan_in = fan_in or int(np.prod(shape[1:]))
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    # Ops --------------------------------------------------------------------

    def conv(
        self,
        x: str,
        c_out: int,
        kernel: int | tuple[int, int] = 3,
        stride: int = 1,
        pads: Sequence[int] | None = None,
        group: int = 1,
        bias: bool = True,
        auto_pad: str | None = None,
        dilation: int = 1,
    ) -> str:
        """pads: ONNX order (top, left, bottom, right); default k // 2 on every side."""
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        c_in = self.shape(x)[1]
        w = self.const(self.weights(c_out, c_in // group, kh, kw))
        inputs = [x, w] + ([self.const(self.rng.normal(0, 0.1, c_out).astype(np.float32))] if bias else [])
        attrs: dict[str, Any] = {"kernel_shape": [kh, kw], "strides": [stride, stride], "group": group}
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        else:
            attrs["pads"] = list(pads) if pads is not None else [kh // 2, kw // 2, kh // 2, kw // 2]
        if dilation != 1:
            attrs["dilations"] = [dilation, dilation]
        return self.node("Conv", inputs, **attrs)

    def depthwise(self, x: str, multiplier: int = 1, **conv_args: Any) -> str:
        c_in = self.shape(x)[1]
        return self.conv(x, c_in * multiplier, group=c_in, **conv_args)

    def batch_norm(self, x: str, epsilon: float = 1e-3) -> str:
        c = self.shape(x)[1]
        r = self.rng
        params = [r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.2, c), r.uniform(0.5, 1.5, c)]
        inputs = [x] + [self.const(p.astype(np.float32)) for p in params]
        return self.node("BatchNormalization", inputs, epsilon=epsilon)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def clip(self, x: str, lo: float | None = 0.0, hi: float | None = 6.0) -> str:
        """Clip with min/max as inputs (opset >= 11) or attributes (opset < 11); None omits a bound."""
        if self.opset < 11:
            bounds = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
            return self.node("Clip", [x], **bounds)
        scalar = lambda v: "" if v is None else self.const(np.array(v, np.float32))  # noqa: E731
        return self.node("Clip", [x, scalar(lo), scalar(hi)])

    def pad(self, x: str, pads: Sequence[int], value: float = 0.0, mode: str = "constant") -> str:
        """pads: (top, left, bottom, right), or all 8 ONNX NCHW pads."""
        if len(pads) == 4:
            top, left, bottom, right = pads
            pads = [0, 0, top, left, 0, 0, bottom, right]
        if self.opset < 11:
            return self.node("Pad", [x], pads=list(pads), value=value, mode=mode)
        inputs = [x, self.const(np.array(pads, np.int64)), self.const(np.array(value, np.float32))]
        return self.node("Pad", inputs, mode=mode)

    def gemm(
        self,
        x: str,
        c_out: int,
        trans_b: int = 1,
        alpha: float = 1.0,
        beta: float = 1.0,
        bias_shape: tuple[int, ...] | None = None,
        c_in: int | None = None,
    ) -> str:
        c_in = c_in or self.shape(x)[1]
        w = self.weights(c_out, c_in)
        inputs = [x, self.const(w if trans_b else w.T)]
        if bias_shape is not None:
            inputs.append(self.const(self.rng.normal(0, 0.1, bias_shape).astype(np.float32)))
        return self.node("Gemm", inputs, transB=trans_b, alpha=alpha, beta=beta)

    def matmul(self, x: str, c_out: int, bias: bool = True, c_in: int | None = None) -> str:
        """MatMul by a constant, then (bias=True) Add of a constant, as tf2onnx writes Dense."""
        c_in = c_in or self.shape(x)[1]
        y = self.node("MatMul", [x, self.const(self.weights(c_out, c_in).T.copy())])
        return self.node("Add", [y, self.const(self.rng.normal(0, 0.1, c_out).astype(np.float32))]) if bias else y

    def avg_pool(self, x: str, kernel: int = 2, stride: int = 2, pads: Sequence[int] = (0, 0, 0, 0), **attrs: Any) -> str:
        """Extra attrs (count_include_pad, ceil_mode, ...) pass through."""
        return self._pool("AveragePool", x, kernel, stride, pads, attrs)

    def max_pool(self, x: str, kernel: int = 2, stride: int = 2, pads: Sequence[int] = (0, 0, 0, 0), **attrs: Any) -> str:
        return self._pool("MaxPool", x, kernel, stride, pads, attrs)

    def _pool(self, op_type: str, x: str, kernel: int, stride: int, pads: Sequence[int], attrs: dict[str, Any]) -> str:
        return self.node(op_type, [x], kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=list(pads), **attrs)

    def global_avg_pool(self, x: str) -> str:
        return self.node("GlobalAveragePool", [x])

    def reduce_mean(self, x: str, axes: Sequence[int] = (2, 3), keepdims: int = 1) -> str:
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.const(np.array(axes, np.int64))], keepdims=keepdims)
        return self.node("ReduceMean", [x], axes=list(axes), keepdims=keepdims)

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b])

    def softmax(self, x: str, axis: int | None = None) -> str:
        return self.node("Softmax", [x]) if axis is None else self.node("Softmax", [x], axis=axis)

    def flatten(self, x: str, axis: int = 1) -> str:
        return self.node("Flatten", [x], axis=axis)

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self.node("Reshape", [x, self.const(np.array(shape, np.int64))])

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.node("Transpose", [x], perm=list(perm))


def tiny_mobilenet(
    version: int = 1, size: int = 16, width: int = 8, classes: int = 4, seed: int = 0, explicit_pad: bool = False
) -> onnx.ModelProto:
    """A small float NCHW MobileNetV1 (version=1) or V2 (inverted residuals with Add).

    Conv (no bias) -> BatchNormalization -> Clip(0, 6) throughout; with
    `explicit_pad`, stride-2 depthwise convs read a separate Pad (TF 'SAME' style).
    """
    g = OnnxGraph(seed=seed, opset=13)
    x = g.input("image", ["N", 3, size, size])

    def conv_bn(x: str, c_out: int, kernel: int = 1, stride: int = 1, depthwise: bool = False, act: bool = True) -> str:
        if depthwise and stride == 2 and explicit_pad:
            x = g.pad(x, (0, 0, 1, 1))
            y = g.depthwise(x, kernel=kernel, stride=stride, pads=(0, 0, 0, 0), bias=False)
        elif depthwise:
            y = g.depthwise(x, kernel=kernel, stride=stride, bias=False)
        else:
            y = g.conv(x, c_out, kernel=kernel, stride=stride, bias=False)
        y = g.batch_norm(y)
        return g.clip(y) if act else y

    x = conv_bn(x, width, kernel=3, stride=2)
    if version == 1:
        for c_out, stride in ((width * 2, 1), (width * 4, 2), (width * 4, 1)):
            x = conv_bn(x, 0, kernel=3, stride=stride, depthwise=True)
            x = conv_bn(x, c_out)
    else:
        x = conv_bn(x, 0, kernel=3, depthwise=True)
        x = conv_bn(x, width, act=False)
        for c_out, stride in ((width * 2, 2), (width * 2, 1), (width * 2, 1)):
            y = conv_bn(x, g.shape(x)[1] * 4)
            y = conv_bn(y, 0, kernel=3, stride=stride, depthwise=True)
            y = conv_bn(y, c_out, act=False)
            x = g.add(x, y) if stride == 1 and g.shape(x)[1] == c_out else y
        x = conv_bn(x, width * 4)
    x = g.flatten(g.global_avg_pool(x))
    return g.build([g.softmax(g.gemm(x, classes, bias_shape=(classes,)))])


# References ---------------------------------------------------------------------


def run_onnxruntime(model: onnx.ModelProto, x: np.ndarray, fetch: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The graph outputs and the tensors named in `fetch`, for the single input `x`."""
    import onnxruntime as ort

    model = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in fetch if n not in have)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.astype(np.float32)}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def run_ir_float(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every activation of a float IR graph for input `x` (float64 NumPy, storage layout)."""
    (name,) = graph.inputs
    values = {name: np.asarray(x, np.float64).reshape(graph.tensor(name).shape)}
    for node in graph.nodes:
        args = [values[n] if n in values else graph.tensor(n).data.astype(np.float64) for n in node.inputs]
        out = _IR_OPS[node.op](node, *args)
        values[node.outputs[0]] = out.reshape(graph.tensor(node.outputs[0]).shape)
    return values


def _clamp(node: Node, y: np.ndarray) -> np.ndarray:
    return np.clip(y, node.attrs.activation.lo, node.attrs.activation.hi)


def _patches(node: Node, x: np.ndarray, fill: float) -> np.ndarray:
    """(1, OH, OW, C, KH, KW) windows of NHWC x, padded with `fill`."""
    window = node.attrs.window
    top, left, bottom, right = window.pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    sh, sw = window.stride
    return sliding_window_view(padded, window.kernel, axis=(1, 2))[:, ::sh, ::sw]


def _conv2d(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _clamp(node, np.einsum("nhwcij,oijc->nhwo", _patches(node, x, 0.0), w) + b)


def _depthwise(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.repeat(x, node.attrs.depth_multiplier, axis=3)  # output channel o reads input o // m
    return _clamp(node, np.einsum("nhwcij,ijc->nhwc", _patches(node, x, 0.0), w[0]) + b)


def _average_pool(node: Node, x: np.ndarray) -> np.ndarray:
    sums = _patches(node, x, 0.0).sum(axis=(4, 5))
    counts = _patches(node, np.ones_like(x), 0.0).sum(axis=(4, 5))
    return _clamp(node, sums / counts)


def _max_pool(node: Node, x: np.ndarray) -> np.ndarray:
    return _clamp(node, _patches(node, x, -np.inf).max(axis=(4, 5)))


def _softmax(node: Node, x: np.ndarray) -> np.ndarray:
    e = np.exp(node.attrs.beta * (x - x.max(axis=-1, keepdims=True)))
    return e / e.sum(axis=-1, keepdims=True)


def _reshape(node: Node, x: np.ndarray) -> np.ndarray:
    flat = x.ravel()
    return flat if node.attrs.gather is None else flat[np.asarray(node.attrs.gather)]


def _pad(node: Node, x: np.ndarray) -> np.ndarray:
    top, left, bottom, right = node.attrs.pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=node.attrs.value)


def _batch_norm(node: Node, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
    scale, b, mean, var = params
    return (x - mean) / np.sqrt(var + node.attrs.epsilon) * scale + b


_IR_OPS = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "fully_connected": lambda node, x, w, b: _clamp(node, x.reshape(1, -1) @ w.T + b),
    "average_pool": _average_pool,
    "max_pool": _max_pool,
    "add": lambda node, a, b: _clamp(node, a + b),
    "softmax": _softmax,
    "reshape": _reshape,
    "pad": _pad,
    "batch_norm": _batch_norm,
    "clamp": lambda node, x: np.clip(x, node.attrs.activation.lo, node.attrs.activation.hi),
}


def assert_matches_onnxruntime(graph: Graph, model: onnx.ModelProto, x: np.ndarray, rtol: float = 1e-4) -> int:
    """Compare every IR activation that keeps an ONNX tensor's name with onnxruntime's value.

    `x` is the model's own (ONNX-layout) input. Returns how many tensors were compared.
    """
    (name,) = graph.inputs
    own_order = graph.meta["input_layout"] == "nhwc"
    ir_x = x if own_order else x.transpose(0, 2, 3, 1)
    ir = run_ir_float(graph, ir_x)
    onnx_names = {o for n in model.graph.node for o in n.output}
    shared = [n for n in ir if n in onnx_names]
    ort = run_onnxruntime(model, x, shared)
    for n in shared:
        expected = ort[n].transpose(0, 2, 3, 1) if ort[n].ndim == 4 else ort[n]
        scale = max(float(np.abs(expected).max()), 1e-6)
        np.testing.assert_allclose(ir[n].reshape(expected.shape), expected, rtol=rtol, atol=rtol * scale, err_msg=n)
    for ir_name, onnx_name in zip(graph.outputs, graph.meta["onnx_outputs"]):
        # An output may have been re-pointed past an aliasing reshape: compare storage order.
        expected = ort[onnx_name].transpose(0, 2, 3, 1) if ort[onnx_name].ndim == 4 else ort[onnx_name]
        atol = rtol * max(float(np.abs(expected).max()), 1e-6)
        np.testing.assert_allclose(ir[ir_name].ravel(), expected.ravel(), rtol=rtol, atol=atol, err_msg=ir_name)
    return len(shared)


# Pre-quantized (QDQ) graphs -------------------------------------------------------

_INT_TYPES = {"int8": (np.int8, TensorProto.INT8, -128, 127), "uint8": (np.uint8, TensorProto.UINT8, 0, 255)}


class QdqGraph(OnnxGraph):
    """A QDQ model as tf2onnx / onnxruntime write them: an int input behind a DequantizeLinear,
    float ops between DequantizeLinear and QuantizeLinear, integer weights and int32 biases
    behind a DequantizeLinear. Activation QParams are chosen by the test, `dtype` int8 or uint8."""

    def __init__(self, dtype: str = "int8", seed: int = 0, opset: int = 13) -> None:
        super().__init__(seed=seed, opset=opset)
        self.dtype = dtype
        self.scale_of: dict[str, float] = {}  # float tensor -> the scale of the Q/DQ it came through

    def _zp(self, zero_point: int) -> int:
        """An int8 zero point written in the graph's type (uint8: + 128, the same real values)."""
        return zero_point + (128 if self.dtype == "uint8" else 0)

    def q_input(self, name: str, shape: Sequence[int], scale: float, zero_point: int) -> str:
        _, elem, _, _ = _INT_TYPES[self.dtype]
        x = self.input(name, shape, elem)
        return self.dequantize(x, scale, zero_point)

    def dequantize(self, q: str, scale: float, zero_point: int) -> str:
        np_type = _INT_TYPES[self.dtype][0]
        s, z = self.const(np.array(scale, np.float32)), self.const(np.array(self._zp(zero_point), np_type))
        out = self.node("DequantizeLinear", [q, s, z])
        self.scale_of[out] = float(np.float32(scale))
        return out

    def quantize(self, x: str, scale: float, zero_point: int) -> str:
        np_type = _INT_TYPES[self.dtype][0]
        s, z = self.const(np.array(scale, np.float32)), self.const(np.array(self._zp(zero_point), np_type))
        return self.node("QuantizeLinear", [x, s, z])

    def requant(self, x: str, scale: float, zero_point: int) -> str:
        """Q then DQ: the activation as the next op reads it."""
        return self.dequantize(self.quantize(x, scale, zero_point), scale, zero_point)

    def int_weights(self, shape: Sequence[int], per_channel_axis: int | None, weight_dtype: str,
                    symmetric: bool = False) -> str:
        """Integer weights behind a DequantizeLinear: symmetric per channel (zero point 0, uint8 128),
        or per-tensor with a random zero point (as uint8 TFLite legacy models) unless `symmetric`."""
        np_type, _, lo, hi = _INT_TYPES[weight_dtype]
        channels = shape[per_channel_axis] if per_channel_axis is not None else 1
        if per_channel_axis is not None or symmetric:
            zp = np.zeros(channels, np_type) + (128 if weight_dtype == "uint8" else 0)
            zp = zp if per_channel_axis is not None else zp[0]
        else:  # never the symmetric value: these models exist to exercise a nonzero weight offset
            symmetric_zp = 128 if weight_dtype == "uint8" else 0
            drawn = int(self.rng.integers(lo + 40, hi - 40))
            zp = np.array(drawn + 1 if drawn == symmetric_zp else drawn, np_type)
        q = self.rng.integers(lo if weight_dtype == "uint8" else -127, hi + 1, size=shape).astype(np_type)
        scales = self.rng.uniform(0.002, 0.02, channels).astype(np.float32)
        attrs = {} if per_channel_axis is None else {"axis": per_channel_axis}
        inputs = [self.const(q), self.const(scales if per_channel_axis is not None else scales[0]), self.const(zp)]
        return self.node("DequantizeLinear", inputs, **attrs)

    def int_bias(self, input_scale: float, weight_scales: np.ndarray) -> str:
        scale = (np.float32(input_scale) * weight_scales.astype(np.float32)).astype(np.float32)
        q = self.rng.integers(-2000, 2000, size=scale.size).astype(np.int32)
        attrs = {"axis": 0} if scale.size > 1 else {}
        return self.node("DequantizeLinear", [self.const(q), self.const(scale if scale.size > 1 else scale[0])], **attrs)

    def weight_scales(self, dq_output: str) -> np.ndarray:
        node = next(n for n in self.nodes if n.output[0] == dq_output)
        init = next(t for t in self.initializers if t.name == node.input[1])
        return numpy_helper.to_array(init).reshape(-1)

    def qconv(self, x: str, c_out: int, kernel: int = 3, stride: int = 1, group: int = 1, per_channel: bool = True,
              axis_sign: int = 1, weight_dtype: str = "int8", pads: Sequence[int] | None = None,
              symmetric: bool = False) -> str:
        """Conv with integer weights and bias; axis_sign -1 writes the per-channel axis as -4."""
        c_in = self.shape(x)[1]
        w = self.int_weights((c_out, c_in // group, kernel, kernel), (0 if axis_sign > 0 else -4) if per_channel else None,
                             weight_dtype, symmetric)
        b = self.int_bias(self.scale_of[x], np.broadcast_to(self.weight_scales(w), (c_out,)))
        pads = list(pads) if pads is not None else [kernel // 2] * 4
        return self.node("Conv", [x, w, b], kernel_shape=[kernel, kernel], strides=[stride, stride], group=group, pads=pads)

    def qdense(self, x: str, c_out: int, per_channel: bool = True, weight_dtype: str = "int8") -> str:
        """MatMul by integer weights (per column: axis -1), then Add of an int32 bias, as tf2onnx writes Dense."""
        c_in = self.shape(x)[1]
        w = self.int_weights((c_in, c_out), -1 if per_channel else None, weight_dtype)
        b = self.int_bias(self.scale_of[x], np.broadcast_to(self.weight_scales(w), (c_out,)))
        return self.node("Add", [self.node("MatMul", [x, w]), b])

    def build_quantized(self, output: str) -> onnx.ModelProto:
        """The model with its (integer) output `output`."""
        model = self._graph([])
        _, elem, _, _ = _INT_TYPES[self.dtype]
        model.graph.output.append(helper.make_tensor_value_info(output, elem, self._dims(model, output)))
        return model


def run_onnxruntime_int(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The first output of a model with an integer input (no graph optimisations)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
