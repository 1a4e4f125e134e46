"""PNG and SVG plots of a cost report and of the α×ρ sweep. matplotlib is optional:
it is imported only here, only when a plot is asked for."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import UserError
from .cost import KINDS, CostReport

if TYPE_CHECKING:
    from ..fit import PointResult

FORMATS = ("png", "svg")
_COLORS = dict(zip(KINDS, ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")))


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")  # files only, never a window
    matplotlib.rcParams["svg.hashsalt"] = "mcugen"  # same SVG for the same data
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{stem}.{fmt}"
        # No date or software stamps: a regenerated plot of the same model is byte-identical.
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, dpi=120, metadata=metadata)
        paths.append(path)
    return paths


def plot_layers(report: CostReport, out_dir: str | Path, stem: str | None = None) -> list[Path]:
    """MACs and parameters per layer, coloured by kind: <stem>.png and <stem>.svg."""
    plt = _pyplot()
    from matplotlib import ticker

    layers = report.layers
    x = [layer.index for layer in layers]
    colors = [_COLORS[layer.kind] for layer in layers]
    fig, (ax_macs, ax_params) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    ax_macs.bar(x, [layer.macs for layer in layers], color=colors)
    ax_macs.set_ylabel("MACs")
    ax_macs.set_title(f"{report.model}: {report.macs:,} MACs, {report.params:,} parameters")
    ax_params.bar(x, [layer.params for layer in layers], color=colors)
    ax_params.set_ylabel("parameters")
    ax_params.set_xlabel("layer (execution order)")
    kinds = [k for k in KINDS if any(layer.kind == k for layer in layers)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLORS[k]) for k in kinds]
    ax_params.legend(handles, kinds, loc="upper left", fontsize="small")
    for ax in (ax_macs, ax_params):
        ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths = _save(fig, Path(out_dir), stem or f"{report.model}_layers")
    plt.close(fig)
    return paths


def plot_frontier(results: Sequence["PointResult"], flash_budget: int | None, ram_budget: int | None,
                  out_dir: str | Path, stem: str = "fit_frontier") -> list[Path]:
    """Flash and RAM against MACs for every sweep point; budgets as lines, fits filled."""
    plt = _pyplot()
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    panels = ((axes[0], "flash", flash_budget), (axes[1], "ram", ram_budget))
    for ax, field, budget in panels:
        for version, marker in (("v1", "o"), ("v2", "s")):
            for fits in (True, False):
                pts = [r for r in results if r.point.version == version and r.fits == fits]
                if not pts:
                    continue
                ax.scatter([r.macs / 1e6 for r in pts], [getattr(r, field) / 1024 for r in pts], marker=marker,
                           facecolors=("C0" if version == "v1" else "C1") if fits else "none",
                           edgecolors="C0" if version == "v1" else "C1",
                           label=f"MobileNet{version.upper()} {'fits' if fits else 'does not fit'}")
        if budget is not None:
            ax.axhline(budget / 1024, color="red", linestyle="--", linewidth=1, label="budget")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # 1, 2, 5 steps in plain numbers, not 4×10³
            axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
            axis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("MACs (millions)")
        ax.set_ylabel(f"{'flash' if field == 'flash' else 'RAM (arena + input + output)'} (KiB)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize="small")
    fig.suptitle("α × resolution sweep: filled points fit both budgets")
    fig.tight_layout()
    paths = _save(fig, Path(out_dir), stem)
    plt.close(fig)
    return paths
