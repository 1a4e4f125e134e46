"""zoo, report and fit: the logic lives in mcugen.zoo, mcugen.report and mcugen.fit."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..compiler import CalibrationOptions
from ..errors import UserError
from ..inputs import Preprocess
from . import cli
from .options import model_options, optimize_option, progress


def _csv(text: str, kind: type, option: str) -> list[Any]:
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a comma-separated list of {kind.__name__}", param_hint=option)


def _with_budget(target: str, flash: str | None, ram: str | None) -> Any:
    from ..report.cost import parse_bytes
    from ..targets import get_target, with_budget

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

    from ..zoo import GENERATORS

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
@optimize_option
def report(model: str, target: str | None, flash: str | None, ram: str | None, fmt: str, output: str | None,
           plots: str | None, prefix: str, calib: str | None, calib_keys: str | None, calib_method: str,
           input_scale: float, input_offset: float, layout: str | None, optimize: str) -> None:
    """Per-layer parameters, MACs and activation bytes; separable-pair savings; flash and RAM."""
    from ..report.cost import analyze
    from ..report.render import render

    if (flash or ram) and not target:
        raise click.UsageError("--flash/--ram need --target")
    tgt = _with_budget(target, flash, ram) if target else None
    options = CalibrationOptions(calib, calib_keys, calib_method, Preprocess(input_scale, input_offset, layout))
    result = analyze(model, options, tgt, optimize)
    text = render(result, fmt)
    if output:
        Path(output).write_text(text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)
    if plots:
        from ..report.plots import plot_layers

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

    from .. import fit as fitting

    tgt = _with_budget(target, flash, ram)
    points = fitting.grid(_csv(versions, str, "--versions"), _csv(alphas, float, "--alphas"),
                          _csv(resolutions, int, "--resolutions"))
    rates = fitting.rates_from_bench(bench) if bench else fitting.default_rates()
    start = time.monotonic()
    results = fitting.sweep(points, tgt, rates, classes, jobs, lambda done, total: progress("fit", done, total))
    elapsed = time.monotonic() - start
    click.echo(fitting.to_json(results, tgt, rates) if as_json else fitting.format_results(results, tgt, rates))
    click.echo(f"{len(points)} points compiled in {elapsed:.1f} s", err=True)
    if plots:
        from ..report.plots import plot_frontier

        for path in plot_frontier(results, tgt.flash_bytes, tgt.ram_bytes, plots):
            click.echo(f"wrote {path}", err=True)
