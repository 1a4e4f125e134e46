"""How ONNX tensors are stored in the IR, and running one ONNX node with NumPy.

ONNX treats 4-D activations as NCHW; the IR stores them NHWC ("transposed").
Every other tensor, and a 4-D graph input that the model itself reorders
(tf2onnx's NHWC inputs), is stored in its own ONNX order. Layout-changing ONNX
ops are turned into gathers by running the op itself on an index array, so
the frontend never special-cases a particular Transpose or Reshape.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


def storage_shape(onnx_shape: Sequence[int], transposed: bool) -> tuple[int, ...]:
    return tuple(onnx_shape[i] for i in NCHW_TO_NHWC) if transposed else tuple(onnx_shape)


def to_storage(array: np.ndarray, transposed: bool) -> np.ndarray:
    return array.transpose(NCHW_TO_NHWC) if transposed else array


def to_onnx(array: np.ndarray, transposed: bool) -> np.ndarray:
    return array.transpose(NHWC_TO_NCHW) if transposed else array


def run_node(node: onnx.NodeProto, values: Mapping[str, np.ndarray], opset: int) -> list[np.ndarray]:
    """Outputs of `node` on `values` (every non-empty input), with the model's opset semantics."""
    names = [n for n in node.input if n]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype), None) for n in names]
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output if n]
    graph = helper.make_graph([node], "node", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    results = ReferenceEvaluator(model).run(None, {n: values[n] for n in names})
    return [np.asarray(r) for r in results]


def view_gather(
    node: onnx.NodeProto,
    data_input: str,
    in_shape: tuple[int, ...],
    in_transposed: bool,
    constants: Mapping[str, np.ndarray],
    opset: int,
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """ONNX output shape of a pure view op on `data_input`, and the IR gather it amounts to.

    Output storage element i takes input storage element gather[i]; None when the
    op does not reorder storage (a pure alias).
    """
    size = int(np.prod(in_shape, dtype=np.int64))
    index = np.arange(size, dtype=np.int64).reshape(storage_shape(in_shape, in_transposed))
    values = dict(constants)
    values[data_input] = to_onnx(index, in_transposed)
    (out,) = run_node(node, values, opset)[:1]
    flat = to_storage(out, out.ndim == 4).ravel()
    if flat.size != size or not np.array_equal(np.sort(flat), np.arange(size)):
        raise ValueError("the op is not a pure reordering of its input")
    gather = None if np.array_equal(flat, np.arange(size)) else tuple(int(i) for i in flat)
    return tuple(int(d) for d in out.shape), gather
