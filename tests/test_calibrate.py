"""Calibration ranges -> int8 QParams."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mcugen.quant.calibrate import RangeObserver, asymmetric_int8


@given(st.floats(-100, 0), st.floats(0, 100))
def test_range_is_covered_and_zero_is_exact(lo, hi):
    q = asymmetric_int8(lo, hi)
    scale, zp = q.scalar_scale, q.scalar_zero_point
    assert -128 <= zp <= 127 and scale > 0
    # zero maps to an integer exactly; the ends are reachable within half a step (+ zp clipping)
    assert scale * (-128 - zp) <= lo + scale and scale * (127 - zp) >= hi - scale


def test_relu_output_gets_zero_point_minus_128():
    q = asymmetric_int8(0.0, 6.0)
    assert q.scalar_zero_point == -128 and np.isclose(q.scalar_scale, 6 / 255)


def test_percentile_ignores_outliers():
    obs = RangeObserver("percentile")
    x = np.concatenate([np.linspace(-1, 1, 100_000), [1000.0]])
    obs("t", x)
    lo, hi = obs.range("t")
    assert hi < 2 and lo > -2
    mm = RangeObserver("minmax")
    mm("t", x)
    assert mm.range("t") == (-1.0, 1000.0)
