"""The arithmetic spec: Python (mcugen.quant.arith) and C (mcugen_arith.h) agree bit for bit,
and both match independent models (exact rationals, floats, values computed by hand).

Twin tests batch thousands of cases into one run of one C driver per compiler,
built with UBSan so any undefined behaviour on the documented ranges fails.
"""
from __future__ import annotations

import ast
import math
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c_harness import CFLAGS, REPO, RUNTIME, available_compilers, compile_and_run
from mcugen.quant import arith
from mcugen.quant.arith import INT32_MAX, INT32_MIN

HEADER = RUNTIME / "mcugen_arith.h"
SANITIZE = ("-fsanitize=undefined", "-fno-sanitize-recover=all")

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mcugen_arith.h"

static long long next(void)
{
    long long v;
    if (scanf("%lld", &v) != 1) exit(3);
    return v;
}

static int32_t next32(void) { return (int32_t)next(); }

int main(void)
{
    char op[16];
    while (scanf("%15s", op) == 1) {
        if (strcmp(op, "srdhm") == 0) {
            const int32_t a = next32(), b = next32();
            printf("%ld\n", (long)mcugen_srdhm(a, b));
        } else if (strcmp(op, "rdbpot") == 0) {
            const int32_t x = next32(), e = next32();
            printf("%ld\n", (long)mcugen_rdbpot(x, e));
        } else if (strcmp(op, "mbqm") == 0) {
            const int32_t x = next32(), q = next32(), s = next32();
            printf("%ld\n", (long)mcugen_mbqm(x, q, s));
        } else if (strcmp(op, "requantize") == 0) {
            const int32_t acc = next32(), q = next32(), s = next32(), zp = next32(), lo = next32(), hi = next32();
            printf("%d\n", (int)mcugen_requantize(acc, q, s, zp, lo, hi));
        } else if (strcmp(op, "rounded_div") == 0) {
            const int32_t sum = next32(), count = next32();
            printf("%ld\n", (long)mcugen_rounded_div(sum, count));
        } else if (strcmp(op, "srmbpot") == 0) {
            const int32_t x = next32(), e = next32();
            printf("%ld\n", (long)mcugen_srmbpot(x, e));
        } else if (strcmp(op, "rescale") == 0) {
            const int32_t x = next32(), src = next32(), dst = next32();
            printf("%ld\n", (long)mcugen_rescale(x, src, dst));
        } else if (strcmp(op, "exp_quarter") == 0) {
            const int32_t a = next32();
            printf("%ld\n", (long)mcugen_exp_on_interval_between_negative_one_quarter_and_0_excl(a));
        } else if (strcmp(op, "exp_neg") == 0) {
            const int32_t a = next32();
            printf("%ld\n", (long)mcugen_exp_on_negative_values(a));
        } else if (strcmp(op, "one_over") == 0) {
            const int32_t a = next32();
            printf("%ld\n", (long)mcugen_one_over_one_plus_x_for_x_in_0_1(a));
        } else if (strcmp(op, "clz") == 0) {
            const uint32_t x = (uint32_t)next();
            printf("%ld\n", (long)mcugen_count_leading_zeros(x));
        } else if (strcmp(op, "reciprocal") == 0) {
            const int32_t x = next32(), digits = next32();
            int32_t bits;
            const int32_t r = mcugen_get_reciprocal(x, digits, &bits);
            printf("%ld %ld\n", (long)r, (long)bits);
        } else if (strcmp(op, "softmax") == 0) {
            const int32_t depth = next32(), mult = next32(), shift = next32(), diff_min = next32();
            int8_t *in = (int8_t *)malloc((size_t)depth), *out = (int8_t *)malloc((size_t)depth);
            int32_t i;
            if (in == NULL || out == NULL) return 4;
            for (i = 0; i < depth; ++i) in[i] = (int8_t)next32();
            mcugen_softmax_s8_row(in, out, depth, mult, shift, diff_min);
            for (i = 0; i < depth; ++i) printf("%d ", (int)out[i]);
            printf("\n");
            free(in);
            free(out);
        } else {
            return 2;
        }
    }
    return 0;
}
"""


@pytest.fixture(scope="module", params=available_compilers())
def cc(request: pytest.FixtureRequest) -> str:
    return request.param


def run_c(cc: str, lines: list[str]) -> list[list[int]]:
    """One C run over many cases: each input line gives one output line of ints."""
    out = compile_and_run(DRIVER, ("\n".join(lines) + "\n").encode(), extra_flags=SANITIZE, cc=cc)
    rows = [[int(t) for t in line.split()] for line in out.decode().splitlines()]
    assert len(rows) == len(lines)
    return rows


def assert_twins(cc: str, op: str, function, cases: list[tuple[int, ...]]) -> None:
    """C, one case per line, equals Python called once on the columns (so broadcasting is tested too)."""
    c = np.array([row[0] for row in run_c(cc, [f"{op} " + " ".join(map(str, case)) for case in cases])])
    columns = [np.array(column, np.int64) for column in zip(*cases)]
    python = np.asarray(function(*columns), np.int64)
    mismatch = np.flatnonzero(c != python)
    assert mismatch.size == 0, [(cases[i], int(c[i]), int(python[i])) for i in mismatch[:10]]


# ---------------------------------------------------------------- edge-case sweeps

EDGES = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -65537, -3, -2, -1,
         0, 1, 2, 3, 65537, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX]  # fmt: skip
MULTIPLIERS = [0, 1 << 30, (1 << 30) + 1, 1518500250, 1717986918, INT32_MAX - 1, INT32_MAX]
RNG_SEED = 20240611


def _random_int32(rng: np.random.Generator, n: int) -> list[int]:
    # log-uniform magnitudes with random sign, so small and large values are both common
    magnitude = np.floor(2.0 ** rng.uniform(0, 31, n)).astype(np.int64)
    return [int(v) for v in np.clip(magnitude * rng.choice([-1, 1], n), INT32_MIN, INT32_MAX)]


def test_srdhm_edges_and_ties(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    cases = [(a, b) for a in EDGES for b in EDGES]
    # exact ties: a*b = odd * 2^30, so a*b / 2^31 ends in .5
    for j in range(31):
        for sign in (1, -1):
            odd = 2 * int(rng.integers(0, 1 << (30 - j))) + 1
            cases.append((sign * odd, 1 << (30 - j)) if j < 30 else (sign * odd, 1))
    cases += list(zip(_random_int32(rng, 1000), _random_int32(rng, 1000)))
    assert_twins(cc, "srdhm", arith.srdhm, cases)


def test_rdbpot_every_exponent(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    cases = [(x, e) for x in EDGES for e in range(32)]
    for e in range(1, 32):  # ties x = (2k+1) * 2^(e-1), both signs
        k = int(rng.integers(0, 1 << (31 - e)))
        cases += [((2 * k + 1) << (e - 1), e), (-((2 * k + 1) << (e - 1)), e)]
    cases += [(x, int(rng.integers(0, 32))) for x in _random_int32(rng, 1000)]
    assert_twins(cc, "rdbpot", arith.rdbpot, cases)


def test_mbqm_every_shift(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    cases = [(x, q, s) for s in range(-31, 32) for x in EDGES for q in MULTIPLIERS]
    for s in range(-31, 1):  # q = 1/2: srdhm halves x exactly, then rdbpot ties at x = (2k+1) * 2^(1-s)
        if 1 - s <= 30:
            cases += [((2 * int(rng.integers(0, 1 << (30 - (1 - s)))) + 1) << (1 - s), 1 << 30, s)]
    cases += [(x, int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-31, 32))) for x in _random_int32(rng, 2000)]
    assert_twins(cc, "mbqm", arith.mbqm, cases)


def test_requantize_clamps(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED + 3)
    cases = []
    for acc in _random_int32(rng, 1500) + EDGES:
        lo = int(rng.integers(-128, 128))
        cases.append((acc, int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-31, 8)),
                      int(rng.integers(-128, 128)), lo, int(rng.integers(lo, 128))))  # fmt: skip
    cases += [(INT32_MAX, INT32_MAX, 0, 127, -128, 127), (INT32_MIN, INT32_MAX, 0, -128, -128, 127)]
    assert_twins(cc, "requantize", arith.requantize, cases)


def test_rounded_div_negatives_and_ties(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED + 4)
    cases = [(s, c) for c in (1, 2, 3, 4, 9, 49) for s in range(-3 * c, 3 * c + 1)]  # every tie of small counts
    for _ in range(1000):
        count = int(rng.integers(1, 1 << int(rng.integers(1, 31))))
        bound = INT32_MAX - count // 2
        cases.append((int(rng.integers(-bound, bound + 1)), count))
    cases += [(INT32_MAX - 1, 2), (-(INT32_MAX - 1), 2), (0, INT32_MAX)]
    assert_twins(cc, "rounded_div", arith.rounded_div, cases)


def test_srmbpot_and_rescale_every_exponent(cc: str) -> None:
    assert_twins(cc, "srmbpot", arith.srmbpot, [(x, e) for x in EDGES for e in range(-31, 32)])
    cases = [(x, src, dst) for x in EDGES for src, dst in ((5, 0), (0, 12), (4, 2), (1, 0), (0, 31), (31, 0))]
    assert_twins(cc, "rescale", arith.rescale, cases)


def test_fixed_point_helpers(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED + 5)
    quarter = [-(1 << 29), -(1 << 29) + 1, -(1 << 28), -2, -1] + [-int(v) for v in rng.integers(1, (1 << 29) + 1, 500)]
    assert_twins(cc, "exp_quarter", arith.exp_on_interval_between_negative_one_quarter_and_0_excl,
                 [(a,) for a in quarter])  # fmt: skip
    negative = [INT32_MIN, INT32_MIN + 1, -(1 << 24), -(1 << 24) - 1, -(1 << 26), -1, 0]
    negative += [-(k << 24) for k in range(128)] + [-int(v) for v in rng.integers(0, 1 << 31, 1500)]
    assert_twins(cc, "exp_neg", arith.exp_on_negative_values, [(a,) for a in negative])
    unit = [0, 1, (1 << 30) - 1, 1 << 30, INT32_MAX - 1, INT32_MAX] + [int(v) for v in rng.integers(0, 1 << 31, 500)]
    assert_twins(cc, "one_over", arith.one_over_one_plus_x_for_x_in_0_1, [(a,) for a in unit])
    words = [0, 1, (1 << 32) - 1] + [1 << k for k in range(32)] + [(1 << k) - 1 for k in range(1, 32)]
    assert_twins(cc, "clz", arith.count_leading_zeros, [(x,) for x in words])


def test_get_reciprocal(cc: str) -> None:
    rng = np.random.default_rng(RNG_SEED + 6)
    cases = [(x, 12) for x in [1, 2, 1 << 19, (1 << 19) + 1, 1 << 30, INT32_MAX]]
    cases += [(int(x), int(d)) for x, d in zip(rng.integers(1, 1 << 31, 500), rng.integers(0, 32, 500))]
    c = run_c(cc, [f"reciprocal {x} {d}" for x, d in cases])
    reciprocal, bits = arith.get_reciprocal(np.array([x for x, _ in cases]), np.array([d for _, d in cases]))
    assert [row for row in c] == [[int(r), int(b)] for r, b in zip(reciprocal, bits)]


# ---------------------------------------------------------------- softmax twins


def _softmax_line(row: np.ndarray, params: tuple[int, int, int]) -> str:
    return f"softmax {row.size} {params[0]} {params[1]} {params[2]} " + " ".join(map(str, row.tolist()))


def _assert_softmax_twins(cc: str, rows: list[np.ndarray], scales: list[float]) -> None:
    params = [arith.softmax_params(1.0, scale) for scale in scales]
    c = run_c(cc, [_softmax_line(row, p) for row, p in zip(rows, params)])
    for row, p, c_out in zip(rows, params, c):
        assert arith.softmax_s8(row, *p).tolist() == c_out, (row.tolist(), p)


def _random_softmax_batch(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[float]]:
    rows, scales = [], []
    for i in range(n):
        depth = int(rng.integers(1, 33))
        kind = i % 4
        if kind == 0:  # constant rows
            row = np.full(depth, rng.integers(-128, 128), np.int8)
        elif kind == 1:  # a wide spread: with scales near 1 many diffs fall below diff_min
            row = rng.choice(np.array([-128, -100, -20, 0, 60, 127]), depth).astype(np.int8)
        else:
            row = rng.integers(-128, 128, depth).astype(np.int8)
        rows.append(row)
        scales.append(float(2.0 ** rng.uniform(-10, 6)))  # left shifts 13..31, diff_min -3968..0
    return rows, scales


def test_softmax_rows(cc: str) -> None:
    rows, scales = _random_softmax_batch(np.random.default_rng(RNG_SEED + 7), 600)
    # the largest scales give input_left_shift 31 and diff_min 0
    rows += [np.array([5, 4, -3, 5], np.int8), np.array([-128], np.int8)]
    scales += [16.0, 100.0]
    _assert_softmax_twins(cc, rows, scales)


def test_softmax_deep_rows(cc: str) -> None:
    """MobileNet's 1001 classes; constant rows of depth >= 512 are where TFLite aborts and we give -128."""
    rng = np.random.default_rng(RNG_SEED + 8)
    rows = [rng.integers(-128, 128, 1001).astype(np.int8), np.zeros(511, np.int8), np.zeros(512, np.int8),
            np.zeros(1001, np.int8), np.full(4095, 7, np.int8)]  # fmt: skip
    _assert_softmax_twins(cc, rows, [0.05, 0.1, 0.1, 0.1, 1.0])
    assert (arith.softmax_s8(np.zeros(512, np.int8), *arith.softmax_params(1.0, 0.1)) == -128).all()
    # 511 equal exps: 1/511 of 256 is 0.501 LSB, which rounds up above the -128 floor
    assert (arith.softmax_s8(np.zeros(511, np.int8), *arith.softmax_params(1.0, 0.1)) == -127).all()


