"""The Arm DSP pointwise variant (mcugen/kernels/arm/pointwise_dsp.py) beyond VWW's ReLU layers:
its stream layout, and bit-exactness with the simulator for every structure it has (the ties
correction, clamps, exact blocks, left shifts, constant channels alone or as a row, every input
word count modulo the unroll, odd pixel counts) on the host through the C twins, and on emulated
cores, where the scaled blocks run in the assembly the host never builds."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fast_cases import pointwise_chain
from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.kernels.arm import pointwise_dsp
from mcugen.targets import get_target
from mcugen.verify import run_c
from variant_checks import assert_host_c_matches_sim, refuse_scaled, restaged


def test_weights_are_packed_per_block_and_input_word():
    w = (np.arange(6 * 8) % 251 - 125).astype(np.int8).reshape(6, 8)
    blocks = np.array([[5, 0, 2, 2]])
    scale = np.array([1, 2, 4, 4])
    packed = pointwise_dsp.packed_weights(w, blocks, scale).reshape(4, 4).view("<i2").reshape(4, 4, 2)
    # words of input: group 0's (x0, x2) and (x1, x3), then group 1's; per word the block's 4 channels
    for word, (a, b) in enumerate([(0, 2), (1, 3), (4, 6), (5, 7)]):
        for slot, (channel, factor) in enumerate(zip(blocks[0], scale)):
            assert packed[word, slot].tolist() == [w[channel, a] * factor, w[channel, b] * factor]


def _compiled(path: str, target: str, left: bool = False, clamp: bool = False) -> Compiled:
    compiled = compile_model(path, CalibrationOptions(), target=target)
    assert {n.variant for n in compiled.graph.nodes if n.op == "conv2d"} == {"pointwise_dsp"}
    return restaged(compiled, left, clamp)


def _specs(compiled: Compiled) -> list[pointwise_dsp.PointwiseSpec]:
    return [pointwise_dsp.spec(n, compiled.graph, "speed") for n in compiled.graph.nodes if n.op == "conv2d"]


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
)
def test_pointwise_dsp_is_bit_exact_on_the_host(tmp_path, seed, channels, last, hw, act, dead, left, clamp):
    path = pointwise_chain(tmp_path, seed, [*channels, last], hw, act, min(dead, last))
    assert_host_c_matches_sim(_compiled(path, "cortex-m7", left, clamp), seed)


qemu = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                          reason="needs arm-none-eabi-gcc and qemu-system-arm")


def _exact_every_other(monkeypatch) -> None:
    refuse_scaled(monkeypatch, lambda size: np.arange(size) % 2 == 1)


@qemu
@pytest.mark.parametrize("target, channels, hw, act, dead, exact, left, clamp", [
    # input words 2, 4, 6, 8 and 10: the word loop entered at every offset; odd pixels; a row of constant channels
    ("cortex-m4", [4, 8, 12, 16, 20, 9], (3, 3), "relu", 6, False, False, False),
    ("cortex-m7", [20, 12, 28, 6], (1, 5), "none", 0, False, False, False),  # the ties correction
    # exact blocks after the assembly's, a constant channel stored alone
    ("cortex-m33", [12, 16, 7], (2, 3), "none", 1, True, False, False),
    ("cortex-m4", [8, 12, 10], (3, 1), "relu", 0, True, False, True),  # clamps: the C twin on the core
])
def test_pointwise_dsp_is_bit_exact_on_the_core(tmp_path, monkeypatch, target, channels, hw, act, dead, exact, left,
                                                clamp):
    if exact:
        _exact_every_other(monkeypatch)
    compiled = _compiled(pointwise_chain(tmp_path, 3, channels, hw, act, dead), target, left, clamp)
    specs = _specs(compiled)
    assert all((s.ties, s.exact, s.clamps) == (act == "none", exact or left, clamp) for s in specs)
    last = [n for n in compiled.graph.nodes if n.op == "conv2d"][-1]
    constant = pointwise_dsp.channels(last, compiled.graph).constant
    assert (constant.size, pointwise_dsp.copies_row(last, compiled.graph)) == (dead, dead > 2)
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(6).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target(target), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
