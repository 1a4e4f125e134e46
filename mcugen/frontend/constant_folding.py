"""Import-time constant folding: shape arithmetic and weight expressions become constants.

Exporters compute reshape targets with Shape -> Gather -> Concat chains and
sometimes write weights as expressions of initializers. With every input shape
static, all of that is known at compile time, so it is evaluated here (with
ONNX's reference implementation, so each op keeps its exact opset semantics).
"""
from __future__ import annotations

import numpy as np

from .context import Importer, OnnxNode, Unsupported
from .layout import run_node

# Deterministic ops that are folded when all their inputs are constants.
FOLDABLE = frozenset(
    {
        "Abs", "Add", "Cast", "CastLike", "Ceil", "Clip", "Concat", "Constant", "ConstantOfShape",
        "Div", "Equal", "Expand", "Flatten", "Floor", "Gather", "Identity", "Max", "Min", "Mul",
        "Neg", "Pow", "Range", "Reciprocal", "ReduceProd", "Relu", "Reshape", "Shape", "Size",
        "Slice", "Sqrt", "Squeeze", "Sub", "Tile", "Transpose", "Unsqueeze", "Where",
    }
)  # fmt: skip
# Ops that only look at their input's (static) shape: foldable on activations too.
SHAPE_OF = frozenset({"Shape", "Size"})


def fold(ctx: Importer, node: OnnxNode) -> bool:
    """Evaluate `node` into constants if it can be; False leaves it to the op functions."""
    if node.op_type not in FOLDABLE:
        return False
    values = {}
    for name in node.inputs:
        if not name:
            continue
        if name in ctx.constants:
            values[name] = ctx.constants[name]
        elif node.op_type in SHAPE_OF and name in ctx.activations:
            values[name] = np.zeros(ctx.activations[name].shape, np.float32)
        else:
            return False
    try:
        results = run_node(node.proto, values, ctx.opset)
    except Exception as exc:  # the reference evaluator raises whatever NumPy raises
        raise Unsupported(f"cannot evaluate on constants ({exc})") from None
    for name, value in zip((n for n in node.outputs if n), results):
        ctx.constants[name] = value
    return True
