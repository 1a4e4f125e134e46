"""A CostReport as an aligned text table, JSON, Markdown or HTML.

The three tabular formats share one list of sections, so they always show the
same numbers; JSON carries the full, unabbreviated values.
"""
from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass
from typing import Any

from .cost import CostReport, LayerCost, SeparablePair

FORMATS = ("table", "json", "md", "html")
_NAME_WIDTH = 32


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]  # right-align this column
    notes: tuple[str, ...] = ()


def short_name(name: str, width: int = _NAME_WIDTH) -> str:
    """tf2onnx fuses op names with ';': the last part that is not a variable read names the layer."""
    parts = [p for p in name.split(";") if "ReadVariableOp" not in p] or [name]
    name = parts[-1]
    return name if len(name) <= width else "…" + name[-(width - 1):]


def shape(dims: tuple[int, ...]) -> str:
    return "x".join(map(str, dims))


def _kib(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def _verdict(used: int, budget: int | None) -> str:
    if budget is None:
        return "no limit"
    return f"{'fits' if used <= budget else 'OVER'}: {used / budget:.0%} of {_kib(budget)}"


def _layers(report: CostReport) -> Section:
    def row(layer: LayerCost) -> tuple[str, ...]:
        return (str(layer.index), short_name(layer.name), layer.kind,
                " + ".join(shape(s) for s in layer.input_shapes), shape(layer.output_shape),
                f"{layer.params:,}", f"{layer.macs:,}", f"{layer.activation_bytes:,}")

    rows = [row(layer) for layer in report.layers]
    rows.append(("", "total", "", "", "", f"{report.params:,}", f"{report.macs:,}",
                 f"{max((layer.activation_bytes for layer in report.layers), default=0):,} max"))
    return Section(
        "Layers", ("#", "layer", "kind", "input", "output", "params", "MACs", "act bytes"), tuple(rows),
        (True, False, False, False, False, True, True, True),
        (f"params = weights + biases ({report.weights:,} + {report.biases:,}), batch norms folded; "
         "MACs count conv and FC work; act bytes = int8 inputs + output of the layer.",),
    )


def _pairs(report: CostReport) -> Section:
    def row(p: SeparablePair) -> tuple[str, ...]:
        m, n = p.kernel
        return (f"{p.depthwise} + {p.pointwise}", f"{m}x{n}", f"{p.channels_in} -> {p.channels_out}",
                f"{p.out_hw[0]}x{p.out_hw[1]}", f"{p.separable_params:,} / {p.standard_params:,}",
                f"{p.separable_macs:,} / {p.standard_macs:,}", f"{p.params_ratio:.4f}", f"{p.macs_ratio:.4f}",
                f"{p.formula:.4f}")

    pairs = report.pairs
    notes: tuple[str, ...] = ()
    if pairs:
        sep_p, std_p = sum(p.separable_params for p in pairs), sum(p.standard_params for p in pairs)
        sep_m, std_m = sum(p.separable_macs for p in pairs), sum(p.standard_macs for p in pairs)
        notes = (f"All {len(pairs)} pairs: {sep_p:,} weights instead of {std_p:,} ({std_p / sep_p:.1f}x fewer), "
                 f"{sep_m:,} MACs instead of {std_m:,} ({std_m / sep_m:.1f}x fewer).",
                 "separable = depthwise M·N·C + pointwise C·C' weights; standard = M·N·C·C' weights and "
                 "H'·W'·C'·M·N·C MACs; ratio = separable / standard; formula = 1/C' + 1/(M·N).")
    return Section(
        "Depthwise-separable pairs vs one standard conv",
        ("layers", "MxN", "C -> C'", "H'xW'", "weights sep / std", "MACs sep / std", "weights ratio",
         "MACs ratio", "1/C'+1/(MN)"),
        tuple(row(p) for p in pairs), (False, False, False, False, True, True, True, True, True), notes,
    )


def _memory(report: CostReport) -> Section:
    f, budget = report.flash, report.budget
    rows = [
        ("flash", "weights (int8)", _kib(f.weights)),
        ("", "biases (int32)", _kib(f.biases)),
        ("", "requantization multipliers and shifts", _kib(f.requant)),
        *([("", "fast kernels' weights, biases and output stage", _kib(f.packed))] if f.packed else []),
        ("", "layer parameter structs", _kib(f.layer_params)),
        ("", "code (estimate)", _kib(f.code)),
        ("", "total", _kib(f.total)),
        ("RAM", "arena (MCUGEN_ARENA_SIZE)", _kib(report.arena)),
        ("", "input + output buffers", _kib(report.io_bytes)),
        ("", "total (stack not counted)", _kib(report.ram)),
    ]
    notes: tuple[str, ...] = ("flash counts the generated model only, not your firmware or the C library.",)
    if budget is not None:
        verdicts = {("flash", "total"): _verdict(f.total, budget.flash), ("RAM", "total"): _verdict(report.ram, budget.ram)}
        part = ""
        for i, row in enumerate(rows):
            part = row[0] or part  # the flash rows, then the RAM rows
            rows[i] = row + (verdicts.get((part, row[1].split(" ")[0]), ""),)
        notes += (f"budget of {budget.target}: {budget.part}",)
    headers = ("memory", "part", "bytes") + (("budget",) if budget is not None else ())
    return Section("Memory", headers, tuple(rows), (False, False, True, False)[: len(headers)], notes)


def sections(report: CostReport) -> list[Section]:
    return [_layers(report), _pairs(report), _memory(report)]


def _title(report: CostReport) -> str:
    target = f" for {report.budget.target}" if report.budget else ""
    return f"Cost of {report.model}{target}: {report.params:,} parameters, {report.macs:,} MACs"


def to_table(report: CostReport) -> str:
    out = [_title(report), ""]
    for s in sections(report):
        widths = [max(len(c) for c in col) for col in zip(s.headers, *s.rows)]
        out.append(s.title)

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.rjust(w) if num else c.ljust(w)
                             for c, w, num in zip(cells, widths, s.numeric)).rstrip()

        out.append(line(s.headers))
        out.append("  ".join("-" * w for w in widths))
        out.extend(line(r) for r in s.rows)
        out.extend(s.notes)
        out.append("")
    return "\n".join(out)


