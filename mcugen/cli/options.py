"""Options and helpers shared by the commands that compile a model."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from ..compiler import CalibrationOptions, Compiled, compile_model
from ..errors import UserError
from ..inputs import Preprocess
from ..passes.select_kernels import DEFAULT_OPTIMIZE, OPTIMIZE

def progress(stage: str, done: int, total: int) -> None:
    """One line redrawn in place on a terminal; only the final count in logs and pipes."""
    if click.get_text_stream("stderr").isatty():
        click.echo(f"\r{stage} {done}/{total}" + ("\n" if done == total else ""), nl=False, err=True)
    elif done == total:
        click.echo(f"{stage} {done}/{total}", err=True)


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


def optimize_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--optimize for commands that generate C for a target (kernel variants, docs/kernels.md)."""
    return click.option("--optimize", type=click.Choice(list(OPTIMIZE)), default=DEFAULT_OPTIMIZE, show_default=True,
                        help="The fast kernels unrolled for speed, or for flash: less unrolling and, on DSP cores, "
                             "int8 pointwise weights instead of int16 pairs (slower).")(fn)


def compile_from_options(model: str, calib: str | None, calib_keys: str | None, calib_method: str,
                         input_scale: float, input_offset: float, layout: str | None,
                         target: str = "host", optimize: str = DEFAULT_OPTIMIZE) -> Compiled:
    path = Path(model)
    if not path.is_file():
        raise UserError(f"{model}: no such file" if not path.exists() else f"{model}: not a file")
    preprocess = Preprocess(input_scale, input_offset, layout)
    compiled = compile_model(model, CalibrationOptions(calib, calib_keys, calib_method, preprocess), progress, target,
                             optimize)
    if not compiled.calibrated and compiled.float_graph is not None:
        click.secho("warning: no --calib data: every activation uses a fixed [-6, 6] range. "
                    "Accuracy will suffer; pass representative inputs with --calib.", fg="yellow", err=True)
    return compiled


