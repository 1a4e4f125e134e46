"""The int8-weight DSP pointwise variant of --optimize size (mcugen/kernels/arm/pointwise_dsp8.py):
its stream layout, which mode selects it, and bit-exactness with the simulator for every structure
it has (the ties correction, clamps, exact blocks, left shifts, constant channels, every group
count modulo the unroll, odd pixel counts, uint8 weight zero points) on the host through the C
twins, and on emulated cores, where the scaled blocks run in the assembly the host never builds."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fast_cases import pointwise_chain, uint8_pointwise_chain
from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.kernels.arm import pointwise_dsp, pointwise_dsp8
from mcugen.kernels.conv2d import lowered_params
from mcugen.targets import get_target
from mcugen.verify import run_c
from variant_checks import assert_exact_at_declared_overlap, assert_host_c_matches_sim, refuse_scaled, restaged


def test_weights_are_int8_words_per_block_and_group():
    w = (np.arange(6 * 8) % 251 - 125).astype(np.int64).reshape(6, 8)
    blocks = np.array([[5, 0], [2, 2]])
    packed = pointwise_dsp8.packed_weights(w, blocks)
    assert packed.shape == (2, 4)
    got = packed.view("<i1").reshape(2, 2, 2, 4)
    # per block, per group of 4 input channels, the block's 2 channels' words, input channel 4g + i in byte i
    for block, channels in enumerate(blocks):
        for group in range(2):
            for slot, channel in enumerate(channels):
                assert got[block, group, slot].tolist() == w[channel, 4 * group:4 * group + 4].tolist()


def test_blocks_are_pairs_of_each_kind(monkeypatch):
    """pointwise_dsp's blocks of 4 regrouped by 2, without its fill: 5 scaled channels take 3 blocks, not 4."""
    class Channels:
        scaled = np.array([[0, 2, 3, 5], [6, 6, 6, 6]])
        exact = np.array([[1, 4, 4, 4]])
        bias = np.arange(7)

    monkeypatch.setattr(pointwise_dsp8.pointwise_dsp, "channels", lambda node, graph: Channels)
    monkeypatch.setattr(pointwise_dsp8, "scaled_stage", lambda stage, bias, channels: channels)
    monkeypatch.setattr(pointwise_dsp8, "lowered_params", lambda node: type("L", (), {"stage": None}))
    p = pointwise_dsp8.pairs(None, None)
    assert p.scaled.tolist() == [[0, 2], [3, 5], [6, 6]]
    assert p.exact.tolist() == [[1, 4]]


def _conv_variants(compiled: Compiled) -> set[str]:
    return {n.variant for n in compiled.graph.nodes if n.op == "conv2d"}


def test_size_mode_keeps_pointwise_weights_int8(tmp_path):
    path = pointwise_chain(tmp_path, 1, [16, 32, 24], (3, 3))
    by_mode = {m: compile_model(path, CalibrationOptions(), target="cortex-m7", optimize=m) for m in ("speed", "size")}
    assert _conv_variants(by_mode["speed"]) == {"pointwise_dsp"}
    assert _conv_variants(by_mode["size"]) == {"pointwise_dsp8"}
    # Helium keeps int8 weights at any setting, and comes first
    assert _conv_variants(compile_model(path, CalibrationOptions(), target="cortex-m55", optimize="size")) == {
        "pointwise_mve"}
    streams = {m: sum(a.nbytes for n in c.graph.nodes for role, a in _constants(n, c) if role == "weights")
               for m, c in by_mode.items()}
    # a byte per weight less (int8 words against int16 pairs); size's per-channel words are fewer too
    assert streams["speed"] - streams["size"] >= 32 * 16 + 24 * 32


def _constants(node, compiled: Compiled) -> list[tuple[str, np.ndarray]]:
    module = pointwise_dsp8 if node.variant == "pointwise_dsp8" else pointwise_dsp
    return module.c_constants(node, compiled.graph)


def _compiled(path: str, target: str, left: bool = False, clamp: bool = False) -> Compiled:
    compiled = compile_model(path, CalibrationOptions(), target=target, optimize="size")
    assert _conv_variants(compiled) == {"pointwise_dsp8"}
    return restaged(compiled, left, clamp)


