"""average_pool, max_pool, add and softmax: C == NumPy reference bit for bit, and both are right.

Each case is a single-node quantized graph built by hand and lowered with the
kernel's own `lower`. Hypothesis draws the shapes, QParams and activations;
the int8 data comes from a drawn seed (shrinking a 16k-element array helps
nobody). Independent checks: hand-computed ties and saturation, the int8
results dequantized against the float semantics within a tolerance derived
from the arithmetic, and TensorFlow Lite Micro's own interpreter running the
same node as a one-operator .tflite model.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c_harness import available_compilers, compile_c
from kernel_runner import Case, run_c
from mcugen.codegen.environment import render
from mcugen.ir import (
    Activation, ActivationAttrs, Graph, IRError, Node, PoolAttrs, QParams, SoftmaxAttrs, Tensor, Window,
)  # fmt: skip
from mcugen.kernels import add, average_pool, max_pool, softmax
from mcugen.reference import dequantize

try:
    from tflite_micro.python.tflite_micro import runtime as tflm_runtime
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as tflm_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl
except ImportError:  # a dev dependency; without it only the TFLite Micro oracle is skipped
    tfl = None
needs_tflm = pytest.mark.skipif(tfl is None, reason="tflite-micro is not installed")

OPS = {m.OP: m for m in (average_pool, max_pool, add, softmax)}


# ---------------------------------------------------------------- graph builders


def lowered_case(op: str, attrs: object, inputs: list[Tensor], out: Tensor, data: list[np.ndarray]) -> Case:
    node = Node(f"{op}0", op, tuple(t.name for t in inputs), (out.name,), attrs)
    tensors = {t.name: t for t in [*inputs, out]}
    graph = Graph((node,), tensors, (inputs[0].name,), (out.name,), stage="quantized")
    node = dataclasses.replace(node, lowered=OPS[op].lower(node, graph))
    return Case(node, graph.replace(nodes=(node,), stage="lowered"), data)


def pool_case(op: str, x: np.ndarray, window: Window, qp: QParams, act: Activation = Activation()) -> Case:
    _, h, w, c = x.shape
    out_h, out_w = window.output_hw(h, w)
    inp = Tensor("x", x.shape, "int8", qparams=qp)
    out = Tensor("y", (1, out_h, out_w, c), "int8", qparams=qp)
    return lowered_case(op, PoolAttrs(window, act), [inp], out, [x])


def add_case(x1: np.ndarray, x2: np.ndarray, qps: tuple[QParams, ...], act: Activation = Activation()) -> Case:
    a = Tensor("a", x1.shape, "int8", qparams=qps[0])
    b = Tensor("b", x2.shape, "int8", qparams=qps[1])
    out = Tensor("y", x1.shape, "int8", qparams=qps[2])
    return lowered_case("add", ActivationAttrs(act), [a, b], out, [x1, x2])


def softmax_case(x: np.ndarray, qp: QParams, beta: float = 1.0) -> Case:
    inp = Tensor("x", x.shape, "int8", qparams=qp)
    out = Tensor("y", x.shape, "int8", qparams=QParams.per_tensor(1 / 256, -128))
    return lowered_case("softmax", SoftmaxAttrs(beta), [inp], out, [x])


def python_reference(case: Case) -> np.ndarray:
    return OPS[case.node.op].reference(case.node, case.graph, case.inputs)


def float_of(case: Case) -> np.ndarray:
    """The float semantics applied to the dequantized int8 inputs."""
    xs = [dequantize(x, case.graph.tensor(n).qparams) for n, x in zip(case.node.inputs, case.inputs)]
    return OPS[case.node.op].float_reference(case.node, case.graph, xs).astype(np.float64)


def assert_c_matches_python(op: str, cases: list[Case]) -> None:
    for case, got in zip(cases, run_c(op, cases)):
        expected = python_reference(case)
        assert got.dtype == expected.dtype == np.int8
        np.testing.assert_array_equal(got, expected, err_msg=f"{op} {case.graph.tensor(case.node.inputs[0]).shape}")


# ---------------------------------------------------------------- strategies

# TFLite scales are float32: draw values that survive the round trip.
scales = st.floats(-3.0, 0.0).map(lambda e: float(np.float32(10.0**e)))
zero_points = st.integers(-128, 127)
qparams = st.builds(QParams.per_tensor, scales, zero_points)
activations = st.one_of(
    st.sampled_from([Activation(), Activation(0.0), Activation(0.0, 6.0)]),
    st.builds(Activation, st.floats(-5.0, 0.0), st.floats(0.0, 5.0)),
)
seeds = st.integers(0, 2**32 - 1)


def int8_data(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # half the cases stay near one value, so ties and equal maxima are common
    if rng.random() < 0.5:
        return rng.integers(-128, 128, shape).astype(np.int8)
    centre = int(rng.integers(-120, 120))
    return np.clip(centre + rng.integers(-3, 4, shape), -128, 127).astype(np.int8)


@st.composite
def windows_and_shapes(draw: st.DrawFn) -> tuple[Window, tuple[int, int, int, int]]:
    """H, W 1-16, C 1-64, kernel 1-5, stride 1-3, pads 0-2 but below the kernel (no all-padding window)."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pads = [draw(st.integers(0, min(2, k - 1))) for k in (kh, kw, kh, kw)]
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 16))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 16))
    c = draw(st.integers(1, 64))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return Window((kh, kw), stride, tuple(pads)), (1, h, w, c)


