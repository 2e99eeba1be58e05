"""The app's Pareto-front figure, the marker for the session's w, and the front-quality summary.

Per family with results: per-w mean scores with 95 % CI error bars, filled
markers on the non-dominated set, open markers for dominated points, diamonds
for extrapolated (out-of-sample) preferences, a thin line in w order, and a
hover with w and one sample answer. Points that several w share (an anchors
gate serving the same policy for neighbouring w) are drawn once, and the hover
lists every w. Each family keeps its colour whatever else is plotted.

The session's w is drawn only where that means something (``marker_for``):
exactly at an evaluated point, at an evaluated point whose policy is the same
(same gains, same prompt), or, on a two-objective line, as a hollow estimate
between its two evaluated neighbours. Anywhere else nothing is drawn and the
app says "not evaluated at this w".

Every point carries ``customdata = [family, w_idx, *w]`` so a click in the
browser can set the preference. ``paretoapp.frontplot`` draws the CLI's
static comparison; this module adds what the app needs.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .. import pareto
from .catalog import FamilyEntry

PALETTE = ["#4f46e5", "#db2777", "#059669", "#d97706", "#0891b2", "#7c3aed", "#dc2626", "#65a30d", "#0f766e",
           "#9333ea", "#b45309", "#2563eb"]
LIVE_COLOR = "#111827"


def family_color(keys: Sequence[str], key: str) -> str:
    """A family's colour from its place in the catalog, so it never changes with what else is plotted."""
    return PALETTE[list(keys).index(key) % len(PALETTE)] if key in keys else PALETTE[-1]


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


def w_text(names: Sequence[str], w: Sequence[float]) -> str:
    return ", ".join(f"{n} {float(v):.2f}" for n, v in zip(names, w))


# --------------------------------------------------------------------------- the session's marker
@dataclass
class Marker:
    """Where the session's w is drawn, and what the drawing means."""

    kind: str              # "evaluated" | "same_policy" | "estimated" | "not_evaluated"
    point: np.ndarray | None
    note: str


def _same_policy(entry: FamilyEntry, w, evaluated: np.ndarray) -> int | None:
    """Index of an evaluated w whose policy is identical to w's (same gains; no prompt conditioning)."""
    m = entry.manifest
    if m.conditioning is not None:
        return None
    try:
        gains = m.gate.block_gains(m.check_w(np.vstack([np.asarray(w, float)[None], evaluated])))
    except ValueError:
        return None
    same = np.flatnonzero(np.abs(gains[1:] - gains[0]).max(dim=1).values.numpy() < 1e-9)
    return int(same[0]) if len(same) else None


def marker_for(entry: FamilyEntry, w: Sequence[float], x: str, y: str, live: Sequence[dict] = ()) -> Marker:
    """Where, if anywhere, the current w can be drawn honestly on the (x, y) plot of ``entry``
    (``live``: the points this session evaluated itself)."""
    r = entry.results
    if r is None or len(r.w_columns) != entry.k or x not in r.objectives or y not in r.objectives:
        return Marker("not_evaluated", None, "This family has no evaluation to place the current w on.")
    W = r.means[r.w_columns].to_numpy(float)
    P = r.means[[x, y]].to_numpy(float)
    w = np.asarray(w, float)
    d = np.abs(W - w).max(axis=1)
    if d.min() < 1e-9:
        return Marker("evaluated", P[int(d.argmin())], "★ the current w was evaluated: the star is its measured mean.")
    for p in live:
        if np.abs(np.asarray(p["w"], float) - w).max() < 1e-9 and x in p["means"] and y in p["means"]:
            return Marker("evaluated", np.array([p["means"][x], p["means"][y]]),
                          f"★ the current w was evaluated in this session ({p['n']} prompts): the star is on its square.")
    same = _same_policy(entry, w, W)
    if same is not None:
        at = ", ".join(f"{v:g}" for v in W[same])
        return Marker("same_policy", P[same], f"★ the current w serves the same policy as the evaluated w = ({at}): "
                                              "the star is that point.")
    if entry.k == 2 and entry.manifest.on_simplex and abs(w.sum() - 1) < 1e-9:
        order = np.argsort(W[:, 0])
        a = W[order, 0]
        i = int(np.searchsorted(a, w[0]))
        if 0 < i < len(a) and a[i - 1] < w[0] < a[i]:
            t = (w[0] - a[i - 1]) / (a[i] - a[i - 1])
            lo, hi = P[order[i - 1]], P[order[i]]
            return Marker("estimated", (1 - t) * lo + t * hi,
                          f"☆ estimated: the current w lies between the evaluated w_1 = {a[i - 1]:g} and {a[i]:g}; "
                          "the hollow star interpolates their means (not measured).")
    return Marker("not_evaluated", None, "The current w was **not evaluated**, so it is not drawn on the front.")


