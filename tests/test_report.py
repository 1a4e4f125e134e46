"""Cost reports agree with independent counts and with the artifacts the compiler writes."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen import zoo
from mcugen.compiler import CalibrationOptions, compile_model
from mcugen.errors import UserError
from mcugen.report.cost import analyze, cost_report, parse_bytes
from mcugen.report.render import render, short_name
from mcugen.targets import get_target, with_budget
from onnx_count import count
from shared_data import shared

SHARED_FLOAT = ["models/vww_96_float.onnx", "models/kws_ds_cnn_float.onnx",
                "models/mobilenet_v2_0.5_128_person_float_nchw.onnx"]


def save(model: onnx.ModelProto, tmp_path: Path, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("relative", SHARED_FLOAT)
def test_shared_models_match_independent_count(relative):
    path = shared(relative)
    report = analyze(path, CalibrationOptions())
    expected = count(onnx.load(path))
    assert (report.params, report.macs) == (expected.params, expected.macs)
    assert sum(layer.kind in ("standard", "depthwise", "pointwise", "FC") for layer in report.layers) == expected.layers


@settings(max_examples=5, deadline=None)
@given(version=st.sampled_from(["v1", "v2"]), alpha=st.sampled_from(zoo.ALPHAS[:3]),
       resolution=st.integers(96, 140), classes=st.integers(2, 20))
def test_zoo_models_match_independent_count(tmp_path_factory, version, alpha, resolution, classes):
    model = zoo.GENERATORS[version](alpha, resolution, num_classes=classes)
    report = analyze(save(model, tmp_path_factory.mktemp("zoo")), CalibrationOptions())
    expected = count(model)
    assert (report.params, report.macs) == (expected.params, expected.macs)
    # int8 activation bytes: the first layer reads the whole input, the last writes one byte per class
    assert report.layers[0].input_bytes == 3 * resolution * resolution
    assert report.layers[-1].output_bytes == classes


def test_vww_kinds_and_separable_pairs():
    report = analyze(shared("models/vww_96_float.onnx"), CalibrationOptions())
    kinds = [layer.kind for layer in report.layers]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "standard": 1, "depthwise": 13, "pointwise": 13, "pool": 1, "FC": 1, "softmax": 1}
    assert len(report.pairs) == 13
    first = report.pairs[0]
    # VWW's first pair, by hand: 3x3 depthwise on 48x48x8, then 8 -> 16 pointwise.
    assert (first.kernel, first.channels_in, first.channels_out, first.out_hw) == ((3, 3), 8, 16, (48, 48))
    assert first.standard_params == 9 * 8 * 16
    assert first.standard_macs == 48 * 48 * 16 * 9 * 8
    assert first.separable_macs == 48 * 48 * 8 * 9 + 48 * 48 * 8 * 16
    assert first.separable_params == 9 * 8 + 8 * 16
    for p in report.pairs:
        # depthwise multiplier 1 and a stride-1 pointwise: the paper's formula holds exactly
        assert p.macs_ratio == pytest.approx(1 / p.channels_out + 1 / 9, rel=1e-12)
        assert p.params_ratio == pytest.approx(p.formula, rel=1e-12)


def test_v2_pairs_are_depthwise_then_projection(tmp_path):
    model = zoo.mobilenet_v2(0.35, 96, num_classes=10)
    report = analyze(save(model, tmp_path), CalibrationOptions())
    depthwise = sum(1 for n in model.graph.node if n.op_type == "Conv"
                    and next(a.i for a in n.attribute if a.name == "group") > 1)
    assert len(report.pairs) == depthwise == 17
    for p in report.pairs:
        assert report.layers[p.pointwise].name.startswith(report.layers[p.depthwise].name.split(".dw")[0])


def test_arena_equals_the_emitted_header(tmp_path):
    compiled = compile_model(save(zoo.mobilenet_v2(0.25, 96, num_classes=10), tmp_path), CalibrationOptions())
    header = compiled.emit("mcugen")["mcugen.h"]
    (arena,) = re.findall(r"#define MCUGEN_ARENA_SIZE (\d+)", header)
    assert cost_report(compiled).arena == int(arena)


def test_io_bytes_are_input_plus_output(tmp_path):
    report = analyze(save(zoo.mobilenet_v1(0.25, 96, num_classes=7), tmp_path), CalibrationOptions())
    assert report.io_bytes == 96 * 96 * 3 + 7
    assert report.ram == report.arena + report.io_bytes


@pytest.mark.parametrize("version,alpha,kernels,optimize", [
    ("v1", 0.25, "host", "speed"), ("v2", 0.35, "host", "speed"), ("v1", 0.25, "cortex-m7", "speed"),
    ("v2", 0.35, "cortex-m7", "speed"), ("v1", 0.25, "cortex-m7", "size")])
def test_flash_estimate_within_5_percent_of_arm_size(tmp_path, version, alpha, kernels, optimize):
    """`kernels`: the target compiled for (host: the portable kernels, also built for the M7)."""
    from mcugen.toolchain import ToolchainError, build_firmware, check_tools, size

    target = get_target("cortex-m7")
    try:
        check_tools(target)
    except ToolchainError as exc:
        pytest.skip(str(exc))
    compiled = compile_model(save(zoo.GENERATORS[version](alpha, 96, num_classes=10), tmp_path), CalibrationOptions(),
                             target=kernels, optimize=optimize)
    assert (kernels == "host") == all(n.variant == "portable" for n in compiled.graph.nodes)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name, text in compiled.emit("mcugen").items():
        (model_dir / name).write_text(text)
    inputs = np.zeros((1, 96 * 96 * 3), np.int8)
    build_firmware(target, model_dir, "mcugen", inputs, tmp_path / "build")
    objects = sorted((tmp_path / "build").glob("model_*.o"))
    assert len(objects) == 2  # the model's .c and _weights.c
    measured = sum(size(obj).flash for obj in objects)
    estimate = cost_report(compiled, target).flash.total
    assert abs(estimate - measured) <= 0.05 * measured, (estimate, measured)


def test_budget_verdicts(tmp_path):
    path = save(zoo.mobilenet_v1(0.25, 96, num_classes=10), tmp_path)
    compiled = compile_model(path, CalibrationOptions())
    # weights alone are > 200 KB (count() says ~220 k parameters) and the input is 27,648 bytes
    tight = cost_report(compiled, with_budget(get_target("cortex-m7"), flash=200 * 1024, ram=20 * 1024))
    roomy = cost_report(compiled, with_budget(get_target("cortex-m7"), flash=4 << 20, ram=4 << 20))
    assert (tight.fits_flash, tight.fits_ram) == (False, False)
    assert (roomy.fits_flash, roomy.fits_ram) == (True, True)
    assert cost_report(compiled).fits_flash is None


def test_formats_show_the_same_totals():
    report = analyze(shared("models/vww_96_float.onnx"), CalibrationOptions(), get_target("cortex-m7"))
    data = json.loads(render(report, "json"))
    assert (data["params"], data["weights"], data["macs"]) == (210_850, 208_112, 7_489_664)
    assert len(data["layers"]) == 30 and len(data["separable_pairs"]) == 13
    assert data["budget"]["fits_flash"] is True and data["ram"]["arena"] == report.arena
    for fmt in ("table", "md", "html"):
        text = render(report, fmt)
        assert "7,489,664" in text and "210,850" in text and "0.1736" in text, fmt
    table = render(report, "table").splitlines()
    header = next(i for i, line in enumerate(table) if line.lstrip().startswith("#  layer"))
    assert len({len(line) for line in table[header + 2 : header + 30]}) == 1  # aligned columns
    assert render(report, "html").startswith("<!DOCTYPE html>")


def test_size_mode_reports_the_int8_pointwise_weights():
    """--optimize size on a DSP core: the fast kernels' packed constants shrink by about the int16 pointwise weights."""
    path, target = shared("models/vww_96_float.onnx"), get_target("cortex-m7")
    speed, size = (analyze(path, CalibrationOptions(), target, optimize).flash for optimize in ("speed", "size"))
    assert (size.weights, size.biases, size.requant) == (speed.weights, speed.biases, speed.requant)
    assert size.packed < 0.7 * speed.packed  # 104,104 against 154,632 B


