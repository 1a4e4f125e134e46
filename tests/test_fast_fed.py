"""A pointwise layer streamed row by row into the depthwise after it
(passes/stream_rows.py: pointwise_ring_dsp feeding depthwise_fed_dsp) computes exactly the
simulator's int8, on the host and on the core, and its intermediate never takes arena space."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.bench import bench
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.kernels.arm import depthwise_fed_dsp, depthwise_fed_mve, depthwise_tiny_dsp
from mcugen.plan.execute import run_in_arena
from mcugen.plan.lifetimes import lifetimes, scratch_name
from mcugen.targets import get_target
from mcugen.verify import run_c
from fast_cases import saved
from onnx_builders import OnnxGraph
from variant_checks import (
    assert_exact_at_declared_overlap,
    assert_host_c_matches_sim,
    first,
    refuse_scaled,
    unit_scales,
)

FED = ["pointwise_ring_dsp", "depthwise_fed_dsp"]
FED_MVE = ["pointwise_ring_mve", "depthwise_fed_mve"]
needs_qemu = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm")


@pytest.fixture(autouse=True)
def _no_tiny_variant(monkeypatch):
    """Small outputs would otherwise go to depthwise_tiny_dsp, which is never fed."""
    monkeypatch.setattr(depthwise_tiny_dsp, "MAX_OUTPUTS", 0)


def _net(tmp_path, seed: int, in_c: int, c: int, hw: tuple[int, int], pads: list[int], pw_act: str, relu6: bool,
         dead: int = 0, stride: int = 2, last: bool = True) -> str:
    """1x1 conv (in_c -> c, then `pw_act`), 3x3 depthwise (then ReLU6 if `relu6`), with `last` a 1x1 conv back to
    in_c: the depthwise's output feeds a layer that is not streamed."""
    g = OnnxGraph(seed)
    x = g.conv(g.input("x", [1, in_c, *hw]), c, kernel=1, pads=[0, 0, 0, 0])
    x = g.relu(x) if pw_act == "relu" else g.clip(x) if pw_act == "relu6" else x
    y = g.depthwise(x, stride=stride, pads=pads)
    y = g.clip(y) if relu6 else y
    y = g.conv(y, in_c, kernel=1, pads=[0, 0, 0, 0]) if last else y
    return saved(tmp_path, g.build([y]), f"fed{seed}", dead)


def _variants(compiled) -> list[str]:
    return [n.variant for n in compiled.graph.nodes[:2]]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    in_c=st.integers(1, 3).map(lambda k: 4 * k),
    c=st.integers(1, 8).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(7, 13), st.integers(3, 14)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    pw_act=st.sampled_from(["none", "relu", "relu6"]),
    relu6=st.booleans(),
    dead=st.integers(0, 2),
    exact=st.integers(0, 2),
    unit_scale=st.booleans(),
    optimize=st.sampled_from(["speed", "size"]),
)
def test_fed_pair_is_bit_exact_on_the_host(tmp_path, monkeypatch, seed, in_c, c, hw, stride, pads, pw_act, relu6, dead,
                                          exact, unit_scale, optimize):
    """Heights, odd and even widths, both strides, every padding; the feeder with and without
    clamps; dead and exact channels in both layers; shifts of 0 and left shifts in the depthwise;
    pointwise_dsp and (size) pointwise_dsp8 feeding."""
    if hw[1] + pads[1] + pads[3] < 3:
        return  # no output column
    refuse_scaled(monkeypatch, first(exact))
    compiled = compile_model(_net(tmp_path, seed, in_c, c, hw, pads, pw_act, relu6, dead, stride), CalibrationOptions(),
                             target="cortex-m7", optimize=optimize)
    assume(_variants(compiled) == FED)  # the ring of a few rows can outweigh a short tensor: then nothing is fed
    if unit_scale:
        compiled = unit_scales(compiled, "depthwise_conv2d")
    assert_host_c_matches_sim(compiled, seed)


def test_the_intermediate_lives_in_the_ring_not_the_arena(tmp_path):
    """The streamed tensor has no buffer; the feeder's input lives through the depthwise's step,
    next to the ring and the feeder's pixel pair; the planned arena computes the simulator's result."""
    compiled = compile_model(_net(tmp_path, 1, 8, 16, (12, 12), [0, 0, 1, 1], "relu", False), CalibrationOptions(),
                             target="cortex-m7")
    graph, plan = compiled.graph, compiled.plan
    assert _variants(compiled) == FED
    pw, dw = graph.nodes[:2]
    buffers = {b.name: b for b in lifetimes(graph, io_in_arena=True)}
    assert pw.outputs[0] not in buffers and pw.outputs[0] not in plan.offsets
    assert buffers[pw.inputs[0]].last == 1
    assert buffers[scratch_name(1)].size == depthwise_fed_dsp.scratch_bytes(dw, graph)
    assert scratch_name(0) not in buffers
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape).astype(np.int8)
    io_plan = compiled.replan(io_in_arena=True).plan
    np.testing.assert_array_equal(run_in_arena(graph, io_plan, x)[0], sim.run(graph, x)[0])


