"""Calibration statistics -> activation QParams (float is fine here: compile time only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import sim
from ..errors import UserError
from ..ir import Graph, QParams
from ..kernels.common import round_half_away

METHODS = ("minmax", "percentile")
_PERCENTILE_SAMPLES = 200_000  # per tensor: bounds memory on big calibration sets


@dataclass
class RangeObserver:
    """Per-tensor min/max, plus a value reservoir for the percentile method."""

    method: str = "minmax"
    percentile: float = 99.99
    lo: dict[str, float] = field(default_factory=dict)
    hi: dict[str, float] = field(default_factory=dict)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __call__(self, name: str, x: np.ndarray) -> None:
        self.lo[name] = min(self.lo.get(name, np.inf), float(x.min()))
        self.hi[name] = max(self.hi.get(name, -np.inf), float(x.max()))
        if self.method == "percentile":
            flat = x.ravel()
            step = max(1, flat.size // 20_000)
            self.values.setdefault(name, []).append(flat[::step])

    def range(self, name: str) -> tuple[float, float]:
        if self.method == "percentile" and name in self.values:
            v = np.concatenate(self.values[name])[:_PERCENTILE_SAMPLES]
            tail = 100.0 - self.percentile
            return float(np.percentile(v, tail)), float(np.percentile(v, self.percentile))
        return self.lo[name], self.hi[name]


def asymmetric_int8(lo: float, hi: float) -> QParams:
    """Per-tensor int8 QParams covering [lo, hi] (always including 0, so zero is exact)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    if scale == 0.0:
        return QParams.per_tensor(1.0 / 255.0, 0)
    zero_point = int(np.clip(round_half_away(-128.0 - lo / scale), -128, 127))
    return QParams.per_tensor(scale, zero_point)


def calibrate(
    graph: Graph,
    samples: np.ndarray,
    method: str = "minmax",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, QParams]:
    """Run the float graph on every sample and derive each activation's QParams."""
    if method not in METHODS:
        raise UserError(f"unknown calibration method '{method}' (choose from {', '.join(METHODS)})")
    observer = RangeObserver(method)
    for i, x in enumerate(samples):
        sim.run(graph, x, observe=observer)
        if progress:
            progress(i + 1, len(samples))
    return {name: asymmetric_int8(*observer.range(name)) for name in observer.lo}


FALLBACK_RANGE = (-6.0, 6.0)


def fallback_ranges(graph: Graph) -> dict[str, QParams]:
    """No calibration data: [-6, 6] (ReLU6-sized) for every activation, narrowed by its fused activation.

    A poor default, documented in the README; the CLI warns loudly when it is used.
    """
    ranges = {name: FALLBACK_RANGE for name in graph.inputs}
    for node in graph.nodes:
        act = getattr(node.attrs, "activation", None)
        lo, hi = FALLBACK_RANGE
        if act is not None:
            lo, hi = max(lo, act.lo), min(hi, act.hi)
        ranges[node.outputs[0]] = (lo, hi)
    return {name: asymmetric_int8(lo, hi) for name, (lo, hi) in ranges.items()}
