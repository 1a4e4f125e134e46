"""Pre-quantized uint8 models (per-tensor weight zero point, as TFLite's legacy uint8 models like
the Coral MobileNet) keep the fast variants: w + weight_offset rides in the DSP kernels' int16
weight halves, Helium's depthwise keeps it as int16 weights, and Helium's pointwise adds each
pixel's input sum times the offset. Host C
(emulated intrinsics) and emulated Cortex-M4 / M55 equal the simulator."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.kernels.arm import depthwise_tiny_dsp
from mcugen.kernels.conv2d import geometry, lowered_params
from mcugen.targets import get_target
from mcugen.verify import run_c
from onnx_builders import QdqGraph
from variant_checks import assert_host_c_matches_sim


def _uint8_block(tmp_path, seed: int, c_in: int, c: int, hw: tuple[int, int], stride: int, relu: bool,
                 target: str) -> Compiled:
    """uint8 QDQ: 1x1 conv to `c` channels, 3x3 depthwise (stride, pad 1), 1x1 conv back to
    `c_in`; per-tensor uint8 weights with random zero points throughout."""
    g = QdqGraph("uint8", seed)
    x = g.q_input("x", [1, c_in, *hw], 0.02, -3)
    y = g.qconv(x, c, kernel=1, pads=[0, 0, 0, 0], per_channel=False, weight_dtype="uint8")
    y = g.requant(g.relu(y) if relu else y, 0.3, -128 if relu else 5)
    y = g.qconv(y, c, kernel=3, stride=stride, group=c, per_channel=False, weight_dtype="uint8")
    y = g.requant(g.relu(y) if relu else y, 3.0, -128 if relu else -7)
    y = g.qconv(y, c_in, kernel=1, pads=[0, 0, 0, 0], per_channel=False, weight_dtype="uint8")
    path = tmp_path / f"u8_{seed}.onnx"
    path.write_bytes(g.build_quantized(g.quantize(y, 1.0, 2)).SerializeToString())
    return compile_model(str(path), CalibrationOptions(), target=target)


def _expected_variants(target: str, c: int, pixels: int) -> list[str]:
    # pad 1: never a layer depthwise_dsp's blocks tile exactly
    dsp = "depthwise_tiny_dsp" if pixels <= depthwise_tiny_dsp.MAX_OUTPUTS else "depthwise_dsp"
    if target == "cortex-m55":  # Helium's depthwise needs 8 channels
        return ["pointwise_mve", "depthwise_mve" if c >= 8 else dsp, "pointwise_mve"]
    return ["pointwise_dsp", dsp, "pointwise_dsp"]


def _check_variants(compiled: Compiled, target: str, c: int) -> None:
    variants = [(n.variant, lowered_params(n).stage.weight_offset) for n in compiled.graph.nodes
                if n.op in ("conv2d", "depthwise_conv2d")]
    (dw,) = [n for n in compiled.graph.nodes if n.op == "depthwise_conv2d"]
    g = geometry(dw, compiled.graph)
    assert [v for v, _ in variants] == _expected_variants(target, c, g.out_h * g.out_w)
    assert all(offset != 0 for _, offset in variants)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), c_in=st.integers(1, 4).map(lambda k: 4 * k), c=st.integers(1, 6).map(lambda k: 4 * k),
       hw=st.tuples(st.integers(3, 8), st.integers(3, 9)), stride=st.sampled_from([1, 2]), relu=st.booleans(),
       target=st.sampled_from(["cortex-m7", "cortex-m55"]))
def test_weight_zero_points_are_bit_exact_on_the_host(tmp_path, seed, c_in, c, hw, stride, relu, target):
    compiled = _uint8_block(tmp_path, seed, c_in, c, hw, stride, relu, target)
    _check_variants(compiled, target, c)
    assert_host_c_matches_sim(compiled, seed)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("target, stride, relu", [("cortex-m4", 1, True), ("cortex-m4", 2, False),
                                                  ("cortex-m55", 1, False), ("cortex-m55", 2, True)])
def test_weight_zero_points_are_bit_exact_on_the_core(tmp_path, target, stride, relu):
    compiled = _uint8_block(tmp_path, 3, 8, 16, (7, 9), stride, relu, target)  # 7 x 9: an odd last pixel
    _check_variants(compiled, target, 16)
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(3).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target(target), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


def _uint8_first_conv(tmp_path, seed: int, c: int, hw: tuple[int, int], stride: int, target: str) -> Compiled:
    """uint8 QDQ: a 3x3 conv (pad 1) from 3 channels to `c`, as MobileNets start, per-tensor
    uint8 weights with a random zero point."""
    g = QdqGraph("uint8", seed)
    x = g.q_input("x", [1, 3, *hw], 0.02, 9)
    y = g.qconv(x, c, kernel=3, stride=stride, per_channel=False, weight_dtype="uint8")
    path = tmp_path / f"u8_conv_{seed}.onnx"
    path.write_bytes(g.build_quantized(g.quantize(g.relu(y), 0.3, -128)).SerializeToString())
    return compile_model(str(path), CalibrationOptions(), target=target)


def _first_conv_variant(compiled: Compiled) -> str:
    (node,) = [n for n in compiled.graph.nodes if n.op == "conv2d"]
    assert lowered_params(node).stage.weight_offset != 0
    return node.variant


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), c=st.integers(8, 20), hw=st.tuples(st.integers(2, 9), st.integers(2, 9)),
       stride=st.sampled_from([1, 2]))
def test_helium_first_conv_adds_the_weight_offset_times_the_window_sum(tmp_path, seed, c, hw, stride):
    compiled = _uint8_first_conv(tmp_path, seed, c, hw, stride, "cortex-m55")
    assert _first_conv_variant(compiled) == "conv_mve"
    assert_host_c_matches_sim(compiled, seed)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_helium_first_conv_with_a_weight_offset_is_bit_exact_on_the_core(tmp_path):
    compiled = _uint8_first_conv(tmp_path, 4, 12, (9, 7), 2, "cortex-m55")
    assert _first_conv_variant(compiled) == "conv_mve"
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(4).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m55"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
