"""The ONNX float frontend: loading, validation, and the ONNX -> IR mapping checked against onnxruntime."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from mcugen.errors import UnsupportedModelError, UserError
from mcugen.frontend import import_model, load_model
from mcugen.ir import Activation, check_stage
from mcugen.passes import canonicalize
from onnx_builders import OnnxGraph, assert_matches_onnxruntime, run_onnxruntime
from shared_data import shared


def ops(graph) -> list[str]:
    return [n.op for n in graph.nodes]


def random_input(model: onnx.ModelProto, seed: int = 0) -> np.ndarray:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def check_both(model: onnx.ModelProto, seed: int = 0):
    """Import, compare with onnxruntime, canonicalise, compare again; returns the canonical graph."""
    x = random_input(model, seed)
    graph = import_model(model)
    assert_matches_onnxruntime(graph, model, x)
    canonical = canonicalize(graph)
    assert_matches_onnxruntime(canonical, model, x)
    return canonical


def conv_input(g: OnnxGraph, c: int = 3, h: int = 8, w: int = 8) -> str:
    return g.input("x", ["N", c, h, w])


# load_model ---------------------------------------------------------------------


def small_model(shape=("N", 3, 8, 8)) -> onnx.ModelProto:
    g = OnnxGraph()
    x = g.input("x", list(shape))
    return g.build([g.relu(g.conv(x, 4))])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello, this is not a model", "not an ONNX model"),
        (b"", "not a valid ONNX model"),
        (small_model().SerializeToString()[:200], "not an ONNX model"),
    ],
    ids=["text", "empty", "truncated"],
)
def test_load_refuses_files_that_are_not_onnx(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_model(path)


def test_load_refuses_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_model(tmp_path / "absent.onnx")
    with pytest.raises(UserError, match="not a file"):
        load_model(tmp_path)


def test_load_fixes_dynamic_batch_to_one(tmp_path: Path) -> None:
    onnx.save(small_model(), tmp_path / "m.onnx")
    model = load_model(tmp_path / "m.onnx")
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 8, 8]
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_load_names_a_dynamic_non_batch_dimension(tmp_path: Path) -> None:
    onnx.save(small_model(("N", 3, "height", 8)), tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"input 'x': dimension 2 \('height'\) is dynamic"):
        load_model(tmp_path / "m.onnx")


def test_load_refuses_static_batch_above_one(tmp_path: Path) -> None:
    onnx.save(small_model((4, 3, 8, 8)), tmp_path / "m.onnx")
    with pytest.raises(UserError, match="batch size 4"):
        load_model(tmp_path / "m.onnx")


def save_external(model: onnx.ModelProto, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.ModelProto.FromString(model.SerializeToString())  # onnx.save moves the data out in place
    onnx.save(model, folder / "m.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    return folder / "m.onnx"


def test_load_reads_external_data_beside_the_model(tmp_path: Path) -> None:
    model = small_model()
    path = save_external(model, tmp_path / "model")
    loaded = load_model(path)
    assert [t.name for t in loaded.graph.initializer] == [t.name for t in model.graph.initializer]
    for got, want in zip(loaded.graph.initializer, model.graph.initializer):
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(got), onnx.numpy_helper.to_array(want))


def test_load_refuses_external_data_outside_the_model_folder(tmp_path: Path) -> None:
    path = save_external(small_model(), tmp_path / "model")
    (tmp_path / "model" / "weights.bin").rename(tmp_path / "weights.bin")
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(model, path)
    with pytest.raises(UserError, match="outside the model's folder"):
        load_model(path)


# Graph inputs and layouts -------------------------------------------------------


def test_nchw_input_is_stored_nhwc() -> None:
    g = OnnxGraph()
    model = g.build([g.relu(g.conv(conv_input(g, 3, 10, 6), 4))])
    graph = import_model(model, name="tiny")
    assert graph.meta["input_layout"] == "nchw"
    assert graph.tensor("x").shape == (1, 10, 6, 3)
    assert graph.meta["onnx_inputs"] == ("x",)
    assert graph.meta["onnx_outputs"] == tuple(o.name for o in model.graph.output)
    assert graph.meta["opset"] == 13
    check_both(model)


def test_tf2onnx_nhwc_input_transpose_is_an_alias() -> None:
    g = OnnxGraph()
    x = g.input("x", ["N", 10, 6, 3])
    model = g.build([g.relu(g.conv(g.transpose(x, [0, 3, 1, 2]), 4))])
    graph = import_model(model)
    assert graph.meta["input_layout"] == "nhwc"
    (reshape,) = [n for n in graph.nodes if n.op == "reshape"]
    assert reshape.attrs.gather is None
    canonical = check_both(model)
    assert canonical.tensor("x").shape == (1, 10, 6, 3)


def test_kws_style_input_reshape_is_an_alias() -> None:
    g = OnnxGraph()
    x = g.input("x", ["N", 12, 10, 1])
    model = g.build([g.relu(g.conv(g.reshape(x, [-1, 1, 12, 10]), 4))])
    graph = import_model(model)
    assert graph.meta["input_layout"] == "nhwc"
    assert [n.attrs.gather for n in graph.nodes if n.op == "reshape"] == [None]
    assert ops(check_both(model)) == ["conv2d"]


def test_three_dimensional_input_takes_the_reshaped_view() -> None:
    g = OnnxGraph()
    x = g.input("x", ["N", 12, 10])
    model = g.build([g.relu(g.conv(g.reshape(x, [-1, 1, 12, 10]), 4))])
    canonical = check_both(model)
    assert canonical.tensor("x").shape == (1, 12, 10, 1)


def test_non_float_input_is_a_problem() -> None:
    g = OnnxGraph()
    x = g.input("x", [1, 4], TensorProto.INT8)
    model = g.build([g.node("Cast", [x], to=TensorProto.FLOAT)])
    with pytest.raises(UnsupportedModelError) as info:
        import_model(model)
    assert ("x", "input") in {(p.node, p.op) for p in info.value.problems}


# Conv ---------------------------------------------------------------------------

pads_st = st.tuples(*[st.integers(0, 2)] * 4)


@settings(max_examples=30, deadline=None)
@given(
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    size=st.tuples(st.integers(4, 11), st.integers(4, 11)),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.integers(1, 3),
    pads=pads_st,
    auto_pad=st.sampled_from([None, "SAME_UPPER", "SAME_LOWER", "VALID"]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv_matches_onnxruntime(c_in, c_out, size, kernel, stride, pads, auto_pad, bias, seed) -> None:
    top, left, bottom, right = pads
    if auto_pad is None:
        assume(size[0] + top + bottom >= kernel[0] and size[1] + left + right >= kernel[1])
    else:
        assume(size[0] >= kernel[0] and size[1] >= kernel[1])
    g = OnnxGraph(seed=seed)
    x = conv_input(g, c_in, *size)
    y = g.conv(x, c_out, kernel=kernel, stride=stride, pads=pads, bias=bias, auto_pad=auto_pad)
    model = g.build([y])
    graph = import_model(model)
    (conv,) = graph.nodes
    assert conv.op == "conv2d" and graph.tensor(conv.inputs[1]).shape == (c_out, *kernel, c_in)
    assert_matches_onnxruntime(graph, model, random_input(model, seed))


@settings(max_examples=20, deadline=None)
@given(
    channels=st.integers(2, 4),  # one channel with group 1 is a plain conv2d
    multiplier=st.integers(1, 3),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    pads=pads_st,
    seed=st.integers(0, 2**16),
)
def test_depthwise_conv_matches_onnxruntime(channels, multiplier, kernel, stride, pads, seed) -> None:
    g = OnnxGraph(seed=seed)
    x = conv_input(g, channels, 7, 6)
    model = g.build([g.depthwise(x, multiplier, kernel=kernel, stride=stride, pads=pads)])
    graph = import_model(model)
    (conv,) = graph.nodes
    assert conv.op == "depthwise_conv2d" and conv.attrs.depth_multiplier == multiplier
    assert graph.tensor(conv.inputs[1]).shape == (1, kernel, kernel, channels * multiplier)
    assert_matches_onnxruntime(graph, model, random_input(model, seed))


def test_conv_without_bias_gets_zero_bias() -> None:
    g = OnnxGraph()
    model = g.build([g.conv(conv_input(g), 4, bias=False)])
    graph = import_model(model)
    np.testing.assert_array_equal(graph.tensor(graph.nodes[0].inputs[2]).data, np.zeros(4, np.float32))


@pytest.mark.parametrize("bias_shape", [(1, 4, 1, 1), (4, 1, 1)])
def test_per_channel_add_after_conv_folds_into_the_bias(bias_shape) -> None:
    g = OnnxGraph()
    y = g.conv(conv_input(g), 4)
    model = g.build([g.add(y, g.const(np.arange(4, dtype=np.float32).reshape(bias_shape)))])
    assert ops(check_both(model)) == ["conv2d"]


def test_add_of_a_constant_along_width_is_refused() -> None:
    # ONNX broadcasting aligns a (C,) constant with W, not with the channels.
    g = OnnxGraph()
    y = g.conv(conv_input(g, 3, 8, 4), 4)
    model = g.build([g.add(y, g.const(np.arange(4, dtype=np.float32)))])
    with pytest.raises(UnsupportedModelError, match="not a per-channel bias"):
        import_model(model)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda g, x: g.conv(x, 4, dilation=2), "dilations"),
        (lambda g, x: g.conv(x, 4, group=2), "group=2"),
        (lambda g, x: g.node("ConvTranspose", [x, g.const(g.weights(4, 4, 3, 3))]), "unsupported operator"),
    ],
    ids=["dilation", "group", "conv-transpose"],
)
def test_unsupported_convolutions(make, reason) -> None:
    g = OnnxGraph()
    model = g.build([make(g, conv_input(g, 4))])
    with pytest.raises(UnsupportedModelError, match=reason):
        import_model(model)


# Activations --------------------------------------------------------------------


@pytest.mark.parametrize(
    "opset, lo, hi",
    [(10, 0.0, 6.0), (13, 0.0, 6.0), (13, None, 6.0), (13, -1.0, None), (10, None, 3.0), (10, -2.0, None)],
)
def test_clip_forms(opset, lo, hi) -> None:
    g = OnnxGraph(opset=opset)
    model = g.build([g.clip(g.conv(conv_input(g), 4), lo, hi)])
    graph = import_model(model)
    (clamp,) = [n for n in graph.nodes if n.op == "clamp"]
    expected = Activation(-math.inf if lo is None else lo, math.inf if hi is None else hi)
    assert clamp.attrs.activation == expected
    (conv,) = check_both(model).nodes
    assert conv.attrs.activation == expected


def test_relu_is_a_clamp_at_zero() -> None:
    g = OnnxGraph()
    model = g.build([g.relu(g.conv(conv_input(g), 4))])
    (conv,) = check_both(model).nodes
    assert conv.attrs.activation == Activation(0.0, math.inf)


# Fully connected ----------------------------------------------------------------


def fc_input(g: OnnxGraph, features: int = 6) -> str:
    return g.input("x", ["N", features])


@pytest.mark.parametrize(
    "trans_b, alpha, beta, bias_shape",
    [(1, 1.0, 1.0, (5,)), (0, 1.0, 1.0, (1, 5)), (1, 0.5, 2.0, (5,)), (0, 2.0, 1.0, None), (1, 1.0, 0.5, ())],
)
def test_gemm_forms(trans_b, alpha, beta, bias_shape) -> None:
    g = OnnxGraph()
    model = g.build([g.gemm(fc_input(g), 5, trans_b=trans_b, alpha=alpha, beta=beta, bias_shape=bias_shape)])
    canonical = check_both(model)
    assert ops(canonical) == ["fully_connected"]
    assert canonical.tensor(canonical.nodes[0].inputs[1]).shape == (5, 6)


def test_gemm_trans_a_is_refused() -> None:
    g = OnnxGraph()
    x = fc_input(g)
    model = g.build([g.node("Gemm", [x, g.const(g.weights(6, 5))], transA=1)])
    with pytest.raises(UnsupportedModelError, match="transA"):
        import_model(model)


@pytest.mark.parametrize("bias", [True, False])
def test_matmul_with_and_without_add(bias) -> None:
    g = OnnxGraph()
    model = g.build([g.matmul(fc_input(g), 3, bias=bias)])
    canonical = check_both(model)
    assert ops(canonical) == ["fully_connected"]
    if not bias:
        np.testing.assert_array_equal(canonical.tensor(canonical.nodes[0].inputs[2]).data, np.zeros(3))


def test_shape_arithmetic_is_folded() -> None:
    """Flatten written as Reshape(x, Concat(Gather(Shape(x), 0), [-1])), as exporters do."""
    g = OnnxGraph()
    y = g.global_avg_pool(g.conv(conv_input(g), 4))
    batch = g.node("Gather", [g.node("Shape", [y]), g.const(np.array([0], np.int64))], axis=0)
    shape = g.node("Concat", [batch, g.const(np.array([-1], np.int64))], axis=0)
    flat = g.node("Reshape", [y, shape])
    model = g.build([g.gemm(flat, 2, bias_shape=(2,), c_in=4)])
    assert ops(import_model(model)) == ["conv2d", "average_pool", "reshape", "fully_connected"]
    assert ops(check_both(model)) == ["conv2d", "average_pool", "fully_connected"]


# Pools, Add, Softmax --------------------------------------------------------------


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 1, 0)])
def test_pools_match_onnxruntime(pool, pads) -> None:
    g = OnnxGraph()
    x = g.conv(conv_input(g, 3, 7, 7), 4)
    make = g.avg_pool if pool == "avg" else g.max_pool
    model = g.build([make(x, kernel=3, stride=2, pads=pads)])
    assert ops(check_both(model)) == ["conv2d", {"avg": "average_pool", "max": "max_pool"}[pool]]


def test_average_pool_counting_padding_is_refused() -> None:
    g = OnnxGraph()
    model = g.build([g.avg_pool(conv_input(g), kernel=3, stride=1, pads=(1, 1, 1, 1), count_include_pad=1)])
    with pytest.raises(UnsupportedModelError, match="count_include_pad"):
        import_model(model)


def test_ceil_mode_only_when_it_changes_nothing() -> None:
    g = OnnxGraph()
    x = conv_input(g, 3, 8, 8)
    model = g.build([g.max_pool(x, kernel=2, stride=2, ceil_mode=1)])
    assert ops(check_both(model)) == ["max_pool"]
    g = OnnxGraph()
    x = conv_input(g, 3, 7, 7)
    with pytest.raises(UnsupportedModelError, match="ceil_mode"):
        import_model(g.build([g.max_pool(x, kernel=2, stride=2, ceil_mode=1)]))


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_global_means(opset, keepdims) -> None:
    g = OnnxGraph(opset=opset)
    y = g.reduce_mean(g.conv(conv_input(g), 4), keepdims=keepdims)
    model = g.build([y])
    assert ops(check_both(model)) == ["conv2d", "average_pool"]
    g = OnnxGraph()
    assert ops(check_both(g.build([g.global_avg_pool(conv_input(g))]))) == ["average_pool"]


def test_reduce_mean_over_channels_is_refused() -> None:
    g = OnnxGraph()
    with pytest.raises(UnsupportedModelError, match="axes"):
        import_model(g.build([g.reduce_mean(conv_input(g), axes=(1,))]))


def test_add_of_two_activations() -> None:
    g = OnnxGraph()
    x = conv_input(g)
    model = g.build([g.add(g.conv(x, 4), g.conv(x, 4))])
    assert ops(check_both(model)) == ["conv2d", "conv2d", "add"]


def test_broadcasting_add_is_refused() -> None:
    g = OnnxGraph()
    x = conv_input(g)
    model = g.build([g.add(g.conv(x, 4), g.global_avg_pool(g.conv(x, 4)))])
    with pytest.raises(UnsupportedModelError, match="broadcasting"):
        import_model(model)


@pytest.mark.parametrize(
    "opset, axis, spatial",
    [(11, None, 1), (11, 1, 1), (13, None, 1), (13, -1, 1), (13, 1, 3)],
    ids=["opset11-default", "opset11-axis1", "opset13-default", "opset13-last", "opset13-nchw-channels"],
)
def test_softmax_over_the_channels(opset, axis, spatial) -> None:
    g = OnnxGraph(opset=opset)
    x = g.conv(conv_input(g, 3, spatial, spatial), 4)
    x = g.flatten(x) if spatial == 1 else x
    model = g.build([g.softmax(x, axis)])
    assert ops(check_both(model))[-1] == "softmax"


@pytest.mark.parametrize("opset, axis", [(13, 2), (11, 1)])
def test_softmax_over_space_is_refused(opset, axis) -> None:
    g = OnnxGraph(opset=opset)
    model = g.build([g.softmax(g.conv(conv_input(g, 3, 3, 3), 4), axis)])
    with pytest.raises(UnsupportedModelError, match="only the channel axis"):
        import_model(model)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda g, x: g.pad(x, (1, 1, 1, 1), mode="reflect"), "mode 'reflect'"),
        (lambda g, x: g.pad(x, [0, 1, 0, 0, 0, 0, 0, 0]), "channel axis"),
    ],
    ids=["reflect", "channels"],
)
def test_pads_the_ir_cannot_express(make, reason) -> None:
    g = OnnxGraph()
    x = conv_input(g)
    model = g.build([g.conv(make(g, x), 4)])
    with pytest.raises(UnsupportedModelError, match=reason):
        import_model(model)


# Problems ---------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    g = OnnxGraph()
    x = conv_input(g)
    a = g.node("LeakyRelu", [g.conv(x, 4)], name="leaky")
    b = g.conv(x, 4, dilation=2)  # node name Conv_<k>
    c = g.node("Mul", [a, b], name="")  # unnamed: known by its index
    d = g.relu(g.node("Sigmoid", [c], name="sigmoid"))  # downstream of problems: the Relu stays quiet
    model = g.build([d])
    with pytest.raises(UnsupportedModelError) as info:
        import_model(model, name="bad")
    problems = {(p.node, p.op) for p in info.value.problems}
    mul_index = next(i for i, n in enumerate(model.graph.node) if n.op_type == "Mul")
    dilated = next(n.name for n in model.graph.node if any(a.name == "dilations" for a in n.attribute))
    assert problems == {("leaky", "LeakyRelu"), (dilated, "Conv"), (f"Mul_{mul_index}", "Mul"), ("sigmoid", "Sigmoid")}
    assert str(info.value).startswith("bad: 4 node(s) cannot be compiled")


def test_unnamed_nodes_are_named_by_op_and_index() -> None:
    g = OnnxGraph()
    model = g.build([g.node("Relu", [g.conv(conv_input(g), 4)], name="")])
    assert [n.name for n in import_model(model).nodes][1] == "Relu_1"


# The shared float models --------------------------------------------------------------

HEAD = {"average_pool": 1, "fully_connected": 1, "softmax": 1}
REAL_MODELS = {
    # From the ONNX files: VWW has 27 Conv (13 with group > 1) and 27 Relu; KWS 9 Conv (4 grouped);
    # MobileNetV2 52 Conv (17 grouped), 11 Add of which one is the dense bias, 35 Clip(0, 6).
    "vww_96_float.onnx": ({"conv2d": 14, "depthwise_conv2d": 13, **HEAD}, 27),
    "kws_ds_cnn_float.onnx": ({"conv2d": 5, "depthwise_conv2d": 4, **HEAD}, 9),
    "mobilenet_v2_0.5_128_person_float_nchw.onnx": (
        {"conv2d": 35, "depthwise_conv2d": 17, "add": 10, **HEAD},
        35,
    ),
}


@pytest.mark.parametrize("filename", sorted(REAL_MODELS))
def test_real_float_model_canonicalises_and_matches_onnxruntime(filename: str) -> None:
    expected_ops, activations = REAL_MODELS[filename]
    model = load_model(shared(f"models/{filename}"))
    graph = canonicalize(import_model(model, name=Path(filename).stem))
    check_stage(graph, "float")
    assert Counter(ops(graph)) == expected_ops
    fused = [n for n in graph.nodes if getattr(n.attrs, "activation", Activation()) != Activation()]
    assert len(fused) == activations
    compared = assert_matches_onnxruntime(graph, model, random_input(model, seed=1))
    assert compared >= len(graph.nodes)  # every kernel output keeps an ONNX tensor's name
    x = random_input(model, seed=1)
    (output,) = run_onnxruntime(model, x).values()
    assert output.shape == (1, graph.tensor(graph.outputs[0]).size)
