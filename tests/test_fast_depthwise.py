"""The depthwise 3x3 DSP variant (mcugen/kernels/arm/depthwise_dsp.py) computes exactly the
simulator's int8 on the host, through the portable C twins of the intrinsics."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen import compiler, sim
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm import depthwise_dsp, depthwise_mve, depthwise_tiny_dsp
from mcugen.kernels.arm.depthwise_dsp import group_size, packed_weights
from mcugen.kernels.conv2d import ConvGeometry, geometry
from mcugen.targets import get_target
from mcugen.verify import run_c
from fast_cases import depthwise_net, saved
from onnx_builders import OnnxGraph
from variant_checks import (
    assert_exact_at_declared_overlap,
    assert_host_c_matches_sim,
    first,
    refuse_scaled,
    unit_scales,
)


@pytest.fixture(autouse=True)
def _no_tiny_variant(monkeypatch):
    """These tests are depthwise_dsp's: its small shapes would otherwise go to depthwise_tiny_dsp,
    and a strided layer after a pointwise one to depthwise_fed_dsp (tests/test_fast_fed.py)."""
    monkeypatch.setattr(depthwise_tiny_dsp, "MAX_OUTPUTS", 0)
    monkeypatch.setattr(compiler, "stream_rows", lambda graph: graph)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(1, 10).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(1, 9), st.integers(1, 14)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    relu6=st.booleans(),
    dead=st.integers(0, 2),
    exact=st.integers(0, 3),
    unit_scale=st.booleans(),
)
def test_depthwise_variant_is_bit_exact_on_the_host(tmp_path, monkeypatch, seed, c, hw, stride, pads, relu6, dead,
                                                    exact, unit_scale):
    """Shapes, strides, padding; near-dead channels (constant outputs); the first `exact`
    channels refused the scaled stage (the portable stage runs for them); with `unit_scale`
    every other channel shifts by 0 or left by 1 (no right shift: the scaled stage's ASR by 0)."""
    if hw[0] + pads[0] + pads[2] < 3 or hw[1] + pads[1] + pads[3] < 3:
        return  # no output pixel
    refuse_scaled(monkeypatch, first(exact))
    path = depthwise_net(tmp_path, seed, 4, c, hw, stride, pads, relu6, dead)
    compiled = compile_model(path, CalibrationOptions(), target="cortex-m7")
    if unit_scale:
        compiled = unit_scales(compiled, "depthwise_conv2d")
    assert [n.variant for n in compiled.graph.nodes if n.op == "depthwise_conv2d"] == ["depthwise_dsp"]
    assert_host_c_matches_sim(compiled, seed)


def test_channel_classes_cover_constant_unit_scale_and_exact_channels(tmp_path, monkeypatch):
    """The property test's corners exist: dead channels are constant, unit scales take the
    scaled stage without ties, refused channels the exact stage (table right = -1)."""
    refuse_scaled(monkeypatch, first(1))
    compiled = unit_scales(compile_model(depthwise_net(tmp_path, 5, 4, 8, (6, 6), 1, [1, 1, 1, 1], True, 2),
                                          CalibrationOptions(), target="cortex-m7"), "depthwise_conv2d")
    (node,) = [n for n in compiled.graph.nodes if n.op == "depthwise_conv2d"]
    constant, _, scaled = depthwise_dsp.classes(node, compiled.graph)
    assert constant[:2].all() and not scaled[0]
    assert scaled[2] and scaled[4] and node.lowered.stage.shift[[2, 4]].tolist() == [1, 0]
    ((_, table),) = depthwise_dsp.c_constants(node, compiled.graph)
    right = table.reshape(8, depthwise_dsp.ROW)[:, -1]
    assert right[:3].tolist() == [1, 1, 0] and right[4] == 0
    refuse_scaled(monkeypatch, first(3))
    ((_, table),) = depthwise_dsp.c_constants(node, compiled.graph)
    assert table.reshape(8, depthwise_dsp.ROW)[2, -1] == -1 and depthwise_dsp.spec(node, compiled.graph).exact


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("c, hw, stride, pads, relu6, groups, exact", [
    (8, (7, 9), 1, [1, 1, 1, 1], True, 1, 0),  # odd width and height: a partial last block and band (assembly)
    (40, (5, 26), 1, [1, 1, 1, 1], True, 5, 0),  # channel groups of the ring
    (16, (9, 14), 2, [1, 1, 1, 1], True, 1, 0),  # pad_left 1: unpaired first and last pixels
    (8, (8, 11), 2, [0, 0, 1, 1], True, 1, 0),  # a partial last block of 2 outputs
    (12, (6, 7), 2, [1, 0, 1, 1], False, 1, 0),  # negative ties: the C block loop on the core
    (40, (5, 26), 1, [1, 1, 1, 1], True, 5, 6),  # exact channels: runs of C and assembly in a group
    (16, (9, 14), 2, [1, 1, 1, 1], True, 1, 3),
])
def test_depthwise_variant_is_bit_exact_on_the_core(tmp_path, monkeypatch, c, hw, stride, pads, relu6, groups, exact):
    """The assembly block loops (and the C ones where the stage needs ties, or for exact
    channels between the assembly's runs) on an emulated Cortex-M4."""
    refuse_scaled(monkeypatch, first(exact))
    compiled = compile_model(depthwise_net(tmp_path, 3, 4, c, hw, stride, pads, relu6, 0), CalibrationOptions(),
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


def _geometry(hw: int, stride: int, pad: int, c: int) -> ConvGeometry:
    out = (hw + 2 * pad - 3) // stride + 1
    return ConvGeometry(in_h=hw, in_w=hw, in_c=c, out_h=out, out_w=out, out_c=c, kernel_h=3, kernel_w=3,
                        stride_h=stride, stride_w=stride, pad_top=pad, pad_left=pad)


def test_one_group_runs_in_place_when_its_ring_is_smaller_than_the_output():
    big, small = _geometry(48, 2, 0, 16), _geometry(3, 1, 1, 256)  # VWW's first strided layer, its last depthwise
    assert depthwise_dsp.in_place(big) and group_size(big) == 16
    assert not depthwise_dsp.in_place(small) and group_size(small) < 256


def test_band_limit_by_hand(monkeypatch):
    """Stride 1, pad 1, 8x8: band b writes output rows 2b, 2b + 1 after copying input rows 2b + 1,
    2b + 2, so when band b is written the next reads start at row 2b + 3: one input row above
    the 2b + 2 output rows written, the output may start a row (8 C bytes) above the input."""
    g = _geometry(8, 1, 1, 4)
    monkeypatch.setattr(depthwise_dsp, "geometry", lambda node, graph: g)
    monkeypatch.setattr(depthwise_dsp, "in_place", lambda geo: True)
    monkeypatch.setattr(depthwise_dsp, "recopies", lambda node, graph: False)
    assert depthwise_dsp.overlap_limits(None, None) == (8 * 4,)


def test_recopy_band_limit_by_hand(monkeypatch):
    """Stride 2, no padding, 8x8 -> 3x3: band b reads input rows 2b .. 2b + 2 group by group and
    writes its output row (3 C bytes) between them (lag 0). Band 0 may write its row before
    its last group reads input row 0, so the output must start a row (3 C bytes) below the input."""
    g = _geometry(8, 2, 0, 4)
    monkeypatch.setattr(depthwise_dsp, "geometry", lambda node, graph: g)
    monkeypatch.setattr(depthwise_dsp, "recopies", lambda node, graph: True)
    assert depthwise_dsp.overlap_limits(None, None) == (-3 * 4,)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(1, 6).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(3, 11), st.integers(3, 12)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
)
def test_output_at_the_declared_overlap_limit_is_bit_exact(tmp_path, monkeypatch, seed, c, hw, stride, pads):
    """One group (forced, whatever the arena policy would pick), input and output in the arena,
    the output starting `overlap_limits` bytes after the input: the host C equals the simulator."""
    monkeypatch.setattr(depthwise_dsp, "in_place", lambda geo: True)
    assert_exact_at_declared_overlap(_lone_depthwise(tmp_path, seed, c, hw, stride, pads, "cortex-m7"), depthwise_dsp, seed)


def _lone_depthwise(tmp_path, seed: int, c: int, hw: tuple[int, int], stride: int, pads: list[int], target: str,
                    optimize: str = "speed"):
    g = OnnxGraph(seed)
    path = saved(tmp_path, g.build([g.depthwise(g.input("x", [1, c, *hw]), stride=stride, pads=pads)]), "dw")
    return compile_model(path, CalibrationOptions(), target=target, optimize=optimize)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(1, 16).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(3, 11), st.integers(3, 24)),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
)
def test_size_mode_recopies_stride_2_bands_and_is_exact_at_its_overlap_limit(tmp_path, seed, c, hw, pads):
    """--optimize size, stride 2: bands outermost, every group re-copying its band's rows into a
    one-group ring; the output `overlap_limits` (lag 0) bytes after the input, host C == simulator."""
    compiled = _lone_depthwise(tmp_path, seed, c, hw, 2, pads, "cortex-m7", "size")
    (node,) = compiled.graph.nodes
    assert depthwise_dsp.spec(node, compiled.graph).recopy
    assert_exact_at_declared_overlap(compiled, depthwise_dsp, seed)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("c, hw, pads", [(48, (9, 22), [1, 1, 1, 1]), (24, (8, 29), [0, 0, 1, 1])])
def test_size_mode_recopying_is_bit_exact_on_the_core(tmp_path, c, hw, pads):
    """Several groups (a 2 KB ring holds fewer channels than C), odd and even widths, on an
    emulated Cortex-M4."""
    compiled = _lone_depthwise(tmp_path, 3, c, hw, 2, pads, "cortex-m4", "size")
    (node,) = compiled.graph.nodes
    assert depthwise_dsp.spec(node, compiled.graph).recopy
    assert depthwise_dsp.c_params(node, compiled.graph)["group"] < c
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(c).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m4"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(8, 20),
    hw=st.tuples(st.integers(3, 9), st.integers(3, 12)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
)
def test_helium_output_at_the_declared_overlap_limit_is_bit_exact(tmp_path, seed, c, hw, stride, pads):
    """depthwise_mve with input and output in the arena, the output `overlap_limits` bytes after
    the input (usually below it): the host C (Helium through its emulation header) equals the simulator."""
    assert_exact_at_declared_overlap(_lone_depthwise(tmp_path, seed, c, hw, stride, pads, "cortex-m55"), depthwise_mve,
                                     seed)
