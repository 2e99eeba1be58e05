"""The interactive Pareto-front figure of the app, and its text summary.

Per family with results: per-w mean scores with 95 % CI error bars, filled
markers on the non-dominated set, open markers for dominated points, diamonds
for extrapolated (out-of-sample) preferences, a thin line in w order, and a
hover with w and one sample answer. A star marks the session's current w
(placed at the evaluated point for that w, or interpolated between the nearest
evaluated ones). Every point carries ``customdata = [family, w_idx, *w]`` so a
click in the browser can set the preference.

``paretoapp.frontplot.front_figure`` draws the CLI's static comparison; this
one adds what the app needs (clicks, extrapolation, samples, the marker).
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .catalog import FamilyEntry

PALETTE = ["#4f46e5", "#db2777", "#059669", "#d97706", "#0891b2", "#7c3aed", "#dc2626"]


def shared_objectives(entries: Sequence[FamilyEntry]) -> list[str]:
    """Scorer names present in every given family's results, in the first family's order."""
    with_results = [e for e in entries if e.results is not None]
    if not with_results:
        return []
    names = list(with_results[0].results.objectives)
    for e in with_results[1:]:
        names = [n for n in names if n in e.results.objectives]
    return names


def _direction(entry: FamilyEntry, name: str) -> bool:
    r = entry.results
    return r.maximise[r.objectives.index(name)]


def axis_title(name: str, higher_is_better: bool, axis: str) -> str:
    if axis == "x":
        return f"{name}  (better →)" if higher_is_better else f"(← better)  {name}"
    return f"{name}  (better ↑)" if higher_is_better else f"{name}  (better ↓)"


def _wrap(text: str, width: int = 56, limit: int = 180) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width)) or "<i>(empty answer)</i>"


def _w_text(names: Sequence[str], w: Sequence[float]) -> str:
    return ", ".join(f"{n} {float(v):.2f}" for n, v in zip(names, w))


def estimate_point(entry: FamilyEntry, w: Sequence[float], x: str, y: str) -> tuple[np.ndarray, bool] | None:
    """Where the current w sits on the plot: the evaluated point, or an interpolation of the nearest."""
    r = entry.results
    if r is None or len(r.w_columns) != entry.k:
        return None
    W = r.means[r.w_columns].to_numpy(float)
    P = r.means[[x, y]].to_numpy(float)
    w = np.asarray(w, float)
    d = np.linalg.norm(W - w, axis=1)
    if d.min() < 1e-6:
        return P[int(d.argmin())], True
    if entry.k == 2 and entry.manifest.on_simplex:
        order = np.argsort(W[:, 0])
        return np.array([np.interp(w[0], W[order, 0], P[order, i]) for i in range(2)]), False
    near = np.argsort(d)[: min(3, len(d))]
    wt = 1.0 / d[near] ** 2
    return (P[near] * wt[:, None]).sum(0) / wt.sum(), False


def _error_bars(points, col: str, color: str) -> dict | None:
    """Asymmetric bars from the stored 95 % interval of ``col``, if the results have one."""
    lo, hi = f"{col}_ci_low", f"{col}_ci_high"
    if lo not in points or points[lo].isna().all():
        return None
    return dict(type="data", symmetric=False, array=(points[hi] - points[col]).fillna(0),
                arrayminus=(points[col] - points[lo]).fillna(0), thickness=1, width=3, color=color)


def front_figure(entries: Sequence[FamilyEntry], active: FamilyEntry | None = None,
                 current_w: Sequence[float] | None = None, x: str | None = None, y: str | None = None) -> go.Figure:
    entries = [e for e in entries if e.results is not None]
    fig = go.Figure()
    objs = shared_objectives(entries)
    if not entries or len(objs) < 1:
        fig.add_annotation(text="No evaluation results for these families yet.<br>"
                                "Run <b>paretoapp evaluate</b> to draw their front.",
                           showarrow=False, font=dict(size=15), xref="paper", yref="paper", x=0.5, y=0.5)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(template="plotly_white", height=460, margin=dict(l=40, r=20, t=20, b=40))
        return fig
    x = x if x in objs else objs[0]
    y = y if y in objs else (objs[1] if len(objs) > 1 else objs[0])
    for i, e in enumerate(entries):
        color = PALETTE[i % len(PALETTE)]
        r, names = e.results, e.objective_names
        m = r.means.copy()
        wcols = r.w_columns
        if wcols:
            m = m.sort_values(wcols[0])
        ws = m[wcols].to_numpy(float) if wcols else np.zeros((len(m), 0))
        insample = np.array([e.manifest.is_in_sample(w) if len(w) == e.k else True for w in ws])
        samples = {}
        if "response" in r.rows.columns:
            first = r.rows.sort_values("prompt_id").groupby("w_idx").first()
            samples = {int(k): (row["prompt"], row["response"]) for k, row in first.iterrows()}
        on_front = m["on_front"].astype(bool).to_numpy() if "on_front" in m else np.ones(len(m), bool)
        hover = []
        for j, (_, row) in enumerate(m.iterrows()):
            lines = [f"<b>{html.escape(e.key)}</b>" + ("" if insample[j] else " · extrapolated"),
                     f"w: {_w_text(names, ws[j])}" if len(ws[j]) else "",
                     f"{html.escape(x)}: {row[x]:.3f}", f"{html.escape(y)}: {row[y]:.3f}",
                     "non-dominated" if on_front[j] else "dominated"]
            s = samples.get(int(row["w_idx"]))
            if s:
                lines += [f"<i>Q: {_wrap(s[0], limit=70)}</i>", _wrap(s[1])]
            hover.append("<br>".join(line for line in lines if line))
        custom = [[e.key, int(row["w_idx"]), *map(float, ws[j])] for j, (_, row) in enumerate(m.iterrows())]
        fig.add_trace(go.Scatter(x=m[x], y=m[y], mode="lines", line=dict(color=color, width=1.5), opacity=0.35,
                                 hoverinfo="skip", showlegend=False, legendgroup=e.key))
        for part, mask, symbol in (("", insample, "circle"), (" · extrapolated", ~insample, "diamond")):
            if not mask.any():
                continue
            sub = m[mask]
            fig.add_trace(go.Scatter(
                x=sub[x], y=sub[y], mode="markers", name=e.key + part, legendgroup=e.key,
                marker=dict(size=13, color=color, line=dict(color=color, width=2),
                            symbol=[symbol if f else f"{symbol}-open" for f in on_front[mask]]),
                error_x=_error_bars(sub, x, color), error_y=_error_bars(sub, y, color),
                customdata=[c for c, k in zip(custom, mask) if k],
                text=[h for h, k in zip(hover, mask) if k], hovertemplate="%{text}<extra></extra>",
            ))
    if active is not None and current_w is not None and active.results is not None and x in active.results.objectives \
            and y in active.results.objectives:
        est = estimate_point(active, current_w, x, y)
        if est is not None:
            (px, py), exact = est
            label = "current w" + ("" if exact else " (interpolated)")
            fig.add_trace(go.Scatter(
                x=[px], y=[py], mode="markers", name=label,
                marker=dict(symbol="star", size=22, color="#facc15", line=dict(color="#111827", width=1.5)),
                hovertemplate=f"<b>{label}</b><br>w: {_w_text(active.objective_names, current_w)}<extra></extra>"))
    fig.update_layout(
        template="plotly_white", height=480, margin=dict(l=70, r=20, t=10, b=60),
        xaxis=dict(title=dict(text=axis_title(x, _direction(entries[0], x), "x"), font=dict(size=14)), zeroline=False),
        yaxis=dict(title=dict(text=axis_title(y, _direction(entries[0], y), "y"), font=dict(size=14)), zeroline=False),
        legend=dict(orientation="h", yanchor="top", y=-0.14, xanchor="left", x=0),
        hoverlabel=dict(align="left", bgcolor="white", font=dict(size=12)),
        font=dict(family="system-ui, sans-serif", size=13), clickmode="event",
    )
    fig.update_layout(legend=dict(y=-0.18))
    return fig


def summary_markdown(entries: Sequence[FamilyEntry]) -> str:
    """A small table of each family's front metrics (hypervolume with its reference point)."""
    rows = ["| family | method | HV | HV reference | on front | prompts |",
            "|---|---|---:|---|---:|---:|"]
    notes = []
    for e in entries:
        r = e.results
        if r is None:
            rows.append(f"| {e.key} | {e.manifest.method.replace('_', ' ')} | — | not evaluated | — | — |")
            continue
        mt = r.meta.get("metrics", {})
        ref = ", ".join(f"{v:.3g}" for v in mt.get("reference", []))
        hv = mt.get("hypervolume")
        rows.append(f"| {e.key} | {e.manifest.method.replace('_', ' ')} | "
                    f"{hv:.4g} | ({ref}) | {mt.get('n_nondominated', '—')}/{len(r.means)} | "
                    f"{r.meta.get('prompts', {}).get('n', '—')} |" if hv is not None else
                    f"| {e.key} | {e.manifest.method} | — | — | — | — |")
        if r.meta.get("synthetic"):
            notes.append(f"*{e.key}: scores are synthetic placeholders.*")
    legend = ("HV: hypervolume of the per-w means. Filled markers: non-dominated · open: dominated · ◆ diamonds: extrapolated w (outside the trained "
              "range) · ★ current w · bars: 95 % confidence intervals over prompts. Click a point to chat at its w.")
    return "\n".join(rows) + "\n\n" + legend + ("\n\n" + " ".join(notes) if notes else "")
