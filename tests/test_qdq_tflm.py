"""A QDQ convolution with random QParams against TensorFlow Lite Micro, bit for bit.

The .tflite is written here from the ONNX model's own numbers (scales, zero
points, integer weights and bias, only transposed to TFLite's layouts), not
from mcugen's IR: the frontend's reading of the QDQ model is checked, together
with the kernels, against TFLM running the same quantized layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from mcugen import sim
from mcugen.compiler import quantized_inputs
from onnx_builders import QdqGraph
from test_qdq import compile_onnx, random_inputs

try:
    from tflite_micro.python.tflite_micro import runtime as tflm_runtime
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as tflm_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl
except ImportError:
    tfl = None
pytestmark = pytest.mark.skipif(tfl is None, reason="tflite-micro is not installed (pip install tflite-micro)")


def initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))


def dq_params(model: onnx.ModelProto, dq_output: str) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(integers if constant, scale, zero point) behind the DequantizeLinear producing `dq_output`."""
    node = next(n for n in model.graph.node if n.output[0] == dq_output)
    zp = initializer(model, node.input[2]) if len(node.input) > 2 else np.zeros(1, np.int64)
    constant = node.input[0] in {t.name for t in model.graph.initializer}
    data = initializer(model, node.input[0]) if constant else None
    return data, initializer(model, node.input[1]).reshape(-1), np.asarray(zp).reshape(-1)


def tflm_conv(model: onnx.ModelProto, xs: np.ndarray, out_qp: tuple[float, int], depthwise: bool,
              stride: int, relu: bool) -> np.ndarray:
    """The model's Conv as a one-operator .tflite (SAME padding), run by TFLM on NHWC int8 inputs."""
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    _, in_scale, in_zp = dq_params(model, conv.input[0])
    w, w_scale, w_zp = dq_params(model, conv.input[1])
    b, b_scale, _ = dq_params(model, conv.input[2])
    c_out = w.shape[0]
    w_tfl = w.transpose(1, 2, 3, 0) if depthwise else w.transpose(0, 2, 3, 1)
    axis = 3 if depthwise else 0

    def tensor(name: str, shape: tuple[int, ...], dtype: int, quant: object, data: np.ndarray | None = None) -> object:
        return tflm_model.Tensor(shape=shape, dtype=dtype, quantization=quant, name=name,
                                 data=None if data is None else np.ascontiguousarray(data))

    per_channel = w_scale.size > 1
    w_quant = (tflm_model.Quantization(w_scale.tolist(), [0] * c_out, axis) if per_channel
               else tflm_model.Quantization(float(w_scale[0]), int(w_zp[0])))
    b_quant = (tflm_model.Quantization(np.broadcast_to(b_scale, (c_out,)).tolist(), [0] * c_out, 0))
    h, wd = xs.shape[1:3]
    out_hw = (-(-h // stride), -(-wd // stride))
    x = tensor("x", (1, *xs.shape[1:]), tfl.TensorType.INT8, tflm_model.Quantization(float(in_scale[0]), int(in_zp[0])))
    wt = tensor("w", w_tfl.shape, tfl.TensorType.INT8, w_quant, w_tfl.astype(np.int8))
    bt = tensor("b", (c_out,), tfl.TensorType.INT32, b_quant, b.astype(np.int32))
    y = tensor("y", (1, *out_hw, c_out), tfl.TensorType.INT8, tflm_model.Quantization(*out_qp))
    if depthwise:
        options = tfl.DepthwiseConv2DOptionsT()
        options.depthMultiplier = 1
    else:
        options = tfl.Conv2DOptionsT()
    options.padding = tfl.Padding.SAME
    options.strideH = options.strideW = stride
    options.dilationHFactor = options.dilationWFactor = 1
    options.fusedActivationFunction = tfl.ActivationFunctionType.RELU if relu else tfl.ActivationFunctionType.NONE
    fb = tfl.OperatorT()
    kind = "DepthwiseConv2D" if depthwise else "Conv2D"
    fb.builtinOptionsType, fb.builtinOptions = getattr(tfl.BuiltinOptions, f"{kind}Options"), options
    opcode = tfl.BuiltinOperator.DEPTHWISE_CONV_2D if depthwise else tfl.BuiltinOperator.CONV_2D
    op = tflm_model.Operator(opcode=opcode, inputs=[x, wt, bt], outputs=[y], _fb=fb)
    built = tflm_model.Model(subgraphs=[tflm_model.Subgraph(tensors=[x, wt, bt, y], operators=[op], inputs=[x], outputs=[y])])
    interpreter = tflm_runtime.Interpreter.from_bytes(bytes(built.build()), arena_size=1 << 20)
    outputs = []
    for sample in xs:
        interpreter.set_input(sample[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0)[0])
    return np.stack(outputs)


@settings(max_examples=15, deadline=None)
@given(
    depthwise=st.booleans(),
    per_channel=st.booleans(),
    axis_sign=st.sampled_from([1, -1]),
    stride=st.sampled_from([1, 2]),
    relu=st.booleans(),
    in_qp=st.tuples(st.floats(0.002, 0.5), st.integers(-128, 127)),
    out_qp=st.tuples(st.floats(0.005, 2.0), st.integers(-128, 127)),
    seed=st.integers(0, 10_000),
)
def test_qdq_conv_equals_tflite_micro(tmp_path_factory: pytest.TempPathFactory, depthwise: bool, per_channel: bool,
                                      axis_sign: int, stride: int, relu: bool, in_qp: tuple[float, int],
                                      out_qp: tuple[float, int], seed: int) -> None:
    g = QdqGraph("int8", seed=seed)
    x = g.q_input("x", [1, 5, 9, 9], *in_qp)
    y = g.qconv(x, 5 if depthwise else 7, kernel=3, stride=stride, group=5 if depthwise else 1,
                per_channel=per_channel, axis_sign=axis_sign, symmetric=True)  # TFLite int8 weights: zero point 0
    model = g.build_quantized(g.quantize(g.relu(y) if relu else y, *out_qp))
    folder = tmp_path_factory.mktemp("tflm")
    compiled = compile_onnx(model, folder)
    np.save(folder / "x.npy", random_inputs(model, 4, seed))
    _, xs = quantized_inputs(compiled, str(folder / "x.npy"))
    ours = np.stack([sim.run(compiled.graph, x)[0][0] for x in xs])
    out = (float(np.float32(out_qp[0])), out_qp[1])
    np.testing.assert_array_equal(ours, tflm_conv(model, xs, out, depthwise, stride, relu))
