"""Fast (Arm DSP) kernel variants: their output stage (NumPy and C) equals TFLite's, and generated models
that use them compute exactly the simulator's int8 on the host, through the portable C
emulation of the intrinsics (templates/runtime/mcugen_acle_emul.h)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c_harness import available_compilers, compile_and_run
from fast_cases import pointwise_chain
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm import pointwise_dsp
from mcugen.kernels.arm.requant import (
    MAX_RIGHT,
    MAX_SCALED_LEFT,
    constant_channels,
    needs_ties,
    scaled_channels,
    scaled_requantize,
    scaled_stage,
)
from mcugen.kernels.weights import OutputStage
from mcugen.quant.arith import requantize
from variant_checks import assert_host_c_matches_sim, refuse_scaled


@st.composite
def scaled_cases(draw: st.DrawFn) -> tuple[OutputStage, int, np.ndarray]:
    """A one-channel stage the scaled path accepts, its accumulator bound and accumulators
    (the bound's ends and ties among them)."""
    shift = draw(st.integers(-MAX_RIGHT, -1) | st.integers(0, MAX_SCALED_LEFT))
    q = draw(st.one_of(st.just(0), st.just(1 << 30), st.integers(1 << 30, (1 << 31) - 1)))
    left = max(shift, 0)
    bound = draw(st.integers(0, ((1 << 31) - 1) >> (left + 1)))
    zp = draw(st.integers(-128, 127))
    lo = draw(st.integers(-128, 127))
    hi = draw(st.integers(lo, 127))
    stage = OutputStage(0, 0, zp, lo, hi, np.array([q], np.int32), np.array([shift], np.int32))
    accs = draw(st.lists(st.integers(-bound, bound), min_size=1, max_size=20)) + [bound, -bound]
    if q == 1 << 30 and shift < 0:  # the real value is acc / 2^(1 - shift): odd multiples of 2^-shift are ties
        odd = (2 * j + 1 << -shift for j in draw(st.lists(st.integers(-8, 7), min_size=1, max_size=8)))
        accs += [t for t in odd if abs(t) <= bound]
    return stage, bound, np.array(accs, np.int64)


@settings(max_examples=500, deadline=None)
@given(scaled_cases())
def test_scaled_output_stage_equals_tflite(case):
    stage, bound, acc = case
    accepted = scaled_channels(stage, np.array([bound]))
    # right >= 1, or right == 0 in a layer without the ties correction, is the only condition left to fail
    assert accepted[0] == (stage.shift[0] < 0 or not needs_ties(stage))
    if not accepted[0]:
        return
    ss = scaled_stage(stage, np.zeros(1), np.array([0]))
    expected = requantize(acc, stage.multiplier[0], stage.shift[0], stage.output_offset, stage.act_min, stage.act_max)
    np.testing.assert_array_equal(scaled_requantize(acc[:, None], ss)[:, 0], expected)


@settings(max_examples=300, deadline=None)
@given(
    q=st.one_of(st.just(0), st.integers(1 << 30, (1 << 31) - 1)),
    shift=st.integers(-31, 30),
    zp=st.integers(-128, 127),
    lo=st.integers(-(1 << 31), (1 << 31) - 1),
    width=st.integers(0, 1 << 20),
    samples=st.lists(st.floats(0, 1), min_size=1, max_size=10),
)
def test_constant_channels_are_constant_over_their_range(q, shift, zp, lo, width, samples):
    hi = min(lo + width, (1 << 31) - 1)
    stage = OutputStage(0, 0, zp, -128, 127, np.array([q], np.int32), np.array([shift], np.int32))
    constant, value = constant_channels(stage, np.array([lo]), np.array([hi]))
    if lo == hi and lo << max(shift, 0) in range(-(1 << 31), 1 << 31):
        assert constant[0]
    if constant[0]:
        accs = np.array([lo, hi, *(lo + int(f * (hi - lo)) for f in samples)], np.int64)
        np.testing.assert_array_equal(requantize(accs, q, shift, zp, -128, 127), value[0])


_SCALED_OUT_MAIN = """
#include <stdio.h>
#include "mcugen_dsp.h"
int main(void)
{
    int32_t v[7];
    while (fread(v, sizeof v, 1, stdin) == 1) {
        const int32_t a = v[0], k = v[4] ? v[2] - (int32_t)(a < 0) : v[2];
        const int32_t out = mcugen_ssat8(mcugen_asr(mcugen_smmlar(a, v[1], k), v[3]));
        printf("%d\\n", (int)mcugen_min(mcugen_max(out, v[5]), v[6]));
    }
    return 0;
}
"""


@pytest.mark.parametrize("cc", available_compilers())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(scaled_cases(), min_size=1, max_size=30))
def test_c_scaled_output_stage_equals_tflite(cc, cases):
    """The kernels' C of the scaled stage (SMMLAR, ASR, SSAT through mcugen_dsp.h, the host's
    emulation header here), on the scaled accumulator, with the ties correction exactly when
    needs_ties asks for it."""
    rows, expected = [], []
    for stage, bound, acc in cases:
        if not scaled_channels(stage, np.array([bound]))[0]:
            continue
        ss = scaled_stage(stage, np.zeros(1), np.array([0]))
        for a in acc * ss.scale[0]:
            rows.append(struct.pack("<7i", int(a), int(ss.multiplier[0]), int(ss.k[0]), int(ss.right[0]),
                                    int(ss.ties), stage.act_min, stage.act_max))
        expected += requantize(acc, stage.multiplier[0], stage.shift[0], stage.output_offset, stage.act_min,
                               stage.act_max).tolist()
    out = compile_and_run(_SCALED_OUT_MAIN, stdin=b"".join(rows), cc=cc)
    assert [int(v) for v in out.split()] == expected


def test_pointwise_exact_pairs_are_bit_exact_on_the_host(tmp_path, monkeypatch):
    """Channels the scaled stage refuses go through the exact pairs (VWW has none: force every
    other channel there)."""
    refuse_scaled(monkeypatch, lambda size: np.arange(size) % 2 == 1)
    path = pointwise_chain(tmp_path, 7, [8, 12, 9], (3, 3), dead=2)
    compiled = compile_model(path, CalibrationOptions(), target="cortex-m7")
    nodes = [n for n in compiled.graph.nodes if n.op == "conv2d"]
    assert all(pointwise_dsp.channels(n, compiled.graph).exact.size for n in nodes)
    assert_host_c_matches_sim(compiled, 7)


@pytest.mark.parametrize("target, first_in, expected", [
    ("cortex-m3", 8, ["portable", "portable"]),  # no DSP extension
    ("host", 8, ["portable", "portable"]),
    ("cortex-m7", 6, ["portable", "pointwise_dsp"]),  # 6 input channels: not whole SXTB16 groups
    ("cortex-m55", 8, ["pointwise_mve", "pointwise_mve"]),  # Helium first (pointwise_mve takes any channel count)
])
def test_select_kernels_picks_variants_the_target_and_shape_allow(tmp_path, target, first_in, expected):
    path = pointwise_chain(tmp_path, 1, [first_in, 8, 5], (2, 3))
    compiled = compile_model(path, CalibrationOptions(), target=target)
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == expected
