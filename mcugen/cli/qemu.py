"""run and bench: the generated C on an emulated Cortex-M."""
from __future__ import annotations

import json
from typing import Any

import click
import numpy as np

from ..compiler import quantized_inputs
from ..errors import UserError
from ..reference import dequantize
from ..targets import Target, get_target
from . import cli
from .options import compile_from_options, model_options, optimize_option

ARM_TARGETS = "cortex-m3, -m4, -m7, -m33 or -m55"


def _arm_target(name: str) -> Target:
    target = get_target(name)
    if target.is_host:
        raise UserError(f"this command runs on QEMU; pick a Cortex-M target ({ARM_TARGETS}), not '{name}'")
    return target


@cli.command()
@model_options
@optimize_option
@click.option("--target", default="cortex-m7", show_default=True, help=ARM_TARGETS)
@click.option("--inputs", "input_path", required=True, type=click.Path(), help="Samples: .npy, .npz or image folder.")
@click.option("--keys", help="Only the .npz arrays whose key matches this glob.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), help="Save the int8 outputs (.npy).")
def run(model: str, target: str, input_path: str, keys: str | None, out_path: str | None, prefix: str,
        optimize: str, **kw: Any) -> None:
    """Compile MODEL, build it with arm-none-eabi-gcc and run it on QEMU; print the outputs."""
    from ..verify import run_c

    tgt = _arm_target(target)
    compiled = compile_from_options(model, **kw, target=tgt.name, optimize=optimize)
    names, xs = quantized_inputs(compiled, input_path, keys)
    click.echo(f"running {len(names)} input(s) on {tgt.name} ({tgt.qemu_machine})", err=True)
    outputs, _ = run_c(compiled, tgt, xs, prefix)
    real = dequantize(outputs, compiled.graph.tensor(compiled.graph.outputs[0]).qparams)
    for name, row in zip(names, real):
        click.echo(f"{name}: top-1 {int(np.argmax(row))}  " + " ".join(f"{v:.4f}" for v in row.ravel()[:10]))
    if out_path:
        np.save(out_path, outputs)
        click.echo(f"wrote {out_path}", err=True)


@cli.command()
@model_options
@optimize_option
@click.option("--target", default="cortex-m7", show_default=True, help=ARM_TARGETS)
@click.option("--inputs", "input_path", type=click.Path(),
              help="Run on the first sample of this file [default: zeros; the kernels' work does not depend on data].")
@click.option("--keys", help="Only the .npz arrays whose key matches this glob.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench(model: str, target: str, input_path: str | None, keys: str | None, as_json: bool, prefix: str,
          optimize: str, **kw: Any) -> None:
    """Instructions per layer under QEMU (-icount: instructions, not cycles), MACs and bytes."""
    from ..bench import bench as run_bench
    from ..bench import format_bench

    tgt = _arm_target(target)
    compiled = compile_from_options(model, **kw, target=tgt.name, optimize=optimize)
    if input_path:
        x = quantized_inputs(compiled, input_path, keys)[1][:1]
    else:
        x = np.zeros((1, *compiled.graph.tensor(compiled.graph.inputs[0]).shape), np.int8)
    result = run_bench(compiled, tgt, x, prefix)
    click.echo(json.dumps(result.to_json()) if as_json else format_bench(result))