def test_short_names_drop_tf2onnx_variable_reads():
    fused = "model/act/Relu;model/dw/depthwise;model/dw/BiasAdd;model/dw/BiasAdd/ReadVariableOp/resource1"
    assert short_name(fused) == "model/dw/BiasAdd"
    assert short_name("x" * 40, width=10) == "…" + "x" * 9


@pytest.mark.parametrize("text,expected", [("1MiB", 1 << 20), ("320KiB", 320 * 1024), ("320K", 320 * 1024),
                                           ("64kb", 64 * 1024), ("65536", 65536), ("1.5M", 3 << 19)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "0", "-1K", "1GiB", "0.3"])
def test_parse_bytes_refuses(text):
    with pytest.raises(UserError):
        parse_bytes(text)


def test_cli_report_json_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    model = shared("models/vww_96_float.onnx")
    proc = subprocess.run([sys.executable, "-m", "mcugen", "report", str(model), "--target", "cortex-m7",
                           "--ram", "48KiB", "--format", "json", "--plots", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["macs"] == 7_489_664
    # 27,650 B of I/O and a 25,728 B arena
    assert data["budget"]["ram"] == 48 * 1024 and data["budget"]["fits_ram"] is False
    png, svg = tmp_path / "vww_96_float_layers.png", tmp_path / "vww_96_float_layers.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_plots_are_reproducible(tmp_path):
    pytest.importorskip("matplotlib")
    from mcugen.report.plots import plot_layers

    report = analyze(shared("models/kws_ds_cnn_float.onnx"), CalibrationOptions())
    a = plot_layers(report, tmp_path / "a")
    b = plot_layers(report, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        analyze(tmp_path / "absent.onnx", CalibrationOptions())
