"""Views for three objectives and more: a simplex (ternary) picker and parallel coordinates.

With k = 3 a slider per objective hides the geometry: w lives on a triangle.
The simplex view draws that triangle with the evaluated w coloured by any
objective's mean score and the session's w as a star; a lattice of faint,
clickable points covers the triangle, so a click anywhere inside it sets w
(to the nearest lattice point, 1/20 apart). For k > 3 a parallel-coordinates
view shows every evaluated point's w and scores.
"""

from __future__ import annotations

import itertools

import numpy as np
import plotly.graph_objects as go

from .catalog import FamilyEntry
from .plot import w_text

LATTICE = 20


def _lattice(k: int = 3, resolution: int = LATTICE) -> np.ndarray:
    pts = [c for c in itertools.product(range(resolution + 1), repeat=k) if sum(c) == resolution]
    return np.asarray(pts, float) / resolution


def simplex_figure(entry: FamilyEntry, w, color_by: str | None = None) -> go.Figure:
    """The preference triangle of a three-objective family: evaluated w coloured by ``color_by``, a star at w."""
    names = entry.objective_names
    fig = go.Figure()
    grid = _lattice()
    fig.add_trace(go.Scatterternary(
        a=grid[:, 0], b=grid[:, 1], c=grid[:, 2], mode="markers", name="click to set w",
        marker=dict(size=9, color="rgba(79,70,229,0.07)", line=dict(width=0)),
        customdata=[[entry.key, -1, *map(float, p)] for p in grid],
        hovertemplate="set w = (%{a:.2f}, %{b:.2f}, %{c:.2f})<extra></extra>", showlegend=False))
    r = entry.results
    if r is not None and len(r.w_columns) == 3:
        W = r.means[r.w_columns].to_numpy(float)
        color_by = color_by if color_by in r.objectives else r.objectives[0]
        values = r.means[color_by].to_numpy(float)
        fig.add_trace(go.Scatterternary(
            a=W[:, 0], b=W[:, 1], c=W[:, 2], mode="markers", name="evaluated w",
            marker=dict(size=15, color=values, colorscale="Viridis", line=dict(color="#111827", width=1),
                        colorbar=dict(title=dict(text=color_by, side="right"), thickness=12, len=0.75)),
            customdata=[[entry.key, int(i), *map(float, p)] for i, p in zip(r.means["w_idx"], W)],
            text=[f"w: {w_text(names, p)}<br>{color_by}: {v:.3f}" for p, v in zip(W, values)],
            hovertemplate="%{text}<extra></extra>"))
    w = np.asarray(w, float)
    if len(w) == 3 and abs(w.sum() - 1) < 1e-6:
        fig.add_trace(go.Scatterternary(
            a=[w[0]], b=[w[1]], c=[w[2]], mode="markers", name="current w",
            marker=dict(symbol="star", size=20, color="#facc15", line=dict(color="#111827", width=1.5)),
            hovertemplate=f"current w: {w_text(names, w)}<extra></extra>"))
    fig.update_layout(
        ternary=dict(sum=1, aaxis=dict(title=dict(text=names[0]), min=0),
                     baxis=dict(title=dict(text=names[1]), min=0), caxis=dict(title=dict(text=names[2]), min=0)),
        template="plotly_white", autosize=True, margin=dict(l=56, r=40, t=36, b=30), showlegend=False,
        font=dict(family="system-ui, sans-serif", size=13), clickmode="event")
    return fig


def parcoords_figure(entry: FamilyEntry) -> go.Figure:
    """Every evaluated point of a family with k > 3: its w and its mean scores, one axis each."""
    fig = go.Figure()
    r = entry.results
    if r is None:
        return fig
    m = r.means
    dims = [dict(label=c.removeprefix("w_"), values=m[c]) for c in r.w_columns]
    dims += [dict(label=n + (" ↑" if up else " ↓"), values=m[n]) for n, up in zip(r.objectives, r.maximise)]
    fig.add_trace(go.Parcoords(line=dict(color=m[r.objectives[0]], colorscale="Viridis"), dimensions=dims))
    fig.update_layout(template="plotly_white", autosize=True, margin=dict(l=40, r=40, t=40, b=20),
                      font=dict(family="system-ui, sans-serif", size=12))
    return fig