def to_markdown(report: CostReport) -> str:
    out = [f"# {_title(report)}", ""]
    for s in sections(report):
        out += [f"## {s.title}", "", "| " + " | ".join(s.headers) + " |",
                "|" + "|".join("---:" if num else "---" for num in s.numeric) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in s.rows]
        out += [""] + [f"{n}  " for n in s.notes] + [""]
    return "\n".join(out)


def to_html(report: CostReport) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{e(report.model)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:2px 6px}.n{text-align:right}</style>",
           "</head><body>", f"<h1>{e(_title(report))}</h1>"]
    for s in sections(report):
        out.append(f"<h2>{e(s.title)}</h2><table>")
        out.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in s.headers) + "</tr>")
        for r in s.rows:
            cells = "".join(f'<td class="n">{e(c)}</td>' if num else f"<td>{e(c)}</td>"
                            for c, num in zip(r, s.numeric))
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
        out.extend(f"<p>{e(n)}</p>" for n in s.notes)
    out.append("</body></html>")
    return "\n".join(out)


def to_dict(report: CostReport) -> dict[str, Any]:
    layers = [dict(dataclasses.asdict(layer), params=layer.params, activation_bytes=layer.activation_bytes)
              for layer in report.layers]
    pairs = [dict(dataclasses.asdict(p), standard_params=p.standard_params, standard_macs=p.standard_macs,
                  params_ratio=p.params_ratio, macs_ratio=p.macs_ratio, formula=p.formula)
             for p in report.pairs]
    return {
        "model": report.model,
        "params": report.params, "weights": report.weights, "biases": report.biases, "macs": report.macs,
        "layers": layers, "separable_pairs": pairs,
        "flash": dict(dataclasses.asdict(report.flash), total=report.flash.total),
        "ram": {"arena": report.arena, "io_bytes": report.io_bytes, "total": report.ram},
        "budget": None if report.budget is None else dict(
            dataclasses.asdict(report.budget), fits_flash=report.fits_flash, fits_ram=report.fits_ram),
    }


def render(report: CostReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_dict(report), indent=2)
    return {"table": to_table, "md": to_markdown, "html": to_html}[fmt](report)