softmax_case = st.tuples(
    st.lists(st.integers(-128, 127), min_size=1, max_size=32).map(lambda v: np.array(v, np.int8)),
    st.floats(min_value=2.0**-10, max_value=64.0),
)


@settings(max_examples=10, deadline=None)
@given(st.lists(softmax_case, min_size=20, max_size=40))
def test_softmax_hypothesis(cc: str, cases: list[tuple[np.ndarray, float]]) -> None:
    _assert_softmax_twins(cc, [row for row, _ in cases], [scale for _, scale in cases])


int32s = st.integers(INT32_MIN, INT32_MAX)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(int32s, int32s, int32s, st.integers(-31, 31)), min_size=100, max_size=300))
def test_primitives_hypothesis(cc: str, cases: list[tuple[int, int, int, int]]) -> None:
    assert_twins(cc, "srdhm", arith.srdhm, [(a, b) for a, b, _, _ in cases])
    assert_twins(cc, "rdbpot", arith.rdbpot, [(a, abs(s)) for a, _, _, s in cases])
    assert_twins(cc, "mbqm", arith.mbqm, [(a, b, s) for a, b, _, s in cases])
    assert_twins(cc, "srmbpot", arith.srmbpot, [(a, s) for a, _, _, s in cases])
    assert_twins(cc, "requantize", arith.requantize,
                 [(a, b, s, c % 256 - 128, -128, 127) for a, b, c, s in cases])  # fmt: skip
    assert_twins(cc, "rounded_div", arith.rounded_div,
                 [(a // 2, abs(b) // 2 + 1) for a, b, _, _ in cases])  # fmt: skip
    negatives = [(-abs(c) if c > INT32_MIN else c,) for _, _, c, _ in cases]
    assert_twins(cc, "exp_neg", arith.exp_on_negative_values, negatives)


# ---------------------------------------------------------------- independent models


def _round_half_away(r: Fraction) -> int:
    return int(math.copysign(math.floor(abs(r) + Fraction(1, 2)), r))


def _model_srdhm(a: int, b: int) -> int:
    """round(a*b / 2^31) with ties toward +inf, saturated to int32, as exact rationals."""
    return min(math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2)), INT32_MAX)


def _model_mbqm(x: int, q: int, shift: int) -> int:
    """Double rounding: the doubling high multiply rounds, then the right shift rounds again."""
    product = _model_srdhm(x << max(shift, 0), q)
    return _round_half_away(Fraction(product, 1 << max(-shift, 0)))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mbqm_matches_rational_model(data: st.DataObject) -> None:
    shift = data.draw(st.integers(-31, 30))
    bound = INT32_MAX >> max(shift, 0)  # no wrap: TFLite is only defined where x * 2^shift fits
    x = data.draw(st.integers(-bound, bound))
    q = data.draw(st.one_of(st.just(0), st.integers(1 << 30, INT32_MAX)))
    assert int(arith.mbqm(x, q, shift)) == _model_mbqm(x, q, shift)


@settings(max_examples=300, deadline=None)
@given(int32s, int32s, st.integers(0, 31))
def test_primitives_match_rational_models(a: int, b: int, exponent: int) -> None:
    assert int(arith.srdhm(a, b)) == _model_srdhm(a, b)
    assert int(arith.rdbpot(a, exponent)) == _round_half_away(Fraction(a, 1 << exponent))
    count = abs(b) // 2 + 1
    assert int(arith.rounded_div(a // 2, count)) == _round_half_away(Fraction(a // 2, count))


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-31, max_value=2.0**30, allow_subnormal=False))
def test_quantize_multiplier_reconstructs(real: float) -> None:
    q, shift = arith.quantize_multiplier(real)
    assert (1 << 30) <= q <= INT32_MAX
    # q is fraction * 2^31 rounded, so |error| <= 1/2 * 2^(shift-31) while real >= 1/2 * 2^shift
    assert abs(Fraction(q) * Fraction(2) ** (shift - 31) - Fraction(real)) <= Fraction(real) * Fraction(1, 1 << 31)


def test_quantize_multiplier_known_values() -> None:
    # by hand: frexp(x) = (f, e), q = round(f * 2^31)
    assert arith.quantize_multiplier(0.0) == (0, 0)
    assert arith.quantize_multiplier(0.5) == (1 << 30, 0)  # f = 1/2, e = 0
    assert arith.quantize_multiplier(1.0) == (1 << 30, 1)  # f = 1/2, e = 1
    assert arith.quantize_multiplier(0.75) == (1610612736, 0)  # 0.75 * 2^31 = 3 * 2^29
    assert arith.quantize_multiplier(1 - 2.0**-40) == (1 << 30, 1)  # f * 2^31 rounds to 2^31: halve, e + 1
    assert arith.quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)  # f * 2^31 = 2^30 + 1/2: tie, away
    assert arith.quantize_multiplier(0.5 + 3 * 2.0**-32) == ((1 << 30) + 2, 0)  # 2^30 + 3/2 also rounds up
    assert arith.quantize_multiplier(2.0**-32) == (1 << 30, -31)  # the smallest shift kept
    assert arith.quantize_multiplier(2.0**-33) == (0, 0)  # e = -32 < -31 flushes to zero
    assert arith.quantize_multiplier_greater_than_one(3.0) == (1610612736, 2)  # 3 = 0.75 * 2^2
    with pytest.raises(ValueError):
        arith.quantize_multiplier_greater_than_one(1.0)
    # beta * scale * 2^26 = 0.1f * 2^26 = 6710886.5 (0.1f = 13421773 / 2^27): f = 0.79999..., e = 23,
    # q = round(13421773 * 2^7) = 1717986944; diff_min = -floor(31 * 2^26 / 2^23) = -248
    assert arith.softmax_params(1.0, 0.1) == (1717986944, 23, -248)
    # 16 * 2^26 = 2^30 exactly: f = 1/2, e = 31 -> left shift 31, radius floor(31 / 32) = 0
    assert arith.softmax_params(1.0, 16.0) == (1 << 30, 31, 0)


