"""The conv_dsp variant (k x k conv2d with up to 4 input channels, MobileNets' first layer)
computes exactly the simulator's int8 on the host, through the portable C emulation of
the DSP intrinsics (templates/runtime/mcugen_acle_emul.h)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen.compiler import CalibrationOptions, compile_model
from onnx_builders import OnnxGraph
from variant_checks import assert_host_c_matches_sim


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    kernel=st.sampled_from([3, 5]),
    stride=st.sampled_from([1, 2]),
    pad=st.integers(0, 2),
    in_c=st.integers(1, 4),
    out_c=st.integers(1, 9),
    hw=st.tuples(st.integers(5, 9), st.integers(5, 9)),
    optimize=st.sampled_from(["speed", "size"]),
)
def test_conv_variant_is_bit_exact_on_the_host(tmp_path, seed, kernel, stride, pad, in_c, out_c, hw, optimize):
    g = OnnxGraph(seed)
    x = g.relu(g.conv(g.input("x", [1, in_c, *hw]), out_c, kernel=kernel, stride=stride, pads=[pad, pad, 0, pad]))
    path = tmp_path / "conv.onnx"
    path.write_bytes(g.build([x]).SerializeToString())
    compiled = compile_model(str(path), CalibrationOptions(), target="cortex-m7", optimize=optimize)
    assert [n.variant for n in compiled.graph.nodes if n.op == "conv2d"] == ["conv_dsp"]
    assert_host_c_matches_sim(compiled, seed)
