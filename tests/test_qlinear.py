"""QLinear models (onnxruntime's operator form): each op within one step of onnxruntime, and a
model quantized by onnxruntime in operator form compiles to exactly what its QDQ twin does."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcugen import sim
from mcugen.compiler import quantized_inputs
from onnx_builders import OnnxGraph
from test_qdq import compare_with_onnxruntime, compile_onnx

MS = "com.microsoft"


class QLinearGraph:
    """A single-op QLinear model with an int8 input and output."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def scale_zp(self, prefix: str, scale: float, zp: int) -> list[str]:
        return [self.const(f"{prefix}_s", np.array(scale, np.float32)), self.const(f"{prefix}_z", np.array(zp, np.int8))]

    def model(self, node: onnx.NodeProto, in_shape: list[int], out_shape: list[int]) -> onnx.ModelProto:
        graph = helper.make_graph([node], "qlinear", [helper.make_tensor_value_info("x", TensorProto.INT8, in_shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.INT8, out_shape)], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)])
        model.ir_version = 8
        return model


def test_qlinear_conv_per_channel_with_bias(tmp_path: Path) -> None:
    g = QLinearGraph(1)
    w = g.const("w", g.rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8))
    w_s = g.const("w_s", g.rng.uniform(0.002, 0.02, 6).astype(np.float32))
    w_z = g.const("w_z", np.zeros(6, np.int8))
    b = g.const("b", g.rng.integers(-3000, 3000, 6).astype(np.int32))
    inputs = ["x", *g.scale_zp("x", 0.03, -7), w, w_s, w_z, *g.scale_zp("y", 0.05, 3), b]
    node = helper.make_node("QLinearConv", inputs, ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    compiled = compare_with_onnxruntime(g.model(node, [1, 3, 8, 8], [1, 6, 4, 4]), tmp_path)
    (conv,) = compiled.graph.nodes
    np.testing.assert_array_equal(compiled.graph.tensor(conv.inputs[2]).data, numpy_helper.to_array(g.initializers[3]))


def test_qlinear_matmul_per_column(tmp_path: Path) -> None:
    g = QLinearGraph(2)
    w = g.const("w", g.rng.integers(-127, 128, (16, 5)).astype(np.int8))
    w_s = g.const("w_s", g.rng.uniform(0.002, 0.02, 5).astype(np.float32))
    inputs = ["x", *g.scale_zp("x", 0.04, 2), w, w_s, g.const("w_z", np.zeros(5, np.int8)), *g.scale_zp("y", 0.08, -1)]
    node = helper.make_node("QLinearMatMul", inputs, ["y"])
    compiled = compare_with_onnxruntime(g.model(node, [1, 16], [1, 5]), tmp_path, count=20)
    assert [n.op for n in compiled.graph.nodes] == ["fully_connected"]


def test_qlinear_add_of_the_input_with_itself_rescaled(tmp_path: Path) -> None:
    g = QLinearGraph(3)
    inputs = ["x", *g.scale_zp("a", 0.05, 4), "x", *g.scale_zp("a2", 0.05, 4), *g.scale_zp("y", 0.07, -20)]
    node = helper.make_node("QLinearAdd", inputs, ["y"], domain=MS)
    compiled = compare_with_onnxruntime(g.model(node, [1, 4, 5, 5], [1, 4, 5, 5]), tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["add"]


@pytest.mark.parametrize("op", ["QLinearAveragePool", "QLinearGlobalAveragePool"])
def test_qlinear_pools(tmp_path: Path, op: str) -> None:
    g = QLinearGraph(4)
    inputs = ["x", *g.scale_zp("x", 0.05, -9), *g.scale_zp("y", 0.05, -9)]
    attrs = {"kernel_shape": [3, 3], "strides": [3, 3]} if op == "QLinearAveragePool" else {}
    node = helper.make_node(op, inputs, ["y"], domain=MS, **attrs)
    out = [1, 4, 2, 2] if op == "QLinearAveragePool" else [1, 4, 1, 1]
    compiled = compare_with_onnxruntime(g.model(node, [1, 4, 6, 6], out), tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["average_pool"]
    assert compiled.graph.meta["prequantized_notes"] == []


def test_qlinear_softmax(tmp_path: Path) -> None:
    g = QLinearGraph(5)
    inputs = ["x", *g.scale_zp("x", 0.1, 0), *g.scale_zp("y", 1.0 / 256, -128)]
    node = helper.make_node("QLinearSoftmax", inputs, ["y"], domain=MS, axis=-1, opset=13)
    compiled = compare_with_onnxruntime(g.model(node, [1, 12], [1, 12]), tmp_path, count=20)
    assert [n.op for n in compiled.graph.nodes] == ["softmax"]


def small_float_model(path: Path) -> Path:
    g = OnnxGraph(seed=2, opset=13)
    x = g.input("image", [1, 3, 16, 16])
    x = g.clip(g.conv(x, 8, kernel=3, stride=2))
    y = g.conv(g.clip(g.depthwise(x, kernel=3)), 8, kernel=1)
    x = g.avg_pool(g.add(x, y), kernel=2, stride=2)
    x = g.flatten(g.global_avg_pool(x))
    onnx.save(g.build([g.softmax(g.gemm(x, 5, bias_shape=(5,)))]), path)
    return path


def quantize_with_onnxruntime(float_path: Path, out: Path, fmt: str, data: np.ndarray) -> Path:
    quantization = pytest.importorskip("onnxruntime.quantization")

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(data)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.rows, None)
            return None if x is None else {"image": x[None]}

    quantization.quantize_static(str(float_path), str(out), Reader(), quant_format=getattr(quantization.QuantFormat, fmt),
                                 per_channel=True, activation_type=quantization.QuantType.QInt8,
                                 weight_type=quantization.QuantType.QInt8)
    return out


def test_onnxruntime_operator_form_compiles_like_its_qdq_twin(tmp_path: Path) -> None:
    calibration = np.random.default_rng(0).uniform(0, 1, (8, 3, 16, 16)).astype(np.float32)
    float_path = small_float_model(tmp_path / "float.onnx")
    qdq = compile_onnx(onnx.load(quantize_with_onnxruntime(float_path, tmp_path / "qdq.onnx", "QDQ", calibration)),
                       tmp_path, "qdq_twin")
    qop_model = onnx.load(quantize_with_onnxruntime(float_path, tmp_path / "qop.onnx", "QOperator", calibration))
    assert {n.op_type for n in qop_model.graph.node} >= {"QLinearConv", "QLinearAdd", "QLinearAveragePool",
                                                           "QLinearGlobalAveragePool", "QGemm", "QLinearSoftmax"}
    qop = compile_onnx(qop_model, tmp_path, "qop")
    assert [n.op for n in qop.graph.nodes] == [n.op for n in qdq.graph.nodes]
    np.save(tmp_path / "x.npy", np.random.default_rng(1).uniform(0, 1, (10, 3, 16, 16)).astype(np.float32))
    _, xs = quantized_inputs(qop, str(tmp_path / "x.npy"))
    _, xs_twin = quantized_inputs(qdq, str(tmp_path / "x.npy"))
    np.testing.assert_array_equal(xs, xs_twin)
    for x in xs:
        np.testing.assert_array_equal(sim.run(qop.graph, x)[0], sim.run(qdq.graph, x)[0])
