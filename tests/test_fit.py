"""The α × resolution sweep on tiny grids: right numbers, right verdicts, right order."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mcugen import fit, zoo
from mcugen.errors import UserError
from mcugen.report.cost import LayerCost
from mcugen.targets import get_target, with_budget
from onnx_count import count

V1, V2 = fit.Point("v1", 0.25, 96), fit.Point("v2", 0.35, 96)


def test_grid_is_the_cross_product_and_refuses_unknown_values():
    points = fit.grid(("v1", "v2"), (0.25, 0.5), (96, 128, 160))
    assert len(points) == 12 and len(set(points)) == 12
    for bad in ({"versions": ("v3",)}, {"alphas": (0.3,)}, {"resolutions": (8,)}):
        with pytest.raises(UserError):
            fit.grid(**bad)


def test_sweep_counts_and_verdicts():
    # With 10 classes V1-0.25 has ~220 k int8 weights and V2-0.35 ~400 k (count() below):
    # a 350 KiB flash budget takes the first and refuses the second.
    target = with_budget(get_target("cortex-m7"), flash=350 * 1024, ram=4 << 20)
    seen = []
    results = fit.sweep([V2, V1], target, fit.default_rates(), num_classes=10, jobs=2,
                        progress=lambda done, total: seen.append((done, total)))
    assert [r.point for r in results] == [V2, V1]  # input order, whatever finishes first
    assert seen == [(1, 2), (2, 2)]
    for r in results:
        expected = count(zoo.GENERATORS[r.point.version](r.point.alpha, r.point.resolution, num_classes=10))
        assert (r.params, r.macs) == (expected.params, expected.macs)
        assert r.flash > expected.params  # int8 weights plus int32 biases, requantization and code
        assert r.ram == r.arena + 96 * 96 * 3 + 10
    v2, v1 = results
    assert expected.params < 350 * 1024 < count(zoo.mobilenet_v2(0.35, 96, num_classes=10)).params
    assert (v1.fits_flash, v1.fits_ram, v1.fits) == (True, True, True)
    assert (v2.fits_flash, v2.fits) == (False, False)


def _layer(kind: str, macs: int) -> LayerCost:
    return LayerCost(0, "x", "op", kind, ((1, 1),), (1, 1), 0, 0, macs, 0, 0)


def test_rates_from_bench_json(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"target": "cortex-m7", "layers": [
        {"name": "a", "op": "conv2d", "macs": 100, "instructions": 1000},
        {"name": "b", "op": "conv2d", "macs": 300, "instructions": 1000},
        {"name": "c", "op": "depthwise_conv2d", "kind": "depthwise", "macs": 50, "instructions": 1000},
        {"name": "d", "op": "softmax", "macs": 0, "instructions": 500},
    ]}))
    rates = fit.rates_from_bench(bench)
    # conv2d without a kind stands for both conv kinds: (100 + 300) / 2000
    assert rates.per_kind["standard"] == rates.per_kind["pointwise"] == pytest.approx(0.2)
    assert rates.per_kind["depthwise"] == pytest.approx(0.05)
    assert rates.per_kind["FC"] == fit.DEFAULT_RATES["FC"]
    assert "defaults for FC" in rates.source
    layers = [_layer("pointwise", 1000), _layer("depthwise", 500), _layer("softmax", 0)]
    assert rates.instructions(layers) == 1000 / 0.2 + 500 / 0.05


@pytest.mark.parametrize("content", ["not json", "{}", '{"layers": [{"op": "conv2d"}]}',
                                     '{"layers": [{"op": "add", "macs": 0, "instructions": 9}]}'])
def test_bad_bench_files_are_user_errors(tmp_path, content):
    bench = tmp_path / "bench.json"
    bench.write_text(content)
    with pytest.raises(UserError):
        fit.rates_from_bench(bench)


def test_default_rates_match_vww_measurement():
    """The defaults reproduce the 85.18 M instructions QEMU counted for VWW on cortex-m7 within 1%."""
    vww = fit.evaluate(V1, get_target("cortex-m7"), fit.default_rates(), num_classes=2)
    assert vww.macs == 7_489_664  # the zoo's V1-0.25-96 with two classes is VWW's architecture
    assert vww.instructions == pytest.approx(85_181_462, rel=0.01)


def test_cli_fit_tiny_grid(tmp_path):
    pytest.importorskip("matplotlib")
    # V2-0.25-96's first expansion alone holds 48x48x8 in and 48x48x48 out (126 KiB) besides the
    # 27 KiB of I/O: it cannot fit 120 KiB. V1-0.25-96 needs at least 54 KiB of arena and gets it.
    args = [sys.executable, "-m", "mcugen", "fit", "--versions", "v1,v2", "--alphas", "0.25",
            "--resolutions", "96", "--classes", "10", "--flash", "1MiB", "--ram", "120KiB", "--plots", str(tmp_path)]
    text = subprocess.run(args, capture_output=True, text=True)
    assert text.returncode == 0, text.stderr
    assert "1 of 2 points fit." in text.stdout
    assert "default MACs/instruction" in text.stdout  # says where the instruction estimate comes from
    assert "fit 2/2" in text.stderr and "2 points compiled in" in text.stderr
    assert (tmp_path / "fit_frontier.png").exists() and (tmp_path / "fit_frontier.svg").exists()
    data = json.loads(subprocess.run(args[:-2] + ["--json"], capture_output=True, text=True, check=True).stdout)
    assert data["flash_budget"] == 1 << 20 and data["ram_budget"] == 120 * 1024
    assert [(p["fits_flash"], p["fits_ram"]) for p in data["points"]] == [(True, True), (True, False)]
    assert data["points"][0]["macs"] == count(zoo.mobilenet_v1(0.25, 96, num_classes=10)).macs
