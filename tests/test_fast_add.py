"""The table-driven add variant (mcugen/kernels/arm/add_dsp.py): its tables and stage give
TFLite's add for every pair of int8 inputs, and models using it compute exactly the
simulator's int8 on the host (emulated intrinsics) and on an emulated Cortex-M7."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.kernels import add
from mcugen.kernels.arm import add_dsp
from mcugen.kernels.arm.requant import scaled_requantize
from mcugen.targets import get_target
from mcugen.verify import run_c
from fast_cases import saved
from onnx_builders import OnnxGraph
from variant_checks import assert_host_c_matches_sim


def _residual(tmp_path, seed: int, c: int, hw: tuple[int, int], act: str, spread: float) -> Compiled:
    """x -> 1x1 conv -> a; a -> 1x1 conv (weights times `spread`) -> b; add(a, b) then `act`:
    the add's two inputs have scales about `spread` apart."""
    g = OnnxGraph(seed)
    a = g.conv(g.input("x", [1, 4, *hw]), c, kernel=1, pads=[0, 0, 0, 0])
    w = g.const((g.weights(c, c, 1, 1) * spread).astype(np.float32))
    b = g.node("Conv", [a, w], kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1], group=1)
    y = g.add(a, b)
    y = g.relu(y) if act == "relu" else g.clip(y) if act == "relu6" else y
    return compile_model(saved(tmp_path, g.build([y]), f"add{seed}"), CalibrationOptions(), target="cortex-m7")


def _narrowed(compiled: Compiled) -> Compiled:
    """The add's activation range narrowed to [-100, 100] (calibrated models rarely clamp; quantized
    ones with a fixed output scale do): the simulator and the C both read the lowered params."""
    def narrow(node):
        if node.op != "add":
            return node
        return dataclasses.replace(node, lowered=dataclasses.replace(node.lowered, act_min=-100, act_max=100))

    return dataclasses.replace(compiled, graph=dataclasses.replace(
        compiled.graph, nodes=tuple(narrow(n) for n in compiled.graph.nodes)))


def _add_node(compiled: Compiled):
    (node,) = [n for n in compiled.graph.nodes if n.op == "add"]
    return node


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), act=st.sampled_from(["none", "relu", "relu6"]),
       spread=st.sampled_from([0.01, 0.3, 1.0, 8.0]), narrow=st.booleans())
def test_tables_and_stage_equal_tflite_add_for_every_input_pair(tmp_path, seed, act, spread, narrow):
    compiled = _residual(tmp_path, seed, 4, (2, 2), act, spread)
    compiled = _narrowed(compiled) if narrow else compiled
    node = _add_node(compiled)
    assert node.variant == "add_dsp"
    x1, x2 = (v.ravel() for v in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
    (_, t1), (_, t2) = add_dsp.c_constants(node, compiled.graph)
    stage = add_dsp._stage(node)
    sums = t1[x1.astype(np.uint8)].astype(np.int64) + t2[x2.astype(np.uint8)]  # the C's table lookups
    got = scaled_requantize((sums // stage.scale[0])[:, None], stage)[:, 0]
    expected = add.reference(node, compiled.graph, [x1, x2])
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), c=st.integers(1, 12), hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       act=st.sampled_from(["none", "relu", "relu6"]), spread=st.sampled_from([0.01, 0.3, 1.0, 8.0]),
       narrow=st.booleans())
def test_add_variant_is_bit_exact_on_the_host(tmp_path, seed, c, hw, act, spread, narrow):
    compiled = _residual(tmp_path, seed, c, hw, act, spread)
    compiled = _narrowed(compiled) if narrow else compiled
    assert _add_node(compiled).variant == "add_dsp"
    assert_host_c_matches_sim(compiled, seed)


def test_ties_and_clamps_select_the_code(tmp_path):
    """No activation: the output zero point sits above the lower clamp, negative ties need the
    correction; ReLU: the zero point is the lower clamp, no correction; a narrowed range clamps."""
    plain = add_dsp.spec(_add_node(c := _residual(tmp_path, 1, 4, (2, 2), "none", 1.0)), c.graph)
    relu = add_dsp.spec(_add_node(c := _residual(tmp_path, 1, 4, (2, 2), "relu", 1.0)), c.graph)
    narrowed = add_dsp.spec(_add_node(c := _narrowed(c)), c.graph)
    assert (plain.ties, plain.clamps, relu.ties, relu.clamps, narrowed.clamps) == (True, False, False, False, True)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("act, narrow", [("none", False), ("relu", True)])
def test_add_variant_is_bit_exact_on_the_core(tmp_path, act, narrow):
    compiled = _residual(tmp_path, 7, 12, (5, 7), act, 0.3)
    compiled = _narrowed(compiled) if narrow else compiled
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(7).integers(-128, 128, (3, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m7"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