def test_primitives_known_values() -> None:
    assert int(arith.srdhm(1 << 30, 1 << 30)) == 1 << 29  # 0.5 * 0.5 = 0.25
    assert int(arith.srdhm(INT32_MIN, INT32_MIN)) == INT32_MAX  # (-1) * (-1) saturates
    assert int(arith.srdhm(INT32_MAX, INT32_MAX)) == 2147483646  # (2^31-1)^2 / 2^31 = 2^31 - 2 + 2^-31
    assert [int(arith.srdhm(v, 1 << 30)) for v in (1, -1, 3, -3)] == [1, 0, 2, -1]  # ties toward +inf
    assert [int(arith.rdbpot(x, e)) for x, e in ((5, 1), (-5, 1), (-4, 1), (-6, 2), (7, 2))] == [3, -3, -2, -2, 2]
    assert [int(arith.rdbpot(x, 31)) for x in (INT32_MIN, INT32_MAX, 1 << 30, -(1 << 30))] == [-1, 1, 1, -1]
    # double rounding: srdhm(5, 1/2) = 2.5 -> 3, then 3 / 2 = 1.5 -> 2 (single rounding would give 1.25 -> 1)
    assert int(arith.mbqm(5, 1 << 30, -1)) == 2
    assert int(arith.mbqm(-5, 1 << 30, -1)) == -1  # -2.5 -> -2 (toward +inf), -2 / 2 = -1
    assert int(arith.mbqm(100, 1 << 29, 2)) == 100  # 100 * 4 * 0.25
    # 1000 * 0.5 = 500, 500 / 4 = 125, 125 - 10 = 115; and 10^6 clamps at 127
    assert arith.requantize([1000, 10**6, -(10**6)], 1 << 30, -2, -10, -128, 127).tolist() == [115, 127, -128]
    assert arith.requantize(1000, 1 << 30, -2, -10, 0, 100).tolist() == 100  # relu-style bounds
    sums, counts = [5, -5, 7, -6, 0, -1, 9], [2, 2, 4, 4, 3, 3, 1]
    assert arith.rounded_div(sums, counts).tolist() == [3, -3, 2, -2, 0, 0, 9]
    assert arith.count_leading_zeros([0, 1, 1 << 31, 255]).tolist() == [32, 31, 0, 24]


