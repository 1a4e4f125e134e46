"""Every class of bad input through `mcugen compile`: exit code 2, one message naming the
node / op / input with a hint, no traceback, and -o left as it was. Internal errors exit
1 with a one-line message, the stack trace only under --debug. docs/errors.md lists
the messages."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcugen.cli import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, main
from mcugen.output import write_atomically
from onnx_builders import OnnxGraph, tiny_mobilenet

Writer = Callable[[Path], Path]  # writes the bad input into a folder, returns the model path


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mcugen <args>` in this process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mcugen", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def small_graph() -> OnnxGraph:
    g = OnnxGraph(seed=1)
    g.input("image", ["N", 3, 8, 8])
    return g


def small(shape: list[int | str] | None = None) -> onnx.ModelProto:
    """Conv -> Relu on an 8x8 image; `shape` then replaces the input's declared shape."""
    g = small_graph()
    model = g.build([g.relu(g.conv("image", 4, kernel=3))])
    if shape is not None:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        for dim, size in zip(dims, shape):
            dim.Clear()
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    return model


def save(model: onnx.ModelProto) -> Writer:
    def write(folder: Path) -> Path:
        path = folder / "model.onnx"
        path.write_bytes(model.SerializeToString())
        return path
    return write


def raw(content: bytes) -> Writer:
    def write(folder: Path) -> Path:
        (folder / "model.onnx").write_bytes(content)
        return folder / "model.onnx"
    return write


def with_opset(version: int) -> onnx.ModelProto:
    model = small()
    model.opset_import[0].version = version
    return model


def missing_initializer() -> onnx.ModelProto:
    model = small()
    weights = model.graph.initializer[0]
    model.graph.input.append(helper.make_tensor_value_info(weights.name, TensorProto.FLOAT, list(weights.dims)))
    del model.graph.initializer[0]
    return model


def cycle() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second")]
    return helper.make_model(helper.make_graph(nodes, "cycle", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])


def dangling() -> onnx.ModelProto:
    model = small()
    model.graph.node[-1].input[0] = "nowhere"
    return model


def unsupported_ops() -> onnx.ModelProto:
    g = small_graph()
    y = g.node("Sigmoid", ["image"], name="gate")
    return g.build([g.node("Erf", [g.relu(g.conv(y, 4))], name="erf")])


def nan_weights() -> onnx.ModelProto:
    model = small()
    weights = numpy_helper.to_array(model.graph.initializer[0]).copy()
    weights.reshape(-1)[5] = np.nan
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weights, model.graph.initializer[0].name))
    return model


def float_strides() -> onnx.ModelProto:
    model = small()
    conv = model.graph.node[0]
    kept = [a for a in conv.attribute if a.name != "strides"]
    del conv.attribute[:]
    conv.attribute.extend([*kept, helper.make_attribute("strides", 1.5)])
    return model


def bad_utf8_name() -> bytes:
    model = small()
    model.graph.node[0].name = "conv_Z"
    return model.SerializeToString().replace(b"conv_Z", b"conv\xffZ")


def extreme_weights() -> onnx.ModelProto:
    model = small()
    weights = numpy_helper.to_array(model.graph.initializer[0]).copy()
    weights.reshape(-1)[0] = 1e30
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weights, model.graph.initializer[0].name))
    return model


def negative_variance() -> onnx.ModelProto:
    """A batch norm whose var + epsilon is negative: its sqrt is NaN, which once compiled to garbage weights."""
    g = small_graph()
    model = g.build([g.batch_norm(g.conv("image", 4, kernel=3))])
    variance = next(t for t in model.graph.initializer if t.name == model.graph.node[1].input[4])
    variance.CopyFrom(numpy_helper.from_array(np.full(4, -1.0, np.float32), variance.name))
    return model


def two_outputs() -> onnx.ModelProto:
    model = small()
    model.graph.output.append(helper.make_tensor_value_info(model.graph.node[0].output[0], TensorProto.FLOAT, None))
    return model


