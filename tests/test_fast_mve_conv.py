"""The Helium variants depthwise_mve and conv_mve (mcugen/kernels/arm/) compute exactly the
simulator's int8 on the host, through the portable C twins of templates/runtime/mcugen_mve_emul.h;
their vector output stage equals TFLite's requantize over the whole int32 range."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c_harness import available_compilers, compile_and_run
from fast_cases import READ_LANES_C, depthwise_net, records
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm.depthwise_mve import group_starts, lane_order, packed_weights
from onnx_builders import OnnxGraph
from variant_checks import assert_host_c_matches_sim

_STAGE_MAIN = """
#include <stdio.h>
#include "mcugen_mve.h"
""" + READ_LANES_C + """
/* per record of 8 lanes: prints the 8 outputs of the general stage, then (0 when some lane
 * does not shift right) those of the right-shift-only one */
int main(void)
{
    int32_t v[27];
    while (fread(v, sizeof v, 1, stdin) == 1) {
        int32_t acc[8], q[8], left[8], nr[8], fix[8], i;
        int8_t out[8], fast[8] = {0};
        const int32_t slot[8] = {0, 4, 1, 5, 2, 6, 3, 7}; /* even channels, then odd */
        const int32_t right = read_lanes(v, 8, slot, acc, q, left, nr, fix);
        mcugen_mve_st8_s16(out, mcugen_mve_out16(
            mcugen_mve_mbqm_any(mcugen_mve_ld32(acc), mcugen_mve_ld32(q), mcugen_mve_ld32(left), mcugen_mve_ld32(nr),
                                mcugen_mve_ld32(fix)),
            mcugen_mve_mbqm_any(mcugen_mve_ld32(acc + 4), mcugen_mve_ld32(q + 4), mcugen_mve_ld32(left + 4),
                                mcugen_mve_ld32(nr + 4), mcugen_mve_ld32(fix + 4)), v[0], v[1], v[2]));
        if (right) {
            mcugen_mve_st8_s16(fast, mcugen_mve_out16(
                mcugen_mve_mbqm(mcugen_mve_ld32(acc), mcugen_mve_ld32(q), mcugen_mve_ld32(nr)),
                mcugen_mve_mbqm(mcugen_mve_ld32(acc + 4), mcugen_mve_ld32(q + 4), mcugen_mve_ld32(nr + 4)),
                v[0], v[1], v[2]));
        }
        for (i = 0; i < 8; ++i) {
            printf("%d %d\\n", (int)out[i], (int)fast[i]);
        }
    }
    return 0;
}
"""


@pytest.mark.parametrize("cc", available_compilers())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records(8, left_fits=False, right_only=True), min_size=1, max_size=40))
def test_vector_output_stage_equals_tflite(cc, cases):
    data = b"".join(r.packed() for r in cases)
    expected = [(v, v if r.right_only else 0) for r in cases for v in r.expected()]
    out = [int(v) for v in compile_and_run(_STAGE_MAIN, stdin=data, cc=cc).split()]
    assert list(zip(out[::2], out[1::2])) == expected


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(8, 40),
    hw=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    relu6=st.booleans(),
    dead=st.integers(0, 2),
)
def test_depthwise_mve_is_bit_exact_on_the_host(tmp_path, seed, c, hw, stride, pads, relu6, dead):
    if hw[0] + pads[0] + pads[2] < 3 or hw[1] + pads[1] + pads[3] < 3:
        return  # no output pixel
    compiled = compile_model(depthwise_net(tmp_path, seed, 3, c, hw, stride, pads, relu6, dead), CalibrationOptions(),
                             target="cortex-m55")
    assert [n.variant for n in compiled.graph.nodes if n.op == "depthwise_conv2d"] == ["depthwise_mve"]
    assert_host_c_matches_sim(compiled, seed)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    kernel=st.sampled_from([(3, 3), (3, 1), (3, 5)]),
    stride=st.sampled_from([1, 2]),
    pad=st.integers(0, 2),
    in_c=st.integers(1, 5),
    out_c=st.integers(8, 20),
    hw=st.tuples(st.integers(3, 9), st.integers(3, 9)),
)
def test_conv_mve_is_bit_exact_on_the_host(tmp_path, seed, kernel, stride, pad, in_c, out_c, hw):
    if hw[1] + 2 * pad < kernel[1]:
        return  # no output column
    in_c = min(in_c, 16 // kernel[1])  # a kernel row fits one vector
    g = OnnxGraph(seed)
    x = g.relu(g.conv(g.input("x", [1, in_c, *hw]), out_c, kernel=kernel, stride=stride, pads=[pad, pad, 0, pad]))
    path = tmp_path / "conv.onnx"
    path.write_bytes(g.build([x]).SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target="cortex-m55")
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == ["conv_mve"]
    assert_host_c_matches_sim(compiled, seed)


@pytest.mark.parametrize("target, op, c, kernel, expected", [
    ("cortex-m55", "depthwise", 8, 3, "depthwise_mve"),
    ("cortex-m55", "depthwise", 4, 3, "depthwise_dsp"),  # fewer channels than a vector's 8 lanes
    ("cortex-m7", "depthwise", 8, 3, "depthwise_dsp"),  # no Helium
    ("cortex-m55", "conv", 8, 3, "conv_mve"),
    ("cortex-m55", "conv", 8, 5, "conv_dsp"),  # 5 * 3 channels fit a vector, 5 rows do not fit the registers
    ("cortex-m55", "conv", 4, 3, "conv_dsp"),  # fewer output channels than lanes
])
def test_select_kernels_prefers_helium_where_it_applies(tmp_path, target, op, c, kernel, expected):
    g = OnnxGraph(2)
    x = g.input("x", [1, 3, 9, 9])
    if op == "depthwise":
        y = g.depthwise(g.conv(x, c, kernel=1, pads=[0, 0, 0, 0]), kernel=kernel)
    else:
        y = g.conv(x, c, kernel=kernel, stride=2)
    path = tmp_path / "sel.onnx"
    path.write_bytes(g.build([y]).SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target=target)
    want = "depthwise_conv2d" if op == "depthwise" else "conv2d"
    assert [n.variant for n in compiled.graph.nodes if n.op == want][-1:] == [expected]


def test_depthwise_groups_overlap_at_the_end_and_pack_their_channels():
    np.testing.assert_array_equal(group_starts(8), [0])
    np.testing.assert_array_equal(group_starts(20), [0, 8, 12])
    np.testing.assert_array_equal(lane_order(np.array([12]))[0], [12, 14, 16, 18, 13, 15, 17, 19])
    w = (np.arange(9 * 20).reshape(9, 20) % 251 - 125).astype(np.int8)
    packed = packed_weights(w, group_starts(20), np.int8).reshape(3, 9, 8)
    np.testing.assert_array_equal(packed[2], w[:, 12:20])  # the last group: channels 12..19, per tap
    np.testing.assert_array_equal(packed[1, 4], w[4, 8:16])
