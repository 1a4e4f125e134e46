"""Loading and validating an ONNX file: every way it can be wrong becomes a UserError."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from ..errors import UserError
from .validate import check_shapes, check_structure


def load_model(path: str | Path) -> onnx.ModelProto:
    """Load, check and shape-infer `path`, with a dynamic batch dimension fixed to 1."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file (expected an .onnx model)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError) as exc:
        raise UserError(f"{path}: not an ONNX model, or the file is corrupt ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    _load_external_data(model, path.parent)
    try:
        check_structure(model, str(path))
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise UserError(f"{path}: not a valid ONNX model ({_first_line(exc)})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: a name in the model is not valid UTF-8 (the file is corrupt)") from None
    fix_batch(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        raise UserError(f"{path}: ONNX shape inference failed ({_first_line(exc)})") from None
    check_shapes(inferred, str(path))
    return inferred


def graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The real inputs: old exporters also list initializers (the weights) as inputs."""
    initializers = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in initializers]


def input_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    """The static shape of a graph input, a dynamic dim 0 (the batch) read as 1."""
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        raise UserError(f"input '{value.name}' has no shape; export the model with a fixed input shape")
    shape = []
    for axis, dim in enumerate(value.type.tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(dim.dim_value)
        elif axis == 0:
            shape.append(1)
        else:
            label = f" ('{dim.dim_param}')" if dim.dim_param else ""
            raise UserError(
                f"input '{value.name}': dimension {axis}{label} is dynamic; "
                "export the model with a fixed input size (only the batch dimension may be dynamic)"
            )
    if shape and shape[0] != 1:
        raise UserError(f"input '{value.name}' has batch size {shape[0]}; mcugen compiles batch-1 models")
    return tuple(shape)


def fix_batch(model: onnx.ModelProto) -> None:
    """Make every graph input static (batch 1), in place; stale output batch dims follow."""
    for value in graph_inputs(model.graph):
        shape = input_shape(value)
        for dim, size in zip(value.type.tensor_type.shape.dim, shape):
            dim.Clear()
            dim.dim_value = size
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
    # Inferred intermediate shapes may still carry the symbolic batch: infer them afresh.
    del model.graph.value_info[:]


def _load_external_data(model: onnx.ModelProto, folder: Path) -> None:
    """External tensors must live beside the model: a location leaving its folder is refused."""
    root = folder.resolve()
    external = [t for t in _all_tensors(model.graph) if t.data_location == onnx.TensorProto.EXTERNAL]
    for tensor in external:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (root / location).resolve()
        if not location or not target.is_relative_to(root):
            where = f"external data location '{location}'"
            raise UserError(f"tensor '{tensor.name}': {where} is outside the model's folder")
        if not target.is_file():
            raise UserError(f"tensor '{tensor.name}': external data file '{location}' not found beside the model")
    if external:
        try:
            external_data_helper.load_external_data_for_model(model, str(root))
        except (OSError, ValueError) as exc:
            raise UserError(f"{folder}: cannot read external data ({exc})") from None


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
