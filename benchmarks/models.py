"""Every model of the shared data set (../shared) on the QEMU Cortex-M7 and Cortex-M55, with the
default `--optimize speed`: instructions per inference (QEMU -icount), MAC/instruction, the
arena against its lower bound, model code and weights. Skips a model whose file is absent.
Prints a markdown table and writes it and the raw JSON beside this script.

    python3 benchmarks/models.py
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mcugen.bench import bench as run_bench
from mcugen.compiler import CalibrationOptions, compile_model, quantized_inputs
from mcugen.inputs import Preprocess
from mcugen.targets import get_target

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
TARGETS = ("cortex-m7", "cortex-m55")


@dataclass(frozen=True)
class Model:
    label: str
    file: str
    samples: str  # inputs/ file: calibration (float models) and the benchmarked sample
    keys: str | None = None
    preprocess: Preprocess = Preprocess()


MODELS = (
    Model("VWW MobileNetV1 0.25, 96x96 (float, calibrated)", "vww_96_float.onnx", "photos_rgb_uint8_96.npz",
          preprocess=Preprocess(1 / 255)),
    Model("VWW MobileNetV1 0.25, 96x96 (published int8 QDQ)", "vww_96_int8.onnx", "photos_rgb_uint8_96.npz",
          preprocess=Preprocess(1.0, -128.0)),
    Model("KWS DS-CNN, 49x10 MFCC (float, calibrated)", "kws_ds_cnn_float.onnx", "kws_wav_features.npz", "*float*"),
    Model("MobileNetV2 0.5, 128x128 person (float NCHW, calibrated)", "mobilenet_v2_0.5_128_person_float_nchw.onnx",
          "photos_rgb_uint8_128.npz", preprocess=Preprocess(1 / 127.5, -1.0, "nhwc")),
    Model("ImageNet MobileNetV1 0.5, 160x160 (Coral uint8 QDQ)", "coral_mobilenet_v1_0.5_160_quant.onnx",
          "photos_rgb_uint8_160.npz"),
)


def bench(model: Model, target: str) -> dict:
    samples = str(SHARED / "inputs" / model.samples)
    compiled = compile_model(str(SHARED / "models" / model.file),
                             CalibrationOptions(samples, model.keys, preprocess=model.preprocess), target=target)
    x = quantized_inputs(compiled, samples, model.keys)[1][:1]
    return {**run_bench(compiled, get_target(target), x).to_json(), "arena_lower_bound": compiled.plan.lower_bound}


def row(model: Model, results: dict[str, dict]) -> str:
    cells = []
    for t in TARGETS:
        r = results[t]
        cells.append(f"{r['total_instructions'] / 1e6:.2f} M ({r['total_macs'] / r['total_instructions']:.2f})")
    m7 = results[TARGETS[0]]
    arena = " / ".join(f"{results[t]['arena_bytes']:,}" for t in TARGETS)
    code, weights = (" / ".join(f"{results[t][key]:,}" for t in TARGETS) for key in ("code_bytes", "weights_bytes"))
    return (f"| {model.label} | {m7['total_macs'] / 1e6:.2f} M | " + " | ".join(cells)
            + f" | {arena} ({m7['arena_lower_bound']:,}) | {code} | {weights} |")


def main() -> None:
    results: dict[str, dict[str, dict]] = {}
    lines = ["| model | MACs | " + " | ".join(f"{t} instructions (MAC/instr)" for t in TARGETS)
             + " | arena m7 / m55 (m7 lower bound) | code m7 / m55 | weights m7 / m55 |",
             "|---|---:|" + "---:|" * len(TARGETS) + "---:|---:|---:|"]
    for model in MODELS:
        if not (SHARED / "models" / model.file).is_file():
            print(f"skipped {model.file}: absent from {SHARED / 'models'}")
            continue
        results[model.file] = {t: bench(model, t) for t in TARGETS}
        lines.append(row(model, results[model.file]))
        print(lines[-1], flush=True)
    (HERE / "models.json").write_text(json.dumps(results, indent=1))
    text = ["Shared models, `--optimize speed`, instructions per inference under QEMU -icount (not cycles); "
            "bytes from the planner and the linker map.", "", *lines]
    (HERE / "models.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
