"""Per-step memory use and the layer-by-layer lower bound on the arena.

At step s every live buffer needs its bytes at once. A declared overlap lets the
step's output share bytes with a dying input: with limit d the pair needs
max(size_in, size_out) bytes when d >= 0, max(size_in - d, size_out) when d < 0.
The outputs' savings over several inputs are capped at its size (it cannot share
more bytes than it has), so the bound stays a true lower bound.
"""
from __future__ import annotations

from dataclasses import dataclass

from .lifetimes import Buffer, Overlap, aligned


@dataclass(frozen=True)
class StepUsage:
    """Memory at one step of the schedule."""

    step: int
    live_bytes: int  # sum of the sizes of the buffers live at this step
    bound_bytes: int  # live_bytes less what declared overlaps can share: no plan needs fewer
    top: int  # highest arena address in use at this step, in the plan (0 without a plan)
    live: tuple[str, ...]  # buffer names, largest first


def pair_saving(size_in: int, size_out: int, limit: int) -> int:
    """Bytes an input and the output written over it can share at best."""
    footprint = max(size_in, size_out) if limit >= 0 else max(size_in - limit, size_out)
    return max(0, size_in + size_out - min(footprint, size_in + size_out))


def step_usage(buffers: tuple[Buffer, ...] | list[Buffer], declared: tuple[Overlap, ...] | list[Overlap],
               offsets: dict[str, int] | None = None, steps: int | None = None) -> list[StepUsage]:
    """One row per step 0..steps-1 (default: up to the last step any buffer is live)."""
    if steps is None:
        steps = max((b.last for b in buffers), default=-1) + 1
    sizes = {b.name: b.size for b in buffers}
    rows = []
    for s in range(steps):
        live = sorted((b for b in buffers if b.first <= s <= b.last), key=lambda b: (-b.size, b.name))
        total = sum(b.size for b in live)
        saved: dict[str, int] = {}
        for o in declared:
            if o.step == s:
                saved[o.output] = saved.get(o.output, 0) + pair_saving(sizes[o.input], sizes[o.output], o.limit)
        bound = total - sum(min(v, sizes[name]) for name, v in saved.items())
        top = max((offsets[b.name] + b.size for b in live), default=0) if offsets else 0
        rows.append(StepUsage(s, total, bound, top, tuple(b.name for b in live)))
    return rows


def lower_bound(buffers: list[Buffer], declared: list[Overlap]) -> int:
    """Max over steps of bound_bytes, rounded up to the alignment every offset and size has."""
    return aligned(max((row.bound_bytes for row in step_usage(buffers, declared)), default=0))
