"""A model whose one layer reads the graph's input and writes its output has nothing in the
arena: its C must still build under the strictest flags (no unused static arena) on gcc and
clang, with and without the arena guard, and compute the simulator's int8 on the host."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from c_harness import CFLAGS, available_compilers
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from variant_checks import assert_host_c_matches_sim

STRICT = tuple(f for f in CFLAGS if not f.startswith("-O")) + ("-O2",)
GUARD = "-DMCUGEN_ARENA_GUARD=64"


def _single_layer(kind: str, rng: np.random.Generator) -> onnx.ModelProto:
    """One layer between the graph's input and output, built with onnx.helper."""
    c, out_c = 8, 12
    weights: list[onnx.TensorProto] = []

    def const(name: str, shape: tuple[int, ...], sigma: float) -> str:
        weights.append(numpy_helper.from_array(rng.normal(0, sigma, shape).astype(np.float32), name))
        return name

    if kind == "conv_relu":  # the ReLU fuses into the conv: still one layer
        nodes = [helper.make_node("Conv", ["x", const("w", (out_c, c, 1, 1), 0.3), const("b", (out_c,), 0.1)], ["c"]),
                 helper.make_node("Relu", ["c"], ["y"])]
    else:
        out_c = c
        nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    hw = (6, 6)
    out_hw = (3, 3) if kind == "max_pool" else hw
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, *hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_c, *out_hw])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _compiled(tmp_path: Path, kind: str, target: str) -> Compiled:
    path = tmp_path / f"{kind}.onnx"
    onnx.save(_single_layer(kind, np.random.default_rng(5)), path)
    return compile_model(path, CalibrationOptions(), target=target)


@pytest.mark.parametrize("kind", ["conv_relu", "max_pool"])
@pytest.mark.parametrize("target", ["host", "cortex-m3", "cortex-m7", "cortex-m55"])
def test_a_model_without_arena_buffers_builds_strictly_and_is_bit_exact(tmp_path, kind, target):
    compiled = _compiled(tmp_path, kind, target)
    assert len(compiled.graph.nodes) == 1
    if target == "host":  # the case this file is about (variants elsewhere may take scratch in the arena)
        assert not compiled.plan.offsets
    out = tmp_path / "model"
    out.mkdir()
    for file, text in compiled.emit().items():
        (out / file).write_text(text)
    for cc in available_compilers():
        for guard in ((), (GUARD,)):
            done = subprocess.run([cc, *STRICT, *guard, "-I.", "-c", "mcugen.c", "-o", "model.o"], cwd=out,
                                  capture_output=True, text=True)
            assert done.returncode == 0 and not done.stderr, f"{cc} {guard}:\n{done.stderr}"
    assert_host_c_matches_sim(compiled, 5)


@pytest.mark.skipif(shutil.which("cppcheck") is None, reason="needs cppcheck")
def test_cppcheck_finds_nothing_in_a_model_without_arena_buffers(tmp_path):
    compiled = _compiled(tmp_path, "conv_relu", "host")
    for file, text in compiled.emit().items():
        (tmp_path / file).write_text(text)
    done = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,style,performance,portability", "--inline-suppr",
                           "--error-exitcode=1", "--quiet", "-I.", "mcugen.c"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
