"""Greedy by size (TFLM's strategy): biggest buffer first, lowest offset that fits."""
from __future__ import annotations

from .lifetimes import Buffer


def greedy_by_size(buffers: list[Buffer]) -> dict[str, int]:
    placed: list[tuple[Buffer, int]] = []
    offsets: dict[str, int] = {}
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.name)):
        conflicts = sorted((off, off + b.size) for b, off in placed if b.overlaps_in_time(buf))
        offset = 0
        for start, end in conflicts:
            if offset + buf.size <= start:
                break
            offset = max(offset, end)
        offsets[buf.name] = offset
        placed.append((buf, offset))
    return offsets