def test_fixed_point_accuracy() -> None:
    rng = np.random.default_rng(RNG_SEED + 9)
    a = np.concatenate([-rng.integers(0, 1 << 31, 50000), np.arange(-2000, 1)])
    exp = arith.exp_on_negative_values(a) / 2.0**31
    # Taylor to x^4 around -1/8 on |x| <= 1/8: remainder <= e^(-1/8) * (1/8)^5 / 5! * e^(1/8) = 2.54e-7;
    # the barrel-shifter factors are <= 1 and each rounding adds at most 2^-31 (< 5e-10)
    assert np.abs(exp - np.exp(a / 2.0**26)).max() <= 2.6e-7
    x = rng.integers(0, 1 << 31, 50000)
    reciprocal = arith.one_over_one_plus_x_for_x_in_0_1(x) / 2.0**31
    # Newton from 48/17 - 32/17 d has relative error <= (1/17)^8 = 1.4e-10 after 3 steps;
    # what remains is rounding in Q2.29 (ulp 2^-29), a few ulps at most
    assert np.abs(reciprocal - 1 / (1 + x / 2.0**31)).max() <= 2.0**-27
    assert int(arith.exp_on_negative_values(0)) == INT32_MAX  # exp(0) = 1, saturated


def _float_softmax(row: np.ndarray, scale: float) -> np.ndarray:
    z = np.float64(np.float32(scale)) * (row.astype(np.float64) - row.max())
    return np.exp(z) / np.exp(z).sum()