@pytest.mark.parametrize("target, optimize, c, hw, expected", [
    ("cortex-m7", "size", 16, (12, 12), FED),  # size mode: pointwise_dsp8 writes the ring
    ("cortex-m55", "speed", 16, (12, 12), ["pointwise_mve", "depthwise_mve"]),  # Helium reads NHWC as it is
    ("cortex-m55", "size", 16, (12, 12), FED_MVE),  # ... and streams for memory only
    ("cortex-m7", "speed", 16, (3, 12), ["pointwise_dsp", "depthwise_dsp"]),  # a 3-row ring is no smaller
])
def test_streaming_needs_the_dsp_pair_and_a_smaller_ring(tmp_path, target, optimize, c, hw, expected):
    compiled = compile_model(_net(tmp_path, 2, 8, c, hw, [1, 1, 1, 1], "none", False), CalibrationOptions(),
                             target=target, optimize=optimize)
    assert _variants(compiled) == expected


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(1, 6).map(lambda k: 4 * k),
    hw=st.tuples(st.integers(9, 13), st.integers(3, 12)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
)
def test_output_over_the_feeders_input_at_the_declared_limit_is_bit_exact(tmp_path, seed, c, hw, stride, pads):
    """The pair alone, input and output in the arena, the output starting `overlap_limits` bytes
    after the feeder's input (the pair's function reads that input as it writes): host C == simulator."""
    if hw[1] + pads[1] + pads[3] < 3:
        return
    compiled = compile_model(_net(tmp_path, seed, 8, c, hw, pads, "relu", False, 0, stride, last=False),
                             CalibrationOptions(), target="cortex-m7")
    assume(_variants(compiled) == FED)
    assert_exact_at_declared_overlap(compiled, depthwise_fed_dsp, seed)


@needs_qemu
@pytest.mark.parametrize("target, c, hw, stride, pads, relu6, exact, optimize", [
    ("cortex-m7", 16, (12, 12), 2, [0, 0, 1, 1], False, 0, "size"),  # pointwise_dsp8's quads into the ring
    ("cortex-m4", 8, (12, 10), 1, [1, 1, 1, 1], False, 1, "size"),  # phantom pixels of a 10-pixel row
    ("cortex-m4", 16, (12, 12), 2, [0, 0, 1, 1], False, 0, "speed"),  # VWW's padding, whole 3-output blocks
    ("cortex-m7", 16, (9, 14), 2, [1, 1, 1, 1], False, 0, "speed"),  # pad_left 1, a partial last block
    ("cortex-m4", 96, (10, 6), 2, [0, 0, 1, 1], False, 0, "speed"),  # 3 C > 255: the output step as an ADD
    ("cortex-m7", 112, (10, 6), 2, [1, 1, 1, 1], False, 0, "speed"),  # 40 C > 4095: the table's end through MOVW
    ("cortex-m4", 8, (20, 4), 2, [0, 0, 1, 1], False, 0, "speed"),  # 2 outputs a row: no full block
    ("cortex-m7", 12, (9, 10), 2, [1, 0, 1, 1], True, 2, "speed"),  # clamps and exact channels: the C and shared loops
    ("cortex-m7", 16, (13, 11), 1, [1, 1, 1, 1], False, 0, "speed"),  # stride 1: row pairs, an odd last band and column
    ("cortex-m4", 8, (12, 10), 1, [0, 1, 1, 0], False, 1, "speed"),  # stride 1, lopsided padding, an exact channel
])
def test_fed_pair_is_bit_exact_on_the_core(tmp_path, monkeypatch, target, c, hw, stride, pads, relu6, exact,
                                          optimize):
    refuse_scaled(monkeypatch, first(exact))
    compiled = compile_model(_net(tmp_path, 3, 8, c, hw, pads, "relu", relu6, 0, stride), CalibrationOptions(),
                             target=target, optimize=optimize)
    assert _variants(compiled) == FED
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(c).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target(target), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))


