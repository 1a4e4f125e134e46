"""The arena simulator proves plans: random graphs run inside their planned arena give the
simulator's outputs bit for bit, and a plan one step past a kernel's declared overlap does not."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen import sim
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.kernels import kernel_of
from mcugen.kernels.depthwise_conv2d import delay_rows
from mcugen.plan import Plan, check_plan, plan_memory
from mcugen.plan.execute import run_in_arena
from mcugen.plan.lifetimes import lifetimes, scratch_name
from onnx_builders import OnnxGraph


def compile_onnx(model: onnx.ModelProto) -> Compiled:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(model, path)
        return compile_model(path, CalibrationOptions())


def random_input(compiled: Compiled, seed: int) -> np.ndarray:
    shape = compiled.graph.tensor(compiled.graph.inputs[0]).shape
    return np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)


@st.composite
def models(draw):
    """Chains of conv / depthwise / 1x1 blocks with residual adds, any kernel, stride and padding."""
    g = OnnxGraph(seed=draw(st.integers(0, 1000)))
    size = draw(st.integers(3, 10))
    x = g.input("x", [1, draw(st.integers(1, 4)), size, draw(st.integers(3, 10))])
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "dw", "pw", "residual"]))
        k = draw(st.sampled_from([1, 2, 3]))
        s = draw(st.sampled_from([1, 1, 2]))
        pads = draw(st.lists(st.integers(0, k - 1), min_size=4, max_size=4))
        _, c, h, w = g.shape(x)
        if (h + pads[0] + pads[2] - k) < 0 or (w + pads[1] + pads[3] - k) < 0:
            continue
        if kind == "conv":
            x = g.relu(g.conv(x, draw(st.integers(1, 12)), kernel=k, stride=s, pads=pads))
        elif kind == "dw":
            x = g.relu(g.depthwise(x, multiplier=draw(st.sampled_from([1, 1, 2])), kernel=k, stride=s, pads=pads))
        elif kind == "pw":
            x = g.conv(x, draw(st.integers(1, 12)), kernel=1, pads=(0, 0, 0, 0))
        else:
            y = g.relu(g.conv(x, c * 2, kernel=1, pads=(0, 0, 0, 0)))
            y = g.depthwise(y, kernel=3, pads=(1, 1, 1, 1))
            x = g.add(x, g.conv(y, c, kernel=1, pads=(0, 0, 0, 0)))
    return g.build([x])


@settings(max_examples=25, deadline=None)
@given(models(), st.booleans())
def test_random_graphs_run_in_their_arena_bit_exact(model, io_in_arena):
    compiled = compile_onnx(model).replan(io_in_arena=io_in_arena)
    plan, graph = compiled.plan, compiled.graph
    check_plan(plan)
    assert plan.lower_bound <= plan.arena_size
    for seed in range(2):
        x = random_input(compiled, seed)
        assert np.array_equal(run_in_arena(graph, plan, x, seed=seed)[0], sim.run(graph, x)[0])


def single_layer(build) -> Compiled:
    g = OnnxGraph(seed=5)
    x = g.input("x", [1, 8, 6, 7])
    return compile_onnx(g.build([build(g, x)]))


def shifted_plan(compiled: Compiled, shift: int) -> Plan:
    """Input and output in the arena, the output at input + (declared limit + shift); scratch above both."""
    graph = compiled.graph
    (node,) = graph.nodes
    (limit,) = kernel_of(node).overlap_limits(node, graph)
    base = 4096
    offsets = {graph.inputs[0]: base, graph.outputs[0]: base + limit + shift}
    bufs = lifetimes(graph, io_in_arena=True)
    if scratch_name(0) in {b.name for b in bufs}:
        offsets[scratch_name(0)] = 3 * base
    return Plan(offsets, 4 * base, "hand", tuple(bufs), (), 0, True, (), 1)


def assert_limit_is_tight(compiled: Compiled) -> None:
    """Safe at the declared limit; one byte further the outputs change."""
    graph = compiled.graph
    xs = [random_input(compiled, seed) for seed in range(3)]
    expected = [sim.run(graph, x)[0] for x in xs]
    at_limit = [run_in_arena(graph, shifted_plan(compiled, 0), x)[0] for x in xs]
    past_limit = [run_in_arena(graph, shifted_plan(compiled, 1), x)[0] for x in xs]
    assert all(np.array_equal(a, e) for a, e in zip(at_limit, expected))
    assert not all(np.array_equal(a, e) for a, e in zip(past_limit, expected))


def test_conv3x3_limit_is_exact():
    assert_limit_is_tight(single_layer(lambda g, x: g.conv(x, 8, kernel=3)))


def test_pointwise_limit_is_exact():
    # the portable kernel writes out[oc] before reading channel oc + 1's taps: one byte into its own pixel breaks it
    assert_limit_is_tight(single_layer(lambda g, x: g.conv(x, 8, kernel=1, pads=(0, 0, 0, 0))))


def test_strided_depthwise_streams_and_its_limit_is_exact():
    compiled = single_layer(lambda g, x: g.depthwise(x, kernel=3, stride=2, pads=(0, 0, 1, 1)))
    assert delay_rows(compiled.graph.nodes[0].lowered.geometry) == 0
    assert_limit_is_tight(compiled)


def test_depthwise_in_place_through_its_row_ring():
    compiled = single_layer(lambda g, x: g.depthwise(x, kernel=3))
    node = compiled.graph.nodes[0]
    assert delay_rows(node.lowered.geometry) == 2 and kernel_of(node).overlap_limits(node, compiled.graph) == (0,)
    assert_limit_is_tight(compiled)


def test_add_in_place_limit_is_exact():
    g = OnnxGraph(seed=2)
    x = g.input("x", [1, 8, 6, 7])
    compiled = compile_onnx(g.build([g.add(g.conv(x, 8, kernel=1, pads=(0, 0, 0, 0)), x)]))
    graph = compiled.graph
    add = graph.nodes[1]
    first = graph.tensor(add.inputs[0]).nbytes
    x_in = random_input(compiled, 0)
    expected = sim.run(graph, x_in)[0]
    # the add's output placed over its first input (the conv output) at d = 0, then d = 1
    for shift, same in ((0, True), (1, False)):
        offsets = {graph.inputs[0]: 0, add.inputs[0]: 4096, graph.outputs[0]: 4096 + shift}
        plan = Plan(offsets, 8192, "hand", tuple(lifetimes(graph, io_in_arena=True)), (), 0, True, (), 2)
        assert np.array_equal(run_in_arena(graph, plan, x_in)[0], expected) == same, shift
    assert kernel_of(add).overlap_limits(add, graph) == (0, 0) and first == expected.nbytes


def test_planner_uses_a_wrong_declaration_and_the_simulator_catches_it(monkeypatch):
    """A kernel declaring more than its order allows: the plan uses it, the arena run disagrees."""
    g = OnnxGraph(seed=9)
    x = g.input("x", [1, 8, 6, 7])
    y = g.relu(g.conv(x, 8, kernel=1, pads=(0, 0, 0, 0)))
    compiled = compile_onnx(g.build([g.relu(g.conv(y, 8, kernel=1, pads=(0, 0, 0, 0)))]))
    module = kernel_of(compiled.graph.nodes[0])
    monkeypatch.setattr(module, "overlap_limits", lambda node, graph: (0,))  # the truth is -8 (own pixel)
    plan = plan_memory(compiled.graph, io_in_arena=True)
    assert any(o.limit == 0 for o in plan.overlaps) and plan.arena_size < 2 * 6 * 7 * 8
    xs = [random_input(compiled, seed) for seed in range(3)]
    assert not all(np.array_equal(run_in_arena(compiled.graph, plan, x)[0], sim.run(compiled.graph, x)[0])
                   for x in xs)


def test_replan_keeps_the_graph():
    compiled = single_layer(lambda g, x: g.conv(x, 8, kernel=3))
    again = compiled.replan(io_in_arena=True)
    assert again.graph is compiled.graph and again.plan.io_in_arena and not compiled.plan.io_in_arena
    assert dataclasses.replace(again, plan=compiled.plan) == compiled


def test_cli_plan_and_compile_io_in_arena(tmp_path):
    import json
    import subprocess
    import sys

    from onnx_builders import tiny_mobilenet

    model = tmp_path / "tiny.onnx"
    onnx.save(tiny_mobilenet(version=2, size=16, width=8), model)
    samples = tmp_path / "x.npy"
    np.save(samples, np.random.default_rng(1).uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32))

    def mcugen(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mcugen", *map(str, args)], capture_output=True, text=True)

    proc = mcugen("plan", model, "--calib", samples, "--inputs", samples, "--plot", tmp_path / "a.svg", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["checked"] == 2 and report["mismatches"] == []
    assert report["lower_bound"] <= report["arena"] == max(row["top"] for row in report["steps"])
    buffers = {name for row in report["steps"] for name in row["live"]}
    assert (tmp_path / "a.svg").read_text().count("<rect") == len(buffers)  # one rectangle per buffer
    proc = mcugen("compile", model, "--calib", samples, "--io-in-arena", "-o", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    assert "input and output inside" in proc.stdout and "lower bound" in proc.stdout
    header = (tmp_path / "c" / "mcugen.h").read_text()
    assert "int8_t *mcugen_input_buffer(void);" in header
