"""plan: the memory plan of a model, its lower bound, a per-step table and an arena plot."""
from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click
import numpy as np

from .. import sim
from ..compiler import quantized_inputs
from . import EXIT_INTERNAL_ERROR, cli
from .options import compile_from_options, model_options


@cli.command("plan")
@model_options
@click.option("--io-in-arena", is_flag=True, help="Put the input and output inside the arena.")
@click.option("--no-overlap", is_flag=True, help="Ignore the kernels' overlap declarations (no in-place layers).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the arena over time (.svg; .png with matplotlib).")
@click.option("--inputs", "input_path", type=click.Path(), help="Also run these samples inside the planned arena and "
              "check the outputs equal the simulator's.")
@click.option("--keys", help="Only the .npz arrays whose key matches this glob.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
def plan_cmd(model: str, io_in_arena: bool, no_overlap: bool, plot: str | None, input_path: str | None,
             keys: str | None, as_json: bool, prefix: str, **kw: Any) -> None:
    """Plan MODEL's arena and report it against the layer-by-layer lower bound."""
    from ..plan import memory_by_step, peak_step
    from ..plan.execute import run_in_arena
    from ..plan.plot import write_plot
    from ..plan.report import format_report

    compiled = compile_from_options(model, **kw).replan(io_in_arena, allow_overlap=not no_overlap)
    plan, graph = compiled.plan, compiled.graph
    mismatches: list[str] = []
    checked = 0
    if input_path:
        names, xs = quantized_inputs(compiled, input_path, keys)
        for name, x in zip(names, xs):
            same = all(np.array_equal(a, b) for a, b in zip(run_in_arena(graph, plan, x), sim.run(graph, x)))
            mismatches += [] if same else [name]
        checked = len(names)
    if as_json:
        click.echo(json.dumps({
            "arena": plan.arena_size, "lower_bound": plan.lower_bound, "ratio": round(plan.ratio, 4),
            "strategy": plan.strategy, "io_in_arena": plan.io_in_arena, "candidates": dict(plan.candidates),
            "peak_step": peak_step(plan).step,
            "steps": [dataclasses.asdict(row) | {"node": graph.nodes[row.step].name} for row in memory_by_step(plan)],
            "checked": checked, "mismatches": mismatches,
        }))
    else:
        click.echo(format_report(plan, graph))
        if input_path:
            click.echo(f"arena simulator == simulator on {checked - len(mismatches)}/{checked} inputs")
    if plot:
        click.echo(f"wrote {write_plot(plan, plot)}", err=as_json)
    if mismatches:
        sys.exit(EXIT_INTERNAL_ERROR)
