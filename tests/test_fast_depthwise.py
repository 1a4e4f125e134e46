"""The depthwise 3x3 DSP variant (mcugen/kernels/arm/depthwise_dsp.py) computes exactly the
simulator's int8 on the host, through the portable C twins of the intrinsics."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm.depthwise_dsp import group_size, packed_weights
from mcugen.kernels.conv2d import geometry
from mcugen.targets import get_target
from mcugen.verify import run_c
from onnx_builders import OnnxGraph
from variant_checks import assert_host_c_matches_sim, deaden_last_conv


def _depthwise_net(tmp_path, seed: int, c: int, hw: tuple[int, int], stride: int, pads: list[int],
                   relu6: bool, dead: int) -> str:
    """1x1 conv to `c` channels, then a depthwise 3x3 whose first `dead` channels are near-dead
    (tiny weights, large bias: a bias near 2^30 once quantized, the portable output stage)."""
    g = OnnxGraph(seed)
    x = g.input("x", [1, 4, *hw])
    x = g.conv(x, c, kernel=1, pads=[0, 0, 0, 0])
    y = g.depthwise(x, stride=stride, pads=pads)
    y = g.clip(y) if relu6 else y
    model = g.build([y])
    if dead:
        deaden_last_conv(model, dead)
    path = tmp_path / f"dw{seed}.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(1, 10).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(1, 9), st.integers(1, 14)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    relu6=st.booleans(),
    dead=st.integers(0, 2),
)
def test_depthwise_variant_is_bit_exact_on_the_host(tmp_path, seed, c, hw, stride, pads, relu6, dead):
    if hw[0] + pads[0] + pads[2] < 3 or hw[1] + pads[1] + pads[3] < 3:
        return  # no output pixel
    path = _depthwise_net(tmp_path, seed, c, hw, stride, pads, relu6, dead)
    compiled = compile_model(path, CalibrationOptions(), target="cortex-m7")
    assert [n.variant for n in compiled.graph.nodes if n.op == "depthwise_conv2d"] == ["depthwise_dsp"]
    assert_host_c_matches_sim(compiled, seed)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("c, hw, stride, pads, relu6, groups", [
    (8, (7, 9), 1, [1, 1, 1, 1], True, 1),  # odd width and height: a partial last block and band (assembly)
    (40, (5, 26), 1, [1, 1, 1, 1], True, 5),  # channel groups of the ring
    (16, (9, 14), 2, [1, 1, 1, 1], True, 1),  # pad_left 1: unpaired first and last pixels
    (8, (8, 11), 2, [0, 0, 1, 1], True, 1),  # a partial last block of 2 outputs
    (12, (6, 7), 2, [1, 0, 1, 1], False, 1),  # negative ties: the C block loop on the core
])
def test_depthwise_variant_is_bit_exact_on_the_core(tmp_path, c, hw, stride, pads, relu6, groups):
    """The assembly block loops (and the C ones where the stage needs ties) on an emulated Cortex-M4."""
    compiled = compile_model(_depthwise_net(tmp_path, 3, c, hw, stride, pads, relu6, 0), CalibrationOptions(),
                             target="cortex-m4")
    (node,) = [n for n in compiled.graph.nodes if n.op == "depthwise_conv2d"]
    assert node.variant == "depthwise_dsp"
    g = geometry(node, compiled.graph)
    assert g.in_c // group_size(g) == groups
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(c).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m4"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


@pytest.mark.parametrize("target, c, kernel, expected", [
    ("cortex-m3", 8, 3, "portable"),  # no DSP extension
    ("cortex-m7", 6, 3, "portable"),  # channels not whole 4-byte words
    ("cortex-m7", 8, 5, "portable"),  # not 3x3
    ("cortex-m55", 4, 3, "depthwise_dsp"),  # Helium's depthwise_mve needs 8 channels
])
def test_select_kernels_picks_depthwise_variant(tmp_path, target, c, kernel, expected):
    g = OnnxGraph(2)
    x = g.conv(g.input("x", [1, 4, 6, 6]), c, kernel=1, pads=[0, 0, 0, 0])
    model = g.build([g.depthwise(x, kernel=kernel)])
    path = tmp_path / "sel.onnx"
    path.write_bytes(model.SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target=target)
    assert [n.variant for n in compiled.graph.nodes if n.op == "depthwise_conv2d"] == [expected]


def _halves(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = words.view(np.uint32).astype(np.int64)
    return ((u & 0xFFFF) ^ 0x8000) - 0x8000, ((u >> 16) ^ 0x8000) - 0x8000


@pytest.mark.parametrize("stride", [1, 2])
def test_packed_weights_pair_taps_as_the_planes_do(stride):
    """Stride 1 multiplies vertical pairs (rows ky, ky + 1 of a column), stride 2 horizontal ones
    (columns kx, kx + 1 of a row): each weight word holds the matching taps, low half first."""
    w = (np.arange(9 * 8, dtype=np.int64).reshape(9, 8) * 7 % 251 - 125) * 64  # w[3 ky + kx, channel], int16 range
    lo, hi = _halves(packed_weights(w, stride))
    k = w.reshape(3, 3, 8)  # (ky, kx, channel)
    for i in range(3):
        if stride == 1:
            np.testing.assert_array_equal(lo[:, 2 * i], k[0, i])
            np.testing.assert_array_equal(hi[:, 2 * i], k[1, i])
            np.testing.assert_array_equal(lo[:, 2 * i + 1], k[1, i])
            np.testing.assert_array_equal(hi[:, 2 * i + 1], k[2, i])
        else:
            np.testing.assert_array_equal(lo[:, 2 * i], k[i, 0])
            np.testing.assert_array_equal(hi[:, 2 * i], k[i, 1])
            np.testing.assert_array_equal(lo[:, 2 * i + 1], k[i, 2])
            np.testing.assert_array_equal(hi[:, 2 * i + 1], 0)
