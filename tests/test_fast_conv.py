"""The conv_dsp variant (k x k conv2d with up to 4 input channels, MobileNets' first layer)
computes exactly the simulator's int8 on the host, through the portable C emulation of
the DSP intrinsics (templates/runtime/mcugen_acle_emul.h)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.codegen.emit import emit
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm import conv_dsp
from mcugen.kernels.arm.requant import MAX_RIGHT, scaled_stage
from mcugen.kernels.weights import OutputStage
from mcugen.quant.arith import requantize
from mcugen.targets import get_target
from mcugen.verify import run_c
from mcugen.kernels.common import io_qparams
from onnx_builders import OnnxGraph
from shared_data import shared
from variant_checks import assert_host_c_matches_sim, deaden_last_conv, first, refuse_scaled, unit_scales


def _conv_model(tmp_path, seed: int, in_c: int, hw: tuple[int, int], out_c: int, kernel: tuple[int, int],
                stride: int, pads: list[int], dead: int = 0, low: float = -1.0, relu: bool = True) -> tuple[str, str]:
    g = OnnxGraph(seed)
    x = g.conv(g.input("x", [1, in_c, *hw]), out_c, kernel=kernel, stride=stride, pads=pads)
    x = g.relu(x) if relu else x
    model = g.build([x])
    if dead:
        deaden_last_conv(model, dead)
    path = tmp_path / f"conv{seed}.onnx"
    path.write_bytes(model.SerializeToString())
    # calibration over [low, 1]: the input zero point moves with `low`, and padding reads it
    calib = tmp_path / f"calib{seed}.npz"
    rng = np.random.default_rng(seed)
    np.savez(calib, **{f"s{i}": rng.uniform(low, 1.0, (1, in_c, *hw)).astype(np.float32) for i in range(4)})
    return str(path), str(calib)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    kernel=st.tuples(st.sampled_from([1, 3, 5]), st.sampled_from([2, 3])),
    stride=st.sampled_from([1, 2, 3]),
    pads=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    in_c=st.integers(1, 4),
    out_c=st.integers(1, 11),
    hw=st.tuples(st.integers(5, 9), st.integers(5, 9)),
    dead=st.integers(0, 2),
    exact=st.integers(0, 5),
    low=st.sampled_from([-1.0, -0.3, 0.0, 0.5]),
    relu=st.booleans(),
    optimize=st.sampled_from(["speed", "size"]),
)
def test_conv_variant_is_bit_exact_on_the_host(tmp_path, monkeypatch, seed, kernel, stride, pads, in_c, out_c, hw,
                                               dead, exact, low, relu, optimize):
    """Shapes, odd pixel counts, asymmetric padding, 1-4 input channels, input zero points,
    near-dead channels, both unroll settings; the first `exact` channels are refused the
    scaled stage, so groups of the exact (portable) stage run too; without ReLU the ties
    correction keeps the scaled stage, with it the uniform-shift stage usually runs."""
    refuse_scaled(monkeypatch, first(exact))
    path, calib = _conv_model(tmp_path, seed, in_c, hw, out_c, kernel, stride, pads, min(dead, out_c), low, relu)
    compiled = compile_model(path, CalibrationOptions(path=calib), target="cortex-m7", optimize=optimize)
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == ["conv_dsp"]
    assert_host_c_matches_sim(compiled, seed)


def test_refused_channels_take_the_exact_stage_and_the_zero_point_is_not_zero(tmp_path, monkeypatch):
    """The property test's corners exist: an exact group, and padding that reads a non-zero input zero point."""
    refuse_scaled(monkeypatch, first(2))
    path, calib = _conv_model(tmp_path, 3, 3, (7, 8), 6, (3, 3), 2, [1, 1, 1, 1], low=0.0)
    compiled = compile_model(path, CalibrationOptions(path=calib), target="cortex-m7")
    (node,) = [n for n in compiled.graph.nodes if n.op == "conv2d"]
    assert conv_dsp.channels(node, compiled.graph).exact.tolist() == [[0, 1, 1, 1]]
    assert io_qparams(node, compiled.graph)[0].scalar_zero_point != 0
    assert conv_dsp.spec(node, compiled.graph, "speed").exact
    assert_host_c_matches_sim(compiled, 3)


def test_first_convs_of_one_shape_share_one_function(tmp_path):
    """Sizes are run-time params: two 3x3 s2 convs on different inputs call the same C function."""
    g = OnnxGraph(1)
    a = g.relu(g.conv(g.input("x", [1, 3, 12, 10]), 3, kernel=3, stride=1, pads=[1, 1, 1, 1]))
    b = g.relu(g.conv(a, 8, kernel=3, stride=2, pads=[0, 0, 1, 1]))
    path = tmp_path / "two.onnx"
    path.write_bytes(g.build([b]).SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target="cortex-m7")
    convs = [n for n in compiled.graph.nodes if n.variant == "conv_dsp"]
    assert len(convs) == 2
    names = {conv_dsp.c_kernel(n, compiled.graph, "speed").name for n in convs}
    assert len(names) == 1
    assert all(conv_dsp.channels(n, compiled.graph).shift for n in convs)  # the uniform-shift stage runs
    source = emit(compiled.graph, compiled.plan)["mcugen.c"]
    assert source.count(f"static void {names.pop()}(") == 1
    assert_host_c_matches_sim(compiled, 1)


