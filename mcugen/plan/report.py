"""The plan as text: arena, lower bound, ratio, every strategy's result and a per-step table."""
from __future__ import annotations

from ..ir import Graph
from ..report.render import short_name
from . import Plan, memory_by_step, peak_step


def summary(plan: Plan) -> str:
    """One line: arena, bound, ratio and the winning strategy."""
    where = "input and output inside" if plan.io_in_arena else "input and output outside"
    return (f"arena {plan.arena_size:,} bytes, lower bound {plan.lower_bound:,} (ratio {plan.ratio:.3f}); "
            f"{plan.strategy}; {where}")


def format_report(plan: Plan, graph: Graph) -> str:
    """The full report `mcugen plan` prints."""
    peak = peak_step(plan)
    lines = [summary(plan), "strategies: " + ", ".join(f"{name} {size:,}" for name, size in plan.candidates)]
    lines.append(f"in-place overlaps used: {_used_overlaps(plan)} of {len(plan.overlaps)} declared")
    lines.append(f"peak at step {peak.step} ({short_name(graph.nodes[peak.step].name)}): {peak.top:,} bytes in use")
    lines.append("")
    lines.append("live: bytes of the buffers live at the step; bound: what no plan can go below (declared"
                 " overlaps counted); top: highest address this plan uses then")
    lines.append(f"{'step':>4}  {'op':<17} {'live':>9} {'bound':>9} {'top':>9}  node")
    for row in memory_by_step(plan):
        node = graph.nodes[row.step]
        mark = " <" if row.step == peak.step else ""
        lines.append(f"{row.step:>4}  {node.op:<17} {row.live_bytes:>9,} {row.bound_bytes:>9,} {row.top:>9,}  "
                     f"{short_name(node.name)}{mark}")
    return "\n".join(lines)


def _used_overlaps(plan: Plan) -> int:
    sizes = {b.name: b.size for b in plan.buffers}
    used = 0
    for o in plan.overlaps:
        a, b = plan.offsets[o.input], plan.offsets[o.output]
        used += a < b + sizes[o.output] and b < a + sizes[o.input]
    return used