@st.composite
def pool_cases(draw: st.DrawFn, op: str) -> Case:
    window, shape = draw(windows_and_shapes())
    return pool_case(op, int8_data(draw(seeds), shape), window, draw(qparams), draw(activations))


@st.composite
def add_cases(draw: st.DrawFn) -> Case:
    shape = draw(st.sampled_from([(1, 1, 1, 1), (1, 7), (1, 4, 5, 3), (1, 16, 16, 8), (1, 2, 3, 64)]))
    seed = draw(seeds)
    x1, x2 = int8_data(seed, shape), int8_data(seed + 1, shape)
    return add_case(x1, x2, (draw(qparams), draw(qparams), draw(qparams)), draw(activations))


@st.composite
def softmax_cases(draw: st.DrawFn) -> Case:
    depth = draw(st.integers(1, 64))
    shape = draw(st.sampled_from([(1, depth), (1, 1, 1, depth), (1, 3, 2, depth)]))
    beta = float(np.float32(draw(st.floats(0.25, 4.0))))
    return softmax_case(int8_data(draw(seeds), shape), draw(qparams), beta)


# ---------------------------------------------------------------- C == Python, bit for bit


@settings(max_examples=12, deadline=None)
@given(st.lists(pool_cases("average_pool"), min_size=1, max_size=6))
def test_average_pool_c_matches_reference(cases):
    assert_c_matches_python("average_pool", cases)


@settings(max_examples=12, deadline=None)
@given(st.lists(pool_cases("max_pool"), min_size=1, max_size=6))
def test_max_pool_c_matches_reference(cases):
    assert_c_matches_python("max_pool", cases)


@settings(max_examples=12, deadline=None)
@given(st.lists(add_cases(), min_size=1, max_size=6))
def test_add_c_matches_reference(cases):
    assert_c_matches_python("add", cases)


@settings(max_examples=12, deadline=None)
@given(st.lists(softmax_cases(), min_size=1, max_size=6))
def test_softmax_c_matches_reference(cases):
    assert_c_matches_python("softmax", cases)


