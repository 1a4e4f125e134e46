"""Lowered graph + memory plan -> C source files (text only; writing is output.py's job)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..ir import Graph, IRError, check_stage
from ..kernels import activation_inputs, kernel_of
from ..kernels.arm import feeder, streamed
from ..kernels.arm.common import KernelSource
from ..passes.select_kernels import DEFAULT_OPTIMIZE
from ..plan import Plan
from ..plan.lifetimes import scratch_name
from .environment import render
from .naming import Names, c_type, kernel_function, params_type

_PER_LINE = 20
# Intrinsics header -> its portable C twin, which the header includes when the core lacks the extension
EMULATION = {"mcugen_dsp.h": "mcugen_acle_emul.h", "mcugen_mve.h": "mcugen_mve_emul.h"}


@dataclass(frozen=True)
class ConstArray:
    name: str
    ctype: str
    length: int
    body: str


@dataclass(frozen=True)
class Layer:
    index: int
    name: str
    op: str
    function: str
    params_type: str
    params_name: str
    fields: tuple[tuple[str, int], ...]  # empty: the function takes no params struct (a specialised variant)
    args: tuple[str, ...]
    call: bool = True  # False: a streamed layer, which the next layer's function runs


def c_array_body(array: np.ndarray) -> str:
    flat = [str(v) for v in np.asarray(array).ravel().tolist()]
    lines = (", ".join(flat[i : i + _PER_LINE]) for i in range(0, len(flat), _PER_LINE))
    return ",\n    ".join(lines)


def c_comment(text: str) -> str:
    """Text safe inside a C block comment."""
    return text.replace("*/", "* /").replace("\n", " ")


def _buffer(graph: Graph, plan: Plan, names: Names, tensor: str) -> str:
    if tensor in plan.offsets:
        return f"&{names.arena}.bytes[{plan.offsets[tensor]}]"
    if tensor in graph.inputs:
        return "input"
    if tensor in graph.outputs:
        return "output"
    raise IRError(f"tensor '{tensor}' has no place in the memory plan")


def _layers(graph: Graph, plan: Plan, names: Names) -> tuple[list[Layer], list[ConstArray], list[KernelSource]]:
    layers, arrays, sources = [], [], {}
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    constants: dict[int, list[str]] = {}
    for i, node in enumerate(graph.nodes):
        module = kernel_of(node)
        source = None
        if node.variant != "portable":  # a specialised variant brings its own function (shared when identical)
            source = module.c_kernel(node, graph, graph.meta.get("optimize", DEFAULT_OPTIMIZE))
            sources.setdefault(source.name, source)
        fed = feeder(node, graph)
        # a fed layer's function runs its feeder too: the feeder's params, input and constants come with its own
        reads = node if fed is None else fed
        args = [f"&{names.layer_params(index[fed.name])}"] if fed is not None else []
        args += [_buffer(graph, plan, names, t) for t in activation_inputs(reads, graph)]
        args.append(_buffer(graph, plan, names, node.outputs[0]) if not streamed(node) else "0")
        constants[i] = []
        for role, data in module.c_constants(node, graph):
            const = ConstArray(names.layer_constant(i, role), c_type(data.dtype), data.size, c_array_body(data))
            arrays.append(const)
            constants[i].append(const.name)
        args += constants[i]
        if fed is not None:
            args += constants[index[fed.name]]
        if module.SCRATCH:
            scratch = scratch_name(i)
            args.append(f"&{names.arena}.bytes[{plan.offsets[scratch]}]" if scratch in plan.offsets else "0")
        fields = tuple((k, int(v)) for k, v in module.c_params(node, graph).items())
        if source is not None and bool(fields) != (source.params is not None):
            raise IRError(f"node '{node.name}' ({node.op}): variant '{node.variant}' has params {dict(fields)} "
                          f"but its function takes {source.params or 'no params struct'}")
        layers.append(
            Layer(i, c_comment(node.name), node.op, source.name if source else kernel_function(node.op),
                  source.params if source else params_type(node.op), names.layer_params(i), fields, tuple(args),
                  not streamed(node))
        )
    return layers, arrays, list(sources.values())


def _variant_structs(layers: list[Layer], sources: list[KernelSource]) -> dict[str, tuple[str, ...]]:
    """Struct type -> field names, for the params structs variant functions take."""
    typed = {k.params for k in sources if k.params}
    structs: dict[str, tuple[str, ...]] = {}
    for layer in layers:
        if layer.params_type in typed:
            names = tuple(f for f, _ in layer.fields)
            if structs.setdefault(layer.params_type, names) != names:
                raise IRError(f"layer {layer.index} '{layer.name}': {layer.params_type} fields {names} differ from "
                              f"another layer's {structs[layer.params_type]}")
    return structs


def emit(graph: Graph, plan: Plan, prefix: str = "mcugen", model_name: str = "model") -> dict[str, str]:
    """File name -> contents of the generated C for `graph`."""
    check_stage(graph, "lowered")
    names = Names(prefix)
    layers, arrays, sources = _layers(graph, plan, names)
    headers = sorted({h for k in sources for h in k.headers})
    (input_name,) = graph.inputs
    (output_name,) = graph.outputs
    inp, out = graph.tensor(input_name), graph.tensor(output_name)
    context = dict(
        version=__version__,
        model=c_comment(model_name),
        names=names,
        header=names.file(".h"),
        layers=layers,
        arrays=arrays,
        ops=sorted({node.op for node in graph.nodes if node.variant == "portable"}),
        sources=sources,
        variant_structs=_variant_structs(layers, sources),
        headers=headers,
        arena_size=plan.arena_size,
        uses_arena=bool(plan.offsets),
        arena_bound=plan.lower_bound,
        io_in_arena=plan.io_in_arena,
        input_arg=_buffer(graph, plan, names, input_name),
        output_arg=_buffer(graph, plan, names, output_name),
        input=inp,
        output=out,
        input_scale=repr(inp.qparams.scalar_scale),
        output_scale=repr(out.qparams.scalar_scale),
    )
    return {
        names.file(".h"): render("model.h.j2", **context),
        names.file(".c"): render("model.c.j2", **context),
        names.file("_weights.c"): render("weights.c.j2", **context),
        "mcugen_arith.h": render("runtime/mcugen_arith.h"),
        **{h: render(f"runtime/{h}") for h in headers},
        **{EMULATION[h]: render(f"runtime/{EMULATION[h]}") for h in headers if h in EMULATION},
    }
