"""Run a pointwise layer inside the depthwise layer that reads it, row by row.

After select_kernels: where a pointwise_dsp (or pointwise_dsp8) node's output is read only by
the very next node, a depthwise_dsp, that layer's ring of every channel is smaller than the
tensor, and the phantom pixels of a row width the pointwise blocks do not divide cost less
than the copy saved (`_cheaper`), both switch variant: the pointwise to
pointwise_ring_dsp (writes the depthwise's int16 ring rows, no tensor), the depthwise to
depthwise_fed_dsp (calls it per row, no copy); on Helium, under `--optimize size`,
pointwise_mve and depthwise_mve likewise (pointwise_ring_mve, depthwise_fed_mve: a ring of
NHWC rows; Helium had no copy to save, so only memory is won). The
graph's semantics are untouched: the
same nodes compute the same int8 values; only where the intermediate lives changes
(mcugen/kernels/arm/pointwise_ring_dsp.py has the numbers).
"""
from __future__ import annotations

import dataclasses

from ..ir import Graph, check_stage
from ..kernels.arm import (depthwise_dsp, depthwise_fed_dsp, depthwise_fed_mve, depthwise_mve, pointwise_dsp,
                           pointwise_dsp8, pointwise_mve, pointwise_ring_dsp, pointwise_ring_mve)
from ..kernels.conv2d import ConvGeometry, geometry


# Instructions (M7, QEMU): the depthwise's copy per byte it widens (VWW layers 3 and 5: 1.6-1.8),
# and the pointwise per MAC (1.1 MAC/instr at 16-64 input channels). Called per row, the
# pointwise computes phantom pixels at the end of a row its blocks do not divide.
COPY_PER_BYTE, PER_MAC = 1.6, 1 / 1.1
# (feeder, reader) variants -> the streamed pair's variants and the feeder's pixels per block
PAIRS = {
    (pointwise_dsp.NAME, depthwise_dsp.NAME): (pointwise_ring_dsp, depthwise_fed_dsp, 2),
    (pointwise_dsp8.NAME, depthwise_dsp.NAME): (pointwise_ring_dsp, depthwise_fed_dsp, pointwise_dsp8.PIXELS),
    (pointwise_mve.NAME, depthwise_mve.NAME): (pointwise_ring_mve, depthwise_fed_mve, 1),
}


def _cheaper(g: ConvGeometry, pixels: int) -> bool:
    """Whether the copy a row saves outweighs the phantom pixels a row costs when the pointwise blocks
    take `pixels` at a time and the width is not a multiple (KWS's 5-pixel rows of 64 channels: no)."""
    phantoms = -g.in_w % pixels
    return COPY_PER_BYTE * g.in_w * g.out_c > PER_MAC * phantoms * g.in_c * g.out_c


def _streams(graph: Graph, first: int) -> bool:
    producer, reader = graph.nodes[first], graph.nodes[first + 1]
    (out,) = producer.outputs
    pair = PAIRS.get((producer.variant, reader.variant))
    if pair is None or out in graph.outputs or [n.name for n in graph.consumers(out)] != [reader.name]:
        return False
    ring, fed, pixels = pair
    if ring is pointwise_ring_mve and graph.meta.get("optimize") != "size":
        return False  # Helium reads NHWC as it is: streaming saves only memory, for ~2% more instructions
    if not _cheaper(geometry(producer, graph), pixels) or not ring.fits(producer, graph, reader):
        return False
    return fed.ring_bytes(reader, graph) < graph.tensor(out).nbytes


def stream_rows(graph: Graph) -> Graph:
    check_stage(graph, "lowered")
    nodes = list(graph.nodes)
    for i in range(len(nodes) - 1):
        if _streams(graph, i):
            ring, fed, _ = PAIRS[nodes[i].variant, nodes[i + 1].variant]
            nodes[i] = dataclasses.replace(nodes[i], variant=ring.NAME)
            nodes[i + 1] = dataclasses.replace(nodes[i + 1], variant=fed.NAME)
    return graph.replace(nodes=tuple(nodes))
