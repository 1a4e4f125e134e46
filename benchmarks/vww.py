"""Per-layer instructions of VWW (MobileNetV1-0.25, 96x96x3) on the QEMU Cortex-M targets,
as `mcugen bench --json` reports them (mcugen.bench, called directly so --optimize reaches
the compiler), for the portable kernels (cortex-m3 has no DSP) and the fast variants on
m4 / m7 / m55. Prints a markdown table; writes the raw JSON beside this script.

    python3 benchmarks/vww.py [--optimize speed|size]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mcugen.bench import bench as run_bench
from mcugen.compiler import CalibrationOptions, compile_model, quantized_inputs
from mcugen.inputs import Preprocess
from mcugen.targets import get_target

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
MODEL = str(EXAMPLES / "models" / "vww_96_float.onnx")  # the same file as ../shared/models/vww_96_float.onnx
PHOTOS = str(EXAMPLES / "data" / "photos_rgb_uint8_96.npz")
TARGETS = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")


def bench(target: str, optimize: str) -> dict:
    compiled = compile_model(MODEL, CalibrationOptions(PHOTOS, preprocess=Preprocess(1 / 255)), target=target,
                             optimize=optimize)
    x = quantized_inputs(compiled, PHOTOS)[1][:1]
    return run_bench(compiled, get_target(target), x).to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimize", choices=("speed", "size"), default="speed")
    args = parser.parse_args()
    results = {t: bench(t, args.optimize) for t in TARGETS}
    (HERE / f"vww_{args.optimize}.json").write_text(json.dumps(results, indent=1))
    layers = results[TARGETS[0]]["layers"]
    print("| # | kind | MACs | " + " | ".join(f"{t} instr (MAC/instr)" for t in TARGETS) + " |")
    print("|---|---|---:|" + "---:|" * len(TARGETS))
    for i, layer in enumerate(layers):
        cells = []
        for t in TARGETS:
            n = results[t]["layers"][i]["instructions"]
            cells.append(f"{n:,} ({layer['macs'] / n:.2f})" if layer["macs"] else f"{n:,}")
        print(f"| {i} | {layer['kind']} | {layer['macs']:,} | " + " | ".join(cells) + " |")
    totals = [f"**{results[t]['total_instructions']:,}**" for t in TARGETS]
    print(f"| | total | {layers and sum(x['macs'] for x in layers):,} | " + " | ".join(totals) + " |")
    print("| | code bytes (kernels + schedule) | | " + " | ".join(f"{results[t]['code_bytes']:,}" for t in TARGETS) + " |")


if __name__ == "__main__":
    main()
