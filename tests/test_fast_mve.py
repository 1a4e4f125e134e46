"""The Helium pointwise variant (mcugen/kernels/arm/pointwise_mve.py): bit-exact with the simulator
on the host through the C twins of templates/runtime/mcugen_mve_emul.h, and on the emulated
Cortex-M55 (whose assembly the host never runs: the tail-predicated partial chunks, the 2-lane
stores of an odd last pixel); its output stage equals TFLite's requantize."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c_harness import available_compilers, compile_and_run
from fast_cases import READ_LANES_C, pointwise_chain, records
from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.kernels.arm import pointwise_mve
from mcugen.targets import get_target
from mcugen.verify import run_c
from onnx_builders import OnnxGraph
from variant_checks import assert_exact_at_declared_overlap, assert_host_c_matches_sim

_STAGE_MAIN = """
#include <stdio.h>
#include "mcugen_mve.h"
""" + READ_LANES_C + """
/* per record of 4 lanes: prints per lane the output of the stage with the ties correction
 * (mbqm_any) and of the one without (shl32 + mbqm_up) */
int main(void)
{
    int32_t v[15];
    while (fread(v, sizeof v, 1, stdin) == 1) {
        int32_t acc[4], q[4], left[4], nr[4], fix[4], i;
        int8_t out[4], up[4];
        const int32_t offs[4] = {0, 1, 2, 3};
        (void)read_lanes(v, 4, offs, acc, q, left, nr, fix);
        mcugen_mve_scatter8(out, mcugen_mve_ld32(offs), mcugen_mve_clamp32(
            mcugen_mve_mbqm_any(mcugen_mve_ld32(acc), mcugen_mve_ld32(q), mcugen_mve_ld32(left), mcugen_mve_ld32(nr),
                                mcugen_mve_ld32(fix)), v[0], v[1], v[2]));
        mcugen_mve_scatter8(up, mcugen_mve_ld32(offs), mcugen_mve_clamp32(
            mcugen_mve_mbqm_up(mcugen_mve_shl32(mcugen_mve_ld32(acc), mcugen_mve_ld32(left)), mcugen_mve_ld32(q),
                               mcugen_mve_ld32(nr)), v[0], v[1], v[2]));
        for (i = 0; i < 4; ++i) {
            printf("%d %d\\n", (int)out[i], (int)up[i]);
        }
    }
    return 0;
}
"""


@pytest.mark.parametrize("cc", available_compilers())
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records(4, left_fits=True), min_size=1, max_size=40))
def test_output_stage_equals_tflite_and_ties_matter_only_above_act_min(cc, cases):
    data = b"".join(r.packed() for r in cases)
    expected = [v for r in cases for v in r.expected()]
    out = [int(v) for v in compile_and_run(_STAGE_MAIN, stdin=data, cc=cc).split()]
    assert out[::2] == expected
    # without the correction: the same wherever a negative value clamps to act_min (requant.needs_ties)
    ties_moot = [r.zp <= r.lo for r in cases for _ in r.lanes]
    assert [o for o, moot in zip(out[1::2], ties_moot) if moot] == [e for e, moot in zip(expected, ties_moot) if moot]


def _compiled(path: str) -> Compiled:
    compiled = compile_model(path, CalibrationOptions(), target="cortex-m55")
    assert {n.variant for n in compiled.graph.nodes if n.op == "conv2d"} == {"pointwise_mve"}
    return compiled


def _shift_left(compiled: Compiled) -> Compiled:
    """Every other output channel of each conv shifts left by 1..2 (real multipliers above 1 are rare in
    trained models): the simulator and the C both read the lowered stage, so both change."""
    def shifted(node):
        if node.op != "conv2d":
            return node
        stage = node.lowered.stage
        shift = stage.shift.copy()
        shift[::2] = 1 + np.arange(shift[::2].size) % 2
        lowered = dataclasses.replace(node.lowered, stage=dataclasses.replace(stage, shift=shift))
        return dataclasses.replace(node, lowered=lowered)

    graph = dataclasses.replace(compiled.graph, nodes=tuple(shifted(n) for n in compiled.graph.nodes))
    return dataclasses.replace(compiled, graph=graph)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    channels=st.lists(st.integers(1, 40), min_size=3, max_size=4),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    act=st.sampled_from(["relu", "relu6", "none"]),
    dead=st.integers(0, 3),
    left=st.booleans(),
)
def test_pointwise_mve_is_bit_exact_on_the_host(tmp_path, seed, channels, hw, act, dead, left):
    compiled = _compiled(pointwise_chain(tmp_path, seed, channels, hw, act, min(dead, channels[-1])))
    if left:
        compiled = _shift_left(compiled)
    assert_host_c_matches_sim(compiled, seed)


@pytest.mark.parametrize("target, kernel, expected", [
    ("cortex-m55", 1, "pointwise_mve"),
    ("cortex-m55", 3, "portable"),  # not 1x1 (3 input channels: no conv_mve either, 3 * 3 rows of 3 fit)
    ("cortex-m7", 1, "pointwise_dsp"),  # no Helium
])
def test_select_kernels_prefers_pointwise_mve_on_helium(tmp_path, target, kernel, expected):
    g = OnnxGraph(3)
    x = g.conv(g.input("x", [1, 8, 6, 6]), 12, kernel=kernel, pads=[0, 0, 0, 0])
    path = tmp_path / "sel.onnx"
    path.write_bytes(g.build([x]).SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target=target)
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == [expected]


def test_weights_are_packed_per_channel_pair_and_chunk_zero_padded():
    w = (np.arange(5 * 20) % 251 - 125).astype(np.int8).reshape(5, 20)
    pairs = np.array([[3, 1], [4, 4]])
    packed = pointwise_mve.packed_weights(w, pairs).reshape(2, 2, 2, 16)  # pair, chunk, channel, byte
    np.testing.assert_array_equal(packed[0, 0, 0], w[3, :16])
    np.testing.assert_array_equal(packed[0, 0, 1], w[1, :16])
    np.testing.assert_array_equal(packed[0, 1, 1, :4], w[1, 16:])
    np.testing.assert_array_equal(packed[0, 1, :, 4:], 0)
    np.testing.assert_array_equal(packed[1, 1, 0], packed[1, 1, 1])
    np.testing.assert_array_equal(pointwise_mve.offsets(pairs, 10), [[3, 1, 13, 11], [4, 4, 14, 14]])


qemu = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                          reason="needs arm-none-eabi-gcc and qemu-system-arm")


@qemu
@pytest.mark.parametrize("channels, hw, act, dead, left", [
    ([20, 13, 37], (3, 3), "relu6", 2, False),  # partial chunks after whole ones, odd pixels, constant channels
    ([8, 33, 16], (1, 3), "none", 0, True),  # a partial chunk alone, the masked ties correction, left shifts
    ([16, 24, 9], (2, 2), "none", 1, False),  # whole chunks only, the ties correction of right shifts
])
def test_pointwise_mve_is_bit_exact_on_the_m55(tmp_path, channels, hw, act, dead, left):
    compiled = _compiled(pointwise_chain(tmp_path, 4, channels, hw, act, dead))
    if left:
        compiled = _shift_left(compiled)
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(6).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m55"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), in_c=st.integers(1, 40), out_c=st.integers(1, 40), width=st.integers(1, 11))
def test_output_at_the_declared_overlap_limit_is_bit_exact(tmp_path, seed, in_c, out_c, width):
    """Input and output in the arena, the output starting `overlap_limits` bytes after the input."""
    compiled = _compiled(pointwise_chain(tmp_path, seed, [in_c, out_c], (1, width)))
    assert_exact_at_declared_overlap(compiled, pointwise_mve, seed)