# --------------------------------------------------------------------------- the figure
def _error_bars(points, col: str, color: str) -> dict | None:
    """Asymmetric bars from the stored 95 % interval of ``col``, if the results have one."""
    lo, hi = f"{col}_ci_low", f"{col}_ci_high"
    if lo not in points or points[lo].isna().all():
        return None
    return dict(type="data", symmetric=False, array=(points[hi] - points[col]).fillna(0),
                arrayminus=(points[col] - points[lo]).fillna(0), thickness=1, width=3, color=color)


def _coincident_groups(xy: np.ndarray) -> list[list[int]]:
    """Indices of points drawn at the same spot (to 1e-9), in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(np.round(xy, 9)):
        groups.setdefault(tuple(p), []).append(i)
    return list(groups.values())


def _family_traces(fig: go.Figure, e: FamilyEntry, x: str, y: str, color: str) -> None:
    r, names = e.results, e.objective_names
    m = r.means.copy()
    wcols = r.w_columns
    if wcols:
        m = m.sort_values(wcols[0], ascending=False).reset_index(drop=True)
    ws = m[wcols].to_numpy(float) if wcols else np.zeros((len(m), 0))
    insample = np.array([e.manifest.is_in_sample(w) if len(w) == e.k else True for w in ws])
    samples = {}
    if "response" in r.rows.columns:
        first = r.rows.sort_values("prompt_id").groupby("w_idx").first()
        samples = {int(k): (row["prompt"], row["response"]) for k, row in first.iterrows()}
    on_front = m["on_front"].astype(bool).to_numpy() if "on_front" in m else np.ones(len(m), bool)
    fig.add_trace(go.Scatter(x=m[x], y=m[y], mode="lines", line=dict(color=color, width=1.5), opacity=0.35,
                             hoverinfo="skip", showlegend=False, legendgroup=e.key))
    keep = [g[0] for g in _coincident_groups(m[[x, y]].to_numpy(float))]
    same = {g[0]: g for g in _coincident_groups(m[[x, y]].to_numpy(float))}
    hover, custom = {}, {}
    for j in keep:
        row = m.iloc[j]
        group = same[j]
        lines = [f"<b>{html.escape(e.key)}</b>" + ("" if insample[j] else " · extrapolated w")]
        if len(group) > 1:
            lines.append(f"{len(group)} w give this same point:<br>" + "<br>".join(w_text(names, ws[i]) for i in group))
        elif len(ws[j]):
            lines.append(f"w: {w_text(names, ws[j])}")
        lines += [f"{html.escape(x)}: {row[x]:.3f}", f"{html.escape(y)}: {row[y]:.3f}",
                  "non-dominated" if on_front[j] else "dominated"]
        s = samples.get(int(row["w_idx"]))
        if s:
            lines += [f"<i>Q: {_wrap(s[0], limit=70)}</i>", _wrap(s[1])]
        hover[j] = "<br>".join(lines)
        custom[j] = [e.key, int(row["w_idx"]), *map(float, ws[j])]
    for part, mask, symbol in (("", insample, "circle"), (" · extrapolated w", ~insample, "diamond")):
        idx = [j for j in keep if mask[j]]
        if not idx:
            continue
        sub = m.iloc[idx]
        fig.add_trace(go.Scatter(
            x=sub[x], y=sub[y], mode="markers", name=e.key + part, legendgroup=e.key,
            marker=dict(size=13, color=color, line=dict(color=color, width=2),
                        symbol=[symbol if on_front[j] else f"{symbol}-open" for j in idx]),
            error_x=_error_bars(sub, x, color), error_y=_error_bars(sub, y, color),
            customdata=[custom[j] for j in idx], text=[hover[j] for j in idx],
            hovertemplate="%{text}<extra></extra>",
        ))


def _live_traces(fig: go.Figure, entry: FamilyEntry, points: Sequence[dict], x: str, y: str) -> None:
    """Points this session evaluated now, at w the table does not have."""
    pts = [p for p in points if x in p["means"] and y in p["means"]]
    if not pts:
        return
    fig.add_trace(go.Scatter(
        x=[p["means"][x] for p in pts], y=[p["means"][y] for p in pts], mode="markers",
        name=f"{entry.key} · evaluated now", legendgroup=entry.key,
        marker=dict(symbol="square", size=12, color=LIVE_COLOR),
        error_x=dict(type="data", symmetric=False, array=[p["hi"][x] - p["means"][x] for p in pts],
                     arrayminus=[p["means"][x] - p["lo"][x] for p in pts], thickness=1, width=3, color=LIVE_COLOR),
        error_y=dict(type="data", symmetric=False, array=[p["hi"][y] - p["means"][y] for p in pts],
                     arrayminus=[p["means"][y] - p["lo"][y] for p in pts], thickness=1, width=3, color=LIVE_COLOR),
        customdata=[[entry.key, -1, *p["w"]] for p in pts],
        text=[f"<b>{html.escape(entry.key)}</b> · evaluated in this session<br>w: {w_text(entry.objective_names, p['w'])}"
              f"<br>{p['n']} prompts, live scorers" for p in pts],
        hovertemplate="%{text}<extra></extra>"))


def front_figure(entries: Sequence[FamilyEntry], active: FamilyEntry | None = None,
                 current_w: Sequence[float] | None = None, x: str | None = None, y: str | None = None,
                 colors: dict[str, str] | None = None, live: Sequence[dict] = ()) -> go.Figure:
    """The front of every given family; the active family's marker and live points on top."""
    entries = [e for e in entries if e.results is not None]
    fig = go.Figure()
    objs = shared_objectives(entries)
    if not entries or len(objs) < 1:
        fig.add_annotation(text="No evaluation results for these families yet.<br>"
                                "Run <b>paretoapp evaluate</b> to draw their front.",
                           showarrow=False, font=dict(size=15), xref="paper", yref="paper", x=0.5, y=0.5)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(template="plotly_white", height=440, margin=dict(l=40, r=20, t=20, b=40))
        return fig
    x = x if x in objs else objs[0]
    y = y if y in objs else (objs[1] if len(objs) > 1 else objs[0])
    colors = colors or {}
    for i, e in enumerate(entries):
        _family_traces(fig, e, x, y, colors.get(e.key, PALETTE[i % len(PALETTE)]))
    if active is not None and active.results is not None:
        _live_traces(fig, active, live, x, y)
        if current_w is not None:
            marker = marker_for(active, current_w, x, y, live)
            if marker.point is not None:
                estimated = marker.kind == "estimated"
                label = "current w (estimated)" if estimated else "current w"
                fig.add_trace(go.Scatter(
                    x=[marker.point[0]], y=[marker.point[1]], mode="markers", name=label,
                    marker=dict(symbol="star-open" if estimated else "star", size=22, color="#facc15",
                                line=dict(color="#111827", width=1.5)),
                    hovertemplate=f"<b>{label}</b><br>w: {w_text(active.objective_names, current_w)}<extra></extra>"))
    fig.update_layout(
        template="plotly_white", autosize=True, margin=dict(l=56, r=12, t=10, b=52),
        xaxis=dict(title=dict(text=axis_title(x, _direction(entries[0], x), "x"), font=dict(size=14)), zeroline=False),
        yaxis=dict(title=dict(text=axis_title(y, _direction(entries[0], y), "y"), font=dict(size=14)), zeroline=False),
        legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0),
        hoverlabel=dict(align="left", bgcolor="white", font=dict(size=12)),
        font=dict(family="system-ui, sans-serif", size=13), clickmode="event",
    )
    return fig