@pytest.mark.parametrize("cc", available_compilers())
@pytest.mark.parametrize("op", sorted(OPS))
def test_kernel_compiles_cleanly(op, cc):
    """The project's warning flags (-Werror) with every host compiler, not only the default `cc`."""
    module = OPS[op]
    num_inputs = 2 if op == "add" else 1
    args = ", ".join(["&p"] + ["in"] * num_inputs + ["out"])
    source = (
        "#include <stdint.h>\n#include \"mcugen_arith.h\"\n"
        + render(f"kernels/{op}.c.j2")
        + f"\nint main(void)\n{{\n    static const mcugen_{op}_params p;\n"
        + "    static const int8_t in[1];\n    static int8_t out[1];\n"
        + f"    mcugen_{op}({args});\n    return out[0];\n}}\n"
    )
    assert module.SCRATCH is False
    compile_c(source, ("-O2",), cc)


# ---------------------------------------------------------------- hand-computed cases

QP = QParams.per_tensor(0.5, 0)


def test_average_pool_rounds_ties_away_from_zero():
    # (-1 + -2) / 2 = -1.5 -> -2 and (1 + 2) / 2 = 1.5 -> 2 (TFLite: (sum -/+ count/2) / count,
    # truncating: (-3 - 1) / 2 = -2, (3 + 1) / 2 = 2); (-1 + -1 + -2) / 3 = -1.33 -> -1.
    x = np.array([-1, -2, 1, 2, -1, -1, -2], np.int8).reshape(1, 1, 7, 1)
    cases = [
        pool_case("average_pool", x[:, :, 0:2], Window((1, 2)), QP),
        pool_case("average_pool", x[:, :, 2:4], Window((1, 2)), QP),
        pool_case("average_pool", x[:, :, 4:7], Window((1, 3)), QP),
    ]
    expected = [-2, 2, -1]
    for case, got, want in zip(cases, run_c("average_pool", cases), expected):
        assert python_reference(case).item() == want
        assert got.item() == want


def test_average_pool_excludes_padding_from_the_count():
    # 3x3 window, pad 1, on [[1, 2], [3, 4]]: every window covers all four values,
    # so each output is 10 / 4 = 2.5 -> 3 (a count of 9 would give 10 / 9 -> 1).
    x = np.array([1, 2, 3, 4], np.int8).reshape(1, 2, 2, 1)
    case = pool_case("average_pool", x, Window((3, 3), (1, 1), (1, 1, 1, 1)), QP)
    (got,) = run_c("average_pool", [case])
    np.testing.assert_array_equal(got.ravel(), [3, 3, 3, 3])
    np.testing.assert_array_equal(python_reference(case).ravel(), [3, 3, 3, 3])


def test_global_average_pool():
    # kernel = H x W: one mean per channel; channel 0 sums to 0+..+11 = 66, 66 / 12 = 5.5 -> 6,
    # channel 1 is its negation -> -6 (ties away from zero on both sides).
    x = np.stack([np.arange(12), -np.arange(12)], axis=-1).reshape(1, 3, 4, 2).astype(np.int8)
    case = pool_case("average_pool", x, Window((3, 4)), QP)
    (got,) = run_c("average_pool", [case])
    assert got.shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(got.ravel(), [6, -6])


def test_max_pool_ignores_padding_and_clamps():
    # 2x2 windows, stride 1, one row and column of padding before the data; all values negative,
    # so a zero-padded max would give 0. Windows: {-50}, {-50, -20}, {-50, -30}, all four.
    # ReLU with zero point -10 clamps at -10, and every max is below it.
    x = np.array([[-50, -20], [-30, -40]], np.int8).reshape(1, 2, 2, 1)
    qp = QParams.per_tensor(0.5, -10)
    plain = pool_case("max_pool", x, Window((2, 2), (1, 1), (1, 1, 0, 0)), qp)
    relu = pool_case("max_pool", x, Window((2, 2), (1, 1), (1, 1, 0, 0)), qp, Activation(0.0))
    got_plain, got_relu = run_c("max_pool", [plain, relu])
    np.testing.assert_array_equal(got_plain.ravel(), [-50, -20, -30, -20])
    np.testing.assert_array_equal(got_relu.ravel(), [-10, -10, -10, -10])


