"""The canonicalising passes: each keeps the float result (vs onnxruntime) and refuses what it cannot fold."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen.errors import UnsupportedModelError
from mcugen.frontend import import_model
from mcugen.ir import KERNEL_OPS, Activation, BatchNormAttrs, ConvAttrs, Graph, Node, Tensor, Window, check_stage
from mcugen.passes import CANONICALIZE, canonicalize
from mcugen.passes.absorb_pad import absorb_pad
from mcugen.passes.fold_batch_norm import fold_batch_norm
from mcugen.passes.fold_reshape import fold_reshape
from mcugen.passes.fuse_activation import fuse_activation
from onnx_builders import OnnxGraph, assert_matches_onnxruntime, run_ir_float, tiny_mobilenet


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def random_input(model: onnx.ModelProto, seed: int = 0) -> np.ndarray:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def canonical_matches(model: onnx.ModelProto, seed: int = 0) -> Graph:
    graph = canonicalize(import_model(model))
    assert_matches_onnxruntime(graph, model, random_input(model, seed))
    return graph


def refusal(model: onnx.ModelProto) -> list[tuple[str, str, str]]:
    """The problems canonicalisation reports, as (node, op, reason)."""
    with pytest.raises(UnsupportedModelError) as info:
        canonicalize(import_model(model))
    return [(p.node, p.op, p.reason) for p in info.value.problems]


def image(g: OnnxGraph, c: int = 3, h: int = 8, w: int = 8) -> str:
    return g.input("x", ["N", c, h, w])


# fold_batch_norm ----------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    depthwise=st.booleans(),
    multiplier=st.integers(1, 2),
    bias=st.booleans(),
    epsilon=st.sampled_from([1e-5, 1e-3, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_folds_into_the_conv(depthwise, multiplier, bias, epsilon, seed) -> None:
    g = OnnxGraph(seed=seed)
    x = image(g, 3)
    y = g.depthwise(x, multiplier, bias=bias) if depthwise else g.conv(x, 5, bias=bias)
    model = g.build([g.batch_norm(y, epsilon)])
    graph = canonical_matches(model, seed)
    assert ops(graph) == ["depthwise_conv2d" if depthwise else "conv2d"]


def test_batch_norm_folding_alone_keeps_the_float_result() -> None:
    g = OnnxGraph(seed=3)
    x = image(g)
    model = g.build([g.batch_norm(g.depthwise(g.batch_norm(g.conv(x, 4)), 2))])
    before = import_model(model)
    after = fold_batch_norm(before)
    assert ops(after) == ["conv2d", "depthwise_conv2d"]
    x_ir = random_input(model).transpose(0, 2, 3, 1)
    out = before.outputs[0]
    np.testing.assert_allclose(run_ir_float(after, x_ir)[out], run_ir_float(before, x_ir)[out], rtol=1e-5, atol=1e-6)


def test_batch_norm_that_cannot_fold_is_refused_with_all_problems() -> None:
    g = OnnxGraph()
    x = image(g, 4)
    on_input = g.node("BatchNormalization", [x] + [g.const(np.ones(4, np.float32))] * 4, name="bn_input")
    conv = g.conv(on_input, 4)
    shared = g.node("BatchNormalization", [conv] + [g.const(np.ones(4, np.float32))] * 4, name="bn_shared")
    model = g.build([g.add(shared, conv)])  # conv's output is read by the BN and by the Add
    problems = refusal(model)
    assert [(node, op) for node, op, _ in problems] == [("bn_input", "batch_norm"), ("bn_shared", "batch_norm")]
    assert "graph input" in problems[0][2] and "read elsewhere" in problems[1][2]


def test_batch_norm_after_an_add_is_refused() -> None:
    g = OnnxGraph()
    x = image(g)
    model = g.build([g.batch_norm(g.add(g.conv(x, 4), g.conv(x, 4)))])
    ((node, op, reason),) = refusal(model)
    assert op == "batch_norm" and "(add)" in reason


def test_folding_leaves_a_shared_weight_tensor_alone() -> None:
    w = np.arange(8, dtype=np.float32).reshape(2, 1, 1, 4)
    const = lambda name, data: Tensor(name, data.shape, "float32", data=data)  # noqa: E731
    act = lambda name, c: Tensor(name, (1, 3, 3, c), "float32")  # noqa: E731
    attrs = ConvAttrs(Window((1, 1)))
    tensors = [act("x", 4), act("a", 2), act("b", 2), act("y", 2), const("w", w)]
    tensors += [const("bias", np.zeros(2, np.float32))]
    tensors += [const(n, np.full(2, v, np.float32)) for n, v in (("s", 2.0), ("o", 0.0), ("m", 0.0), ("v", 1.0))]
    nodes = (
        Node("conv_a", "conv2d", ("x", "w", "bias"), ("a",), attrs),
        Node("conv_b", "conv2d", ("x", "w", "bias"), ("b",), attrs),
        Node("bn", "batch_norm", ("a", "s", "o", "m", "v"), ("y",), BatchNormAttrs(0.0)),
    )
    graph = Graph(nodes, {t.name: t for t in tensors}, ("x",), ("y", "b"))
    folded = fold_batch_norm(graph)
    conv_a, conv_b = folded.nodes
    np.testing.assert_array_equal(folded.tensor(conv_b.inputs[1]).data, w)
    np.testing.assert_array_equal(folded.tensor(conv_a.inputs[1]).data, 2 * w)
    check_stage(folded, "float")


# fuse_activation ----------------------------------------------------------------


def test_chained_clamps_fuse_into_one_activation() -> None:
    g = OnnxGraph()
    model = g.build([g.clip(g.relu(g.conv(image(g), 4)), -1.0, 6.0)])
    (conv,) = canonical_matches(model).nodes
    assert conv.attrs.activation == Activation(0.0, 6.0)


@pytest.mark.parametrize("producer", ["add", "max_pool", "average_pool", "fully_connected"])
def test_clamp_fuses_into_every_kernel_op_with_an_activation(producer) -> None:
    g = OnnxGraph()
    x = g.conv(image(g), 4)
    y = {
        "add": lambda: g.add(x, g.conv("x", 4)),
        "max_pool": lambda: g.max_pool(x),
        "average_pool": lambda: g.avg_pool(x),
        "fully_connected": lambda: g.gemm(g.flatten(g.global_avg_pool(x)), 3, bias_shape=(3,)),
    }[producer]()
    model = g.build([g.clip(y, 0.0, 1.0)])
    graph = canonical_matches(model)
    assert graph.nodes[-1].op == producer and graph.nodes[-1].attrs.activation == Activation(0.0, 1.0)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda g, x: g.relu(x), "graph input"),
        (lambda g, x: g.relu(g.softmax(g.flatten(g.global_avg_pool(x)))), "(softmax)"),
        (lambda g, x: g.add(g.relu(c := g.conv(x, 3)), c), "read elsewhere"),
    ],
    ids=["input", "softmax", "shared"],
)
def test_clamps_that_cannot_fuse_are_refused(make, reason) -> None:
    g = OnnxGraph()
    model = g.build([make(g, image(g))])
    ((_, op, why),) = refusal(model)
    assert op == "clamp" and reason in why


def test_clamp_of_a_graph_output_is_refused() -> None:
    g = OnnxGraph()
    conv = g.conv(image(g), 4)
    ((_, op, why),) = refusal(g.build([g.relu(conv), conv]))
    assert op == "clamp" and "read elsewhere" in why


# absorb_pad -----------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    pads=st.tuples(*[st.integers(0, 2)] * 4),
    conv_pads=st.tuples(*[st.integers(0, 1)] * 4),
    depthwise=st.booleans(),
    stride=st.integers(1, 2),
    opset=st.sampled_from([10, 13]),
    seed=st.integers(0, 2**16),
)
def test_zero_pad_is_absorbed_by_the_conv(pads, conv_pads, depthwise, stride, opset, seed) -> None:
    g = OnnxGraph(seed=seed, opset=opset)
    x = g.pad(image(g, 3, 7, 6), pads)
    conv = g.depthwise(x, pads=conv_pads, stride=stride) if depthwise else g.conv(x, 4, pads=conv_pads, stride=stride)
    model = g.build([conv])
    (conv,) = canonical_matches(model, seed).nodes
    assert conv.inputs[0] == "x"
    assert conv.attrs.window.pads == tuple(a + b for a, b in zip(pads, conv_pads))


def test_pad_read_by_two_convs_is_absorbed_by_both() -> None:
    g = OnnxGraph()
    x = g.pad(image(g), (1, 0, 1, 2))
    model = g.build([g.add(g.conv(x, 4, pads=(0, 0, 0, 0)), g.conv(x, 4, pads=(0, 0, 0, 0)))])
    graph = canonical_matches(model)
    assert ops(graph) == ["conv2d", "conv2d", "add"]
    assert [n.attrs.window.pads for n in graph.nodes[:2]] == [(1, 0, 1, 2)] * 2


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda g, x: g.conv(g.pad(x, (1, 1, 1, 1), value=1.0), 4), "only zero padding"),
        (lambda g, x: g.max_pool(g.pad(x, (1, 1, 1, 1))), "(max_pool)"),
        (lambda g, x: g.add(g.conv(p := g.pad(x, (1, 1, 1, 1)), 3), p), "(add)"),
        (lambda g, x: g.pad(x, (1, 1, 1, 1)), "graph output"),
    ],
    ids=["value", "pool", "mixed-readers", "output"],
)
def test_pads_that_cannot_be_absorbed_are_refused(make, reason) -> None:
    g = OnnxGraph()
    ((_, op, why),) = refusal(g.build([make(g, image(g))]))
    assert op == "pad" and reason in why


# fold_reshape ---------------------------------------------------------------------


def test_nchw_flatten_is_folded_into_the_fc_weights() -> None:
    g = OnnxGraph(seed=5)
    y = g.conv(image(g, 3, 4, 3), 5, stride=1)
    model = g.build([g.gemm(g.flatten(y), 2, bias_shape=(2,))])
    imported = import_model(model)
    assert [n.attrs.gather is not None for n in imported.nodes if n.op == "reshape"] == [True]
    assert ops(canonical_matches(model)) == ["conv2d", "fully_connected"]


def test_tf2onnx_flatten_composes_to_an_alias() -> None:
    """Transpose to NHWC then Reshape: together they read NHWC storage in order."""
    g = OnnxGraph()
    y = g.transpose(g.conv(image(g, 3, 4, 3), 5), [0, 2, 3, 1])
    flat = g.reshape(y, [1, -1])
    weights = g.weights(2, 60).T.copy()
    model = g.build([g.node("MatMul", [flat, g.const(weights)])])
    graph = canonical_matches(model)
    assert ops(graph) == ["conv2d", "fully_connected"]
    np.testing.assert_array_equal(graph.tensor(graph.nodes[1].inputs[1]).data, weights.T)


def test_a_chain_of_reorderings_composes_into_the_fc() -> None:
    g = OnnxGraph(seed=2)
    y = g.transpose(g.conv(image(g, 3, 4, 3), 2), [0, 1, 3, 2])
    model = g.build([g.matmul(g.reshape(y, [1, -1]), 3, c_in=24)])
    assert ops(canonical_matches(model)) == ["conv2d", "fully_connected"]


def test_reordering_before_a_conv_is_refused_by_name() -> None:
    g = OnnxGraph()
    swapped = g.node("Transpose", [g.conv(image(g, 3, 6, 6), 4)], name="swap_hw", perm=[0, 1, 3, 2])
    ((node, op, why),) = refusal(g.build([g.conv(swapped, 4)]))
    assert (node, op) == ("swap_hw", "reshape") and "layout change" in why and "(conv2d)" in why


def test_reshape_as_graph_output_is_re_pointed() -> None:
    g = OnnxGraph()
    model = g.build([g.flatten(g.global_avg_pool(g.conv(image(g), 4)))])
    graph = canonical_matches(model)
    assert ops(graph) == ["conv2d", "average_pool"]
    assert graph.outputs == graph.nodes[-1].outputs


# The whole canonicalisation ------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(version=st.sampled_from([1, 2]), explicit_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_tiny_mobilenets_canonicalise_to_kernel_ops(version, explicit_pad, seed) -> None:
    model = tiny_mobilenet(version, seed=seed, explicit_pad=explicit_pad)
    graph = canonical_matches(model, seed)
    assert set(ops(graph)) <= set(KERNEL_OPS)
    assert ops(graph).count("add") == (2 if version == 2 else 0)
    assert all(n.attrs.activation in (Activation(), Activation(0.0, 6.0)) for n in graph.nodes if n.op != "softmax")


REMOVES = {"fold_batch_norm": "batch_norm", "fuse_activation": "clamp", "absorb_pad": "pad", "fold_reshape": "reshape"}


def test_each_pass_keeps_the_float_result() -> None:
    model = tiny_mobilenet(2, seed=11, explicit_pad=True)
    graph = import_model(model)
    x = random_input(model, 11).transpose(0, 2, 3, 1)
    expected = run_ir_float(graph, x)[graph.outputs[0]]
    for name, run in CANONICALIZE:
        graph = run(graph)
        assert REMOVES[name] not in ops(graph)
        got = run_ir_float(graph, x)[graph.outputs[0]]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9, err_msg=name)
    check_stage(graph, "float")
