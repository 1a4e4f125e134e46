"""add on DSP cores (and Helium's, which have the DSP extension): one table lookup per input.

TFLite's add rescales each input alone before the sum: scaled_i = mbqm((x_i + offset_i) * 2^20,
m_i, shift_i) depends on the int8 x_i only, so a 256-entry table per input holds it, computed
here with the reference's own arithmetic (exact by construction). The sum's rescale to the
output is requant.py's scaled stage on one per-tensor channel (the add's output shift never
shifts left): the tables hold 2 * scaled_i (the stage's scale), and per element the kernel
does two byte loads, two table loads, an add, SMMLAR, ASR, SSAT and a store — about 12
instructions where the portable kernel's three MultiplyByQuantizedMultiplier take ~130.
An add whose sum could leave the stage's exact range keeps the portable kernel (`applies`).

Order: element i reads both inputs at i, then writes output i, ascending, like the portable
kernel, whose overlap declaration it keeps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...quant.arith import mbqm
from ...targets import Target
from ..add import lowered_params, overlap_limits  # noqa: F401 - the portable add's order is this kernel's too
from ..weights import OutputStage
from .common import KernelSource, spec_name
from .requant import ScaledStage, scaled_channels, scaled_stage

OP = "add"
NAME = "add_dsp"
SCRATCH = False
INT8 = np.arange(-128, 128, dtype=np.int64)


@dataclass(frozen=True)
class AddSpec:
    fn: str
    ties: bool  # negative ties need the sign correction
    clamps: bool  # the fused activation narrows the int8 range

    @property
    def params(self) -> str:
        """The struct type: the clamp bounds are fields only of the functions that read them."""
        return f"mcugen_add_dsp{'_clamp' if self.clamps else ''}_params"


def _output_stage(node: Node) -> OutputStage:
    p = lowered_params(node)
    return OutputStage(0, 0, p.output_offset, p.act_min, p.act_max, np.array([p.output_multiplier], np.int32),
                       np.array([p.output_shift], np.int32))


def rescaled(node: Node) -> tuple[np.ndarray, np.ndarray]:
    """Per int8 value (-128 .. 127), each input's scaled_i, as the reference computes it."""
    p = lowered_params(node)
    return (mbqm((INT8 + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift),
            mbqm((INT8 + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift))


def _stage(node: Node) -> ScaledStage | None:
    """The scaled stage of the sum, or None when some reachable sum would leave its exact range."""
    stage = _output_stage(node)
    bound = sum(int(np.abs(t).max()) for t in rescaled(node))
    if not scaled_channels(stage, np.array([bound]))[0]:
        return None
    return scaled_stage(stage, np.zeros(1, np.int64), np.array([0]))


def applies(node: Node, graph: Graph, target: Target) -> bool:
    return node.op == OP and target.has_dsp and _stage(node) is not None


def spec(node: Node, graph: Graph) -> AddSpec:
    stage = _stage(node)
    assert stage is not None
    clamps = stage.act_min > -128 or stage.act_max < 127
    return AddSpec(spec_name("mcugen_add_dsp", (int(stage.ties), int(clamps))), stage.ties, clamps)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/add_dsp.c.j2", s, ("mcugen_dsp.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    stage = _stage(node)
    assert stage is not None
    fields = {"size": lowered_params(node).size, "q": int(stage.multiplier[0]), "k": int(stage.k[0]),
              "right": int(stage.right[0])}
    if spec(node, graph).clamps:
        fields.update(act_min=stage.act_min, act_max=stage.act_max)
    return fields


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    """Each input's table, 256 int32: 2 * scaled_i, indexed by the int8's byte read as unsigned
    (0 .. 127, then -128 .. -1), so a zero-extending byte load is the index."""
    stage = _stage(node)
    assert stage is not None
    by_byte = (INT8.astype(np.uint8).astype(np.int64)).argsort()  # the int8 value of each byte 0 .. 255
    return [(name, (t[by_byte] * stage.scale[0]).astype(np.int32)) for name, t in zip(("table1", "table2"), rescaled(node))]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0