@settings(max_examples=200, deadline=None)
@given(
    shift=st.integers(-MAX_RIGHT, -1),
    q=st.integers(1 << 30, (1 << 31) - 1),
    zp=st.integers(-128, 127),
    spread=st.integers(1, 6),
    acc=st.lists(st.integers(-(1 << 20), 1 << 20), min_size=1, max_size=30),
)
def test_the_uniform_shift_stage_is_the_double_rounding_requantization(shift, q, zp, spread, acc):
    """SMMLA of the scaled accumulator with k', then ASR by the uniform shift, is TFLite's
    requantize (quant/arith.py) for every channel whose own right shift is at most the
    uniform one minus one (the stage's precondition), lower clamp at the zero point (no ties)."""
    stage = OutputStage(0, 0, zp, max(zp, -128), 127, np.array([q], np.int32), np.array([shift], np.int32))
    ss = scaled_stage(stage, np.zeros(1, np.int64), np.array([0]))
    uniform = -shift + spread
    factor, k = conv_dsp.uniform_stage(ss, uniform)
    a = np.array(acc, np.int64) * factor[0]
    assume(bool(np.all(np.abs(a) < 1 << 31)) and abs(int(k[0])) < 1 << 30)
    out = np.clip(np.floor_divide(a * q + (int(k[0]) << 32), np.int64(1) << np.int64(32 + uniform)), stage.act_min, 127)
    expected = requantize(np.array(acc, np.int64), stage.multiplier, stage.shift, zp, stage.act_min, 127)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize(("in_c", "optimize", "exact", "relu"),
                         [(1, "speed", 0, True), (3, "size", 0, True), (3, "speed", 3, False), (2, "speed", 0, False), (3, "speed", 3, True), (3, "speed", 0, False)])
def test_the_assembly_is_bit_exact_on_an_emulated_m4(tmp_path, monkeypatch, in_c, optimize, exact, relu):
    """mcugen_mac2x4's assembly (the host runs its C twin): grayscale and RGB rows, the
    one-word loop of --optimize size, exact groups and the ties stage, odd pixel counts,
    padding on every side."""
    refuse_scaled(monkeypatch, first(exact))
    path, calib = _conv_model(tmp_path, 7, in_c, (9, 11), 6, (3, 3), 2, [1, 0, 1, 1], low=-0.5, relu=relu)
    compiled = compile_model(path, CalibrationOptions(path=calib), target="cortex-m4", optimize=optimize)
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == ["conv_dsp"]
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(7).integers(-128, 128, (3, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m4"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    kernel=st.tuples(st.sampled_from([1, 3, 5]), st.sampled_from([2, 3])),
    stride=st.sampled_from([1, 2, 3]),
    pads=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    in_c=st.integers(1, 4),
    out_c=st.integers(1, 11),
    exact=st.integers(0, 3),
    relu=st.booleans(),
    optimize=st.sampled_from(["speed", "size"]),
    target=st.sampled_from(["cortex-m4", "cortex-m7", "cortex-m33"]),
)
def test_every_shape_builds_and_is_bit_exact_on_the_emulated_cores(tmp_path, monkeypatch, seed, kernel, stride, pads,
                                                                    in_c, out_c, exact, relu, optimize, target):
    """The assembly block's 14 registers are found in every generated kernel (GCC once failed
    with 'impossible constraints' for some stages and row lengths), and it computes exactly."""
    refuse_scaled(monkeypatch, first(exact))
    path, calib = _conv_model(tmp_path, seed, in_c, (7, 6), out_c, kernel, stride, pads, low=-0.5, relu=relu)
    compiled = compile_model(path, CalibrationOptions(path=calib), target=target, optimize=optimize)
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == ["conv_dsp"]
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(seed).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target(target), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


def test_a_weight_zero_point_rides_in_the_int16_weights(tmp_path):
    """Pre-quantized uint8 models (per-tensor weight zero point, e.g. the Coral MobileNet) take
    the variants with w + weight_offset packed, the strided depthwise layers fed by their
    pointwise ones (passes/stream_rows.py); the whole model on the host."""
    path = shared("models/coral_mobilenet_v1_0.5_160_quant.onnx")
    compiled = compile_model(path, CalibrationOptions(), target="cortex-m7")
    first = compiled.graph.nodes[0]
    assert first.variant == "conv_dsp" and conv_dsp.lowered_params(first).stage.weight_offset != 0
    weighted = [n for n in compiled.graph.nodes if n.op in ("conv2d", "depthwise_conv2d")]
    assert {n.variant for n in weighted[1:]} == {"pointwise_dsp", "depthwise_dsp", "pointwise_ring_dsp",
                                                 "depthwise_fed_dsp"}
    assert_host_c_matches_sim(compiled, 11, count=1)


@pytest.mark.parametrize("relu", [True, False])
def test_unit_scales_are_bit_exact(tmp_path, relu):
    """Channels without a right shift take the scaled stage when no ties correction runs (ReLU),
    the uniform-shift stage included; with the correction they keep the exact stage."""
    path, calib = _conv_model(tmp_path, 4, 3, (7, 8), 7, (3, 3), 2, [1, 1, 1, 1], relu=relu)
    compiled = unit_scales(compile_model(path, CalibrationOptions(path=calib), target="cortex-m7"), "conv2d")
    (node,) = [n for n in compiled.graph.nodes if n.op == "conv2d"]
    unit = np.flatnonzero(node.lowered.stage.shift >= 0)
    scaled = conv_dsp.channels(node, compiled.graph).scaled.ravel()
    assert np.isin(unit, scaled).all() == relu
    assert_host_c_matches_sim(compiled, 4)
