"""Model-level checks before import: what would otherwise crash deep in the compiler
(or allocate gigabytes) is refused here with the node, the tensor and a hint.

`check_structure` runs on the loaded protobuf before ONNX's checker: opset, the
graph's one input and one output, wiring (dangling reads, duplicate producers,
cycles), initializers (type, dims against the data, NaN/Inf) and input shapes.
`check_shapes` runs after shape inference: no inferred tensor may be empty or
absurdly large.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import InvalidModelError, Problem, UserError

MIN_OPSET = 7  # BatchNormalization and Clip before 7 had other attributes
MAX_OPSET = 21
MAX_TENSOR_BYTES = 2**31  # no microcontroller holds more; also NumPy's and int32 indexing's limit
READABLE_TYPES = frozenset({
    TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8, TensorProto.UINT8,
    TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32, TensorProto.UINT32, TensorProto.INT64,
    TensorProto.UINT64, TensorProto.BOOL,
})  # fmt: skip
_REEXPORT = "re-export the model from its framework"


@dataclass(frozen=True)
class _Reader:
    node: str
    op: str


def check_structure(model: onnx.ModelProto, source: str) -> None:
    """Raise a UserError for a model mcugen cannot read; sorts out-of-order (acyclic) nodes in place."""
    if not model.HasField("graph") or model.ir_version == 0:
        # Any byte string without protobuf syntax errors parses, the empty file included.
        raise UserError(f"{source}: not a valid ONNX model (no graph or IR version: empty or not ONNX)")
    _check_opset(model, source)
    _check_text(model, source)
    graph = model.graph
    names = [_node_name(node, i) for i, node in enumerate(graph.node)]
    readers = _readers(graph, names)
    problems = _check_io(graph, readers)
    problems += _check_attribute_types(graph, names, model.opset_import)
    problems += _check_wiring(graph, names)
    problems += _check_initializers(graph, readers)
    if problems:
        raise InvalidModelError(problems, model=source)
    _sort_nodes(graph, names, source)


def check_shapes(model: onnx.ModelProto, source: str) -> None:
    """After shape inference: every known tensor shape is non-empty and under MAX_TENSOR_BYTES."""
    producer = {out: (_node_name(n, i), n.op_type) for i, n in enumerate(model.graph.node) for out in n.output}
    problems = []
    for value in [*model.graph.value_info, *model.graph.output]:
        reason = _shape_problem(value)
        if reason:
            node, op = producer.get(value.name, (value.name, "output"))
            problems.append(Problem(node, op, f"output '{value.name}' {reason}",
                                    "check the attributes and shapes feeding this node"))
    if problems:
        raise InvalidModelError(problems, model=source)


# Opset --------------------------------------------------------------------------


def _check_opset(model: onnx.ModelProto, source: str) -> None:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise UserError(f"{source}: the model imports no ai.onnx opset; {_REEXPORT} with opset 13")
    if not MIN_OPSET <= versions[0] <= MAX_OPSET:
        raise UserError(f"{source}: opset {versions[0]} is outside the supported range {MIN_OPSET}..{MAX_OPSET}; "
                        f"hint: {_REEXPORT} with opset 13 (tf2onnx --opset 13, torch.onnx.export(opset_version=13)) "
                        "or convert it with onnx.version_converter")


# Names and attributes -------------------------------------------------------------


def _check_text(model: onnx.ModelProto, source: str) -> None:
    """Protobuf hands back bytes, not str, for a string field that is not UTF-8: a corrupt file."""
    graph = model.graph
    texts: list[object] = [v.name for v in (*graph.input, *graph.output, *graph.value_info, *graph.initializer)]
    for node in graph.node:
        texts += [node.name, node.op_type, node.domain, *node.input, *node.output]
        for attr in node.attribute:
            texts.append(attr.name)
            for raw in (attr.s, *attr.strings):
                try:
                    raw.decode()
                except UnicodeDecodeError:
                    texts.append(raw)
    if not all(isinstance(text, str) for text in texts):
        raise UserError(f"{source}: names or strings in the model are not valid UTF-8 (the file is corrupt); "
                        f"hint: {_REEXPORT}")


def _check_attribute_types(graph: onnx.GraphProto, names: list[str],
                           opsets: Iterable[onnx.OperatorSetIdProto]) -> list[Problem]:
    """Each attribute of a standard op has the type its schema declares (the checker does not always say)."""
    version = next(o.version for o in opsets if o.domain in ("", "ai.onnx"))
    problems = []
    for node, name in zip(graph.node, names):
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, version, "")
        except onnx.defs.SchemaError:
            continue  # an unknown op: the importer lists it with the other unsupported ones
        for attr in node.attribute:
            declared = schema.attributes.get(attr.name)
            if declared is not None and int(declared.type) != attr.type:
                expected = onnx.AttributeProto.AttributeType.Name(int(declared.type))
                problems.append(Problem(name, node.op_type, f"attribute '{attr.name}' is "
                                        f"{_attr_type_name(attr.type)}, expected {expected}", _REEXPORT))
    return problems


def _attr_type_name(attr_type: int) -> str:
    try:
        return onnx.AttributeProto.AttributeType.Name(attr_type)
    except ValueError:
        return f"type #{attr_type}"


# Inputs and outputs -------------------------------------------------------------


def _check_io(graph: onnx.GraphProto, readers: dict[str, list[_Reader]]) -> list[Problem]:
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    problems = []
    if not inputs:
        problems.append(Problem("(graph)", "input", "the model has no input", _REEXPORT))
    for value in inputs[1:]:
        weighted = [r for r in readers.get(value.name, []) if r.op in ("Conv", "Gemm", "MatMul", "BatchNormalization")]
        if weighted:
            problems.append(Problem(weighted[0].node, weighted[0].op, f"reads '{value.name}' as a parameter, but it "
                                    "is a graph input without an initializer",
                                    "the weights are missing: export with the parameters as initializers"))
        else:
            problems.append(Problem(value.name, "input", f"is a second graph input (mcugen compiles models with "
                                    f"one input; the first is '{inputs[0].name}')", "export a single-input model"))
    for value in inputs:
        reason = _input_problem(value)
        if reason:
            problems.append(Problem(value.name, "input", reason, "export the model with a fixed input size"))
    if len(graph.output) != 1:
        problems.append(Problem("(graph)", "output", f"the model has {len(graph.output)} outputs, mcugen compiles "
                                "models with exactly one", "export a single-output model"))
    input_names = {v.name for v in inputs}
    for value in graph.output:
        if value.name in input_names:
            problems.append(Problem(value.name, "output", "the output is the graph input itself", _REEXPORT))
    return problems


def _input_problem(value: onnx.ValueInfoProto) -> str:
    tensor_type = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        return "is not a tensor"
    if tensor_type.elem_type not in READABLE_TYPES:
        return f"has element type {_type_name(tensor_type.elem_type)}, expected float32 or int8/uint8"
    elements = 1
    for axis, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value <= 0:
            return f"dimension {axis} is {dim.dim_value}; every dimension must be positive"
        elements *= max(dim.dim_value, 1)
    nbytes = elements * helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).itemsize
    if nbytes > MAX_TENSOR_BYTES:
        return f"shape {_dims(tensor_type)} is {nbytes:,} bytes, over the {MAX_TENSOR_BYTES:,}-byte limit"
    return ""


# Wiring ---------------------------------------------------------------------------


def _check_wiring(graph: onnx.GraphProto, names: list[str]) -> list[Problem]:
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    producers: dict[str, str] = {}
    problems = []
    for node, name in zip(graph.node, names):
        for out in node.output:
            if not out:
                continue
            if out in producers or out in defined:
                first = producers.get(out, "a graph input or initializer")
                problems.append(Problem(name, node.op_type, f"output '{out}' is also produced by {first}",
                                        "every tensor must have one producer (ONNX is single-assignment)"))
            producers.setdefault(out, f"node '{name}'")
    available = defined | set(producers)
    for node, name in zip(graph.node, names):
        for index, inp in enumerate(node.input):
            if inp and inp not in available:
                problems.append(Problem(name, node.op_type, f"input {index} '{inp}' is not produced by any node, "
                                        "initializer or graph input", "a missing initializer? " + _REEXPORT))
    for value in graph.output:
        if value.name not in available:
            problems.append(Problem(value.name, "output", "the graph output is not produced by any node", _REEXPORT))
    return problems


def _sort_nodes(graph: onnx.GraphProto, names: list[str], source: str) -> None:
    """Put the nodes in an order where each reads only what is computed before it, or refuse a cycle."""
    ready = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(zip(graph.node, names))
    order: list[onnx.NodeProto] = []
    while pending:
        runnable = [(n, name) for n, name in pending if all(i in ready for i in n.input)]
        if not runnable:
            cycle = ", ".join(f"'{name}' ({n.op_type})" for n, name in pending[:6])
            raise UserError(f"{source}: the graph has a cycle through nodes {cycle}; "
                            f"ONNX graphs must be acyclic: {_REEXPORT}")
        for n, _ in runnable:
            ready.update(n.output)
            order.append(n)
        pending = [(n, name) for n, name in pending if all(n is not r for r, _ in runnable)]
    if any(a is not b for a, b in zip(order, graph.node)):
        sorted_nodes = [_copy(n) for n in order]
        del graph.node[:]
        graph.node.extend(sorted_nodes)


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


# Initializers ---------------------------------------------------------------------


def _check_initializers(graph: onnx.GraphProto, readers: dict[str, list[_Reader]]) -> list[Problem]:
    tensors = [(t, readers.get(t.name, [])) for t in graph.initializer]
    for i, node in enumerate(graph.node):
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.HasField("t"):
                    tensors.append((attr.t, [_Reader(_node_name(node, i), "Constant")]))
    problems = []
    for tensor, users in tensors:
        reason, hint = _tensor_problem(tensor)
        if reason:
            node, op = (users[0].node, users[0].op) if users else (tensor.name, "initializer")
            problems.append(Problem(node, op, f"{_role(tensor, node)} {reason}", hint))
    return problems


def _tensor_problem(tensor: TensorProto) -> tuple[str, str]:
    """(reason, hint), or ("", "") for a tensor mcugen can read."""
    if tensor.data_type not in READABLE_TYPES:
        return f"has element type {_type_name(tensor.data_type)}, which mcugen does not read", \
            "export float32 (or int8) weights"
    if any(d < 0 for d in tensor.dims):
        return f"has negative dimensions {list(tensor.dims)}", _REEXPORT
    elements = int(np.prod(np.array(tensor.dims, dtype=object))) if tensor.dims else 1
    itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    if elements * itemsize > MAX_TENSOR_BYTES:
        return f"declares dims {list(tensor.dims)}: {elements * itemsize:,} bytes, over the " \
            f"{MAX_TENSOR_BYTES:,}-byte limit", _REEXPORT
    if tensor.data_location == TensorProto.EXTERNAL:
        return "has external data that was not loaded", "keep the data file beside the model"
    if tensor.HasField("raw_data"):
        stored = len(tensor.raw_data)
        expected = elements * itemsize
    else:
        stored = len(getattr(tensor, helper.tensor_dtype_to_field(tensor.data_type)))
        expected = elements
    if stored != expected:
        unit = "bytes" if tensor.HasField("raw_data") else "values"
        return f"declares dims {list(tensor.dims)} ({expected:,} {unit}) but holds {stored:,} {unit}", \
            "the file is truncated or corrupt: " + _REEXPORT
    array = numpy_helper.to_array(tensor)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array.reshape(-1)))
        what = "NaN" if np.isnan(array.reshape(-1)[bad[0]]) else "Inf"
        return f"holds {bad.size:,} non-finite value(s) ({what} at flat index {int(bad[0])})", \
            "the training diverged or the file is corrupt: use a checkpoint with finite weights"
    return "", ""


def _role(tensor: TensorProto, node: str) -> str:
    return f"constant '{tensor.name}'" if tensor.name != node else "initializer"


# Shapes ---------------------------------------------------------------------------


def _shape_problem(value: onnx.ValueInfoProto) -> str:
    tensor_type = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return ""
    elements = 1
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            if dim.dim_value <= 0:
                return f"has shape {_dims(tensor_type)}, with a dimension that is not positive"
            elements *= dim.dim_value
    itemsize = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).itemsize \
        if tensor_type.elem_type in READABLE_TYPES else 4
    if elements * itemsize > MAX_TENSOR_BYTES:
        return f"has shape {_dims(tensor_type)}: {elements * itemsize:,} bytes, over the " \
            f"{MAX_TENSOR_BYTES:,}-byte limit"
    return ""


# Helpers ----------------------------------------------------------------------------


def _node_name(node: onnx.NodeProto, index: int) -> str:
    """As the importer names nodes (frontend/context.py): the ONNX name, or <op_type>_<index>."""
    return node.name or f"{node.op_type}_{index}"


def _readers(graph: onnx.GraphProto, names: Iterable[str]) -> dict[str, list[_Reader]]:
    readers: dict[str, list[_Reader]] = {}
    for node, name in zip(graph.node, names):
        for inp in node.input:
            readers.setdefault(inp, []).append(_Reader(name, node.op_type))
    return readers


def _type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"#{elem_type} (unknown)"


def _dims(tensor_type: onnx.TypeProto.Tensor) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim]
