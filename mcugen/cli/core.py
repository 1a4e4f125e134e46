"""compile, simulate and verify: the core pipeline's commands."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
import numpy as np

from .. import sim
from ..compiler import float_inputs, quantized_inputs
from ..output import write_atomically
from ..reference import agreement, dequantize, onnxruntime_available, run_onnx
from . import EXIT_INTERNAL_ERROR, cli
from .options import compile_from_options, model_options, optimize_option


@cli.command("compile")
@model_options
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--target", default="host", show_default=True, help="host, cortex-m3, -m4, -m7, -m33 or -m55.")
@click.option("--io-in-arena", is_flag=True, help="Put the input and output inside the arena (docs/memory.md).")
@click.option("--flash", "flash_size", help="Flash budget of your part (e.g. 1MiB) [default: the target's].")
@click.option("--ram", "ram_size", help="RAM budget of your part (e.g. 320KiB) [default: the target's].")
@optimize_option
def compile_cmd(model: str, out_dir: str, target: str, prefix: str, io_in_arena: bool, flash_size: str | None,
                ram_size: str | None, **kw: Any) -> None:
    """Compile MODEL to C in OUT: <prefix>.h, <prefix>.c, <prefix>_weights.c, mcugen_arith.h."""
    from ..budget import check_budget
    from ..report.cost import parse_bytes
    from ..targets import get_target, with_budget

    tgt = get_target(target)
    tgt = with_budget(tgt, flash=parse_bytes(flash_size) if flash_size else None,
                      ram=parse_bytes(ram_size) if ram_size else None)
    compiled = compile_from_options(model, **kw, target=tgt.name)
    if io_in_arena:
        compiled = compiled.replan(io_in_arena=True)
    check_budget(compiled, tgt)
    files = write_atomically(out_dir, compiled.emit(prefix))
    graph = compiled.graph
    weights = sum(t.nbytes for t in graph.tensors.values() if t.is_const)
    click.echo(f"{model}: {len(graph.nodes)} layers for {tgt.name}")
    plan = compiled.plan
    where = "inside" if plan.io_in_arena else "outside"
    click.echo(f"  arena      {plan.arena_size:>10,} bytes (lower bound {plan.lower_bound:,}, ratio {plan.ratio:.3f};"
               f" {plan.strategy}; input and output {where})")
    click.echo(f"  constants  {weights:>10,} bytes")
    for f in files:
        click.echo(f"  wrote {f}")


@cli.command()
@model_options
@click.option("--inputs", "--input", "input_path", required=True, type=click.Path(), help="Samples: .npy, .npz or image folder.")
@click.option("--keys", help="Only the .npz arrays whose key matches this glob.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), help="Save the int8 outputs (.npy).")
def simulate(model: str, input_path: str, keys: str | None, out_path: str | None, prefix: str, **kw: Any) -> None:
    """Run MODEL's integer simulator (the golden reference) on samples."""
    compiled = compile_from_options(model, **kw)
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
@click.option("--io-in-arena", is_flag=True, help="Put the input and output inside the arena (docs/memory.md).")
@click.option("--reference", "reference_path", type=click.Path(dir_okay=False),
              help="A .tflite of the same model: also compare with TensorFlow Lite Micro (needs tflite-micro).")
@optimize_option
def verify(model: str, input_path: str, keys: str | None, target: str, as_json: bool, io_in_arena: bool, prefix: str,
           reference_path: str | None, **kw: Any) -> None:
    """Build the generated C for TARGET, run it, and check it equals the simulator bit for bit."""
    from ..targets import get_target
    from ..verify import verify as run_verify

    tgt = get_target(target)
    compiled = compile_from_options(model, **kw, target=tgt.name)
    if io_in_arena:
        compiled = compiled.replan(io_in_arena=True)
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
    elif onnxruntime_available() and compiled.graph.meta.get("prequantized"):
        from ..quantized_reference import run_onnx_quantized

        agree = agreement(dequantize(result.c_outputs, out_q),
                          dequantize(run_onnx_quantized(model, compiled.graph, xs), out_q))
        report.update(top1_agree_onnxruntime=agree.top1_agree, cosine_min=round(agree.cosine_min, 6))
    tflm_exact = None
    if reference_path:
        from ..tflm import run_tflm

        tflm = run_tflm(reference_path, xs, result.sim_outputs.shape[1:])
        tflm_exact = [np.array_equal(t, s) and np.array_equal(t, c)
                      for t, s, c in zip(tflm, result.sim_outputs, result.c_outputs)]
        report["reference_exact"] = int(sum(tflm_exact))
    if result.instructions is not None:
        report["instructions"] = result.instructions
    if as_json:
        click.echo(json.dumps(report))
    else:
        ref_name = "ORT q" if compiled.float_graph is None else "float"
        click.echo(f"{'input':<24} {'C == sim':<9} {'top-1':>5}" + (f"  {ref_name} top-1  cosine" if agree else ""))
        for i, name in enumerate(names):
            line = f"{name:<24} {'yes' if result.exact[i] else 'NO':<9} {int(np.argmax(result.c_outputs[i])):>5}"
            if agree:
                line += f"  {int(agree.top1[i]):>11}  {agree.cosine[i]:.4f}"
            if tflm_exact is not None:
                line += f"  TFLM {'==' if tflm_exact[i] else '!='}"
            click.echo(line)
        click.echo(f"{tgt.name}: bit-exact on {report['bit_exact']}/{len(names)}")
        if tflm_exact is not None:
            click.echo(f"simulator and C == TensorFlow Lite Micro on {report['reference_exact']}/{len(names)}")
        if agree:
            what = "onnxruntime's (quantized model)" if compiled.float_graph is None else "float"
            click.echo(f"int8 top-1 == {what} top-1 on {agree.top1_agree}/{len(names)}; cosine min {agree.cosine_min:.4f}")
        if result.instructions is not None:
            click.echo(f"{result.instructions:,} instructions per inference (QEMU instruction count, not cycles)")
    if result.mismatches or (tflm_exact is not None and not all(tflm_exact)):
        sys.exit(EXIT_INTERNAL_ERROR)
