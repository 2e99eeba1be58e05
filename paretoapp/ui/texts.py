"""Words the app shows: the header, the About tab, the CSS. Kept apart from the wiring."""

from __future__ import annotations

from ..methods import get_method
from .catalog import FamilyEntry

TITLE = "paretoapp · explore a family of multi-objective aligned LLMs"
TAGLINE = ("Every point on the front is the same model at a different **preference w** between its objectives. "
           "Click a point or move the slider, then chat: the next answer uses your w — no merge, no reload.")


CSS = """
.gradio-container { max-width: 1480px !important; margin: 0 auto; }
#pa-title h1 { margin-bottom: 0.1em; font-size: 1.7em; }
#pa-title p { margin-top: 0; color: var(--body-text-color-subdued); }
.pa-banner { background: #fef3c7; border: 1px solid #f59e0b; border-radius: 8px; padding: 6px 12px; }
.pa-banner p { margin: 0; color: #78350f; }
#pa-front { min-height: 480px; }
#pa-front .pa-plot { width: 100%; height: 480px; }
#pa-w-text p { font-size: 1.02em; margin: 0.2em 0; }
.pa-scores table { font-size: 0.95em; }
.pa-side-head p { font-size: 1.02em; margin: 0.2em 0 0.4em 0; }
footer { display: none !important; }
"""


def method_line(name: str) -> str:
    """'Title (reference): what w does.' from the method registry."""
    method = get_method(name)
    ref = f" ({method.reference})" if method.reference else ""
    return f"{method.title}{ref}: {method.summary}."


def _bullets(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, (str, int, float, bool)) and v != "":
            out.append(f"- {k.replace('_', ' ')}: {v}")
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v) and len(v) <= 12:
            out.append(f"- {k.replace('_', ' ')}: {', '.join(str(x) for x in v)}")
    return out


def _extrapolates(m) -> bool:
    """Whether the allowed range reaches past the trained one."""
    if m.in_sample_low is None:
        return False
    if m.w_low is None:
        return True
    return any(a < b for a, b in zip(m.w_low, m.in_sample_low)) or any(a > b for a, b in zip(m.w_high, m.in_sample_high))


def about_markdown(entry: FamilyEntry) -> str:
    m = entry.manifest
    objs = "\n".join(f"- **{o.name}** ({'higher' if o.higher_is_better else 'lower'} is better)"
                     + (f": {o.description}" if o.description else "") for o in m.objectives)
    rng = ("any real value" if m.w_low is None else
           ", ".join(f"{o.name} ∈ [{lo:g}, {hi:g}]" for o, lo, hi in zip(m.objectives, m.w_low, m.w_high)))
    ins = ("not recorded" if m.in_sample_low is None else
           ", ".join(f"{o.name} ∈ [{lo:g}, {hi:g}]" for o, lo, hi in zip(m.objectives, m.in_sample_low, m.in_sample_high)))
    lines = [
        f"## {entry.key}",
        *([f"> ⚠️ {entry.note}", ""] if entry.note else []),
        m.description or "",
        "",
        f"**Method.** {method_line(m.method)}",
        "",
        f"**Base model.** `{m.base_model.name_or_path}`" + (f" @ `{m.base_model.revision}`" if m.base_model.revision else ""),
        "",
        "**Objectives.**",
        objs,
        "",
        f"**Preference range.** Allowed: {rng}. Trained on: {ins}"
        + ("; points outside it are extrapolated and drawn as diamonds." if _extrapolates(m) else "."),
        f"{'The weights are normalised to sum 1.' if m.on_simplex else 'The weights are used as given (not normalised).'}",
        "",
        f"**Adapter bank.** {len(m.blocks)} blocks ({', '.join(f'{b.name}: rank {b.rank}' for b in m.blocks)}), "
        f"gate `{m.gate.kind}`, total rank {m.total_rank}.",
    ]
    train = _bullets(m.training or {})
    if train:
        lines += ["", "**Training.**", *train]
    if entry.results is not None:
        r = entry.results
        scorers = "\n".join(f"- **{s['name']}** ({'higher' if s['higher_is_better'] else 'lower'} is better)"
                            + (f": {s.get('description')}" if s.get("description") else "")
                            for s in r.meta.get("scorers", []))
        lines += ["", f"**Evaluation.** {r.meta.get('prompts', {}).get('n', '?')} prompts × {len(r.means)} preferences, "
                      f"scored by:", scorers]
    lines += [
        "",
        "---",
        "### How the app serves every w from one model",
        "Each adapted layer computes `y = W0 x + B diag(g(w)) A x`: the family's adapters are stacked along the "
        "rank axis and only their per-rank gains g(w) depend on the preference. The gains travel with each "
        "request, so the slider costs nothing, two browser sessions with different w never interfere, and the "
        "side-by-side comparison is one batched generation with two rows. Export writes `W0 + B diag(g(w)) A` "
        "as plain weights once.",
    ]
    return "\n".join(lines)
