"""Whole MobileNets (mcugen.zoo, V1 and V2 at several widths and odd resolutions) built for the
DSP and Helium targets: every layer's variant together, on the host through the intrinsics'
emulation, equals the simulator bit for bit. The per-variant tests cover shapes one kernel at a
time; this one covers how they meet (residual adds, strides, channel counts from the width rule)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen import zoo
from mcugen.compiler import CalibrationOptions, compile_model
from fast_cases import saved
from variant_checks import assert_host_c_matches_sim


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.sampled_from(["v1", "v2"]), alpha=st.sampled_from([0.25, 0.35, 0.5]),
       resolution=st.integers(32, 56), seed=st.integers(0, 2**16),
       target=st.sampled_from(["cortex-m4", "cortex-m7", "cortex-m55"]))
def test_zoo_models_are_bit_exact_with_the_fast_kernels(tmp_path, version, alpha, resolution, seed, target):
    path = saved(tmp_path, zoo.GENERATORS[version](alpha, resolution, num_classes=10, seed=seed), "zoo")
    compiled = compile_model(path, CalibrationOptions(), target=target)
    assert any(n.variant != "portable" for n in compiled.graph.nodes)
    assert_host_c_matches_sim(compiled, seed, count=1)