def test_add_saturates_and_applies_activation():
    # scales 1, 1 -> 0.1, all zero points 0: 100 + 100 = 200 real = 2000 steps -> 127;
    # -100 + -100 -> -128; 3 + 4 = 7 real = 70 steps; 1 + -1 = 0. ReLU6: [0, 6 / 0.1 = 60].
    qps = (QParams.per_tensor(1.0, 0), QParams.per_tensor(1.0, 0), QParams.per_tensor(0.1, 0))
    x1 = np.array([[100, -100, 3, 1]], np.int8)
    x2 = np.array([[100, -100, 4, -1]], np.int8)
    plain, relu6 = add_case(x1, x2, qps), add_case(x1, x2, qps, Activation(0.0, 6.0))
    got_plain, got_relu6 = run_c("add", [plain, relu6])
    np.testing.assert_array_equal(got_plain.ravel(), [127, -128, 70, 0])
    np.testing.assert_array_equal(got_relu6.ravel(), [60, 0, 60, 0])
    np.testing.assert_array_equal(python_reference(plain).ravel(), [127, -128, 70, 0])


def test_add_half_step_rounds_away_from_zero():
    # scales 0.5 and 0.5 into 1.0, zero points 0: 1 + 0 = 0.5 real = 0.5 step -> 1, -1 + 0 -> -1;
    # 3 + 0 = 1.5 -> 2. TFLite's fixed point represents 0.5 exactly here (powers of two).
    qps = (QParams.per_tensor(0.5, 0), QParams.per_tensor(0.5, 0), QParams.per_tensor(1.0, 0))
    x1 = np.array([[1, -1, 3, -3]], np.int8)
    case = add_case(x1, np.zeros_like(x1), qps)
    (got,) = run_c("add", [case])
    np.testing.assert_array_equal(got.ravel(), [1, -1, 2, -2])


def test_softmax_of_equal_inputs_is_uniform():
    # depth 4, all equal: 1/4 each = 64/256 -> 64 - 128 = -64. Depth 1: probability 1 saturates at 255/256.
    qp = QParams.per_tensor(0.1, 0)
    cases = [softmax_case(np.full((1, 4), 7, np.int8), qp), softmax_case(np.full((1, 1), -3, np.int8), qp)]
    got_four, got_one = run_c("softmax", cases)
    np.testing.assert_array_equal(got_four.ravel(), [-64] * 4)
    np.testing.assert_array_equal(got_one.ravel(), [127])


# ---------------------------------------------------------------- int8 result vs float semantics

# The float reference returns float32: allow its rounding on top of the integer error.
F32 = 2.0**-23


@settings(max_examples=60, deadline=None)
@given(pool_cases("average_pool"))
def test_average_pool_close_to_float(case):
    # One rounding of the mean: at most half a step. The fused clamp moves both sides by
    # at most the same half step (its bounds are quantized with one rounding), and clamping
    # is 1-Lipschitz, so the bound holds after it too.
    s = case.graph.tensor("y").qparams.scalar_scale
    got = dequantize(python_reference(case), case.graph.tensor("y").qparams)
    want = float_of(case)
    assert np.max(np.abs(got - want)) <= 0.5 * s + 256 * s * F32


@settings(max_examples=60, deadline=None)
@given(pool_cases("max_pool"))
def test_max_pool_equals_float_up_to_the_clamp(case):
    # The max of representable values is representable: exact, except the clamp bounds (half a step).
    qp = case.graph.tensor("y").qparams
    got = dequantize(python_reference(case), qp)
    want = float_of(case)
    no_clamp = case.node.attrs.activation == Activation()
    assert np.max(np.abs(got - want)) <= (0.0 if no_clamp else 0.5 * qp.scalar_scale) + 256 * qp.scalar_scale * F32


