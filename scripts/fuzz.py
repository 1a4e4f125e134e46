#!/usr/bin/env python3
"""Fuzz mcugen's compiler with mutated models: every case must compile or be refused
with a UserError; any other exception is a crash (our bug).

Mutations: protobuf bit flips, truncation and byte splices; random attribute, shape
and dtype changes; NaN/Inf weights; node deletions, duplications and rewirings;
opset changes. Each case is reproducible from (seed model, case number).

    python3 scripts/fuzz.py --cases 20000 --jobs 4          # a long run
    python3 scripts/fuzz.py --replay tiny_v2 1234 --keep /tmp/case.onnx   # one case

tests/test_fuzz.py runs a bounded corpus of the same cases in CI.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from mcugen.compiler import CalibrationOptions, compile_model  # noqa: E402
from mcugen.errors import UserError  # noqa: E402

SHARED_MODELS = REPO.parent / "shared" / "models"
# Values that break naive code: signs, zero, one, word and allocation limits.
INTERESTING_INTS = (-(2**63), -(2**31), -7, -1, 0, 1, 2, 3, 5, 64, 2**16, 2**31 - 1, 2**31, 2**40)
INTERESTING_FLOATS = (float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e-30, 1e30)
ATTR_NAMES = ("group", "strides", "pads", "kernel_shape", "dilations", "auto_pad", "axis", "axes", "perm",
              "epsilon", "transA", "transB", "alpha", "beta", "keepdims", "min", "max", "mode", "ceil_mode",
              "count_include_pad", "storage_order", "allowzero", "training_mode", "value")
OP_TYPES = ("Conv", "Relu", "Clip", "Add", "Gemm", "MatMul", "Softmax", "AveragePool", "MaxPool",
            "GlobalAveragePool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Pad",
            "BatchNormalization", "ReduceMean", "Mul", "Concat", "Sigmoid", "Resize")
DTYPES = (TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, TensorProto.INT64,
          TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.STRING, 0, 999)


def seed_models() -> dict[str, bytes]:
    """Small generated models, plus the shared KWS model when ../shared is present."""
    from onnx_builders import tiny_mobilenet

    seeds = {
        "tiny_v1": tiny_mobilenet(1, size=16, width=8),
        "tiny_v2": tiny_mobilenet(2, size=16, width=8),
        "tiny_v1_pad": tiny_mobilenet(1, size=16, width=8, explicit_pad=True),
    }
    models = {name: model.SerializeToString() for name, model in seeds.items()}
    kws = SHARED_MODELS / "kws_ds_cnn_float.onnx"
    if kws.is_file():
        models["kws"] = kws.read_bytes()
    return models


# Byte-level mutations ---------------------------------------------------------


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def splice(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    length = rng.randint(1, 16)
    return data[:start] + bytes(rng.randrange(256) for _ in range(length)) + data[start + length :]


# Model-level mutations (each edits the ModelProto in place) ------------------


def _random_node(model: onnx.ModelProto, rng: random.Random) -> onnx.NodeProto | None:
    nodes = model.graph.node
    return nodes[rng.randrange(len(nodes))] if nodes else None


def change_attribute(model: onnx.ModelProto, rng: random.Random) -> None:
    node = _random_node(model, rng)
    if node is None:
        return
    if not node.attribute or rng.random() < 0.3:
        name = rng.choice(ATTR_NAMES)
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept)
        value: object = rng.choice((rng.choice(INTERESTING_INTS), [rng.choice(INTERESTING_INTS)] * rng.randint(1, 5),
                                    rng.choice(INTERESTING_FLOATS), "SAME_UPPER", "reflect"))
        node.attribute.append(helper.make_attribute(name, value))
        return
    attr = node.attribute[rng.randrange(len(node.attribute))]
    if attr.type == onnx.AttributeProto.INT:
        attr.i = rng.choice(INTERESTING_INTS[1:-1])
    elif attr.type == onnx.AttributeProto.INTS:
        values = list(attr.ints) or [1]
        if rng.random() < 0.5:
            values[rng.randrange(len(values))] = rng.choice(INTERESTING_INTS[1:-1])
        else:
            values = values[: rng.randrange(len(values) + 1)] + [rng.choice((0, 1, 2))] * rng.randint(0, 2)
        del attr.ints[:]
        attr.ints.extend(values)
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = rng.choice(INTERESTING_FLOATS)
    elif attr.type == onnx.AttributeProto.STRING:
        attr.s = rng.choice((b"", b"VALID", b"SAME_LOWER", b"edge", b"\xff"))
    else:
        attr.type = rng.choice((onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING))


def _value_infos(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    return list(model.graph.input) + list(model.graph.output)


def change_shape(model: onnx.ModelProto, rng: random.Random) -> None:
    if not _value_infos(model):
        return
    value = rng.choice(_value_infos(model))
    dims = value.type.tensor_type.shape.dim
    choice = rng.random()
    if choice < 0.6 and dims:
        dim = dims[rng.randrange(len(dims))]
        if rng.random() < 0.2:
            dim.Clear()
            dim.dim_param = "H"
        else:
            dim.dim_value = rng.choice(INTERESTING_INTS[1:-1])
    elif choice < 0.8 and dims:
        del dims[rng.randrange(len(dims))]
    else:
        dims.add().dim_value = rng.choice((1, 3, 16))


def change_dtype(model: onnx.ModelProto, rng: random.Random) -> None:
    if model.graph.initializer and rng.random() < 0.5:
        tensor = model.graph.initializer[rng.randrange(len(model.graph.initializer))]
        tensor.data_type = rng.choice(DTYPES)
    elif _value_infos(model):
        rng.choice(_value_infos(model)).type.tensor_type.elem_type = rng.choice(DTYPES)


def change_initializer(model: onnx.ModelProto, rng: random.Random) -> None:
    """Poison values (NaN, Inf, huge), or make dims disagree with the data."""
    inits = model.graph.initializer
    if not inits:
        return
    tensor = inits[rng.randrange(len(inits))]
    if rng.random() < 0.5:
        try:
            array = onnx.numpy_helper.to_array(tensor).copy()
        except (ValueError, TypeError, KeyError):  # already broken by an earlier mutation
            return
        if array.size and array.dtype.kind == "f":
            array.reshape(-1)[rng.randrange(array.size)] = rng.choice(INTERESTING_FLOATS)
            tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
    elif tensor.dims:
        tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice(INTERESTING_INTS[1:-1])
    else:
        tensor.dims.append(rng.choice((0, 2, 2**31)))


def delete_node(model: onnx.ModelProto, rng: random.Random) -> None:
    if model.graph.node:
        del model.graph.node[rng.randrange(len(model.graph.node))]


def duplicate_node(model: onnx.ModelProto, rng: random.Random) -> None:
    node = _random_node(model, rng)
    if node is not None:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        model.graph.node.insert(rng.randrange(len(model.graph.node) + 1), copy)


def rewire(model: onnx.ModelProto, rng: random.Random) -> None:
    """Point a node input at another tensor (may create cycles or dangling reads)."""
    node = _random_node(model, rng)
    if node is None or not node.input:
        return
    names = [o for n in model.graph.node for o in n.output] + [t.name for t in model.graph.initializer]
    names += [v.name for v in model.graph.input] + ["missing_tensor", ""]
    node.input[rng.randrange(len(node.input))] = rng.choice(names)


def change_op(model: onnx.ModelProto, rng: random.Random) -> None:
    node = _random_node(model, rng)
    if node is not None:
        node.op_type = rng.choice(OP_TYPES)
        if rng.random() < 0.1:
            node.domain = "com.example"


def shuffle_nodes(model: onnx.ModelProto, rng: random.Random) -> None:
    nodes = list(model.graph.node)
    rng.shuffle(nodes)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def change_opset(model: onnx.ModelProto, rng: random.Random) -> None:
    version = rng.choice((1, 6, 7, 9, 10, 11, 12, 13, 17, 18, 19, 21, 99))
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", version)])


def drop_initializer(model: onnx.ModelProto, rng: random.Random) -> None:
    inits = model.graph.initializer
    if inits:
        del inits[rng.randrange(len(inits))]


def change_io(model: onnx.ModelProto, rng: random.Random) -> None:
    """Drop, duplicate or add graph inputs and outputs."""
    graph = model.graph
    which = rng.random()
    if which < 0.3 and graph.output:
        del graph.output[rng.randrange(len(graph.output))]
    elif which < 0.6 and graph.node:
        node = _random_node(model, rng)
        graph.output.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None))
    elif which < 0.8:
        graph.input.append(helper.make_tensor_value_info(f"extra_{rng.randrange(9)}", TensorProto.FLOAT, [1, 3]))
    elif graph.input:
        del graph.input[rng.randrange(len(graph.input))]


BYTE_MUTATIONS: tuple[Callable[[bytes, random.Random], bytes], ...] = (bit_flips, truncate, splice)
MODEL_MUTATIONS: tuple[Callable[[onnx.ModelProto, random.Random], None], ...] = (
    change_attribute, change_attribute, change_shape, change_dtype, change_initializer, delete_node,
    duplicate_node, rewire, change_op, shuffle_nodes, change_opset, drop_initializer, change_io,
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three mutations; a quarter of the cases are byte-level."""
    if rng.random() < 0.25:
        return rng.choice(BYTE_MUTATIONS)(data, rng)
    model = onnx.ModelProto()
    model.ParseFromString(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        rng.choice(MODEL_MUTATIONS)(model, rng)
    return model.SerializeToString()


# Running cases --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    seed_model: str
    case: int
    kind: str  # "compiled", "refused" or "crashed"
    detail: str  # the refusal's first line, or the crash's traceback


def mutated_case(seed_model: str, data: bytes, case: int) -> bytes:
    return mutate(data, random.Random(f"{seed_model}:{case}"))


def run_case(seed_model: str, data: bytes, case: int, folder: Path) -> Outcome:
    """Compile and emit one mutated model from a file, as the CLI does."""
    path = folder / f"{seed_model}_{case}.onnx"
    path.write_bytes(mutated_case(seed_model, data, case))
    try:
        compile_model(path, CalibrationOptions()).emit()
        return Outcome(seed_model, case, "compiled", "")
    except UserError as exc:
        return Outcome(seed_model, case, "refused", str(exc).splitlines()[0])
    except Exception:  # anything else is a crash: what this fuzzer looks for
        return Outcome(seed_model, case, "crashed", traceback.format_exc())
    finally:
        path.unlink(missing_ok=True)


def run_chunk(seed_model: str, data: bytes, cases: range) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="mcugen_fuzz_") as folder:
        return [run_case(seed_model, data, case, Path(folder)) for case in cases]