@needs_qemu
def test_bench_charges_the_feeder_its_own_rows(tmp_path):
    """The profiler moves the feeder's rows to the feeder's layer: its pointwise count stays in
    line with an unstreamed pointwise of the same shape (pointwise_dsp writes the same stores)."""
    fed = compile_model(_net(tmp_path, 4, 8, 16, (12, 12), [0, 0, 1, 1], "none", False), CalibrationOptions(),
                        target="cortex-m7")
    assert _variants(fed) == FED
    unfed = [dataclasses.replace(n, variant=v) for n, v in zip(fed.graph.nodes, ["pointwise_dsp", "depthwise_dsp"])]
    plain = dataclasses.replace(fed, graph=fed.graph.replace(nodes=(*unfed, *fed.graph.nodes[2:]))).replan()
    x = np.zeros((1, fed.graph.tensor(fed.graph.inputs[0]).size), np.int8)
    ours, theirs = bench(fed, get_target("cortex-m7"), x), bench(plain, get_target("cortex-m7"), x)
    assert all(layer.instructions > 0 for layer in ours.layers)
    assert abs(ours.layers[0].instructions - theirs.layers[0].instructions) < 0.1 * theirs.layers[0].instructions
    assert ours.layers[1].instructions < theirs.layers[1].instructions  # no copy
    assert ours.arena_bytes < theirs.arena_bytes


@needs_qemu
def test_strided_layers_of_several_shapes_share_one_function(tmp_path):
    """Two fed stride-2 layers (24x24x16 and 12x12x32 inputs, as VWW's three) run one function; its
    full blocks come once per shape, sorted, each layer's `shape` field picking its own."""
    g = OnnxGraph(7)
    x = g.input("x", [1, 8, 24, 24])
    for c in (16, 32):
        x = g.depthwise(g.conv(x, c, kernel=1, pads=[0, 0, 0, 0]), stride=2, pads=[0, 0, 1, 1])
    compiled = compile_model(saved(tmp_path, g.build([x]), "two"), CalibrationOptions(), target="cortex-m7")
    graph = compiled.graph
    fed = [n for n in graph.nodes if n.variant == "depthwise_fed_dsp"]
    assert len(fed) == 2 and len({depthwise_fed_dsp.c_kernel(n, graph, "speed").name for n in fed}) == 1
    assert [depthwise_fed_dsp.c_params(n, graph)["shape"] for n in fed] == [0, 1]
    xs = np.random.default_rng(7).integers(-128, 128, (2, *graph.tensor(graph.inputs[0]).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m7"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(graph, x)[0] for x in xs]))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 1000),
    c=st.integers(8, 40),
    hw=st.tuples(st.integers(5, 12), st.integers(3, 12)),
    stride=st.sampled_from([1, 2]),
    pads=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    at_limit=st.booleans(),
)
def test_helium_fed_pair_is_bit_exact_on_the_host(tmp_path, seed, c, hw, stride, pads, at_limit):
    """Helium under --optimize size: pointwise_mve's rows into depthwise_mve's ring of NHWC rows (any
    channel count from 8, a last group overlapping the previous one); with `at_limit` the output
    starts `overlap_limits` bytes after the feeder's input."""
    if hw[1] + pads[1] + pads[3] < 3 or hw[0] + pads[0] + pads[2] < 3:
        return
    compiled = compile_model(_net(tmp_path, seed, 16, c, hw, pads, "relu", False, 0, stride, last=False),
                             CalibrationOptions(), target="cortex-m55", optimize="size")
    assume(_variants(compiled) == FED_MVE)
    if at_limit:
        assert_exact_at_declared_overlap(compiled, depthwise_fed_mve, seed)
    else:
        assert_host_c_matches_sim(compiled, seed)


@needs_qemu
@pytest.mark.parametrize("c, hw, stride, pads", [
    (16, (12, 12), 2, [0, 0, 1, 1]),
    (20, (9, 7), 1, [1, 1, 1, 1]),  # a last channel group overlapping the first
])
def test_helium_fed_pair_is_bit_exact_on_the_core(tmp_path, c, hw, stride, pads):
    compiled = compile_model(_net(tmp_path, 5, 16, c, hw, pads, "relu", False, 0, stride), CalibrationOptions(),
                             target="cortex-m55", optimize="size")
    assert _variants(compiled) == FED_MVE
    (name,) = compiled.graph.inputs
    xs = np.random.default_rng(c).integers(-128, 128, (2, *compiled.graph.tensor(name).shape)).astype(np.int8)
    outputs, _ = run_c(compiled, get_target("cortex-m55"), xs)
    np.testing.assert_array_equal(outputs, np.stack([sim.run(compiled.graph, x)[0] for x in xs]))
