"""Plotly figures of evaluated fronts (used by `paretoapp compare`; the UI may reuse them)."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go


def comparison_figure(results: dict, x: str | None = None, y: str | None = None, title: str = "Pareto fronts"):
    """One trace per evaluated family: per-w means with 95 % CI error bars, front points filled.

    ``results`` maps a label to an ``evaluate.EvalResult``; ``x``/``y`` pick two
    objectives (default: the first two).
    """
    first = next(iter(results.values()))
    objectives = first.objectives
    x = x or objectives[0]
    y = y or (objectives[1] if len(objectives) > 1 else objectives[0])
    fig = go.Figure()
    for label, r in results.items():
        m = r.means.sort_values(r.w_columns[0]) if r.w_columns else r.means
        hover = [", ".join(f"{c}={row[c]:.3g}" for c in r.w_columns) for _, row in m.iterrows()]
        fig.add_trace(go.Scatter(
            x=m[x], y=m[y], mode="lines+markers", name=label, text=hover,
            hovertemplate=f"%{{text}}<br>{x}=%{{x:.4g}}<br>{y}=%{{y:.4g}}<extra>{label}</extra>",
            error_x=dict(type="data", symmetric=False, array=m[f"{x}_ci_high"] - m[x], arrayminus=m[x] - m[f"{x}_ci_low"],
                         thickness=1),
            error_y=dict(type="data", symmetric=False, array=m[f"{y}_ci_high"] - m[y], arrayminus=m[y] - m[f"{y}_ci_low"],
                         thickness=1),
            marker=dict(size=[11 if f else 7 for f in m["on_front"]], symbol=["circle" if f else "circle-open" for f in m["on_front"]]),
        ))
    arrows = {o: ("↑" if up else "↓") for o, up in zip(objectives, first.maximise)}
    fig.update_layout(title=title, xaxis_title=f"{x} {arrows[x]}", yaxis_title=f"{y} {arrows[y]}",
                      template="plotly_white", legend_title="family")
    return fig


def write_figure(fig, html_path: str | Path) -> list[Path]:
    """Write the figure as self-contained HTML, plus a PNG next to it if kaleido is installed."""
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(html_path, include_plotlyjs=True)
    written = [html_path]
    try:
        import kaleido  # noqa: F401  (optional; not a dependency)
    except ImportError:
        return written
    try:
        png = html_path.with_suffix(".png")
        fig.write_image(png)
        written.append(png)
    except Exception:  # kaleido present but without a browser: the HTML is enough
        pass
    return written
