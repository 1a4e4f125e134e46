"""QDQ models built with onnx.helper: the model's QParams and integers are kept, and the
int8 simulator agrees with onnxruntime running the same QDQ model.

onnxruntime requantizes in float (round half to even) where TFLite uses a fixed-point
multiplier, so single-layer outputs may differ by one step, never more; the
bit-exact reference (TFLite Micro) is in test_prequantized_models.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model, quantized_inputs
from mcugen.errors import UnsupportedModelError
from mcugen.targets import get_target
from mcugen.verify import run_c
from onnx_builders import QdqGraph, run_onnxruntime_int

DTYPES = ("int8", "uint8")


def compile_onnx(model: onnx.ModelProto, folder: Path, name: str = "qdq") -> Compiled:
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    return compile_model(path, CalibrationOptions())


def random_inputs(model: onnx.ModelProto, count: int, seed: int = 0) -> np.ndarray:
    value = model.graph.input[0]
    shape = [count] + [d.dim_value for d in value.type.tensor_type.shape.dim][1:]
    np_type = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
    info = np.iinfo(np_type)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, size=shape).astype(np_type)


def to_ir_int8(y: np.ndarray) -> np.ndarray:
    """onnxruntime's integer outputs as the IR stores them: int8, NHWC."""
    y = y.astype(np.int16) - (128 if y.dtype == np.uint8 else 0)
    return (y.transpose(0, 2, 3, 1) if y.ndim == 4 else y).astype(np.int8)


def compare_with_onnxruntime(model: onnx.ModelProto, folder: Path, count: int = 6) -> Compiled:
    compiled = compile_onnx(model, folder)
    xs = random_inputs(model, count)
    np.save(folder / "x.npy", xs)
    _, ir_xs = quantized_inputs(compiled, str(folder / "x.npy"))
    ours = np.stack([sim.run(compiled.graph, x)[0] for x in ir_xs]).astype(np.int16)
    theirs = np.stack([to_ir_int8(run_onnxruntime_int(model, x[None]))[0] for x in xs]).astype(np.int16)
    diff = np.abs(ours.reshape(theirs.shape) - theirs)
    assert diff.max() <= 1, f"differs from onnxruntime by up to {diff.max()} steps"
    assert (diff == 0).mean() >= 0.85, f"only {(diff == 0).mean():.0%} of the outputs equal onnxruntime's"
    return compiled


def conv_relu(dtype: str, per_channel: bool, weight_dtype: str = "int8", axis_sign: int = 1) -> QdqGraph:
    g = QdqGraph(dtype, seed=3)
    x = g.q_input("x", [1, 3, 8, 8], 0.02, -5)
    y = g.relu(g.qconv(x, 6, per_channel=per_channel, weight_dtype=weight_dtype, axis_sign=axis_sign))
    g.out = g.quantize(y, 0.03, -128)
    return g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_channel", [True, False])
def test_conv_keeps_the_models_qparams_and_integers(tmp_path: Path, dtype: str, per_channel: bool) -> None:
    g = conv_relu(dtype, per_channel, weight_dtype="int8" if per_channel else dtype)
    model = g.build_quantized(g.out)
    compiled = compare_with_onnxruntime(model, tmp_path)
    graph = compiled.graph
    (conv,) = graph.nodes
    x_qp, y_qp = graph.tensor(graph.inputs[0]).qparams, graph.tensor(graph.outputs[0]).qparams
    assert (np.float32(x_qp.scalar_scale), x_qp.scalar_zero_point) == (np.float32(0.02), -5)
    assert (np.float32(y_qp.scalar_scale), y_qp.scalar_zero_point) == (np.float32(0.03), -128)
    weights = graph.tensor(conv.inputs[1])
    stored = onnx.numpy_helper.to_array(next(t for t in model.graph.initializer if t.data_type in (2, 3) and t.dims))
    shift = 128 if stored.dtype == np.uint8 else 0
    np.testing.assert_array_equal(weights.data, (stored.astype(np.int16) - shift).transpose(0, 2, 3, 1))
    bias = graph.tensor(conv.inputs[2])
    stored_bias = next(onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == 6)
    np.testing.assert_array_equal(bias.data, stored_bias)
    assert compiled.float_graph is None and graph.meta["quantized_input_dtype"] == dtype