def run_corpus(cases_per_model: int, jobs: int, start: int = 0, chunk: int = 50) -> list[Outcome]:
    """`cases_per_model` cases of every seed model, from case number `start` on."""
    models = seed_models()
    outcomes: list[Outcome] = []
    work = [(name, data, range(i, min(i + chunk, start + cases_per_model)))
            for name, data in models.items() for i in range(start, start + cases_per_model, chunk)]
    if jobs <= 1:
        for item in work:
            outcomes += run_chunk(*item)
        return outcomes
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(run_chunk, *zip(*work)):
            outcomes += result
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000, help="cases per seed model")
    parser.add_argument("--start", type=int, default=0, help="first case number (continue an earlier run)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--replay", nargs=2, metavar=("MODEL", "CASE"), help="run one case and show its outcome")
    parser.add_argument("--keep", type=Path, help="with --replay: save the mutated model here")
    args = parser.parse_args()
    if args.replay:
        name, case = args.replay[0], int(args.replay[1])
        data = seed_models()[name]
        if args.keep:
            args.keep.write_bytes(mutated_case(name, data, case))
        outcome = run_chunk(name, data, range(case, case + 1))[0]
        print(f"{outcome.kind}: {outcome.detail}")
        return 1 if outcome.kind == "crashed" else 0
    outcomes = run_corpus(args.cases, args.jobs, args.start)
    counts = Counter(o.kind for o in outcomes)
    for o in outcomes:
        if o.kind == "crashed":
            print(f"--- crash: --replay {o.seed_model} {o.case}\n{o.detail}")
    print(f"{len(outcomes)} cases: {counts['compiled']} compiled, {counts['refused']} refused, "
          f"{counts['crashed']} crashed")
    return 1 if counts["crashed"] else 0


if __name__ == "__main__":
    sys.exit(main())
