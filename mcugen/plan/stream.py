"""Kernels executed in their C order on a shared byte array (plan/execute.py).

Exactness argument used throughout: a run of units may be computed from one read
of the array and then written, instead of unit by unit, whenever no unit's write
lands on a byte a later unit of the run reads; the chunking below only merges
units under that condition (and treats a unit that may write over its own input
before reading it all separately).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node
from ..kernels.add import reference as add_reference
from ..kernels.conv2d import ConvGeometry, lowered_params
from ..kernels.depthwise_conv2d import delay_rows
from ..kernels.weights import constants, output_stage


@dataclass(frozen=True)
class Region:
    """`size` bytes of `memory` from `start`."""

    memory: np.ndarray
    start: int
    size: int

    def overlaps(self, other: "Region") -> bool:
        return (self.memory is other.memory and self.start < other.start + other.size
                and other.start < self.start + self.size)

    def read(self) -> np.ndarray:
        return self.memory[self.start : self.start + self.size].copy()

    def write(self, data: np.ndarray, at: int = 0) -> None:
        self.memory[self.start + at : self.start + at + data.size] = data


class WindowMath:
    """One conv2d / depthwise_conv2d node: which input bytes each output pixel reads, and its math."""

    def __init__(self, node: Node, graph: Graph) -> None:
        params = lowered_params(node)
        g = self.g = params.geometry
        self.stage = params.stage
        self.depthwise = node.op == "depthwise_conv2d"
        weights, bias = constants(node, graph)
        w = np.asarray(weights.data, np.int64) + self.stage.weight_offset
        # (taps * in_c, out_c) for conv2d; (taps, out_c) for depthwise
        self.w = w.reshape(g.kernel_h * g.kernel_w, g.out_c) if self.depthwise else w.reshape(g.out_c, -1).T
        self.bias = np.asarray(bias.data, np.int64)
        self.index = _window_index(g)  # (pixels, taps * in_c) input byte offsets, -1 in the padding
        valid = np.where(self.index >= 0, self.index, np.iinfo(np.int64).max)
        self.read_lo = valid.min(axis=1)
        self.read_hi = np.where(self.index >= 0, self.index, -1).max(axis=1)

    def compute(self, source: Region, pixels: slice | np.ndarray) -> np.ndarray:
        """(n, out_c) int8 outputs of `pixels`, reading `source` now."""
        g, index = self.g, self.index[pixels]
        x = source.memory[source.start + np.maximum(index, 0)].astype(np.int64) + self.stage.input_offset
        x[index < 0] = 0  # taps in the padding are skipped
        if self.depthwise:
            x = np.repeat(x.reshape(len(index), -1, g.in_c), g.out_c // g.in_c, axis=2)
            acc = (x * self.w).sum(axis=1)
        else:
            acc = x @ self.w
        return output_stage(acc + self.bias, self.stage)


def _window_index(g: ConvGeometry) -> np.ndarray:
    oy, ox, ky, kx, c = np.meshgrid(np.arange(g.out_h), np.arange(g.out_w), np.arange(g.kernel_h),
                                    np.arange(g.kernel_w), np.arange(g.in_c), indexing="ij")
    y = oy * g.stride_h - g.pad_top + ky
    x = ox * g.stride_w - g.pad_left + kx
    inside = (y >= 0) & (y < g.in_h) & (x >= 0) & (x < g.in_w)
    index = np.where(inside, (y * g.in_w + x) * g.in_c + c, -1)
    return index.reshape(g.out_h * g.out_w, -1)


def run_pixels(node: Node, graph: Graph, source: Region, out: Region) -> None:
    """The portable kernel pixel by pixel, out[oc] written before channel oc + 1 is read."""
    math = WindowMath(node, graph)
    co, pixels = math.g.out_c, math.g.out_h * math.g.out_w
    w0 = out.start + np.arange(pixels) * co  # absolute write range of each pixel: [w0, w0 + co)
    lo, hi = source.start + math.read_lo, source.start + math.read_hi

    def hits_own(q: int) -> bool:
        return bool(w0[q] <= hi[q] and lo[q] < w0[q] + co)

    q = 0
    while q < pixels:
        if hits_own(q):  # the pixel's first writes may change what its later channels read
            for oc in range(co):
                out.write(math.compute(source, np.array([q]))[0, oc : oc + 1], q * co + oc)
            q += 1
            continue
        end = q + 1
        while end < pixels and not hits_own(end) and (w0[end] <= lo[end] or w0[q] > hi[end]):
            end += 1
        out.write(math.compute(source, slice(q, end)).ravel(), q * co)
        q = end


def run_ring(node: Node, graph: Graph, source: Region, out: Region, ring: Region) -> None:
    """delay_rows r > 0: each row computed into the ring, row y copied out once row y + r - 1 is done."""
    math = WindowMath(node, graph)
    g, rows = math.g, delay_rows(math.g)
    row_bytes = g.out_w * g.out_c
    for oy in range(g.out_h + rows - 1):
        if oy < g.out_h:  # the ring never overlaps the input (a separate buffer), so one read per row is exact
            ring.write(math.compute(source, slice(oy * g.out_w, (oy + 1) * g.out_w)).ravel(), (oy % rows) * row_bytes)
        done = oy - (rows - 1)
        if done >= 0:
            slot = ring.start + (done % rows) * row_bytes
            out.write(ring.memory[slot : slot + row_bytes].copy(), done * row_bytes)


def run_add(node: Node, graph: Graph, sources: list[Region], out: Region) -> None:
    """Element i reads both inputs at i, then writes output i, in ascending i.

    With the output d > 0 bytes above an input, writes land d elements ahead of the
    reads: chunks of d elements are exact (a chunk's writes only reach later chunks)."""
    shifts = [out.start - s.start for s in sources if s.memory is out.memory and 0 < out.start - s.start < s.size]
    step = min(shifts, default=out.size)
    for i in range(0, out.size, step):
        n = min(step, out.size - i)
        a, b = (s.memory[s.start + i : s.start + i + n].copy() for s in sources)
        out.write(np.asarray(add_reference(node, graph, [a, b]), np.int8), i)