@settings(max_examples=60, deadline=None)
@given(add_cases())
def test_add_close_to_float(case):
    p: add.AddParams = case.node.lowered
    out_qp = case.graph.tensor("y").qparams
    s_out, zp_out = out_qp.scalar_scale, out_qp.scalar_zero_point
    twice_max = 2 * max(case.graph.tensor(n).qparams.scalar_scale for n in ("a", "b"))
    # Each input's rescale (srdhm then rounding shift) errs by at most 1 unit of twice_max / 2^20,
    # and its 31-bit multiplier by 2^-30 relative; the output rescale rounds twice: half a step plus
    # half a unit before the final shift of output_shift bits. Saturation and the fused clamp are
    # 1-Lipschitz with bounds within half a step, so they keep the bound.
    want = np.clip(float_of(case), s_out * (-128 - zp_out), s_out * (127 - zp_out))
    got = dequantize(python_reference(case), out_qp)
    tol = s_out * (0.5 + 0.5 * 2.0**p.output_shift) + 2 * twice_max / 2**20
    tol = tol + np.abs(want) * 2.0**-29 + 512 * s_out * F32
    assert np.all(np.abs(got - want) <= tol)


@settings(max_examples=60, deadline=None)
@given(softmax_cases())
def test_softmax_close_to_float_sums_to_one_keeps_argmax(case):
    depth = case.node.lowered.depth
    q = python_reference(case).astype(np.int64)
    got = (q + 128) / 256.0
    # 1 cannot be represented: the top code is 255/256, so compare with the float result capped there.
    want = np.minimum(float_of(case), 255 / 256)
    # Half a step of rounding, plus the fixed-point sum of exps (Q12.19: each term rounded by 2^-20,
    # against a sum >= 1) and the exp / reciprocal approximations (well under 2^-20).
    tol = 0.5 / 256 + (depth + 1) * 2.0**-20 + F32
    assert np.max(np.abs(got - want)) <= tol
    # In real units the row sums to 1 (256 steps), each entry off by at most tol.
    sums = (q + 128).sum(axis=-1)
    assert np.all(np.abs(sums - 256) <= 256 * depth * tol + 1)
    # The largest input keeps the largest probability (ties in the output allowed).
    x = case.inputs[0].astype(np.int64)
    at_argmax = np.take_along_axis(q, x.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(at_argmax, q.max(axis=-1))


# ---------------------------------------------------------------- what the kernels refuse and impose


def test_pool_refuses_a_window_entirely_in_padding():
    x = np.zeros((1, 3, 3, 1), np.int8)
    for op in ("average_pool", "max_pool"):
        with pytest.raises(IRError, match="padding"):
            pool_case(op, x, Window((1, 1), (1, 1), (1, 0, 0, 0)), QP)


def test_pools_keep_and_softmax_fixes_the_output_qparams():
    qp = QParams.per_tensor(0.25, 3)
    x = Tensor("x", (1, 4, 4, 2), "int8", qparams=qp)
    graph = Graph((), {"x": x}, ("x",), ())
    for module in (average_pool, max_pool):
        node = Node("p", module.OP, ("x",), ("y",), PoolAttrs(Window((2, 2))))
        assert module.output_qparams(node, graph) is qp
    fixed = softmax.output_qparams(Node("s", "softmax", ("x",), ("y",), SoftmaxAttrs()), graph)
    assert (fixed.scalar_scale, fixed.scalar_zero_point) == (1 / 256, -128)
    assert add.output_qparams(Node("a", "add", ("x", "x"), ("y",), ActivationAttrs()), graph) is None


def test_pool_refuses_output_qparams_other_than_the_input():
    x = np.zeros((1, 2, 2, 1), np.int8)
    node = Node("p", "average_pool", ("x",), ("y",), PoolAttrs(Window((2, 2))))
    tensors = {
        "x": Tensor("x", x.shape, "int8", qparams=QParams.per_tensor(0.5, 0)),
        "y": Tensor("y", (1, 1, 1, 1), "int8", qparams=QParams.per_tensor(0.25, 0)),
    }
    with pytest.raises(IRError, match="QParams"):
        average_pool.lower(node, Graph((node,), tensors, ("x",), ("y",), stage="quantized"))


def test_add_params_follow_tflite():
    # s1 = 0.5, s2 = 0.25, s_out = 1: twice_max = 1, real1 = 0.5 = 2^30 * 2^(0-31),
    # real2 = 0.25 -> shift -1, real_out = 1 / 2^20 -> 2^30 * 2^(-19-31).
    qps = (QParams.per_tensor(0.5, 3), QParams.per_tensor(0.25, -7), QParams.per_tensor(1.0, 5))
    case = add_case(np.zeros((1, 2), np.int8), np.zeros((1, 2), np.int8), qps)
    assert case.node.lowered == add.AddParams(
        size=2, input1_offset=-3, input1_multiplier=2**30, input1_shift=0, input2_offset=7,
        input2_multiplier=2**30, input2_shift=-1, output_offset=5, output_multiplier=2**30,
        output_shift=-19, left_shift=20, act_min=-128, act_max=127,
    )  # fmt: skip


# ---------------------------------------------------------------- TFLite Micro itself as the oracle

# TFLite's fused activations and the real-domain clamp each one is
FUSED = {
    "NONE": Activation(), "RELU": Activation(0.0), "RELU6": Activation(0.0, 6.0), "RELU_N1_TO_1": Activation(-1.0, 1.0),
}  # fmt: skip
fused = st.sampled_from(sorted(FUSED))


def run_tflm(case: Case, opcode: str, options_type: str, options: object) -> np.ndarray:
    """The case's node as a one-operator .tflite model, run by TFLite Micro's interpreter."""

    def tensor(name: str) -> object:
        t = case.graph.tensor(name)
        quant = tflm_model.Quantization(t.qparams.scalar_scale, t.qparams.scalar_zero_point)
        return tflm_model.Tensor(shape=t.shape, dtype=tfl.TensorType.INT8, quantization=quant, name=name)

    ins, out = [tensor(n) for n in case.node.inputs], tensor(case.node.outputs[0])
    fb = tfl.OperatorT()
    fb.builtinOptionsType, fb.builtinOptions = getattr(tfl.BuiltinOptions, options_type), options
    op = tflm_model.Operator(opcode=getattr(tfl.BuiltinOperator, opcode), inputs=ins, outputs=[out], _fb=fb)
    subgraph = tflm_model.Subgraph(tensors=[*ins, out], operators=[op], inputs=ins, outputs=[out])
    model = tflm_model.Model(subgraphs=[subgraph])
    arena = 4 * sum(case.graph.tensor(n).size for n in (*case.node.inputs, *case.node.outputs)) + 65536
    interpreter = tflm_runtime.Interpreter.from_bytes(bytes(model.build()), arena_size=arena)
    for i, x in enumerate(case.inputs):
        interpreter.set_input(x, i)
    interpreter.invoke()
    return interpreter.get_output(0)


@st.composite
def tflm_pool_cases(draw: st.DrawFn) -> tuple[Case, str]:
    """A pool TFLite can express: SAME or VALID padding, a fused activation; with its Pool2DOptions."""
    op = draw(st.sampled_from(["average_pool", "max_pool"]))
    k, s = (draw(st.integers(1, 5)), draw(st.integers(1, 5))), (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    same = draw(st.booleans())
    hw = [draw(st.integers(1 if same else ki, 16)) for ki in k]
    # TFLite ComputePaddingHeightWidth: SAME gives ceil(in / stride) outputs, the odd pad at the end
    out = [-(-n // si) if same else (n - ki) // si + 1 for n, ki, si in zip(hw, k, s)]
    total = [max((o - 1) * si + ki - n, 0) for o, ki, si, n in zip(out, k, s, hw)]
    window = Window(k, s, (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2))
    assert list(window.output_hw(*hw)) == out
    act = draw(fused)
    case = pool_case(op, int8_data(draw(seeds), (1, *hw, draw(st.integers(1, 64)))), window, draw(qparams), FUSED[act])
    options = tfl.Pool2DOptionsT()
    options.padding = tfl.Padding.SAME if same else tfl.Padding.VALID
    (options.filterHeight, options.filterWidth), (options.strideH, options.strideW) = k, s
    options.fusedActivationFunction = getattr(tfl.ActivationFunctionType, act)
    return case, options


@needs_tflm
@settings(max_examples=80, deadline=None)
@given(tflm_pool_cases())
def test_pools_match_tflite_micro(case_and_options):
    case, options = case_and_options
    opcode = {"average_pool": "AVERAGE_POOL_2D", "max_pool": "MAX_POOL_2D"}[case.node.op]
    np.testing.assert_array_equal(python_reference(case), run_tflm(case, opcode, "Pool2DOptions", options))


# Scales a float32 cannot hold: the .tflite file rounds them, and so must add's lower.
float64_qparams = st.builds(QParams.per_tensor, st.floats(-3.0, 0.0).map(lambda e: 10.0**e), zero_points)


@needs_tflm
@settings(max_examples=80, deadline=None)
@given(add_cases(), st.tuples(float64_qparams, float64_qparams, float64_qparams), fused)
def test_add_matches_tflite_micro(case, qps, act):
    case = add_case(*case.inputs, qps, FUSED[act])
    options = tfl.AddOptionsT()
    options.fusedActivationFunction = getattr(tfl.ActivationFunctionType, act)
    np.testing.assert_array_equal(python_reference(case), run_tflm(case, "ADD", "AddOptions", options))


@needs_tflm
@settings(max_examples=80, deadline=None)
@given(softmax_cases())
def test_softmax_matches_tflite_micro(case):
    options = tfl.SoftmaxOptionsT()
    options.beta = case.node.attrs.beta
    np.testing.assert_array_equal(python_reference(case), run_tflm(case, "SOFTMAX", "SoftmaxOptions", options))


def test_add_uses_the_float32_scales_tflite_stores():
    # scales 0.01, 0.01 -> 0.1, zero points 0: -128 + -127 = -2.55 real = -25.5 steps, 125 + 0 = 12.5
    # steps: exact ties in real arithmetic. Neither 0.01 nor 0.1 is a float32; TFLite's rounded scales
    # decide the ties as -25 and 12 (TFLite Micro's answer; float64 scales would give -26 and 13).
    qps = tuple(QParams.per_tensor(s, 0) for s in (0.01, 0.01, 0.1))
    case = add_case(np.array([[-128, 125]], np.int8), np.array([[-127, 0]], np.int8), qps)
    (got,) = run_c("add", [case])
    np.testing.assert_array_equal(got.ravel(), [-25, 12])
    np.testing.assert_array_equal(python_reference(case).ravel(), [-25, 12])
    if tfl is not None:
        np.testing.assert_array_equal(run_tflm(case, "ADD", "AddOptions", tfl.AddOptionsT()).ravel(), [-25, 12])


@needs_tflm
def test_fused_activation_bounds_round_like_tflite():
    # scale 0.035087719559669495 (a float32): 1 / scale is 28.4999998 in float64 but 28.5 in float32,
    # so TFLite's RELU_N1_TO_1 bounds are -29..29 and +-29 pass through; float64 division clamps to 28.
    case = pool_case("max_pool", np.array([[[[29], [-29]]]], np.int8), Window((1, 1)),
                     QParams.per_tensor(0.035087719559669495, 0), FUSED["RELU_N1_TO_1"])  # fmt: skip
    options = tfl.Pool2DOptionsT()
    options.padding = tfl.Padding.VALID
    options.filterHeight = options.filterWidth = options.strideH = options.strideW = 1
    options.fusedActivationFunction = tfl.ActivationFunctionType.RELU_N1_TO_1
    np.testing.assert_array_equal(python_reference(case), run_tflm(case, "MAX_POOL_2D", "Pool2DOptions", options))
