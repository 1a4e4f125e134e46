"""Offsets for buffers placed one by one in a given order, each at the lowest safe offset.

Every pair of buffers live at the same step forbids an open interval of
delta = offset(b) - offset(a): (-size(b), size(a)) normally, narrowed to
(max(limit, -size(b)), size(a)) when the kernel declares that b, its output, may
start at offset(a) + d for any d <= limit (a is its dying input).
"""
from __future__ import annotations

from dataclasses import dataclass

from .lifetimes import ALIGNMENT, Buffer, Overlap, aligned


@dataclass(frozen=True)
class Conflict:
    """Placing `buffer` at x is unsafe when offset(other) + lo < x < offset(other) + hi."""

    other: int
    lo: int
    hi: int
    shared: bool = False  # a declared overlap in which this buffer is the output (other its input)


def conflicts(buffers: list[Buffer], declared: list[Overlap]) -> list[list[Conflict]]:
    """For each buffer (by index), the constraints every time-overlapping buffer puts on its offset."""
    limits = {(o.input, o.output): o.limit for o in declared}
    table: list[list[Conflict]] = [[] for _ in buffers]
    for i, a in enumerate(buffers):
        for j in range(i + 1, len(buffers)):
            b = buffers[j]
            if not a.overlaps_in_time(b):
                continue
            lo, hi = forbidden_delta(a, b, limits)  # of offset(b) - offset(a)
            if lo >= hi:
                continue
            table[j].append(Conflict(i, lo, hi, (a.name, b.name) in limits))
            table[i].append(Conflict(j, -hi, -lo, (b.name, a.name) in limits))
    return table


def forbidden_delta(a: Buffer, b: Buffer, limits: dict[tuple[str, str], int]) -> tuple[int, int]:
    """The open interval of offset(b) - offset(a) that would let a and b corrupt each other."""
    if (a.name, b.name) in limits:
        return max(limits[a.name, b.name], -b.size), a.size
    if (b.name, a.name) in limits:
        return -b.size, min(-limits[b.name, a.name], a.size)
    return -b.size, a.size


def place(order: list[int], sizes: list[int], table: list[list[Conflict]], chain: bool = False) -> list[int]:
    """Offsets (indexed like `sizes`) placing buffers in `order`, each at its lowest safe offset >= 0.

    `chain`: an output goes as high as its declared overlap with an already placed
    input allows (just below or on that input) when that is safe, and the plan
    may grow downwards (offsets are shifted to start at 0 at the end): in-place
    chains of layers then stack instead of alternating between two regions."""
    offsets: list[int | None] = [None] * len(sizes)
    floor = 0
    for i in order:
        placed = [(c, offsets[c.other]) for c in table[i] if offsets[c.other] is not None]
        intervals = [(off + c.lo, off + c.hi) for c, off in placed]

        def safe(x: int) -> bool:
            return all(not lo < x < hi for lo, hi in intervals)

        shared = sorted((_align_down(off + c.lo) for c, off in placed if c.shared), reverse=True) if chain else []
        x = next((x for x in shared if safe(x)), None)
        if x is None:
            # the lowest safe offset is the floor or the (word-aligned) upper end of some forbidden interval
            x = next(x for x in sorted({floor, *(aligned(hi) for _, hi in intervals if hi > floor)}) if safe(x))
        offsets[i] = x
        floor = min(floor, x)
    return [o - floor for o in offsets if o is not None]


def _align_down(x: int) -> int:
    return x // ALIGNMENT * ALIGNMENT


def arena_of(offsets: list[int], sizes: list[int]) -> int:
    return max((o + s for o, s in zip(offsets, sizes)), default=0)