def _specs(compiled: Compiled) -> list[pointwise_dsp8.PointwiseSpec8]:
    return [pointwise_dsp8.spec(n, compiled.graph) for n in compiled.graph.nodes if n.op == "conv2d"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    channels=st.lists(st.integers(1, 10).map(lambda k: 4 * k), min_size=1, max_size=2),
    last=st.integers(1, 23),
    hw=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    act=st.sampled_from(["relu", "relu6", "none"]),
    dead=st.integers(0, 8),
    left=st.booleans(),
    clamp=st.booleans(),
    exact=st.booleans(),
)
def test_pointwise_dsp8_is_bit_exact_on_the_host(tmp_path, monkeypatch, seed, channels, last, hw, act, dead, left,
                                                 clamp, exact):
    with monkeypatch.context() as m:
        if exact:
            refuse_scaled(m, lambda size: np.arange(size) % 3 == 1)
        path = pointwise_chain(tmp_path, seed, [*channels, last], hw, act, min(dead, last))
        assert_host_c_matches_sim(_compiled(path, "cortex-m7", left, clamp), seed)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), channels=st.lists(st.integers(1, 6).map(lambda k: 4 * k), min_size=2, max_size=3),
       hw=st.tuples(st.integers(1, 5), st.integers(1, 5)), relu=st.booleans(), exact=st.booleans())
def test_weight_zero_points_are_bit_exact_on_the_host(tmp_path, monkeypatch, seed, channels, hw, relu, exact):
    with monkeypatch.context() as m:
        if exact:
            refuse_scaled(m, lambda size: np.arange(size) % 2 == 0)
        compiled = _compiled(uint8_pointwise_chain(tmp_path, seed, channels, hw, relu), "cortex-m7")
        # the random zero points put w + offset outside int8: the offset is folded through the input sums
        assert all(s.offset and s.exact == exact for s in _specs(compiled))
        assert_host_c_matches_sim(compiled, seed)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), in_c=st.integers(1, 10).map(lambda k: 4 * k), out_c=st.integers(1, 40),
       width=st.integers(1, 11))
def test_output_at_the_declared_overlap_limit_is_bit_exact(tmp_path, seed, in_c, out_c, width):
    """Input and output in the arena, the output starting `overlap_limits` bytes after the input: the quads'
    order (all four pixels read before any is written), tails included."""
    compiled = _compiled(pointwise_chain(tmp_path, seed, [in_c, out_c], (1, width)), "cortex-m7")
    assert_exact_at_declared_overlap(compiled, pointwise_dsp8, seed)


qemu = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                          reason="needs arm-none-eabi-gcc and qemu-system-arm")


def _run_on_core(compiled: Compiled, target: str) -> None:
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(6).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target(target), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


@qemu
@pytest.mark.parametrize("target, channels, hw, act, dead, exact, left, clamp", [
    # groups 1 to 5 (the 2-group loop entered at both offsets), pixel counts past a whole quad (9, 5, 6, 3),
    # a row of constant channels
    ("cortex-m4", [4, 8, 12, 16, 20, 9], (3, 3), "relu", 6, False, False, False),
    ("cortex-m7", [20, 12, 28, 6], (1, 5), "none", 0, False, True, False),  # the ties correction, left shifts
    # exact blocks after the assembly's, a constant channel stored alone
    ("cortex-m33", [12, 16, 7], (2, 3), "none", 1, True, False, False),
    ("cortex-m4", [8, 12, 10], (3, 1), "relu", 0, True, False, True),  # clamps: the C twin on the core
])
def test_pointwise_dsp8_is_bit_exact_on_the_core(tmp_path, monkeypatch, target, channels, hw, act, dead, exact, left,
                                                 clamp):
    if exact:
        refuse_scaled(monkeypatch, lambda size: np.arange(size) % 2 == 1)
    compiled = _compiled(pointwise_chain(tmp_path, 3, channels, hw, act, dead), target, left, clamp)
    assert all((s.ties, s.exact, s.clamps) == (act == "none", exact or left, clamp) for s in _specs(compiled))
    last = [n for n in compiled.graph.nodes if n.op == "conv2d"][-1]
    constant = pointwise_dsp.channels(last, compiled.graph).constant
    assert (constant.size, pointwise_dsp.copies_row(last, compiled.graph)) == (dead, dead > 2)
    if left:
        shifts = [lowered_params(n).stage.shift for n in compiled.graph.nodes if n.op == "conv2d"]
        assert all((s > 0).any() for s in shifts)
    _run_on_core(compiled, target)


@qemu
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m7"])
def test_weight_zero_points_are_bit_exact_on_the_core(tmp_path, target):
    compiled = _compiled(uint8_pointwise_chain(tmp_path, 5, [8, 20, 12], (3, 5), True), target)
    assert all(s.offset and not s.clamps for s in _specs(compiled))  # the assembly, with its offset prologue
    _run_on_core(compiled, target)
