"""The tiny-image depthwise 3x3 DSP variant (mcugen/kernels/arm/depthwise_tiny_dsp.py) computes
exactly the simulator's int8: on the host through the C twins of the intrinsics, and on an
emulated Cortex-M4."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.inputs import Preprocess
from mcugen.kernels.arm import depthwise_fed_dsp
from mcugen.kernels.arm import depthwise_tiny_dsp as tiny
from mcugen.kernels.conv2d import ConvGeometry, geometry
from mcugen.targets import get_target
from mcugen.verify import run_c
from fast_cases import depthwise_net
from onnx_builders import OnnxGraph
from variant_checks import assert_host_c_matches_sim, first, refuse_scaled, unit_scales

VWW = "examples/models/vww_96_float.onnx"
VWW_PHOTOS = "examples/data/photos_rgb_uint8_96.npz"


def _input_size(out: int, stride: int, before: int, after: int, extra: int) -> int:
    """An input extent giving `out` outputs with these paddings (`extra`: a stride-2 row or
    column no window reaches, as in TF-SAME's even inputs)."""
    return (out - 1) * stride + 3 - before - after + (extra if stride == 2 else 0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(2, 24),  # one channel is a plain conv
    out=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    extra=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    relu6=st.booleans(),
    dead=st.integers(0, 2),
    exact=st.integers(0, 3),
    unit_scale=st.booleans(),
)
def test_tiny_depthwise_is_bit_exact_on_the_host(tmp_path, monkeypatch, seed, c, out, stride, pads, extra, relu6,
                                                 dead, exact, unit_scale):
    """Every padding combination, both strides, any channel count; near-dead (constant) channels,
    the first `exact` channels refused the scaled stage, unit scales (ASR by 0), ReLU6 clamps
    and, without them, the negative ties correction."""
    hw = tuple(_input_size(o, stride, pads[i], pads[i + 2], extra[i]) for i, o in enumerate(out))
    if min(hw) < 1 or out[0] * out[1] > tiny.MAX_OUTPUTS:
        return
    refuse_scaled(monkeypatch, first(exact))
    compiled = compile_model(depthwise_net(tmp_path, seed, 4, c, hw, stride, pads, relu6, min(dead, c)),
                             CalibrationOptions(), target="cortex-m7")
    if unit_scale:
        compiled = unit_scales(compiled, "depthwise_conv2d")
    (node,) = [n for n in compiled.graph.nodes if n.op == "depthwise_conv2d"]
    g = geometry(node, compiled.graph)
    assert (g.out_h, g.out_w) == out
    if tiny._tiles_exactly(g):
        assert node.variant != "depthwise_tiny_dsp"
        return
    assert node.variant == "depthwise_tiny_dsp"
    assert_host_c_matches_sim(compiled, seed)


def _geometry(in_hw: tuple[int, int], stride: int, pad: tuple[int, int], out: tuple[int, int]) -> ConvGeometry:
    return ConvGeometry(in_h=in_hw[0], in_w=in_hw[1], in_c=8, out_h=out[0], out_w=out[1], out_c=8, kernel_h=3,
                        kernel_w=3, stride_h=stride, stride_w=stride, pad_top=pad[0], pad_left=pad[1])


def test_program_skips_padding_taps_and_folds_only_where_it_saves_instructions():
    """VWW's two layers: 3x3 -> 3x3 with padding 1 multiplies 49 of its 81 taps (SMLAD on pairs:
    28 instructions) and keeps one bias; 6x6 -> 3x3 stride 2, padded bottom and right only,
    multiplies 64 taps in 40 instructions with a bias per padding pattern (4)."""
    small, strided = _geometry((3, 3), 1, (1, 1), (3, 3)), _geometry((6, 6), 2, (0, 0), (3, 3))
    for g, taps, instructions, biases in [(small, 49, 28, 1), (strided, 64, 40, 4)]:
        rows, row = tiny.program(g, len(tiny.patterns(g)) if tiny.folded(g) else 1)
        all_taps = [t for r in rows for seg in r.segments for t in seg.taps]
        assert sum(2 if t.op == "smlad" else 1 for t in all_taps) == taps
        assert len(all_taps) == instructions and row == biases + 9


@pytest.mark.parametrize("target, c, hw, stride, pads, expected", [
    ("cortex-m7", 5, (3, 3), 1, [1, 1, 1, 1], "depthwise_tiny_dsp"),  # any channel count
    ("cortex-m7", 8, (6, 6), 2, [0, 0, 1, 1], "depthwise_tiny_dsp"),
    ("cortex-m7", 8, (5, 5), 1, [1, 1, 1, 1], "depthwise_dsp"),  # 25 outputs
    ("cortex-m7", 8, (6, 6), 1, [0, 0, 0, 0], "depthwise_dsp"),  # 4x4 that depthwise_dsp's blocks tile exactly
    ("cortex-m7", 8, (5, 5), 1, [0, 0, 0, 0], "depthwise_tiny_dsp"),  # 3x3: they would not
    ("cortex-m3", 8, (3, 3), 1, [1, 1, 1, 1], "portable"),  # no DSP extension
    ("cortex-m55", 8, (3, 3), 1, [1, 1, 1, 1], "depthwise_mve"),  # Helium first
    ("cortex-m55", 4, (3, 3), 1, [1, 1, 1, 1], "depthwise_tiny_dsp"),  # below Helium's 8 channels
])
def test_select_kernels_picks_the_tiny_variant(tmp_path, target, c, hw, stride, pads, expected):
    g = OnnxGraph(2)
    x = g.conv(g.input("x", [1, 4, *hw]), c, kernel=1, pads=[0, 0, 0, 0])
    model = g.build([g.depthwise(x, stride=stride, pads=pads)])
    path = tmp_path / "sel.onnx"
    path.write_bytes(model.SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target=target)
    assert [n.variant for n in compiled.graph.nodes if n.op == "depthwise_conv2d"] == [expected]


def test_vww_runs_its_two_last_depthwise_layers_tiny():
    """Layers 23 (6x6 -> 3x3, stride 2) and 25 (3x3 -> 3x3) of VWW; every larger one keeps depthwise_dsp,
    those of 12x12 inputs and larger fed by their pointwise (passes/stream_rows.py)."""
    compiled = compile_model(VWW, CalibrationOptions(VWW_PHOTOS, preprocess=Preprocess(1 / 255)), target="cortex-m7")
    variants = {i: n.variant for i, n in enumerate(compiled.graph.nodes) if n.op == "depthwise_conv2d"}
    assert [i for i, v in variants.items() if v == "depthwise_tiny_dsp"] == [23, 25]
    assert {i for i, v in variants.items() if v == "depthwise_fed_dsp"} == {3, 5, 7, 9, 11}
    assert {v for i, v in variants.items() if i not in (3, 5, 7, 9, 11, 23, 25)} == {"depthwise_dsp"}



def test_size_mode_keeps_the_shared_depthwise_function():
    """--optimize size: shared depthwise functions serve every layer, no per-layer or per-shape code
    (fed layers too: passes/stream_rows.py)."""
    compiled = compile_model(VWW, CalibrationOptions(VWW_PHOTOS, preprocess=Preprocess(1 / 255)), target="cortex-m7",
                             optimize="size")
    graph = compiled.graph
    depthwise = [n for n in graph.nodes if n.op == "depthwise_conv2d"]
    assert {n.variant for n in depthwise} == {"depthwise_dsp", "depthwise_fed_dsp"}
    assert not any(depthwise_fed_dsp.spec(n, graph).shapes for n in depthwise if n.variant == "depthwise_fed_dsp")


def test_no_overlap_is_declared():
    """Channel by channel over every pixel: a planner overlap would let channel 0's outputs
    overwrite inputs later channels read."""
    assert tiny.overlap_limits(None, None) == (None,)
    assert tiny.scratch_bytes(None, None) == 0


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("c, hw, stride, pads, relu6, exact", [
    (16, (3, 3), 1, [1, 1, 1, 1], True, 0),  # VWW's last depthwise: the offset on the words
    (8, (6, 6), 2, [0, 0, 1, 1], True, 0),  # VWW's 6x6 -> 3x3: a bias per padding pattern
    (12, (4, 4), 1, [1, 1, 1, 1], False, 0),  # negative ties
    (5, (8, 8), 2, [1, 1, 1, 1], True, 2),  # an odd channel count, exact channels
    (4, (1, 16), 1, [1, 1, 1, 1], True, 0),  # one row of 16 outputs
])
def test_tiny_depthwise_is_bit_exact_on_the_core(tmp_path, monkeypatch, c, hw, stride, pads, relu6, exact):
    refuse_scaled(monkeypatch, first(exact))
    compiled = compile_model(depthwise_net(tmp_path, 3, 4, c, hw, stride, pads, relu6, 0), CalibrationOptions(),
                             target="cortex-m4")
    assert [n.variant for n in compiled.graph.nodes if n.op == "depthwise_conv2d"] == ["depthwise_tiny_dsp"]
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(c).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m4"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
