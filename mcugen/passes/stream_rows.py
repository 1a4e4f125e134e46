"""Run a DSP pointwise layer inside the DSP depthwise layer that reads it, row by row.

After select_kernels: where a pointwise_dsp node's output is read only by the very next node,
a depthwise_dsp (not re-copying, i.e. not a stride-2 layer under `--optimize size`), that layer's ring
of every channel is smaller than the tensor, and an odd row width's phantom pixel costs less
than the copy saved (`_cheaper`), both switch variant: the pointwise to
pointwise_ring_dsp (writes the depthwise's int16 ring rows, no tensor), the depthwise to
depthwise_fed_dsp (calls it per row, no copy). The graph's semantics are untouched: the
same nodes compute the same int8 values; only where the intermediate lives changes
(mcugen/kernels/arm/pointwise_ring_dsp.py has the numbers).
"""
from __future__ import annotations

import dataclasses

from ..ir import Graph, check_stage
from ..kernels.arm import depthwise_dsp, depthwise_fed_dsp, pointwise_dsp, pointwise_ring_dsp
from ..kernels.conv2d import ConvGeometry, geometry


# Instructions (M7, QEMU): the depthwise's copy per byte it widens (VWW layers 3 and 5: 1.6-1.8),
# and the pointwise per MAC (1.1 MAC/instr at 16-64 input channels). Called per row, the
# pointwise computes a phantom pixel at the end of an odd-width row (its blocks take pixel pairs).
COPY_PER_BYTE, PER_MAC = 1.6, 1 / 1.1


def _cheaper(producer_geometry: ConvGeometry) -> bool:
    """Whether the copy a row saves outweighs the phantom pixel an odd row costs (KWS's 5-pixel rows
    of 64 channels: no)."""
    g = producer_geometry
    return g.in_w % 2 == 0 or COPY_PER_BYTE * g.in_w * g.out_c > PER_MAC * g.in_c * g.out_c


def _streams(graph: Graph, first: int) -> bool:
    producer, reader = graph.nodes[first], graph.nodes[first + 1]
    (out,) = producer.outputs
    if producer.variant != pointwise_dsp.NAME or reader.variant != depthwise_dsp.NAME:
        return False
    if out in graph.outputs or [n.name for n in graph.consumers(out)] != [reader.name]:
        return False
    if depthwise_dsp.recopies(reader, graph) or not _cheaper(geometry(producer, graph)):
        return False
    return depthwise_fed_dsp.ring_bytes(reader, graph) < graph.tensor(out).nbytes


def stream_rows(graph: Graph) -> Graph:
    check_stage(graph, "lowered")
    nodes = list(graph.nodes)
    for i in range(len(nodes) - 1):
        if _streams(graph, i):
            nodes[i] = dataclasses.replace(nodes[i], variant=pointwise_ring_dsp.NAME)
            nodes[i + 1] = dataclasses.replace(nodes[i + 1], variant=depthwise_fed_dsp.NAME)
    return graph.replace(nodes=tuple(nodes))
