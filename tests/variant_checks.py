"""Shared by the fast-kernel tests: near-dead channels, and host C == simulator on random inputs."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import numpy_helper

from mcugen import sim
from mcugen.compiler import Compiled
from mcugen.plan import Plan
from mcugen.plan.lifetimes import lifetimes, scratch_name
from mcugen.kernels.arm import common as arm_common
from mcugen.targets import get_target
from mcugen.verify import run_c


def deaden_last_conv(model: onnx.ModelProto, dead: int) -> None:
    """Tiny weights and a large bias on the last Conv's first `dead` channels: after quantization
    their bias sits near 2^30, which forces the variants' slow (portable) output stage."""
    conv = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    inits = {i.name: i for i in model.graph.initializer}
    w, b = (numpy_helper.to_array(inits[n]).copy() for n in conv.input[1:3])
    w[:dead] *= 1e-9
    b[:dead] = 3.0
    for name, array in zip(conv.input[1:3], (w, b)):
        inits[name].CopyFrom(numpy_helper.from_array(array, name))


def assert_host_c_matches_sim(compiled: Compiled, seed: int, count: int = 3) -> None:
    """The compiled model's C, built for the host (intrinsics through the emulation header), on random inputs."""
    (name,) = compiled.graph.inputs
    rng = np.random.default_rng(seed)
    xs = rng.integers(-128, 128, (count, *compiled.graph.tensor(name).shape), dtype=np.int64).astype(np.int8)
    c_out, _ = run_c(compiled, get_target("host"), xs)
    expected = np.stack([sim.run(compiled.graph, x)[0] for x in xs])
    np.testing.assert_array_equal(c_out, expected)


def refuse_scaled(monkeypatch, refused) -> None:
    """The DSP variants' scaled stage refuses the channels `refused(count)` marks (a bool array
    over a layer's channels), so their exact (portable) stage runs too."""
    real = arm_common.scaled_channels
    monkeypatch.setattr(arm_common, "scaled_channels", lambda stage, bound: real(stage, bound) & ~refused(bound.size))


def first(count: int):
    """`refuse_scaled`'s marker of a layer's first `count` channels."""
    return lambda size: np.arange(size) < count


def assert_exact_at_declared_overlap(compiled: Compiled, module, seed: int) -> None:
    """The one-node model (or a streamed node and the one running it) with input and output in
    the arena, the output starting the last node's `overlap_limits` bytes after the input (room
    below for a negative limit, the scratch at 0): the host C equals the simulator."""
    graph = compiled.graph
    node, last = graph.nodes[-1], len(graph.nodes) - 1
    assert node.variant == module.NAME
    (limit,) = module.overlap_limits(node, graph)
    base = 4 * (module.scratch_bytes(node, graph) + 2 * graph.tensor(graph.outputs[0]).nbytes + 64)
    offsets = {graph.inputs[0]: base, graph.outputs[0]: base + limit, scratch_name(last): 0}
    plan = Plan(offsets, 3 * base, "hand", tuple(lifetimes(graph, io_in_arena=True)), (), 0, True, (), last + 1)
    assert_host_c_matches_sim(dataclasses.replace(compiled, plan=plan), seed)


def unit_scales(compiled: Compiled, op: str) -> Compiled:
    """Every other output channel of each `op` node shifts by 0 or left by 1 (scales of 1/2 and
    more are rare in trained models; MobileNetV2 has a few): the simulator and the C both read
    the lowered stage, so both change."""
    def unit(node):
        if node.op != op:
            return node
        stage = node.lowered.stage
        shift = stage.shift.copy()
        shift[::2] = np.arange(shift[::2].size) % 2
        return dataclasses.replace(node, lowered=dataclasses.replace(node.lowered, stage=dataclasses.replace(stage, shift=shift)))

    graph = dataclasses.replace(compiled.graph, nodes=tuple(unit(n) for n in compiled.graph.nodes))
    return dataclasses.replace(compiled, graph=graph)


def restaged(compiled: Compiled, left: bool, clamp: bool) -> Compiled:
    """The pointwise variants' rare output stages: with `left`, every other output channel of each
    conv shifts left by 1..2 (real multipliers above 1 are rare in trained models); with `clamp`,
    the activation clamps to [-100, 100] (calibrated ReLU6 layers rarely narrow the int8 range).
    The simulator and the C both read the lowered stage."""
    def restage(node):
        if node.op != "conv2d":
            return node
        stage = node.lowered.stage
        if left:
            shift = stage.shift.copy()
            shift[::2] = 1 + np.arange(shift[::2].size) % 2
            stage = dataclasses.replace(stage, shift=shift)
        if clamp:
            stage = dataclasses.replace(stage, act_min=max(stage.act_min, -100), act_max=100)
        return dataclasses.replace(node, lowered=dataclasses.replace(node.lowered, stage=stage))

    graph = dataclasses.replace(compiled.graph, nodes=tuple(restage(n) for n in compiled.graph.nodes))
    return dataclasses.replace(compiled, graph=graph)
