"""Real models through the whole CLI: compile, simulate, build the C for the host, compare bit for bit."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shared_data import EXAMPLES, ROOT, shared

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "cc"], capture_output=True).returncode != 0, reason="no host C compiler"
)


def mcugen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mcugen", *map(str, args)], capture_output=True, text=True)


def verify_json(*args: str) -> dict:
    proc = mcugen("verify", *args, "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_vww_float_bit_exact_and_accurate():
    photos = EXAMPLES / "data" / "photos_rgb_uint8_96.npz"
    report = verify_json(EXAMPLES / "models" / "vww_96_float.onnx", "--target", "host",
                         "--calib", photos, "--inputs", photos, "--input-scale", 1 / 255)
    assert report["inputs"] == 16 and report["bit_exact"] == 16 and report["mismatches"] == []
    assert report["top1_agree_float"] >= 15
    assert report["cosine_min"] > 0.9


def test_mobilenet_v2_nchw_bit_exact():
    model = shared("models/mobilenet_v2_0.5_128_person_float_nchw.onnx")
    photos = shared("inputs/photos_rgb_uint8_128.npz")
    report = verify_json(model, "--target", "host", "--calib", photos, "--inputs", photos,
                         "--input-scale", 1 / 127.5, "--input-offset", -1, "--layout", "nhwc")
    assert report["bit_exact"] == 16
    assert report["top1_agree_float"] >= 14


def test_kws_float_bit_exact():
    model = shared("models/kws_ds_cnn_float.onnx")
    features = shared("inputs/kws_wav_features.npz")
    report = verify_json(model, "--target", "host", "--calib", features, "--calib-keys", "*_float",
                         "--inputs", features, "--keys", "*_float")
    assert report["inputs"] == 5 and report["bit_exact"] == 5
    assert report["top1_agree_float"] >= 4


def test_compile_is_deterministic(tmp_path):
    """Byte-identical output whatever the hash seed, working folder, model folder and output path."""
    photos = EXAMPLES / "data" / "photos_rgb_uint8_96.npz"
    model = EXAMPLES / "models" / "vww_96_float.onnx"
    moved = tmp_path / "elsewhere" / model.name
    moved.parent.mkdir()
    moved.write_bytes(model.read_bytes())
    for out, source, seed, cwd in (("a", model, "1", ROOT), ("b", moved, "2", tmp_path)):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "mcugen", "compile", str(source), "--calib", str(photos),
                               "--input-scale", str(1 / 255), "-o", str(tmp_path / out)],
                              capture_output=True, text=True, env=env, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
    a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert a == ["mcugen.c", "mcugen.h", "mcugen_arith.h", "mcugen_weights.c"]
    for name in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