# --------------------------------------------------------------------------- the summary under the plot
def _hv_cell(hv: float, interval: tuple[float, float] | None) -> str:
    if interval is None or not np.all(np.isfinite(interval)):
        return f"{hv:.3g}"
    return f"{hv:.3g} [{interval[0]:.3g}, {interval[1]:.3g}]"


# The words of the table under the fronts, beside it.
GLOSSARY = {
    "hypervolume": ("**Hypervolume**: the area of the score plane the front covers, measured from a reference "
                    "point below every family's worst scores: bigger means better trade-offs overall."),
    "degenerate": ("**Degenerate**: an answer that loops (says the same thing over and over) or says almost "
                   "nothing; the column is their share at the family's worst evaluated w, as on its card."),
}


def _percent(rate: float) -> str:
    return "—" if rate != rate else f"{rate:.0%}"


def summary_markdown(entries: Sequence[FamilyEntry]) -> str:
    """Front quality of the plotted families, on ONE reference point shown once.

    One family: its stored reference point. Several: a reference point computed
    over all of them (``pareto.compare_fronts``), so their hypervolumes rank them;
    families scored with other scorers are listed as not comparable.
    """
    from ..evaluate import hypervolume_interval, training_time_text, worst_degenerate_rate

    rated = [e for e in entries if e.results is not None]
    if not rated:
        return "*No evaluation results: nothing to measure.*"
    first = rated[0].results
    same = [e for e in rated if e.results.objectives == first.objectives and e.results.maximise == first.maximise]
    others = [e for e in rated if e not in same]
    if len(same) == 1:
        ref = np.asarray(first.meta["metrics"]["reference"], float)
        rule = first.meta["metrics"].get("reference_rule", "")
    else:
        _, ref = pareto.compare_fronts({e.key: e.results.front_points() for e in same}, maximise=first.maximise)
        rule = "shared by the families shown: their worst mean minus 10 % of the range"
    rows = ["| family | method | hypervolume [95 % CI] | on front | degenerate (worst w) | prompts | training |",
            "|---|---|---|---|---|---|---|"]
    for e in same:
        r = e.results
        pts = r.front_points()
        hv = pareto.hypervolume(pts, ref, r.maximise)
        ci = hypervolume_interval(r, ref)
        n_front = int(pareto.nondominated_mask(pts, r.maximise).sum())
        rows.append(f"| {html.escape(e.key)} | {e.manifest.method.replace('_', ' ')} | {_hv_cell(hv, ci)} | "
                    f"{n_front}/{len(pts)} | {_percent(worst_degenerate_rate(r))} | "
                    f"{r.meta.get('prompts', {}).get('n', '—')} | {training_time_text(r.meta)} |")
    names = first.objectives
    lines = ["\n".join(rows), "",
             f"{GLOSSARY['hypervolume']} Reference point {pareto.format_reference(ref, names)} ({rule}); "
             "the interval is a bootstrap over prompts.", GLOSSARY["degenerate"]]
    if others:
        lines.append("Not comparable (scored with other scorers): " + ", ".join(e.key for e in others) + ".")
    synthetic = [e.key for e in rated if e.results.meta.get("synthetic")]
    if synthetic:
        lines.append(f"*{', '.join(synthetic)}: scores are synthetic placeholders.*")
    lines.append("Filled markers: non-dominated · open: dominated · ◆ extrapolated w · ★ current w · "
                 "bars: 95 % intervals over prompts. Click a point to chat at its w.")
    return "\n\n".join(lines)
