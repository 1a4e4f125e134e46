"""conv2d, depthwise_conv2d and fully_connected: C == NumPy reference bit for bit, and both are right.

Each case is a single-node graph built from float (or pre-quantized int8)
weights, quantized and lowered by the kernel's own functions. Hypothesis draws
the shapes, QParams, activations and whether the weights are pre-quantized with
a per-tensor zero point (the weight_offset extension); the arrays come from a
drawn seed. Independent checks, none using the code under test for expected
values: hand-computed cases; a direct loop over output pixels and taps (float,
and integer with arith.requantize); depthwise as a conv2d with block-diagonal
weights; the int8 results dequantized against the float semantics within a
bound derived from the arithmetic; and TensorFlow Lite Micro's interpreter
running the same node as a one-operator .tflite model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c_harness import available_compilers, compile_c
from kernel_runner import Case, run_c, single_node_case
from mcugen.codegen.environment import render
from mcugen.ir import Activation, ActivationAttrs, ConvAttrs, IRError, QParams, Tensor, Window
from mcugen.kernels import conv2d, depthwise_conv2d, fully_connected
from mcugen.quant.arith import quantize_multiplier, requantize
from mcugen.quant.calibrate import asymmetric_int8
from mcugen.reference import dequantize

try:
    from tflite_micro.python.tflite_micro import runtime as tflm_runtime
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as tflm_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl
except ImportError:  # a dev dependency; without it only the TFLite Micro oracle is skipped
    tfl = None
needs_tflm = pytest.mark.skipif(tfl is None, reason="tflite-micro is not installed")

OPS = {m.OP: m for m in (conv2d, depthwise_conv2d, fully_connected)}
F32 = 2.0**-23  # float32 rounding, relative


# ---------------------------------------------------------------- independent float / integer semantics


def naive_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, window: Window) -> np.ndarray:
    """Direct loops over output pixels and taps, skipping taps outside the input.

    x (1, H, W, C_in), w (C_out, KH, KW, C_in), b (C_out,): float64 (1, H', W', C_out).
    """
    _, h, wd, _ = x.shape
    (kh, kw), (sh, sw), (top, left, _, _) = window.kernel, window.stride, window.pads
    oh, ow = window.output_hw(h, wd)
    y = np.empty((1, oh, ow, w.shape[0]))
    for oy in range(oh):
        for ox in range(ow):
            acc = np.array(b, np.float64)
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - top + ky, ox * sw - left + kx
                    if 0 <= iy < h and 0 <= ix < wd:
                        acc = acc + w[:, ky, kx, :].astype(np.float64) @ x[0, iy, ix].astype(np.float64)
            y[0, oy, ox] = acc
    return y


def block_diagonal(w: np.ndarray, c_in: int) -> np.ndarray:
    """Depthwise weights (1, KH, KW, C_out) as conv2d weights where output c sees input c // m only."""
    _, kh, kw, c_out = w.shape
    full = np.zeros((c_out, kh, kw, c_in), w.dtype)
    for c in range(c_out):
        full[c, :, :, c // (c_out // c_in)] = w[0, :, :, c]
    return full


def full_weights(op: str, w: np.ndarray, c_in: int) -> np.ndarray:
    return block_diagonal(w, c_in) if op == "depthwise_conv2d" else w


# ---------------------------------------------------------------- cases


@dataclass
class Drawn:
    """A lowered case plus what the independent checks need: the real weights and bias, the window."""

    case: Case
    real_weights: np.ndarray  # float64, IR layout
    real_bias: np.ndarray
    window: Window | None  # None: fully_connected
    weight_qp: QParams | None  # pre-quantized weights' QParams (None: float weights)

    @property
    def op(self) -> str:
        return self.case.node.op

    def qparams(self, name: str) -> QParams:
        return self.case.graph.tensor(name).qparams

    def real_input(self) -> np.ndarray:
        return dequantize(self.case.inputs[0], self.qparams("x"))

    def float_conv(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The op's float semantics on any x, w, b (IR layouts), by direct loops; no clamp."""
        if self.window is None:
            return (w.astype(np.float64) @ x.astype(np.float64).ravel() + b).reshape(1, -1)
        return naive_conv(x, full_weights(self.op, w, x.shape[-1]), b, self.window)


def attrs_of(op: str, window: Window | None, act: Activation, multiplier: int) -> object:
    return ActivationAttrs(act) if window is None else ConvAttrs(window, act, multiplier)


def output_shape(op: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], window: Window | None) -> tuple:
    if window is None:
        return (1, w_shape[0])
    out_c = w_shape[0] if op == "conv2d" else w_shape[3]
    return (1, *window.output_hw(*x_shape[1:3]), out_c)


def weighted_case(
    op: str, x: np.ndarray, weights: np.ndarray, bias: np.ndarray, in_qp: QParams, out_qp: QParams,
    act: Activation = Activation(), window: Window | None = None, multiplier: int = 1,
    weight_qp: QParams | None = None,
) -> Drawn:  # fmt: skip
    """weights are float unless weight_qp is given (then int8 with those QParams, as a pre-quantized model)."""
    w = (
        Tensor("w", weights.shape, "float32", weights.astype(np.float32))
        if weight_qp is None
        else Tensor("w", weights.shape, "int8", weights.astype(np.int8), weight_qp)
    )
    b = Tensor("b", bias.shape, "float32", bias.astype(np.float32))
    inp = Tensor("x", x.shape, "int8", qparams=in_qp)
    out = Tensor("y", output_shape(op, x.shape, weights.shape, window), "int8", qparams=out_qp)
    case = single_node_case(op, attrs_of(op, window, act, multiplier), [inp, w, b], out, [x])
    real_w = weights.astype(np.float32).astype(np.float64)
    if weight_qp is not None:
        real_w = (weights.astype(np.float64) - weight_qp.scalar_zero_point) * weight_qp.scalar_scale
    return Drawn(case, real_w, bias.astype(np.float32).astype(np.float64), window, weight_qp)


def python_reference(case: Case) -> np.ndarray:
    return OPS[case.node.op].reference(case.node, case.graph, case.inputs)


def assert_c_matches_python(op: str, drawn: list[Drawn], cc: str | None = None) -> None:
    cases = [d.case for d in drawn]
    outputs = run_c(op, cases) if cc is None else run_c(op, cases, cc)
    for case, got in zip(cases, outputs):
        expected = python_reference(case)
        assert got.dtype == expected.dtype == np.int8
        np.testing.assert_array_equal(got, expected, err_msg=f"{op} {case.graph.tensor('x').shape}")


# ---------------------------------------------------------------- strategies

# Scales a float32 holds exactly, as in a .tflite file (the float32 rounding is tested against TFLM).
scales = st.floats(-3.0, 0.0).map(lambda e: float(np.float32(10.0**e)))
zero_points = st.integers(-128, 127)
qparams = st.builds(QParams.per_tensor, scales, zero_points)
activations = st.sampled_from([Activation(), Activation(0.0), Activation(0.0, 6.0)])
seeds = st.integers(0, 2**32 - 1)


def int8_data(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if rng.random() < 0.5:
        return rng.integers(-128, 128, shape).astype(np.int8)
    centre = int(rng.integers(-120, 120))  # near one value: many equal products, ties in the output stage
    return np.clip(centre + rng.integers(-3, 4, shape), -128, 127).astype(np.int8)


def float_weights(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Normal weights with a magnitude per output channel spanning 2.5 decades; sometimes a dead channel."""
    magnitude = 10.0 ** rng.uniform(-2.0, 0.5, shape[axis])
    w = rng.normal(size=shape) * np.expand_dims(magnitude, [a for a in range(len(shape)) if a != axis])
    if rng.random() < 0.2:
        np.moveaxis(w, axis, 0)[rng.integers(shape[axis])] = 0.0
    return w


@st.composite
def windows(draw: st.DrawFn) -> tuple[Window, int, int]:
    """Kernel 1-5, stride 1-2, pads 0-2 (a window may lie entirely in the padding), H and W 1-12."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 12))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return Window((kh, kw), stride, pads), h, w


def fitted_output(probe: Drawn) -> QParams:
    """Output QParams covering the float result of a case (whatever its own output QParams)."""
    act = probe.case.node.attrs.activation
    y = probe.float_conv(probe.real_input(), probe.real_weights, probe.real_bias)
    y = np.minimum(np.maximum(y, act.lo), act.hi)
    return asymmetric_int8(float(y.min()), float(y.max()))


@st.composite
def drawn_cases(draw: st.DrawFn, op: str, output: str | None = None, prequantized: bool | None = None) -> Drawn:
    """output: "fitted" QParams cover the float output, "stretched" ones are 10x narrower to 10x wider
    with any zero point, "random" ones are anything (mostly saturating); None draws one of the three.
    prequantized: int8 weights with a per-tensor zero point (weight_offset != 0), not float weights."""
    rng = np.random.default_rng(draw(seeds))
    multiplier, window = 1, None
    if op == "fully_connected":
        x_shape = draw(st.sampled_from([(1, draw(st.integers(1, 512))), (1, 3, 2, draw(st.integers(1, 40)))]))
        c_in = int(np.prod(x_shape))
        w_shape, axis = (draw(st.integers(1, 64)), c_in), 0
    else:
        window, h, w = draw(windows())
        if op == "conv2d":
            c_in = draw(st.integers(1, 64))
            w_shape, axis = (draw(st.integers(1, 64)), *window.kernel, c_in), 0
        else:
            c_in, multiplier = draw(st.integers(1, 32)), draw(st.integers(1, 3))
            w_shape, axis = (1, *window.kernel, c_in * multiplier), 3
        x_shape = (1, h, w, c_in)
    in_qp, act = draw(qparams), draw(activations)
    weight_qp = None
    if prequantized if prequantized is not None else draw(st.integers(0, 3)) == 0:
        weight_qp = QParams.per_tensor(draw(scales), draw(zero_points))
        weights = rng.integers(-128, 128, w_shape)
    else:
        weights = float_weights(rng, w_shape, axis)
    bias = rng.normal(size=w_shape[axis]) * 10.0 ** rng.uniform(-2.0, 1.0)
    x = int8_data(rng, x_shape)
    output = output or draw(st.sampled_from(["fitted", "stretched", "random"]))
    if output == "random":
        out_qp = draw(qparams)
    else:
        fitted = fitted_output(weighted_case(op, x, weights, bias, in_qp, in_qp, act, window, multiplier, weight_qp))
        scale, zp = fitted.scalar_scale, fitted.scalar_zero_point
        if output == "stretched":
            scale, zp = scale * 10.0 ** draw(st.floats(-1.0, 1.0)), draw(zero_points)
        out_qp = QParams.per_tensor(float(np.float32(scale)), zp)
    return weighted_case(op, x, weights, bias, in_qp, out_qp, act, window, multiplier, weight_qp)


# ---------------------------------------------------------------- C == Python, bit for bit


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_c_matches_reference(op, data):
    drawn = data.draw(st.lists(drawn_cases(op), min_size=1, max_size=6))
    assert_c_matches_python(op, drawn)


@pytest.mark.parametrize("cc", available_compilers())
@pytest.mark.parametrize("op", sorted(OPS))
def test_kernel_compiles_cleanly(op, cc):
    """The project's warning flags (-Werror) with every host compiler, at -O2 as well as the tests' -O1."""
    source = (
        '#include <stdint.h>\n#include "mcugen_arith.h"\n'
        + render(f"kernels/{op}.c.j2")
        + f"\nint main(void)\n{{\n    static const mcugen_{op}_params p;\n"
        + "    static const int8_t in[1], w[1];\n    static const int32_t b[1], m[1], s[1];\n"
        + "    static int8_t out[1], scratch[1];\n"
        + f"    mcugen_{op}(&p, in, out, w, b, m, s{', scratch' if OPS[op].SCRATCH else ''});\n"
        + "    return out[0] + scratch[0];\n}\n"
    )
    compile_c(source, ("-O2",), cc)


@pytest.mark.parametrize("cc", available_compilers())
@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_c_matches_reference_with_every_compiler(op, cc, data):
    assert_c_matches_python(op, data.draw(st.lists(drawn_cases(op), min_size=1, max_size=4)), cc)


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_c_params_follow_the_struct_declaration(op, data):
    """c_params names the C struct's fields in declaration order (the contract); constants in argument order."""
    drawn, module = data.draw(drawn_cases(op)), OPS[op]
    declared = re.findall(r"int32_t (\w+);", render(f"kernels/{op}.c.j2").split("}")[0])
    assert list(module.c_params(drawn.case.node, drawn.case.graph)) == declared
    constants = module.c_constants(drawn.case.node, drawn.case.graph)
    assert [role for role, _ in constants] == ["weights", "bias", "multiplier", "shift"]
    assert [a.dtype for _, a in constants] == [np.int8, np.int32, np.int32, np.int32]


# ---------------------------------------------------------------- hand-computed cases


def test_conv2d_by_hand():
    # Input 3x3x1, scale 0.5, zero point 1: x - zp = [[0, 2, 4], [6, 8, 10], [-2, 0, 2]].
    # Weights 2x2, two output channels, chosen so quantization is exact: channel 0 is
    # [[127, 0], [0, -127]] / 128 -> scale 1/128, q = [[127, 0], [0, -127]]; channel 1 is
    # [[127, 2], [-3, 10]] / 64 -> scale 1/64, q as written. Bias 0.5 -> 0.5 / (0.5 / 128) = 128,
    # -1.0 -> -1.0 / (0.5 / 64) = -128. Output scale 0.25, zero point -3: M0 = 0.5 / 128 / 0.25
    # = 1/64, M1 = 1/32 (powers of two: the multiplier is exact).
    # Stride 2, pads top 1, right 1: output (oy, ox) reads rows 2 oy - 1 + ky, columns 2 ox + kx.
    #   (0, 0): only ky = 1 is inside, x - zp = 0, 2     acc0 = 128 + 0 - 127 * 2 = -126
    #                                                    acc1 = -128 - 3 * 0 + 10 * 2 = -108
    #   (0, 1): ky = 1, kx = 0 only, x - zp = 4          acc0 = 128 + 0 * 4 = 128
    #                                                    acc1 = -128 - 3 * 4 = -140
    #   (1, 0): rows 1-2, columns 0-1: 6, 8 / -2, 0     acc0 = 128 + 127 * 6 - 127 * 0 = 890
    #                                                    acc1 = -128 + 762 + 16 + 6 + 0 = 656
    #   (1, 1): column 2 only: 10 / 2                    acc0 = 128 + 127 * 10 + 0 * 2 = 1398
    #                                                    acc1 = -128 + 1270 - 3 * 2 = 1136
    # acc0 / 64 = -1.97, 2, 13.9, 21.8 -> -2, 2, 14, 22; acc1 / 32 = -3.375, -4.375, 20.5, 35.5
    # -> -3, -4, 21, 36 (exact halves round away from zero). Plus the zero point -3:
    # channel 0: -5, -1, 11, 19; channel 1: -6, -7, 18, 33. ReLU6 clamps to [-3, -3 + 6 / 0.25 = 21].
    x = np.array([1, 3, 5, 7, 9, 11, -1, 1, 3], np.int8).reshape(1, 3, 3, 1)
    weights = np.stack([np.array([[127, 0], [0, -127]]) / 128, np.array([[127, 2], [-3, 10]]) / 64])[..., None]
    window = Window((2, 2), (2, 2), (1, 0, 0, 1))
    qps = (QParams.per_tensor(0.5, 1), QParams.per_tensor(0.25, -3))
    bias = np.array([0.5, -1.0])
    plain = weighted_case("conv2d", x, weights, bias, *qps, Activation(), window)
    relu6 = weighted_case("conv2d", x, weights, bias, *qps, Activation(0.0, 6.0), window)
    graph = plain.case.graph
    np.testing.assert_array_equal(graph.tensor("w").data[..., 0], [[[127, 0], [0, -127]], [[127, 2], [-3, 10]]])
    np.testing.assert_array_equal(graph.tensor("w").qparams.scale, [1 / 128, 1 / 64])
    np.testing.assert_array_equal(graph.tensor("b").data, [128, -128])
    want_plain = np.array([[[-5, -6], [-1, -7]], [[11, 18], [19, 33]]]).reshape(1, 2, 2, 2)
    want_relu6 = np.array([[[-3, -3], [-1, -3]], [[11, 18], [19, 21]]]).reshape(1, 2, 2, 2)
    got_plain, got_relu6 = run_c("conv2d", [plain.case, relu6.case])
    np.testing.assert_array_equal(got_plain, want_plain)
    np.testing.assert_array_equal(got_relu6, want_relu6)
    np.testing.assert_array_equal(python_reference(plain.case), want_plain)
    np.testing.assert_array_equal(python_reference(relu6.case), want_relu6)


def test_fully_connected_with_weight_offset_by_hand():
    # A uint8-style model: int8 weights with per-tensor scale 0.25 and zero point 3 (weight_offset -3).
    # x = [1, -2, 2], scale 0.5, zero point -1: x - zp = [2, -1, 3]. q - 3 = [[2, 0, -2], [-5, -3, 4]].
    # Bias [1.0, -0.5] / (0.5 * 0.25) = [8, -4].
    # acc0 = 8 + 2*2 + (-1)*0 + 3*(-2) = 6;  acc1 = -4 + 2*(-5) + (-1)*(-3) + 3*4 = 1.
    # Output scale 0.0625, zero point 10: M = 0.125 / 0.0625 = 2 (shift +2): 12 + 10 = 22, 2 + 10 = 12.
    x = np.array([[1, -2, 2]], np.int8)
    weights = np.array([[5, 3, 1], [-2, 0, 7]])
    drawn = weighted_case(
        "fully_connected", x, weights, np.array([1.0, -0.5]), QParams.per_tensor(0.5, -1),
        QParams.per_tensor(0.0625, 10), weight_qp=QParams.per_tensor(0.25, 3),
    )  # fmt: skip
    assert drawn.case.node.lowered.stage.weight_offset == -3
    np.testing.assert_array_equal(drawn.case.graph.tensor("w").data, weights)  # pre-quantized: kept
    np.testing.assert_array_equal(drawn.case.graph.tensor("b").data, [8, -4])
    (got,) = run_c("fully_connected", [drawn.case])
    np.testing.assert_array_equal(got, [[22, 12]])
    np.testing.assert_array_equal(python_reference(drawn.case), [[22, 12]])


def test_depthwise_multiplier_by_hand():
    # Two input channels, depth multiplier 2, 1x1 kernel: output channels 0, 1 read input channel 0
    # and 2, 3 read channel 1. Scales 1 everywhere, zero points 0; weights [1, 2, 3, 4] / 4 * 127 / 127
    # quantize per channel to 127 each (scales 1/4, 2/4, 3/4, 4/4 / 127). x = [10, -20]:
    # real outputs 10 * 0.25, 10 * 0.5, -20 * 0.75, -20 * 1 = 2.5, 5, -15, -20 -> 3 (away), 5, -15, -20.
    x = np.array([10, -20], np.int8).reshape(1, 1, 1, 2)
    weights = (np.arange(1, 5) / 4).reshape(1, 1, 1, 4)
    qp = QParams.per_tensor(1.0, 0)
    drawn = weighted_case("depthwise_conv2d", x, weights, np.zeros(4), qp, qp, window=Window((1, 1)), multiplier=2)
    (got,) = run_c("depthwise_conv2d", [drawn.case])
    np.testing.assert_array_equal(got.ravel(), [3, 5, -15, -20])
    np.testing.assert_array_equal(python_reference(drawn.case).ravel(), [3, 5, -15, -20])


# ---------------------------------------------------------------- float semantics and the integer oracle


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_float_reference_matches_direct_loops(op, data):
    drawn = data.draw(drawn_cases(op, output="random"))
    float_node = drawn.case.node
    w = Tensor("w", drawn.real_weights.shape, "float32", drawn.real_weights.astype(np.float32))
    b = Tensor("b", drawn.real_bias.shape, "float32", drawn.real_bias.astype(np.float32))
    graph = drawn.case.graph.with_tensors([w, b]).replace(stage="float")
    x = drawn.real_input()
    got = OPS[op].float_reference(float_node, graph, [x.astype(np.float32)])
    act = float_node.attrs.activation
    want = np.minimum(np.maximum(drawn.float_conv(x, drawn.real_weights, drawn.real_bias), act.lo), act.hi)
    assert got.dtype == np.float32 and got.shape == want.shape
    # float32 inputs and output: a few roundings relative to the sum of magnitudes
    magnitude = drawn.float_conv(np.abs(x), np.abs(drawn.real_weights), np.abs(drawn.real_bias))
    np.testing.assert_array_less(np.abs(got - want), 4 * F32 * magnitude + 1e-30)


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_reference_matches_integer_loops(op, data):
    """Direct integer loops and arith.requantize, with multipliers from the scales as TFLite derives them."""
    drawn = data.draw(drawn_cases(op))
    graph = drawn.case.graph
    w_t, b_t = graph.tensor("w"), graph.tensor("b")
    in_qp, out_qp = drawn.qparams("x"), drawn.qparams("y")
    zp_w = 0 if drawn.weight_qp is None else drawn.weight_qp.scalar_zero_point
    x = drawn.case.inputs[0].astype(np.int64) - in_qp.scalar_zero_point
    acc = drawn.float_conv(x, w_t.data.astype(np.int64) - zp_w, b_t.data.astype(np.int64))
    assert np.all(np.abs(acc) < 2**31)
    acc = acc.astype(np.int64)  # exact: integers far below 2^53
    c_out = acc.shape[-1]
    w_scales = np.broadcast_to(w_t.qparams.scale, (c_out,))
    s_in, s_out = (float(np.float32(qp.scalar_scale)) for qp in (in_qp, out_qp))
    q, shift = zip(*(quantize_multiplier(s_in * float(np.float32(s)) / s_out) for s in w_scales))
    act, zp_out = drawn.case.node.attrs.activation, out_qp.scalar_zero_point
    # ReLU's 0 and ReLU6's 6 are >= 0, where rounding half away from zero is floor(v / s + 1/2);
    # TFLite divides in float32 (CalculateActivationRangeQuantized)
    s32 = np.float32(out_qp.scalar_scale)
    lo = -128 if act.lo == -np.inf else max(-128, zp_out + int(np.floor(float(np.float32(act.lo) / s32) + 0.5)))
    hi = 127 if act.hi == np.inf else min(127, zp_out + int(np.floor(float(np.float32(act.hi) / s32) + 0.5)))
    want = requantize(acc, np.array(q), np.array(shift), zp_out, lo, hi)
    np.testing.assert_array_equal(python_reference(drawn.case), want)


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_depthwise_is_a_conv_with_block_diagonal_weights(op, data):
    """Grouping semantics: depthwise with multiplier m == conv2d whose output c sees input c // m only."""
    drawn = data.draw(st.lists(drawn_cases("depthwise_conv2d", prequantized=False), min_size=1, max_size=4))
    as_conv = []
    for d in drawn:
        c_in = d.case.graph.tensor("x").shape[-1]
        full = block_diagonal(d.real_weights, c_in)
        act = d.case.node.attrs.activation
        as_conv.append(weighted_case("conv2d", d.case.inputs[0], full, d.real_bias, d.qparams("x"), d.qparams("y"),
                                     act, d.window))  # fmt: skip
    chosen = drawn if op == "depthwise_conv2d" else as_conv
    for d, c, got in zip(drawn, as_conv, run_c(op, [x.case for x in chosen])):
        np.testing.assert_array_equal(python_reference(d.case), python_reference(c.case))
        np.testing.assert_array_equal(got, python_reference(d.case))


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_int8_close_to_float(op, data):
    drawn = data.draw(drawn_cases(op, output="fitted"))
    graph, act = drawn.case.graph, drawn.case.node.attrs.activation
    in_qp, out_qp = drawn.qparams("x"), drawn.qparams("y")
    s_out, zp_out = out_qp.scalar_scale, out_qp.scalar_zero_point
    x = drawn.real_input()
    want = drawn.float_conv(x, drawn.real_weights, drawn.real_bias)
    want = np.clip(np.minimum(np.maximum(want, act.lo), act.hi), s_out * (-128 - zp_out), s_out * (127 - zp_out))
    got = dequantize(python_reference(drawn.case), out_qp)
    # Weight rounding: each weight is off by at most s_c / 2 (none for pre-quantized weights, which
    # are exact), times |x| summed over the taps; the bias by s_in * s_c / 2. The output stage rounds
    # twice (srdhm, then the rounding shift): under one step; its 31-bit multiplier is off by
    # 2^-31 relative. The fused clamp's bounds are quantized with one rounding: half a step; clamping
    # is 1-Lipschitz, so the bounds add.
    s_w = np.broadcast_to(graph.tensor("w").qparams.scale, drawn.real_bias.shape)
    half_step = np.zeros_like(s_w) if drawn.weight_qp is not None else s_w / 2
    weight_error = drawn.float_conv(np.abs(x), np.ones_like(drawn.real_weights), np.zeros_like(s_w))
    weight_error = weight_error * half_step
    bias_error = in_qp.scalar_scale * s_w / 2
    magnitude = drawn.float_conv(np.abs(x), np.abs(drawn.real_weights), np.abs(drawn.real_bias))
    tol = 1.5 * s_out + weight_error + bias_error + magnitude * 2.0**-30 + 1e-12
    assert np.all(np.abs(got - want) <= tol), np.max(np.abs(got - want) - tol)


# ---------------------------------------------------------------- quantization and lowering


def test_weights_quantize_symmetric_per_output_channel():
    rng = np.random.default_rng(7)
    x = np.zeros((1, 4, 4, 3), np.int8)
    weights = rng.normal(size=(5, 3, 3, 3)) * np.array([1e-3, 0.1, 1.0, 10.0, 0.0])[:, None, None, None]
    bias = np.array([0.01, -0.2, 0.3, 4.0, 0.0])
    qp = QParams.per_tensor(0.02, 5)
    drawn = weighted_case("conv2d", x, weights, bias, qp, qp, window=Window((3, 3)))
    w, b = drawn.case.graph.tensor("w"), drawn.case.graph.tensor("b")
    assert w.dtype == "int8" and w.qparams.axis == 0 and np.all(w.qparams.zero_point == 0)
    assert np.all(np.abs(w.data) <= 127)
    np.testing.assert_array_equal(np.abs(w.data[:4]).max(axis=(1, 2, 3)), [127] * 4)
    expected_scales = np.abs(weights.astype(np.float32)).max(axis=(1, 2, 3)) / 127
    np.testing.assert_allclose(w.qparams.scale[:4], expected_scales[:4], rtol=F32)
    assert w.qparams.scale[4] == 1.0 and np.all(w.data[4] == 0)  # an all-zero channel: safe scale 1
    per_channel = w.qparams.scale[:, None, None, None]
    # w = s_c q within half a step, up to the float32 rounding of the weights themselves
    assert np.all(np.abs(w.data * per_channel - weights.astype(np.float32)) <= per_channel * (0.5 + 1e-6))
    assert b.dtype == "int32"
    np.testing.assert_array_equal(b.data[:4], np.round(bias[:4].astype(np.float32) / (0.02 * w.qparams.scale[:4])))


def test_depthwise_weights_are_per_channel_on_the_last_axis():
    x = np.zeros((1, 3, 3, 2), np.int8)
    weights = np.arange(1, 1 + 3 * 3 * 4, dtype=np.float64).reshape(1, 3, 3, 4)
    qp = QParams.per_tensor(0.1, 0)
    drawn = weighted_case("depthwise_conv2d", x, weights, np.zeros(4), qp, qp, window=Window((3, 3)), multiplier=2)
    w = drawn.case.graph.tensor("w")
    assert w.qparams.axis == 3
    np.testing.assert_allclose(w.qparams.scale, weights.max(axis=(0, 1, 2)) / 127, rtol=F32)


def test_bias_that_would_overflow_widens_the_weight_scale():
    # A near-dead channel (weights ~1e-7, as after folding a batch norm with tiny gamma) with a bias of 10:
    # max|w| / 127 = 7.9e-10 would need 10 / (0.01 * 7.9e-10) ~ 1.3e12 bias steps. The scale widens instead
    # so the bias takes 2^30 steps (up to the float32 rounding of the scale) and stays exact to 2^-30
    # relative, while the weights lose resolution.
    x = np.zeros((1, 4), np.int8)
    weights = np.array([[1e-7, -5e-8, 0.0, 2e-8], [0.5, 0.25, -1.0, 0.1]])
    qp = QParams.per_tensor(0.01, 0)
    drawn = weighted_case("fully_connected", x, weights, np.array([10.0, 0.3]), qp, qp)
    w, b = drawn.case.graph.tensor("w"), drawn.case.graph.tensor("b")
    assert abs(int(b.data[0])) <= 2**30 * (1 + F32)
    assert b.data[0] * 0.01 * w.qparams.scale[0] == pytest.approx(10.0, rel=1e-6)
    assert w.qparams.scale[1] == pytest.approx(1.0 / 127, rel=F32)  # the healthy channel is untouched


def test_lower_refuses_an_accumulator_that_could_overflow_int32():
    # |x - zp| <= 255 and |q - zp_w| = 255 for every weight: 33,100 inputs can reach 2.1e9 > 2^31 - 1.
    x = np.zeros((1, 33_100), np.int8)
    qp = QParams.per_tensor(0.01, -128)  # x - zp reaches 127 + 128
    with pytest.raises(IRError, match="overflow"):
        weighted_case("fully_connected", x, np.full((1, 33_100), 127), np.zeros(1), qp, qp,
                      weight_qp=QParams.per_tensor(0.01, -128))  # fmt: skip
    # 33,000 inputs stay below it: 33,000 * 255 * 255 = 2,145,825,000
    weighted_case("fully_connected", x[:, :33_000], np.full((1, 33_000), 127), np.zeros(1), qp, qp,
                  weight_qp=QParams.per_tensor(0.01, -128))  # fmt: skip


def test_lower_refuses_per_channel_weight_zero_points():
    x = np.zeros((1, 2), np.int8)
    qp = QParams.per_tensor(0.5, 0)
    weight_qp = QParams(np.array([0.1, 0.2]), np.array([0, 3]), axis=0)
    with pytest.raises(IRError, match="zero points"):
        weighted_case("fully_connected", x, np.ones((2, 2)), np.zeros(2), qp, qp, weight_qp=weight_qp)


def test_lower_refuses_weights_that_do_not_fit_the_input():
    qp = QParams.per_tensor(0.5, 0)
    inp = Tensor("x", (1, 4, 4, 3), "int8", qparams=qp)
    w = Tensor("w", (2, 3, 3, 4), "float32", np.ones((2, 3, 3, 4), np.float32))
    b = Tensor("b", (2,), "float32", np.zeros(2, np.float32))
    out = Tensor("y", (1, 2, 2, 2), "int8", qparams=qp)
    with pytest.raises(IRError, match="do not fit"):
        single_node_case("conv2d", ConvAttrs(Window((3, 3))), [inp, w, b], out, [])


def test_macs():
    qp = QParams.per_tensor(0.5, 0)
    x = np.zeros((1, 9, 8, 3), np.int8)
    window = Window((3, 3), (2, 2), (1, 1, 1, 1))  # output 5 x 4
    conv = weighted_case("conv2d", x, np.ones((16, 3, 3, 3)), np.zeros(16), qp, qp, window=window)
    dw = weighted_case("depthwise_conv2d", x, np.ones((1, 3, 3, 6)), np.zeros(6), qp, qp, window=window,
                       multiplier=2)  # fmt: skip
    fc = weighted_case("fully_connected", x, np.ones((10, 216)), np.zeros(10), qp, qp)
    assert conv2d.macs(conv.case.node, conv.case.graph) == 5 * 4 * 16 * 3 * 3 * 3
    assert depthwise_conv2d.macs(dw.case.node, dw.case.graph) == 5 * 4 * 6 * 3 * 3
    assert fully_connected.macs(fc.case.node, fc.case.graph) == 216 * 10
    for d in (conv, dw, fc):
        module = OPS[d.op]
        assert module.scratch_bytes(d.case.node, d.case.graph) == 0
        assert module.output_qparams(d.case.node, d.case.graph) is None  # calibrated


def test_lowered_params_follow_tflite():
    # s_in 0.5, s_w (per channel) 1/128 and 1/64, s_out 0.25: M = 1/64 = 2^30 * 2^(-5-31) and 1/32 (-4).
    x = np.zeros((1, 2, 2, 1), np.int8)
    weights = np.stack([np.full((1, 1), 127 / 128), np.full((1, 1), -127 / 64)])[..., None]
    drawn = weighted_case("conv2d", x, weights, np.zeros(2), QParams.per_tensor(0.5, 7), QParams.per_tensor(0.25, -9),
                          Activation(0.0), Window((1, 1)))  # fmt: skip
    p = drawn.case.node.lowered
    assert p.geometry == conv2d.ConvGeometry(2, 2, 1, 2, 2, 2, 1, 1, 1, 1, 0, 0)
    assert (p.stage.input_offset, p.stage.weight_offset, p.stage.output_offset) == (-7, 0, -9)
    assert (p.stage.act_min, p.stage.act_max) == (-9, 127)
    np.testing.assert_array_equal(p.stage.multiplier, [2**30, 2**30])
    np.testing.assert_array_equal(p.stage.shift, [-5, -4])
    assert p.stage.multiplier.dtype == p.stage.shift.dtype == np.int32


# ---------------------------------------------------------------- TFLite Micro itself as the oracle

FUSED = {"NONE": Activation(), "RELU": Activation(0.0), "RELU6": Activation(0.0, 6.0)}


def run_tflm(drawn: Drawn, opcode: str, options_type: str, options: object) -> np.ndarray:
    """The case's node as a one-operator .tflite model (constants included), run by TFLite Micro."""
    graph = drawn.case.graph

    def tensor(name: str) -> object:
        t = graph.tensor(name)
        qp = t.qparams
        if qp.axis is None:  # activations, and pre-quantized weights with a zero point (weight_offset)
            quant = tflm_model.Quantization(qp.scalar_scale, qp.scalar_zero_point)
        else:
            quant = tflm_model.Quantization(qp.scale.tolist(), qp.zero_point.astype(int).tolist(), qp.axis)
        dtype = {"int8": tfl.TensorType.INT8, "int32": tfl.TensorType.INT32}[t.dtype]
        return tflm_model.Tensor(shape=t.shape, dtype=dtype, quantization=quant, name=name,
                                 data=None if t.data is None else np.ascontiguousarray(t.data))  # fmt: skip

    x, w, b, y = (tensor(name) for name in ("x", "w", "b", "y"))
    fb = tfl.OperatorT()
    fb.builtinOptionsType, fb.builtinOptions = getattr(tfl.BuiltinOptions, options_type), options
    op = tflm_model.Operator(opcode=getattr(tfl.BuiltinOperator, opcode), inputs=[x, w, b], outputs=[y], _fb=fb)
    subgraph = tflm_model.Subgraph(tensors=[x, w, b, y], operators=[op], inputs=[x], outputs=[y])
    model = tflm_model.Model(subgraphs=[subgraph])
    arena = 16 * sum(graph.tensor(n).nbytes for n in ("x", "w", "b", "y")) + 65536
    interpreter = tflm_runtime.Interpreter.from_bytes(bytes(model.build()), arena_size=arena)
    interpreter.set_input(drawn.case.inputs[0], 0)
    interpreter.invoke()
    return interpreter.get_output(0)


# Scales a float32 cannot hold: the .tflite file rounds them, and so must lower.
float64_qparams = st.builds(QParams.per_tensor, st.floats(-3.0, 0.0).map(lambda e: 10.0**e), zero_points)


@st.composite
def tflm_conv_cases(draw: st.DrawFn, op: str) -> tuple[Drawn, object]:
    """A conv TFLite can express (SAME or VALID padding, a fused activation), with its options."""
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    same = draw(st.booleans())
    hw = [draw(st.integers(1 if same else ki, 12)) for ki in k]
    # TFLite ComputePaddingHeightWidth: SAME gives ceil(in / stride) outputs, the odd pad at the end
    out = [-(-n // si) if same else (n - ki) // si + 1 for n, ki, si in zip(hw, k, s)]
    total = [max((o - 1) * si + ki - n, 0) for o, ki, si, n in zip(out, k, s, hw)]
    window = Window(k, s, (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2))
    rng = np.random.default_rng(draw(seeds))
    act = draw(st.sampled_from(sorted(FUSED)))
    if op == "conv2d":
        c_in, multiplier = draw(st.integers(1, 32)), 1
        weights = float_weights(rng, (draw(st.integers(1, 32)), *k, c_in), 0)
        options = tfl.Conv2DOptionsT()
    else:
        c_in, multiplier = draw(st.integers(1, 16)), draw(st.integers(1, 3))
        weights = float_weights(rng, (1, *k, c_in * multiplier), 3)
        options = tfl.DepthwiseConv2DOptionsT()
        options.depthMultiplier = multiplier
    options.padding = tfl.Padding.SAME if same else tfl.Padding.VALID
    options.strideH, options.strideW = s
    options.dilationHFactor = options.dilationWFactor = 1
    options.fusedActivationFunction = getattr(tfl.ActivationFunctionType, act)
    bias = rng.normal(size=weights.shape[0 if op == "conv2d" else 3])
    x = int8_data(rng, (1, *hw, c_in))
    in_qp, out_qp = draw(float64_qparams), draw(float64_qparams)
    drawn = weighted_case(op, x, weights, bias, in_qp, out_qp, FUSED[act], window, multiplier)
    if draw(st.booleans()):  # an output scale that fits (unrounded: the .tflite file rounds it)
        drawn = weighted_case(op, x, weights, bias, in_qp, fitted_output(drawn), FUSED[act], window, multiplier)
    return drawn, options


@needs_tflm
@settings(max_examples=40, deadline=None)
@given(tflm_conv_cases("conv2d"))
def test_conv2d_matches_tflite_micro(drawn_and_options):
    drawn, options = drawn_and_options
    got = run_tflm(drawn, "CONV_2D", "Conv2DOptions", options)
    np.testing.assert_array_equal(python_reference(drawn.case), got)


@needs_tflm
@settings(max_examples=40, deadline=None)
@given(tflm_conv_cases("depthwise_conv2d"))
def test_depthwise_conv2d_matches_tflite_micro(drawn_and_options):
    drawn, options = drawn_and_options
    got = run_tflm(drawn, "DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions", options)
    np.testing.assert_array_equal(python_reference(drawn.case), got)


@needs_tflm
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_fully_connected_matches_tflite_micro(data):
    drawn = data.draw(drawn_cases("fully_connected"))
    act = drawn.case.node.attrs.activation
    options = tfl.FullyConnectedOptionsT()
    options.fusedActivationFunction = getattr(tfl.ActivationFunctionType, {v: k for k, v in FUSED.items()}[act])
    got = run_tflm(drawn, "FULLY_CONNECTED", "FullyConnectedOptions", options)
    np.testing.assert_array_equal(python_reference(drawn.case), got.reshape(1, -1))