@settings(max_examples=150, deadline=None)
@given(softmax_case)
def test_softmax_close_to_float(case: tuple[np.ndarray, float]) -> None:
    row, scale = case
    out = arith.softmax_s8(row, *arith.softmax_params(1.0, scale)).astype(np.int64)
    p = _float_softmax(row, scale)
    expected = np.clip(np.sign(p) * np.floor(256 * p + 0.5) - 128, -128, 127)
    # Before its last rounding the fixed-point value is within 0.01 LSB of 256p: the sum of exps
    # rounds each term to 2^-20 (<= 32 terms: 3e-5 relative to a sum >= 1), exp is within 2.6e-7,
    # the reciprocal within 1e-8. Skipped terms (diff < diff_min) have p < e^-15 (scaled diff < -16
    # after the multiplier, see TFLite's comment), far below 1/512. So each output is within 1 LSB.
    assert np.abs(out - expected).max() <= 1
    # And the outputs + 128 sum to 256 up to the rounding of each (<= 0.51 LSB) and the clamp at 127.
    assert abs((out + 128).sum() - 256) <= 0.51 * row.size + 1


def test_softmax_known_values() -> None:
    p = arith.softmax_params(1.0, 0.1)
    # A constant row of depth n: every exp is One (2^31-1), the Q12.19 sum is n * 2^19, so for n = 2^k
    # GetReciprocal sees exactly 1.0 and returns ~2^31 with num_bits_over_unit = k; the output is
    # round((2^31 - 2) / 2^(k+23)) - 128 = 256 / 2^k - 128, clamped to 127 for n = 1.
    for depth, value in ((1, 127), (2, 0), (4, -64), (8, -96), (256, -127)):
        assert (arith.softmax_s8(np.zeros(depth, np.int8), *p) == value).all()
    # diff_min = -248 at scale 0.1: a diff of -255 is skipped outright, the max alone takes 127
    assert arith.softmax_s8(np.array([127, -128], np.int8), *p).tolist() == [127, -128]
    # axis handling: columns of a 2-D array are rows of its transpose
    block = np.array([[0, 5], [3, 5], [-7, 5]], np.int8)
    assert (arith.softmax_s8(block, *p, axis=0) == arith.softmax_s8(block.T, *p).T).all()


