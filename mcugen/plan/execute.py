"""The simulator run inside one byte array laid out by a memory plan: the proof of the plan.

Every activation (and the input and output with `io_in_arena`) lives at its planned
offset in `arena`; each node reads its inputs from there and writes its output
there in the C kernel's real order, so an overlap the kernel does not make safe
corrupts a value still to be read and the outputs stop matching `sim.run`.

- conv2d, and depthwise_conv2d with delay_rows 0, whose output overlaps its input:
  output pixels in raster order, each from the arena as it is at that moment
  (stream.py); a pixel whose writes hit its own window runs channel by channel,
  as the portable kernel does.
- depthwise_conv2d with delay_rows r > 0: rows through the ring in its planned
  scratch buffer, row y copied out after row y + r - 1 is computed.
- add whose output overlaps an input: elements in order (in exact chunks).
- anything else: the reference on copies of the inputs; its output must not
  overlap an input (the plan never does that without a declaration).

Only the portable kernels' orders are modelled: a variant (node.variant) whose
declaration makes the plan overlap its output with an input is refused until its
order is added here.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, IRError
from ..kernels import activation_inputs, kernel, kernel_of
from ..kernels.depthwise_conv2d import delay_rows
from . import Plan
from .lifetimes import scratch_name
from .stream import Region, run_add, run_pixels, run_ring


def run_in_arena(graph: Graph, plan: Plan, x: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """The graph outputs for one sample, computed inside the planned arena.

    The arena starts as random bytes (`seed`), so reading a byte nobody wrote shows too."""
    arena = np.random.default_rng(seed).integers(-128, 128, max(plan.arena_size, 1), dtype=np.int8)
    outside: dict[str, np.ndarray] = {}

    def region(name: str) -> Region:
        size = graph.tensor(name).nbytes
        if name in plan.offsets:
            return Region(arena, plan.offsets[name], size)
        if name not in outside:
            outside[name] = np.zeros(size, np.int8)
        return Region(outside[name], 0, size)

    (input_name,) = graph.inputs
    region(input_name).write(np.asarray(x, np.int8).ravel())
    for step, node in enumerate(graph.nodes):
        ins = [region(name) for name in activation_inputs(node, graph)]
        out = region(node.outputs[0])
        portable = node.variant == "portable"
        if portable and node.op == "depthwise_conv2d" and delay_rows(node.lowered.geometry) > 0:
            name = scratch_name(step)
            ring = Region(arena, plan.offsets[name], kernel_of(node).scratch_bytes(node, graph))
            run_ring(node, graph, ins[0], out, ring)
        elif not any(out.overlaps(r) for r in ins):
            shapes = [graph.tensor(name).shape for name in activation_inputs(node, graph)]
            values = [r.read().reshape(shape) for r, shape in zip(ins, shapes)]
            out.write(np.asarray(kernel(node.op).reference(node, graph, values), np.int8).ravel())
        elif portable and node.op in ("conv2d", "depthwise_conv2d"):
            run_pixels(node, graph, ins[0], out)
        elif portable and node.op == "add":
            run_add(node, graph, ins, out)
        else:
            raise IRError(f"the plan overlaps the output of '{node.name}' ({node.op}, {node.variant}) with an input, "
                          "and the arena simulator does not model that kernel's order")
    return [region(name).read().reshape(graph.tensor(name).shape).copy() for name in graph.outputs]
