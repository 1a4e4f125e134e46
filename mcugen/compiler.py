"""The compile pipeline, stage by stage: load -> import -> canonicalise -> quantize -> lower -> plan -> emit."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from .codegen.emit import emit
from .frontend import import_model, load_model
from .frontend.prequantized import import_prequantized, is_prequantized, model_qparams
from .inputs import Preprocess, load_samples, prepare
from .ir import Graph
from .passes import canonicalize
from .passes.lower_qparams import lower_qparams
from .passes.quantize import quantize
from .passes.select_kernels import DEFAULT_OPTIMIZE, OPTIMIZE, select_kernels
from .passes.stream_rows import stream_rows
from .plan import Plan, plan_memory
from .quant.calibrate import calibrate, fallback_ranges

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CalibrationOptions:
    path: str | None = None
    keys: str | None = None
    method: str = "minmax"
    preprocess: Preprocess = field(default_factory=Preprocess)


@dataclass(frozen=True)
class Compiled:
    name: str
    float_graph: Graph | None  # None for pre-quantized models
    graph: Graph  # lowered
    plan: Plan
    calibrated: bool
    preprocess: Preprocess  # with the layout resolved: what user samples go through

    def emit(self, prefix: str = "mcugen") -> dict[str, str]:
        return emit(self.graph, self.plan, prefix=prefix, model_name=self.name)

    def replan(self, io_in_arena: bool = False, allow_overlap: bool = True) -> "Compiled":
        """The same model with a memory plan made under other options (plan.plan_memory)."""
        return dataclasses.replace(self, plan=plan_memory(self.graph, io_in_arena, allow_overlap))


def load_float_graph(path: str | Path) -> Graph:
    path = Path(path)
    return canonicalize(import_model(load_model(path), name=path.stem))


def compile_model(path: str | Path, calib: CalibrationOptions, progress: Progress | None = None,
                  target: str = "host", optimize: str = DEFAULT_OPTIMIZE) -> Compiled:
    """`calib.preprocess.layout` None means: the layout of the model's own input.

    `target` (a registry name) is recorded in `graph.meta["target"]`: the IR is the
    only thing passes share, so target-dependent passes read it from there."""
    if optimize not in OPTIMIZE:
        raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE)}, got '{optimize}'")
    path = Path(path)
    model = load_model(path)
    if is_prequantized(model):
        return _compile_prequantized(model, path, calib.preprocess, target, optimize)
    float_graph = canonicalize(import_model(model, name=path.stem))
    float_graph = dataclasses.replace(float_graph, meta={**float_graph.meta, "target": target, "optimize": optimize})
    preprocess = calib.preprocess
    if preprocess.layout is None:
        preprocess = dataclasses.replace(preprocess, layout=float_graph.meta.get("input_layout", "nhwc"))
    if calib.path is not None:
        (input_name,) = float_graph.inputs
        shape = float_graph.tensor(input_name).shape
        _, samples = prepare(load_samples(calib.path, calib.keys), shape, preprocess, None, None)
        report = (lambda done, total: progress("calibrating", done, total)) if progress else None
        qparams = calibrate(float_graph, samples, calib.method, report)
    else:
        qparams = fallback_ranges(float_graph)
    graph = stream_rows(select_kernels(lower_qparams(quantize(float_graph, qparams))))
    return Compiled(Path(path).stem, float_graph, graph, plan_memory(graph), calib.path is not None, preprocess)


def _compile_prequantized(model: onnx.ModelProto, path: Path, preprocess: Preprocess, target: str,
                          optimize: str) -> Compiled:
    """The model's own scales, zero points and integers (frontend/prequantized.py): no calibration."""
    imported = import_prequantized(model, name=path.stem)
    graph = canonicalize(imported.graph)
    qparams, notes = model_qparams(imported, graph)
    graph = graph.replace(meta={**graph.meta, "target": target, "optimize": optimize, "prequantized_notes": notes})
    graph = stream_rows(select_kernels(lower_qparams(quantize(graph, qparams))))
    if preprocess.layout is None:
        preprocess = dataclasses.replace(preprocess, layout=graph.meta.get("input_layout", "nhwc"))
    return Compiled(path.stem, None, graph, plan_memory(graph), False, preprocess)


def quantized_inputs(compiled: Compiled, path: str, keys: str | None = None) -> tuple[list[str], np.ndarray]:
    """User samples as the int8 NHWC arrays the generated C takes."""
    graph = compiled.graph
    (input_name,) = graph.inputs
    tensor = graph.tensor(input_name)
    source_dtype = graph.meta.get("quantized_input_dtype")  # set by the pre-quantized frontend
    return prepare(load_samples(path, keys), tensor.shape, compiled.preprocess, tensor.qparams, source_dtype)


def float_inputs(compiled: Compiled, path: str, keys: str | None = None) -> tuple[list[str], np.ndarray]:
    (input_name,) = compiled.graph.inputs
    shape = compiled.graph.tensor(input_name).shape
    return prepare(load_samples(path, keys), shape, compiled.preprocess, None, None)
