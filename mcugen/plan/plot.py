"""The arena over time: one rectangle per buffer, step on x, address on y (SVG, or PNG with matplotlib)."""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from ..errors import UserError
from . import Plan

_W, _H, _MARGIN = 900, 480, 60
_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


def write_plot(plan: Plan, path: str | Path) -> Path:
    """Writes `path` (.svg always works; .png needs matplotlib)."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        _png(plan, path)
    elif path.suffix.lower() == ".svg":
        path.write_text(svg(plan))
    else:
        raise UserError(f"{path}: the arena plot is written as .svg or .png")
    return path


def svg(plan: Plan) -> str:
    steps = max(plan.steps, 1)
    top = max(plan.arena_size, 1)
    sx = (_W - 2 * _MARGIN) / steps
    sy = (_H - 2 * _MARGIN) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-family="sans-serif" '
             f'font-size="11">',
             f'<text x="{_MARGIN}" y="20">arena {plan.arena_size:,} B, lower bound {plan.lower_bound:,} B '
             f'({escape(plan.strategy)})</text>']
    for i, b in enumerate(plan.buffers):
        x = _MARGIN + b.first * sx
        y = _H - _MARGIN - (plan.offsets[b.name] + b.size) * sy
        color = "#bbbbbb" if b.name.startswith("scratch:") else _COLORS[i % len(_COLORS)]
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{(b.last - b.first + 1) * sx:.1f}" '
                     f'height="{max(b.size * sy, 0.5):.1f}" fill="{color}" fill-opacity="0.7" stroke="#333" '
                     f'stroke-width="0.5"><title>{escape(b.name)}: {b.size:,} B at {plan.offsets[b.name]:,}, '
                     f'steps {b.first}-{b.last}</title></rect>')
    bound_y = _H - _MARGIN - plan.lower_bound * sy
    parts.append(f'<line x1="{_MARGIN}" x2="{_W - _MARGIN}" y1="{bound_y:.1f}" y2="{bound_y:.1f}" stroke="red" '
                 'stroke-dasharray="4 3"/>')
    parts.append(f'<line x1="{_MARGIN}" x2="{_W - _MARGIN}" y1="{_H - _MARGIN}" y2="{_H - _MARGIN}" stroke="#333"/>')
    parts.append(f'<text x="{_W / 2:.0f}" y="{_H - 20}" text-anchor="middle">step</text>')
    parts.append(f'<text x="15" y="{_H / 2:.0f}" transform="rotate(-90 15 {_H / 2:.0f})" text-anchor="middle">'
                 'address (bytes)</text>')
    parts.append(f'<text x="{_MARGIN - 5}" y="{_H - _MARGIN}" text-anchor="end">0</text>')
    parts.append(f'<text x="{_MARGIN - 5}" y="{_MARGIN}" text-anchor="end">{top:,}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _png(plan: Plan, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("PNG plots need matplotlib (pip install matplotlib); write .svg instead") from None
    fig, ax = plt.subplots(figsize=(10, 5))
    for i, b in enumerate(plan.buffers):
        color = "#bbbbbb" if b.name.startswith("scratch:") else _COLORS[i % len(_COLORS)]
        ax.add_patch(plt.Rectangle((b.first, plan.offsets[b.name]), b.last - b.first + 1, b.size,
                                   facecolor=color, alpha=0.7, edgecolor="#333", linewidth=0.5))
    ax.axhline(plan.lower_bound, color="red", linestyle="--", linewidth=1, label="lower bound")
    ax.set_xlim(0, max(plan.steps, 1))
    ax.set_ylim(0, max(plan.arena_size, 1) * 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("address (bytes)")
    ax.set_title(f"arena {plan.arena_size:,} B, lower bound {plan.lower_bound:,} B ({plan.strategy})")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
