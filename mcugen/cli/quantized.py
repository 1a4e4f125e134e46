"""inspect: the scales, zero points and derived multipliers of every layer of a (pre-)quantized model."""
from __future__ import annotations

import json
from typing import Any

import click

from . import cli
from .options import compile_from_options, model_options


@cli.command("inspect")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def inspect_cmd(model: str, as_json: bool, prefix: str, **kw: Any) -> None:
    """Per layer of MODEL: input/output scale and zero point, weight scales, multiplier and shift.

    A pre-quantized model shows its own QParams; a float model those from --calib."""
    from ..inspect import format_table, inspect_graph

    compiled = compile_from_options(model, **kw)
    layers = inspect_graph(compiled.graph)
    notes = compiled.graph.meta.get("prequantized_notes", [])
    source = compiled.graph.meta.get("prequantized") or ("calibrated" if compiled.calibrated else "fixed ranges")
    if as_json:
        click.echo(json.dumps({"model": model, "quantization": source, "layers": [la.to_json() for la in layers],
                               "notes": notes}))
        return
    input_dtype = compiled.graph.meta.get("quantized_input_dtype")
    click.echo(f"{model}: {len(layers)} layers, quantization: {source}"
               + (f", {input_dtype} input" if input_dtype else ""))
    click.echo(format_table(layers, notes))
