"""The clickable front: a plotly figure inside ``gr.HTML``, redrawn in the browser, clicks sent back.

``gr.Plot`` has no click event, so the figure is sent as JSON to a ``gr.HTML``
whose JavaScript draws it with ``Plotly.react`` and, on a click, triggers the
``point_click`` event with the point's ``customdata`` (family, w index, w).
plotly.js is served from the pip plotly package, so it works offline.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .plot import family_color, front_figure
from .session import AppContext

TEMPLATE = '<div class="pa-plot"></div>'
JS = """
const draw = () => {
  const box = element.querySelector('.pa-plot');
  if (!box || !props.value || typeof Plotly === 'undefined') return;
  let fig;
  try { fig = JSON.parse(props.value); } catch (e) { return; }
  Plotly.react(box, fig.data, fig.layout, {responsive: true, displaylogo: false,
                modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d']});
  if (!box._paBound) {
    box._paBound = true;
    box.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!p || !p.customdata) return;
      trigger('point_click', {family: p.customdata[0], w_idx: p.customdata[1], w: p.customdata.slice(2)});
    });
  }
};
draw();
watch('value', draw);
"""


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def head_html() -> str:
    """The <script> tag that loads plotly.js (registered as a static path by ``serve_plotly``)."""
    return f'<script src="/gradio_api/file={plotly_js_path()}"></script>'


def serve_plotly() -> None:
    gr.set_static_paths([str(plotly_js_path().parent)])


def plot_entries(ctx: AppContext, active: str, overlay) -> list:
    """The active family first, then the overlaid ones that are loaded."""
    keys = [active] + [k for k in (overlay or []) if k != active and k in ctx.catalog.entries]
    return [ctx.entry(k) for k in keys]


def plot_json(ctx: AppContext, active: str, overlay, w, x=None, y=None, live=()) -> str:
    """The figure for the active family at w, with the overlaid families and this session's live points."""
    keys = ctx.catalog.keys
    entries = plot_entries(ctx, active, overlay)
    colors = {e.key: family_color(keys, e.key) for e in entries}
    return front_figure(entries, ctx.entry(active), w, x, y, colors=colors, live=live).to_json()


def front_component(value: str, elem_id: str = "pa-front", label: str = "Pareto front",
                    visible: bool = True) -> gr.HTML:
    """A plotly figure (JSON) drawn in the browser whose point clicks trigger ``point_click``."""
    return gr.HTML(value, html_template=TEMPLATE, js_on_load=JS, head=head_html(), elem_id=elem_id,
                   padding=False, container=True, label=label, visible=visible)
