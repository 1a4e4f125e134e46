"""The `mcugen` command line. Nothing else imports click."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

from . import __version__, sim
from .compiler import CalibrationOptions, Compiled, compile_model, float_inputs, quantized_inputs
from .errors import UserError
from .inputs import Preprocess
from .output import write_atomically
from .reference import agreement, dequantize, onnxruntime_available, run_onnx

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _progress(stage: str, done: int, total: int) -> None:
    end = "\n" if done == total else ""
    click.echo(f"\r{stage} {done}/{total}", nl=False, err=True)
    click.echo(end, nl=False, err=True)


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Calibration and preprocessing options shared by every command that compiles."""
    options = [
        click.argument("model", type=click.Path(dir_okay=False)),
        click.option("--calib", type=click.Path(), help="Calibration samples: .npy, .npz or a folder of images."),
        click.option("--calib-keys", help="Only the .npz arrays whose key matches this glob (e.g. '*_float')."),
        click.option("--calib-method", type=click.Choice(["minmax", "percentile"]), default="minmax", show_default=True),
        click.option("--input-scale", type=float, default=1.0, show_default=True, help="Preprocessing: x * scale + offset."),
        click.option("--input-offset", type=float, default=0.0, show_default=True),
        click.option("--layout", type=click.Choice(["nhwc", "nchw"]), help="Layout of your arrays [default: the model's]."),
        click.option("--prefix", default="mcugen", show_default=True, help="C name prefix, so two models share one firmware."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _compile(model: str, calib: str | None, calib_keys: str | None, calib_method: str,
             input_scale: float, input_offset: float, layout: str | None) -> Compiled:
    path = Path(model)
    if not path.is_file():
        raise UserError(f"{model}: no such file" if not path.exists() else f"{model}: not a file")
    preprocess = Preprocess(input_scale, input_offset, layout)
    compiled = compile_model(model, CalibrationOptions(calib, calib_keys, calib_method, preprocess), _progress)
    if not compiled.calibrated and compiled.float_graph is not None:
        click.secho("warning: no --calib data: every activation uses a fixed [-6, 6] range. "
                    "Accuracy will suffer; pass representative inputs with --calib.", fg="yellow", err=True)
    return compiled


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcugen")
@click.option("--debug", is_flag=True, help="Show the stack trace of internal errors.")
def cli(debug: bool) -> None:
    """Compile ONNX MobileNets into int8 C99 for Arm Cortex-M, bit-exact with a NumPy simulator."""


@cli.command("compile")
@model_options
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--target", default="host", show_default=True, help="host, cortex-m3, -m4, -m7, -m33 or -m55.")
def compile_cmd(model: str, out_dir: str, target: str, prefix: str, **kw: Any) -> None:
    """Compile MODEL to C in OUT: <prefix>.h, <prefix>.c, <prefix>_weights.c, mcugen_arith.h."""
    from .targets import get_target

    tgt = get_target(target)
    compiled = _compile(model, **kw)
    files = write_atomically(out_dir, compiled.emit(prefix))
    graph = compiled.graph
    weights = sum(t.nbytes for t in graph.tensors.values() if t.is_const)
    click.echo(f"{model}: {len(graph.nodes)} layers for {tgt.name}")
    click.echo(f"  arena      {compiled.plan.arena_size:>10,} bytes ({compiled.plan.strategy}; input and output outside)")
    click.echo(f"  constants  {weights:>10,} bytes")
    for f in files:
        click.echo(f"  wrote {f}")


@cli.command()
@model_options
@click.option("--input", "input_path", required=True, type=click.Path(), help="Samples: .npy, .npz or image folder.")
@click.option("--keys", help="Only the .npz arrays whose key matches this glob.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), help="Save the int8 outputs (.npy).")
def simulate(model: str, input_path: str, keys: str | None, out_path: str | None, prefix: str, **kw: Any) -> None:
    """Run MODEL's integer simulator (the golden reference) on samples."""
    compiled = _compile(model, **kw)
    names, xs = quantized_inputs(compiled, input_path, keys)
    outputs = sim.run_batch(compiled.graph, xs)
    out_q = compiled.graph.tensor(compiled.graph.outputs[0]).qparams
    real = dequantize(outputs, out_q)
    for name, row in zip(names, real):
        click.echo(f"{name}: top-1 {int(np.argmax(row))}  " + " ".join(f"{v:.4f}" for v in row.ravel()[:10]))
    if out_path:
        np.save(out_path, outputs)
        click.echo(f"wrote {out_path}")
    if onnxruntime_available() and compiled.float_graph is not None:
        _, floats = float_inputs(compiled, input_path, keys)
        agree = agreement(real, run_onnx(model, compiled.graph, floats))
        click.echo(f"vs onnxruntime float: top-1 agrees on {agree.top1_agree}/{len(names)}, "
                   f"cosine min {agree.cosine_min:.4f}")


@cli.command()
@model_options
@click.option("--inputs", "input_path", required=True, type=click.Path(), help="Samples: .npy, .npz or image folder.")
@click.option("--keys", help="Only the .npz arrays whose key matches this glob.")
@click.option("--target", default="host", show_default=True, help="host, cortex-m3, -m4, -m7, -m33 or -m55.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def verify(model: str, input_path: str, keys: str | None, target: str, as_json: bool, prefix: str, **kw: Any) -> None:
    """Build the generated C for TARGET, run it, and check it equals the simulator bit for bit."""
    from .targets import get_target
    from .verify import verify as run_verify

    tgt = get_target(target)
    compiled = _compile(model, **kw)
    names, xs = quantized_inputs(compiled, input_path, keys)
    result = run_verify(compiled, tgt, names, xs, prefix=prefix, profile=tgt.name != "host")
    report: dict[str, Any] = {"target": tgt.name, "inputs": len(names), "bit_exact": int(result.exact.sum()),
                              "mismatches": result.mismatches}
    out_q = compiled.graph.tensor(compiled.graph.outputs[0]).qparams
    agree = None
    if onnxruntime_available() and compiled.float_graph is not None:
        _, floats = float_inputs(compiled, input_path, keys)
        agree = agreement(dequantize(result.c_outputs, out_q), run_onnx(model, compiled.graph, floats))
        report.update(top1_agree_float=agree.top1_agree, cosine_min=round(agree.cosine_min, 6))
    if result.instructions is not None:
        report["instructions"] = result.instructions
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"{'input':<24} {'C == sim':<9} {'top-1':>5}" + ("  float top-1  cosine" if agree else ""))
        for i, name in enumerate(names):
            line = f"{name:<24} {'yes' if result.exact[i] else 'NO':<9} {int(np.argmax(result.c_outputs[i])):>5}"
            if agree:
                line += f"  {'':>11}  {agree.cosine[i]:.4f}"
            click.echo(line)
        click.echo(f"{tgt.name}: bit-exact on {report['bit_exact']}/{len(names)}")
        if agree:
            click.echo(f"int8 top-1 == float top-1 on {agree.top1_agree}/{len(names)}; cosine min {agree.cosine_min:.4f}")
        if result.instructions is not None:
            click.echo(f"{result.instructions:,} instructions per inference (QEMU instruction count, not cycles)")
    if result.mismatches:
        sys.exit(EXIT_INTERNAL_ERROR)


# --- zoo, report, fit: the logic lives in mcugen.zoo, mcugen.report and mcugen.fit ---------------

def _csv(text: str, kind: type, option: str) -> list[Any]:
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a comma-separated list of {kind.__name__}", param_hint=option)


def _with_budget(target: str, flash: str | None, ram: str | None) -> Any:
    from .report.cost import parse_bytes
    from .targets import get_target, with_budget

    return with_budget(get_target(target), parse_bytes(flash) if flash else None, parse_bytes(ram) if ram else None)


@cli.command()
@click.argument("version", type=click.Choice(["v1", "v2"]))
@click.option("--alpha", type=float, default=1.0, show_default=True, help="Width multiplier: 0.25, 0.35, 0.5, 0.75 or 1.0.")
@click.option("--resolution", type=int, default=224, show_default=True, help="Input height and width.")
@click.option("--classes", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write.")
def zoo(version: str, alpha: float, resolution: int, classes: int, seed: int, output: str) -> None:
    """Write a MobileNet VERSION (v1 or v2) with seeded weights as ONNX (NCHW, opset 13)."""
    import onnx

    from .zoo import GENERATORS

    try:
        model = GENERATORS[version](alpha, resolution, num_classes=classes, seed=seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    onnx.save(model, output)
    click.echo(f"wrote {output}: MobileNet{version.upper()} alpha={alpha} {resolution}x{resolution}, {classes} classes")


@cli.command()
@model_options
@click.option("--target", help="Compare flash and RAM with this target's budget (cortex-m3, -m4, -m7, -m33, -m55).")
@click.option("--flash", help="Flash budget, e.g. 1MiB (overrides the target's).")
@click.option("--ram", help="RAM budget, e.g. 320KiB (overrides the target's).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md", "html"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here instead of printing it.")
@click.option("--plots", type=click.Path(file_okay=False), help="Folder for MACs/parameters-per-layer PNG and SVG.")
def report(model: str, target: str | None, flash: str | None, ram: str | None, fmt: str, output: str | None,
           plots: str | None, prefix: str, calib: str | None, calib_keys: str | None, calib_method: str,
           input_scale: float, input_offset: float, layout: str | None) -> None:
    """Per-layer parameters, MACs and activation bytes; separable-pair savings; flash and RAM."""
    from .report.cost import analyze
    from .report.render import render

    if (flash or ram) and not target:
        raise click.UsageError("--flash/--ram need --target")
    tgt = _with_budget(target, flash, ram) if target else None
    options = CalibrationOptions(calib, calib_keys, calib_method, Preprocess(input_scale, input_offset, layout))
    result = analyze(model, options, tgt)
    text = render(result, fmt)
    if output:
        Path(output).write_text(text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)
    if plots:
        from .report.plots import plot_layers

        for path in plot_layers(result, plots):
            click.echo(f"wrote {path}", err=True)


@cli.command()
@click.option("--target", default="cortex-m7", show_default=True)
@click.option("--flash", help="Flash budget, e.g. 1MiB [default: the target's].")
@click.option("--ram", help="RAM budget, e.g. 320KiB [default: the target's].")
@click.option("--versions", default="v1,v2", show_default=True)
@click.option("--alphas", default="0.25,0.35,0.5,0.75,1.0", show_default=True)
@click.option("--resolutions", default="96,128,160,192,224", show_default=True)
@click.option("--classes", type=int, default=1000, show_default=True, help="Classifier outputs of every model.")
@click.option("--bench", type=click.Path(dir_okay=False), help="`mcugen bench --json` output: measured MACs/instruction.")
@click.option("-j", "--jobs", type=int, help="Worker processes [default: all cores].")
@click.option("--plots", type=click.Path(file_okay=False), help="Folder for the frontier plot (PNG and SVG).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the grid.")
def fit(target: str, flash: str | None, ram: str | None, versions: str, alphas: str, resolutions: str,
        classes: int, bench: str | None, jobs: int | None, plots: str | None, as_json: bool) -> None:
    """Compile MobileNetV1/V2 for every alpha x resolution and show which fit TARGET's flash and RAM."""
    import time

    from . import fit as fitting

    tgt = _with_budget(target, flash, ram)
    points = fitting.grid(_csv(versions, str, "--versions"), _csv(alphas, float, "--alphas"),
                          _csv(resolutions, int, "--resolutions"))
    rates = fitting.rates_from_bench(bench) if bench else fitting.default_rates()
    start = time.monotonic()
    results = fitting.sweep(points, tgt, rates, classes, jobs, lambda done, total: _progress("fit", done, total))
    elapsed = time.monotonic() - start
    click.echo(fitting.to_json(results, tgt, rates) if as_json else fitting.format_results(results, tgt, rates))
    click.echo(f"{len(points)} points compiled in {elapsed:.1f} s", err=True)
    if plots:
        from .report.plots import plot_frontier

        for path in plot_frontier(results, tgt.flash_bytes, tgt.ram_bytes, plots):
            click.echo(f"wrote {path}", err=True)


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USER_ERROR)
    except UserError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:  # anything else is our bug: say so briefly
        if debug:
            raise
        click.secho(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the stack trace)",
                    fg="red", err=True)
        sys.exit(EXIT_INTERNAL_ERROR)