def external(location: str, write_data: bool) -> Writer:
    def write(folder: Path) -> Path:
        model = small()
        tensor = model.graph.initializer[0]
        data = tensor.raw_data or numpy_helper.to_array(tensor).tobytes()
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value=location)
        (folder / "models").mkdir()
        if write_data:
            (folder / "models" / location).write_bytes(data)
        path = folder / "models" / "model.onnx"
        path.write_bytes(model.SerializeToString())
        return path
    return write


def directory(folder: Path) -> Path:
    (folder / "model.onnx").mkdir()
    return folder / "model.onnx"


@dataclass(frozen=True)
class Bad:
    write: Writer
    expect: tuple[str, ...]  # substrings of the message: what, where, and the hint
    args: tuple[str, ...] = ()


BAD = {
    "missing path": Bad(lambda folder: folder / "absent.onnx", ("absent.onnx", "no such file")),
    "folder, not a file": Bad(directory, ("model.onnx", "is a directory")),
    "not ONNX": Bad(raw(b"hello, this is not a model"), ("not an ONNX model",)),
    "empty file": Bad(raw(b""), ("not a valid ONNX model", "empty or not ONNX")),
    "truncated protobuf": Bad(raw(tiny_mobilenet().SerializeToString()[:3000]), ("not an ONNX model", "corrupt")),
    "corrupted protobuf": Bad(raw(tiny_mobilenet().SerializeToString()[:40] + b"\xff" * 64),
                              ("not an ONNX model", "corrupt")),
    "opset too new": Bad(save(with_opset(99)), ("opset 99", "supported range 7..21", "hint")),
    "opset too old": Bad(save(with_opset(5)), ("opset 5", "supported range", "version_converter")),
    "missing initializer": Bad(save(missing_initializer()), ("(Conv)", "reads 'const_1' as a parameter",
                                                             "graph input without an initializer",
                                                             "hint: the weights are missing")),
    "graph cycle": Bad(save(cycle()), ("cycle", "'first' (Add)", "'second' (Relu)")),
    "dangling input": Bad(save(dangling()), ("(Relu)", "'nowhere' is not produced", "hint")),
    "unsupported ops, all at once": Bad(save(unsupported_ops()), ("2 node(s) cannot be compiled", "'gate' (Sigmoid)",
                                                                  "'erf' (Erf)", "unsupported operator")),
    "dynamic spatial dimension": Bad(save(small(["N", 3, "height", 8])), ("input 'image'", "dimension 2 ('height')",
                                                                          "fixed input size")),
    "zero dimension": Bad(save(small([1, 3, 0, 8])), ("'image' (input)", "dimension 2 is 0", "hint")),
    "negative dimension": Bad(save(small([1, 3, -4, 8])), ("'image' (input)", "dimension 2 is -4")),
    "absurd dimension": Bad(save(small([1, 3, 100_000, 100_000])), ("'image' (input)", "over the 2,147,483,648-byte",
                                                                     "hint")),
    "tensor over the target's RAM": Bad(save(small([1, 3, 200, 200])), ("RAM", "over the 65,536-byte budget",
                                                                         "'image' 120,000", "--io-in-arena"),
                                        ("--target", "cortex-m3")),
    "external data outside the model's folder": Bad(external("../secret.bin", False),
                                                    ("external data location '../secret.bin'", "outside")),
    "external data file missing": Bad(external("weights.bin", False), ("'weights.bin' not found beside the model",)),
    "name not UTF-8": Bad(raw(bad_utf8_name()), ("not valid UTF-8", "corrupt", "hint")),
    "attribute of the wrong type": Bad(save(float_strides()), ("(Conv)", "attribute 'strides' is FLOAT, expected INTS",
                                                               "hint")),
    "two outputs": Bad(save(two_outputs()), ("the model has 2 outputs", "exactly one", "hint")),
    "batch above 1": Bad(save(small([4, 3, 8, 8])), ("input 'image' has batch size 4", "batch-1")),
    "extreme weights": Bad(save(extreme_weights()), ("(conv2d)", "over 2^31 times too small", "hint")),
    "batch norm dividing by sqrt(< 0)": Bad(save(negative_variance()), ("(BatchNormalization)",
                                                                        "input_var + epsilon must be positive")),
    "NaN in weights": Bad(save(nan_weights()), ("(Conv)", "non-finite", "NaN at flat index 5", "hint")),
    "model over the flash budget": Bad(save(tiny_mobilenet()), ("flash", "over the 1,024-byte budget",
                                                                "largest layers", "hint"), ("--flash", "1KiB")),
    "model over the RAM budget": Bad(save(tiny_mobilenet()), ("RAM", "over the 1,024-byte budget", "arena",
                                                                             "most memory at step"),
                                     ("--ram", "1KiB")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_with_a_clear_message(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = BAD[case]
    out = tmp_path / "out"
    code, err = run_cli(["compile", str(bad.write(tmp_path)), "-o", str(out), *bad.args], monkeypatch, capsys)
    assert code == EXIT_USER_ERROR, err
    assert "Traceback" not in err and "internal error" not in err
    for part in bad.expect:
        assert part in err, f"{part!r} not in:\n{err}"
    assert not out.exists()


def calibration_file(folder: Path, array: np.ndarray) -> Path:
    path = folder / "calib.npy"
    np.save(path, array)
    return path


@pytest.mark.parametrize("array, expect", [
    (np.zeros((2, 3, 5, 5), np.float32), ("shape",)),
    (np.full((2, 3, 8, 8), "a"), ("dtype",)),
    (np.zeros((2, 8, 8, 3), np.float32), ("shape (8, 3, 8)", "the model expects (8, 8, 3)", "try --layout nhwc")),
], ids=["wrong shape", "wrong dtype", "wrong layout"])
def test_bad_calibration_data_is_refused(array: np.ndarray, expect: tuple[str, ...], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    model = save(small())(tmp_path)
    calib = calibration_file(tmp_path, array)
    args = ["compile", str(model), "--calib", str(calib), "-o", str(tmp_path / "out")]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == EXIT_USER_ERROR, err
    assert "Traceback" not in err
    for part in expect:
        assert part in err, err


def test_failed_compile_leaves_existing_output_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    model = save(tiny_mobilenet())(tmp_path)
    out = tmp_path / "out"
    assert run_cli(["compile", str(model), "-o", str(out)], monkeypatch, capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _ = run_cli(["compile", str(model), "-o", str(out), "--ram", "1KiB"], monkeypatch, capsys)
    assert code == EXIT_USER_ERROR
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "out"]  # nothing written beside -o


def _explode(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_internal_error_is_one_line_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("mcugen.cli.core.compile_from_options", _explode)
    model = save(small())(tmp_path)
    code, err = run_cli(["compile", str(model), "-o", str(tmp_path / "out")], monkeypatch, capsys)
    assert code == EXIT_INTERNAL_ERROR
    assert err.strip() == "internal error: RuntimeError: boom (rerun with --debug for the stack trace)"


def test_debug_shows_the_stack_trace_of_internal_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcugen.cli.core.compile_from_options", _explode)
    monkeypatch.setattr(sys, "argv", ["mcugen", "--debug", "compile", str(save(small())(tmp_path)), "-o",
                                      str(tmp_path / "out")])
    with pytest.raises(RuntimeError, match="boom"):  # propagates: Python prints the trace and exits 1
        main()


def test_output_swap_failing_midway_restores_the_folder_and_the_users_files(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_atomically(out, {"a.c": "old\n"})
    (out / "notes.txt").write_text("mine")
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == out.resolve() and ".old." not in str(src):  # the final rename of the new folder
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(out, {"a.c": "new\n"})
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a.c": "old\n", "notes.txt": "mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
