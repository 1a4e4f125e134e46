"""Per layer: the QParams a lowered graph runs with and the integer multipliers derived from them.

When two tools disagree on a quantized model, the first layer whose scales, zero
points or (multiplier, shift) differ is where they part; this lists them all.
A multiplier q with shift s stands for the real factor q * 2^(s - 31).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .ir import Graph, check_stage
from .kernels.add import AddParams
from .kernels.softmax import SoftmaxParams


@dataclass(frozen=True)
class TensorQuant:
    name: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class Rescale:
    """One (multiplier, shift) pair, or per-channel ones, and the real factor it stands for."""

    what: str  # "output" (per channel), "input1", "input2", "output", "input (softmax)"
    multiplier: list[int]
    shift: list[int]

    @property
    def real(self) -> list[float]:
        return [q * 2.0 ** (s - 31) for q, s in zip(self.multiplier, self.shift)]


@dataclass(frozen=True)
class LayerQuant:
    name: str
    op: str
    inputs: list[TensorQuant]
    output: TensorQuant
    weight_scales: list[float] = field(default_factory=list)  # one per output channel, or one per tensor
    weight_zero_point: int | None = None  # the int8 zero point of per-tensor weights (uint8 models)
    rescales: list[Rescale] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)  # other integer parameters (softmax diff_min, add left_shift)

    def to_json(self) -> dict:
        data = asdict(self)
        data["rescales"] = [{**asdict(r), "real": r.real} for r in self.rescales]
        return data


def inspect_graph(graph: Graph) -> list[LayerQuant]:
    check_stage(graph, "lowered")
    return [_layer(graph, node) for node in graph.nodes]


def _tensor(graph: Graph, name: str) -> TensorQuant:
    qp = graph.tensor(name).qparams
    assert qp is not None
    return TensorQuant(name, qp.scalar_scale, qp.scalar_zero_point)


def _layer(graph: Graph, node) -> LayerQuant:  # noqa: ANN001 - an ir.Node
    inputs = [_tensor(graph, n) for n in node.inputs if not graph.tensor(n).is_const]
    output = _tensor(graph, node.outputs[0])
    lowered = node.lowered
    stage = getattr(lowered, "stage", lowered)
    if hasattr(stage, "multiplier") and hasattr(stage, "weight_offset"):  # conv, depthwise, fully connected
        weights = graph.tensor(node.inputs[1]).qparams
        assert weights is not None
        zp = None if weights.axis is not None else int(weights.zero_point[0])
        rescale = Rescale("output", [int(q) for q in stage.multiplier], [int(s) for s in stage.shift])
        return LayerQuant(node.name, node.op, inputs, output, [float(s) for s in np.ravel(weights.scale)], zp, [rescale])
    if isinstance(lowered, AddParams):
        rescales = [Rescale(w, [getattr(lowered, f"{w}_multiplier")], [getattr(lowered, f"{w}_shift")])
                    for w in ("input1", "input2", "output")]
        return LayerQuant(node.name, node.op, inputs, output, rescales=rescales, extra={"left_shift": lowered.left_shift})
    if isinstance(lowered, SoftmaxParams):
        rescale = Rescale("input (softmax)", [lowered.input_multiplier], [lowered.input_left_shift])
        return LayerQuant(node.name, node.op, inputs, output, rescales=[rescale], extra={"diff_min": lowered.diff_min})
    return LayerQuant(node.name, node.op, inputs, output)  # pools: output QParams are the input's, no rescale


def format_table(layers: list[LayerQuant], notes: list[str] | None = None) -> str:
    lines = ["zero points are the int8 ones mcugen runs with (a uint8 model's minus 128)",
             f"{'#':>3} {'layer':<28} {'op':<17} {'in scale / zp':<20} {'out scale / zp':<20} "
             f"{'weight scale (min..max) / zp':<30} multiplier, shift -> real"]
    for i, layer in enumerate(layers):
        ins = ", ".join(f"{t.scale:.6g}/{t.zero_point}" for t in layer.inputs)
        out = f"{layer.output.scale:.6g}/{layer.output.zero_point}"
        weights = ""
        if layer.weight_scales:
            lo, hi = min(layer.weight_scales), max(layer.weight_scales)
            weights = f"{lo:.4g}" if lo == hi else f"{lo:.4g}..{hi:.4g}"
            weights += f" /{layer.weight_zero_point}" if layer.weight_zero_point is not None else " (per ch.)"
        name = layer.name if len(layer.name) <= 28 else "…" + layer.name[-27:]
        lines.append(f"{i:>3} {name:<28} {layer.op:<17} {ins:<20} {out:<20} {weights:<30} {_rescales(layer)}")
    for note in notes or []:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _rescales(layer: LayerQuant) -> str:
    parts = []
    for r in layer.rescales:
        if len(set(zip(r.multiplier, r.shift))) == 1:  # per tensor, or per-channel weights sharing one scale
            parts.append(f"{r.what} {r.multiplier[0]}, {r.shift[0]} -> {r.real[0]:.6g}")
        else:
            real = r.real
            parts.append(f"{r.what} [{len(real)} ch] {r.multiplier[0]}, {r.shift[0]} ... -> {min(real):.4g}..{max(real):.4g}")
    parts += [f"{k} {v}" for k, v in layer.extra.items()]
    return "; ".join(parts) or "-"
