"""Does a compiled model fit its target? Flash (constants + code estimate) and RAM
(arena + the input/output buffers the caller owns) against the target's budget.

A model over budget is the user's problem to fix (a smaller model, or the real
part's memory given with --flash/--ram), so it is a UserError that says by how
many bytes and what takes the most room.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compiler import Compiled
from .errors import UserError
from .kernels import kernel_of
from .plan import peak_step
from .report.cost import PARAM_FIELD_BYTES, flash_estimate
from .report.render import short_name
from .targets import Target

TOP_CONTRIBUTORS = 3
NAME_WIDTH = 48


class BudgetError(UserError):
    """The model does not fit the target's flash or RAM."""


@dataclass(frozen=True)
class LayerFlash:
    """Flash bytes a layer's constants take (weights, bias, requantization, parameter struct)."""

    name: str
    op: str
    nbytes: int


@dataclass(frozen=True)
class PeakRam:
    """The step of the schedule whose live buffers reach highest in the arena."""

    step: int
    node: str
    op: str
    top: int  # arena bytes in use up to the highest live buffer
    live: tuple[str, ...]  # buffers live at the step, largest first


@dataclass(frozen=True)
class MemoryUse:
    flash: int  # bytes: constants plus a code estimate (report.cost.flash_estimate)
    arena: int
    io_buffers: tuple[tuple[str, int], ...]  # (tensor, bytes) of the input and output outside the arena
    layers: tuple[LayerFlash, ...]  # largest first
    peak: PeakRam | None  # None for a model without nodes

    @property
    def io(self) -> int:
        """Bytes of the input and output buffers the caller owns (0 with --io-in-arena)."""
        return sum(nbytes for _, nbytes in self.io_buffers)

    @property
    def ram(self) -> int:
        return self.arena + self.io


def memory_use(compiled: Compiled) -> MemoryUse:
    """Flash and RAM of `compiled`, with the layers and the step that cost the most."""
    graph, plan = compiled.graph, compiled.plan
    layers = []
    for node in graph.nodes:
        module = kernel_of(node)
        consts = sum(int(np.asarray(array).nbytes) for _, array in module.c_constants(node, graph))
        layers.append(LayerFlash(node.name, node.op, consts + PARAM_FIELD_BYTES * len(module.c_params(node, graph))))
    layers.sort(key=lambda layer: (-layer.nbytes, layer.name))
    outside = () if plan.io_in_arena else (*graph.inputs, *graph.outputs)
    io_buffers = tuple((name, graph.tensor(name).nbytes) for name in outside)
    peak = None
    if graph.nodes:
        usage = peak_step(plan)
        node = graph.nodes[usage.step]
        peak = PeakRam(usage.step, node.name, node.op, usage.top, usage.live)
    return MemoryUse(flash_estimate(graph).total, plan.arena_size, io_buffers, tuple(layers), peak)


def check_budget(compiled: Compiled, target: Target) -> MemoryUse:
    """The model's memory use; raises BudgetError naming the biggest users when it is over either budget."""
    use = memory_use(compiled)
    problems = []
    if target.flash_bytes is not None and use.flash > target.flash_bytes:
        problems.append(_flash_problem(use, target.flash_bytes))
    if target.ram_bytes is not None and use.ram > target.ram_bytes:
        problems.append(_ram_problem(use, target.ram_bytes, compiled.plan.io_in_arena))
    if problems:
        head = f"{compiled.name} does not fit the {target.name} budget:"
        raise BudgetError("\n".join([head, *problems]))
    return use


def _flash_problem(use: MemoryUse, budget: int) -> str:
    top = ", ".join(f"'{short_name(layer.name, NAME_WIDTH)}' ({layer.op}) {layer.nbytes:,}"
                    for layer in use.layers[:TOP_CONTRIBUTORS])
    return (f"  flash: needs {use.flash:,} bytes (constants and code), {use.flash - budget:,} over the "
            f"{budget:,}-byte budget; largest layers: {top}.\n"
            "  hint: a smaller width multiplier (alpha) or fewer classes shrink the weights; "
            "--flash sets the budget of your part")


def _ram_problem(use: MemoryUse, budget: int, io_in_arena: bool) -> str:
    io = "".join(f" + '{short_name(name, NAME_WIDTH)}' {nbytes:,}" for name, nbytes in use.io_buffers)
    lines = [f"  RAM: needs {use.ram:,} bytes (arena {use.arena:,}{io}), {use.ram - budget:,} over the "
             f"{budget:,}-byte budget"]
    if use.peak is not None and use.peak.live:
        live = ", ".join(f"'{short_name(name, NAME_WIDTH)}'" for name in use.peak.live[:TOP_CONTRIBUTORS])
        node = short_name(use.peak.node, NAME_WIDTH)
        lines.append(f"  most memory at step {use.peak.step}, node '{node}' ({use.peak.op}): "
                     f"{use.peak.top:,} arena bytes, live {live}")
    hints = ["a smaller alpha or input resolution"]
    if not io_in_arena:
        hints.append("--io-in-arena (input and output share the arena)")
    hints.append("--ram sets the budget of your part")
    lines.append("  hint: " + "; ".join(hints))
    return "\n".join(lines)
