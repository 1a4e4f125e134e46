"""Per-layer instructions of VWW (MobileNetV1-0.25, 96x96x3) on the QEMU Cortex-M targets,
as `mcugen bench --json` reports them (mcugen.bench, called directly so --optimize reaches
the compiler), for the portable kernels (cortex-m3 has no DSP) and the fast variants on
m4 / m7 / m33 / m55. Prints markdown tables (instructions per layer, totals against
CMSIS-NN, bytes, text per function) and writes them and the raw JSON beside this script.

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


# CMSIS-NN (current main) on the same architecture, QEMU and GCC (issue 8's baseline)
CMSIS_NN = {"cortex-m4": 24_060_000, "cortex-m7": 23_980_886, "cortex-m55": 6_550_000}


def bench(target: str, optimize: str) -> dict:
    compiled = compile_model(MODEL, CalibrationOptions(PHOTOS, preprocess=Preprocess(1 / 255)), target=target,
                             optimize=optimize)
    x = quantized_inputs(compiled, PHOTOS)[1][:1]
    return {**run_bench(compiled, get_target(target), x).to_json(), "arena_lower_bound": compiled.plan.lower_bound}


def table(results: dict[str, dict]) -> list[str]:
    layers = results[TARGETS[0]]["layers"]
    rows = ["| # | kind | MACs | " + " | ".join(f"{t} instr (MAC/instr)" for t in TARGETS) + " |",
            "|---|---|---:|" + "---:|" * len(TARGETS)]
    for i, layer in enumerate(layers):
        cells = []
        for t in TARGETS:
            n = results[t]["layers"][i]["instructions"]
            cells.append(f"{n:,} ({layer['macs'] / n:.2f})" if layer["macs"] else f"{n:,}")
        rows.append(f"| {i} | {layer['kind']} | {layer['macs']:,} | " + " | ".join(cells) + " |")

    def row(label: str, cell) -> str:
        return f"| | {label} | | " + " | ".join(cell(results[t]) for t in TARGETS) + " |"

    macs = sum(x["macs"] for x in layers)
    rows += [
        row("**total instructions**", lambda r: f"**{r['total_instructions']:,}** ({macs / r['total_instructions']:.2f})"),
        row("CMSIS-NN instructions / ours",
            lambda r: f"{CMSIS_NN[r['target']] / r['total_instructions']:.2f}x" if r["target"] in CMSIS_NN else ""),
        row("code bytes (kernels + schedule)", lambda r: f"{r['code_bytes']:,}"),
        row("weights bytes", lambda r: f"{r['weights_bytes']:,}"),
        row("arena bytes (lower bound)", lambda r: f"{r['arena_bytes']:,} ({r['arena_lower_bound']:,})"),
    ]
    return rows


def functions(result: dict) -> list[str]:
    rows = [f"| {result['target']} function | text bytes |", "|---|---:|"]
    rows += [f"| `{f['name']}` | {f['bytes']:,} |" for f in result["functions"]]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimize", choices=("speed", "size"), default="speed")
    args = parser.parse_args()
    results = {t: bench(t, args.optimize) for t in TARGETS}
    (HERE / f"vww_{args.optimize}.json").write_text(json.dumps(results, indent=1))
    lines = [f"VWW (MobileNetV1-0.25, 96x96x3), `--optimize {args.optimize}`: instructions per layer under QEMU "
             "-icount (instructions, not cycles).", "", *table(results), "",
             *functions(results["cortex-m7"]), "", *functions(results["cortex-m55"])]
    (HERE / f"vww_{args.optimize}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
