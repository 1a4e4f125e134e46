"""Fast kernel variants for Arm Cortex-M: specialised C on the DSP extension.

A variant module implements one op for the layers its `applies(node, graph, target)`
accepts, with exactly the portable kernel's int8 results, so the op's semantic functions
(reference, macs, lower, ...) stay `kernel(op)`'s; a variant provides its own C contract:
`c_kernel(node, graph, optimize) -> KernelSource`, `c_params` (the run-time fields of
the struct named by `KernelSource.params`, or empty when every size is a C constant),
`c_constants`, `scratch_bytes` and `overlap_limits` (from its own
read/write order, see mcugen/kernels/__init__.py). passes/select_kernels.py records
the chosen variant in `Node.variant`; `implementation(node)` maps it back here.

A variant with `STREAMED = True` (pointwise_ring_dsp, pointwise_ring_mve) runs inside the next node's function
(passes/stream_rows.py picks such pairs): its output has no arena buffer, its input lives
through that next step (plan/lifetimes.py), and the schedule has no call of its own; the
next node's function takes its params, input and constants (codegen/emit.py, `feeder`).
"""
from __future__ import annotations

from types import ModuleType

from ...ir import Graph, IRError, Node
from ...targets import Target
from . import (add_dsp, conv_dsp, conv_mve, depthwise_dsp, depthwise_fed_dsp, depthwise_fed_mve, depthwise_mve,
               depthwise_tiny_dsp, pointwise_dsp, pointwise_dsp8, pointwise_mve, pointwise_ring_dsp, pointwise_ring_mve)

# In order of preference: the first that applies to a node is chosen. The last four never apply
# on their own: passes/stream_rows.py chooses them in pairs.
VARIANTS: tuple[ModuleType, ...] = (depthwise_mve, conv_mve, pointwise_mve, pointwise_dsp8, pointwise_dsp,
                                    depthwise_tiny_dsp, depthwise_dsp, conv_dsp, add_dsp, pointwise_ring_dsp,
                                    depthwise_fed_dsp, pointwise_ring_mve, depthwise_fed_mve)
_BY_NAME = {m.NAME: m for m in VARIANTS}


def implementation(node: Node) -> ModuleType:
    """The variant module of a node whose `variant` is not "portable"."""
    module = _BY_NAME.get(node.variant)
    if module is None or module.OP != node.op:
        raise IRError(f"node '{node.name}' ({node.op}): unknown kernel variant '{node.variant}'")
    return module


def streamed(node: Node) -> bool:
    """Whether the node runs inside the next node's step (its output never in the arena)."""
    return node.variant != "portable" and getattr(implementation(node), "STREAMED", False)


def feeder(node: Node, graph: Graph) -> Node | None:
    """The streamed node producing `node`'s input, which `node`'s function runs, if any."""
    producer = graph.producer(node.inputs[0])
    return producer if producer is not None and streamed(producer) else None


def choose(node: Node, graph: Graph, target: Target) -> str:
    """The name of the first variant that applies to `node` on `target`, else "portable"."""
    return next((m.NAME for m in VARIANTS if m.OP == node.op and m.applies(node, graph, target)), "portable")