def test_python_rejects_out_of_range_inputs() -> None:
    calls = [
        lambda: arith.rdbpot(1, 32),
        lambda: arith.mbqm(1, 1, 32),
        lambda: arith.srdhm(1 << 31, 1),
        lambda: arith.rounded_div(1, 0),
        lambda: arith.exp_on_negative_values(1),
        lambda: arith.get_reciprocal(0, 12),
        lambda: arith.softmax_s8(np.zeros(4096, np.int8), 1, 1, 0),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        arith.srdhm(1.5, 2)


# ---------------------------------------------------------------- the header itself


def test_header_shape() -> None:
    text = HEADER.read_text()
    assert text.splitlines()[0].startswith("/* Produced by mcugen")
    assert "#ifndef MCUGEN_ARITH_H" in text and "#define MCUGEN_ARITH_VERSION 1" in text
    assert re.findall(r"#include\s*(\S+)", text) == ["<stdint.h>"]
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert not re.search(r"\b(float|double)\b", code)


def test_python_and_c_are_twins_in_the_same_order() -> None:
    c_names = re.findall(r"static inline \w+ \*?mcugen_(\w+)\(", HEADER.read_text())
    module = ast.parse((REPO / "mcugen" / "quant" / "arith.py").read_text())
    python = [n.name for n in module.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    compile_time = ["quantize_multiplier", "quantize_multiplier_greater_than_one", "softmax_params"]
    assert python[:3] == compile_time
    assert [n.removesuffix("_row") for n in c_names] == python[3:]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4", "cortex-m7"])
def test_header_compiles_clean_for_cortex_m(cpu: str, tmp_path: Path) -> None:
    """int32_t is `long` on arm-none-eabi: -Wconversion must stay quiet there too, with no float calls."""
    source = tmp_path / "use.c"
    source.write_text(
        '#include "mcugen_arith.h"\n'
        "void use(const int8_t *in, int8_t *out, int32_t *acc);\n"
        "void use(const int8_t *in, int8_t *out, int32_t *acc)\n"
        "{\n"
        "    mcugen_softmax_s8_row(in, out, 10, acc[0], acc[1], acc[2]);\n"
        "    out[0] = mcugen_requantize(acc[3], acc[4], acc[5], 3, -128, 127);\n"
        "    acc[6] = mcugen_rounded_div(acc[7], 9);\n"
        "}\n"
    )
    obj = tmp_path / "use.o"
    cmd = ["arm-none-eabi-gcc", *CFLAGS, "-O2", f"-mcpu={cpu}", "-mthumb", f"-I{RUNTIME}", "-c", str(source)]
    cmd += ["-o", str(obj)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    integer_helpers = {
        "__aeabi_lmul", "__aeabi_ldivmod", "__aeabi_uldivmod", "__aeabi_llsl", "__aeabi_llsr", "__aeabi_lasr",
        "__aeabi_idiv", "__aeabi_idivmod", "__aeabi_uidiv", "__aeabi_uidivmod",
    }  # fmt: skip
    assert set(undefined.split()) - {"U"} <= integer_helpers