def test_uint8_weights_keep_their_zero_point(tmp_path: Path) -> None:
    g = conv_relu("uint8", per_channel=False, weight_dtype="uint8")
    compiled = compare_with_onnxruntime(g.build_quantized(g.out), tmp_path)
    (conv,) = compiled.graph.nodes
    conv_node = next(n for n in g.nodes if n.op_type == "Conv")
    weights_dq = next(n for n in g.nodes if n.output[0] == conv_node.input[1])
    zp = int(next(onnx.numpy_helper.to_array(t) for t in g.initializers if t.name == weights_dq.input[2]))
    assert conv.lowered.stage.weight_offset == -(zp - 128) != 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_clip_and_pad(tmp_path: Path, dtype: str) -> None:
    g = QdqGraph(dtype, seed=4)
    x = g.q_input("x", [1, 4, 9, 9], 0.05, 3)
    x = g.requant(g.pad(x, (0, 0, 1, 1)), 0.05, 3)  # TF 'SAME' stride 2: a quantized Pad
    y = g.clip(g.qconv(x, 8, kernel=3, stride=2, group=4, pads=(0, 0, 0, 0)), 0.0, 6.0)
    compiled = compare_with_onnxruntime(g.build_quantized(g.quantize(y, 6.0 / 255, -128)), tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["depthwise_conv2d"]
    assert compiled.graph.nodes[0].attrs.window.pads == (0, 0, 1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_of_two_branches_with_their_own_scales(tmp_path: Path, dtype: str) -> None:
    g = QdqGraph(dtype, seed=5)
    x = g.q_input("x", [1, 4, 6, 6], 0.04, 0)
    a = g.requant(g.qconv(x, 4, kernel=1), 0.05, 10)
    b = g.requant(g.relu(g.qconv(x, 4, kernel=3)), 0.02, -128)
    y = g.relu(g.add(a, b))
    compiled = compare_with_onnxruntime(g.build_quantized(g.quantize(y, 0.06, -128)), tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["conv2d", "conv2d", "add"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_pool_reshape_transpose_dense(tmp_path: Path, dtype: str) -> None:
    """AveragePool keeps its input's QParams (TFLite); Reshape and Transpose sit between Q and DQ.

    A 3x3 mean of integers is never a tie, so the pool is exact in both and the dense layer is
    compared on equal inputs."""
    g = QdqGraph(dtype, seed=6)
    x = g.q_input("x", [1, 8, 3, 3], 0.03, -20)
    q = g.quantize(g.avg_pool(x, kernel=3, stride=3), 0.03, -20)
    q = g.reshape(g.transpose(q, (0, 2, 3, 1)), (1, 8))
    logits = g.qdense(g.dequantize(q, 0.03, -20), 5)
    compiled = compare_with_onnxruntime(g.build_quantized(g.quantize(logits, 0.1, 4)), tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["average_pool", "fully_connected"]
    assert compiled.graph.meta["prequantized_notes"] == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(tmp_path: Path, dtype: str) -> None:
    g = QdqGraph(dtype, seed=9)
    x = g.q_input("x", [1, 10], 0.08, -3)
    compiled = compare_with_onnxruntime(g.build_quantized(g.quantize(g.softmax(x), 1.0 / 256, -128)), tmp_path, 20)
    assert [n.op for n in compiled.graph.nodes] == ["softmax"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_and_global_average_pool(tmp_path: Path, dtype: str) -> None:
    g = QdqGraph(dtype, seed=7)
    x = g.q_input("x", [1, 3, 8, 8], 0.05, -3)
    x = g.requant(g.max_pool(x, kernel=2, stride=2), 0.05, -3)
    x = g.requant(g.relu(g.qconv(x, 5, kernel=3)), 0.04, -128)
    compiled = compare_with_onnxruntime(g.build_quantized(g.quantize(g.global_avg_pool(x), 0.04, -128)), tmp_path)
    assert [n.op for n in compiled.graph.nodes] == ["max_pool", "conv2d", "average_pool"]


@settings(max_examples=12, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    per_channel=st.booleans(),
    axis_sign=st.sampled_from([1, -1]),
    depthwise=st.booleans(),
    stride=st.sampled_from([1, 2]),
    in_scale=st.floats(0.005, 0.2),
    in_zp=st.integers(-100, 100),
    out_scale=st.floats(0.01, 0.5),
    out_zp=st.integers(-128, 100),
    seed=st.integers(0, 1000),
)
def test_conv_property_within_one_step_of_onnxruntime(tmp_path_factory: pytest.TempPathFactory, dtype: str,
                                                      per_channel: bool, axis_sign: int, depthwise: bool, stride: int,
                                                      in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                                                      seed: int) -> None:
    g = QdqGraph(dtype, seed=seed)
    x = g.q_input("x", [1, 4, 7, 7], in_scale, in_zp)
    weight_dtype = "int8" if per_channel else dtype
    y = g.qconv(x, 4 if depthwise else 6, kernel=3, stride=stride, group=4 if depthwise else 1,
                per_channel=per_channel, axis_sign=axis_sign, weight_dtype=weight_dtype)
    compare_with_onnxruntime(g.build_quantized(g.quantize(y, out_scale, out_zp)), tmp_path_factory.mktemp("conv"))


def test_weights_on_another_axis_are_refused(tmp_path: Path) -> None:
    g = QdqGraph("int8")
    x = g.q_input("x", [1, 3, 4, 4], 0.02, 0)
    w = g.int_weights((4, 3, 1, 1), 1, "int8")  # per input channel: TFLite has no such thing
    y = g.node("Conv", [x, w], kernel_shape=[1, 1])
    with pytest.raises(UnsupportedModelError, match="axis 1"):
        compile_onnx(g.build_quantized(g.quantize(y, 0.1, 0)), tmp_path)


def test_an_unquantized_activation_is_named(tmp_path: Path) -> None:
    g = QdqGraph("int8")
    x = g.q_input("x", [1, 3, 4, 4], 0.02, 0)
    first = g.qconv(x, 3, kernel=1)  # its output has no QuantizeLinear
    g.scale_of[first] = 0.02
    y = g.qconv(first, 3, kernel=1)
    with pytest.raises(UnsupportedModelError, match="no QuantizeLinear"):
        compile_onnx(g.build_quantized(g.quantize(y, 0.1, 0)), tmp_path)


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_c_equals_the_simulator(tmp_path: Path, dtype: str) -> None:
    g = QdqGraph(dtype, seed=8)
    x = g.q_input("x", [1, 3, 10, 10], 0.02, 7)
    x = g.requant(g.clip(g.qconv(x, 8, kernel=3, stride=2, per_channel=dtype == "int8",
                                 weight_dtype="int8" if dtype == "int8" else "uint8")), 6.0 / 255, -128)
    a = g.requant(g.qconv(x, 8, kernel=3, group=8), 0.05, 2)
    y = g.requant(g.add(x, a), 0.06, -10)
    y = g.quantize(g.avg_pool(y, kernel=5, stride=5), 0.06, -10)
    logits = g.requant(g.qdense(g.dequantize(g.reshape(y, (1, 8)), 0.06, -10), 4), 0.1, 0)
    model = g.build_quantized(g.quantize(g.softmax(logits), 1.0 / 256, -128))
    compiled = compile_onnx(model, tmp_path)  # layer by layer within a step of onnxruntime: the tests above
    assert [n.op for n in compiled.graph.nodes] == [
        "conv2d", "depthwise_conv2d", "add", "average_pool", "fully_connected", "softmax"]
    np.save(tmp_path / "x.npy", random_inputs(model, 4, seed=1))
    _, xs = quantized_inputs(compiled, str(tmp_path / "x.npy"))
    c_out, _ = run_c(compiled, get_target("host"), xs)
    sim_out = np.stack([sim.run(compiled.graph, x)[0] for x in xs])
    np.testing.assert_array_equal(c_out, sim_out)


def test_flatten_of_a_spatial_map_into_dense(tmp_path: Path) -> None:
    """An NCHW Flatten of a 2x2 map reorders elements: the dense weights are permuted at compile time."""
    g = QdqGraph("int8", seed=10)
    x = g.q_input("x", [1, 8, 2, 2], 0.03, -20)
    x = g.quantize(g.qconv(x, 8, kernel=1), 0.03, -20)
    logits = g.qdense(g.dequantize(g.reshape(x, (1, 32)), 0.03, -20), 5)
    compare_with_onnxruntime(g.build_quantized(g.quantize(logits, 0.1, 4)), tmp_path)


def test_dequantize_without_zero_point_takes_its_inputs_type(tmp_path: Path) -> None:
    """ONNX: a DequantizeLinear without zero point has zero point 0 of x's type (here int8 through an
    Identity), a QuantizeLinear without one quantizes to uint8 with zero point 0."""
    g = QdqGraph("int8", seed=12)
    x = g.input("x", [1, 3, 4, 4], onnx.TensorProto.INT8)
    x = g.node("DequantizeLinear", [g.node("Identity", [x]), g.const(np.array(0.02, np.float32))])
    g.scale_of[x] = 0.02
    y = g.node("QuantizeLinear", [g.relu(g.qconv(x, 4, kernel=3)), g.const(np.array(0.05, np.float32))])
    model = g._graph([])
    model.graph.output.append(onnx.helper.make_tensor_value_info(y, onnx.TensorProto.UINT8, [1, 4, 4, 4]))
    compiled = compare_with_onnxruntime(model, tmp_path)
    graph = compiled.graph
    assert graph.tensor(graph.inputs[0]).qparams.scalar_zero_point == 0
    assert graph.tensor(graph.outputs[0]).qparams.scalar_zero_point == -128
