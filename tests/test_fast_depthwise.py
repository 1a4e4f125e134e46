"""The depthwise 3x3 DSP variant (mcugen/kernels/arm/depthwise_dsp.py) computes exactly the
simulator's int8 on the host, through the portable C twins of the intrinsics."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm.depthwise_dsp import packed_weights
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
    c=st.integers(1, 6).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
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


def test_packed_weights_pair_channels_as_sxtb16_does():
    w = np.arange(9 * 8, dtype=np.int64).reshape(9, 8) - 36  # w[tap, channel]
    words = packed_weights(w.astype(np.int8)).view(np.uint32).astype(np.int64).reshape(2, 9, 2)
    lo = ((words & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((words >> 16) ^ 0x8000) - 0x8000
    for group in range(2):
        c = 4 * group
        np.testing.assert_array_equal(lo[group, :, 0], w[:, c])
        np.testing.assert_array_equal(hi[group, :, 0], w[:, c + 2])
        np.testing.assert_array_equal(lo[group, :, 1], w[:, c + 1])
        np.testing.assert_array_equal(hi[group, :, 1], w[:, c + 3])
