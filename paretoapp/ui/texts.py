"""Words the app shows: the header, the About tab, the CSS. Kept apart from the wiring."""

from __future__ import annotations

import re
from pathlib import Path

from ..methods import get_method
from .catalog import FamilyEntry

TITLE = "paretoapp · explore a family of multi-objective aligned LLMs"
TAGLINE = ("Every point on the front is the same model at a different **preference w** between its objectives. "
           "Click a point or move the slider, then chat: the next answer uses your w — no merge, no reload.")


CSS = """
.gradio-container { max-width: 1480px !important; margin: 0 auto; }
#pa-title h1 { margin-bottom: 0.1em; font-size: 1.6em; }
#pa-title p { margin-top: 0; color: var(--body-text-color-subdued); }
.pa-banner { background: #fef3c7; border: 1px solid #f59e0b; border-radius: 8px; padding: 6px 12px; }
.pa-banner p { margin: 0; color: #78350f; }
.pa-card { border-left: 3px solid var(--color-accent); padding-left: 10px; }
.pa-card p { margin: 0.15em 0; }
.pa-muted, .pa-muted p, span.pa-muted { color: var(--body-text-color-subdued); font-size: 0.92em; }
#pa-front { min-height: 300px; }
#pa-front .pa-plot { width: 100%; height: 440px; }
#pa-simplex .pa-plot { width: 100%; height: 380px; }
#pa-w-text p, #pa-marker p { font-size: 1.0em; margin: 0.2em 0; }
.pa-scores { min-width: 0 !important; max-width: calc(100vw - 72px); overflow-x: auto; }
.pa-scores table { font-size: 0.92em; }
.pa-scores th, .pa-scores td { white-space: nowrap; }
.pa-answers { min-width: 0 !important; max-width: calc(100vw - 72px); overflow-x: auto; }
.pa-answers td { vertical-align: top; } .pa-answers td:not(:last-child) { white-space: nowrap; }
.pa-side-head p { font-size: 1.02em; margin: 0.2em 0 0.4em 0; }
sub.pa-w-label { color: var(--body-text-color-subdued); font-size: 0.78em; }
#pa-chat .message, #pa-chat .message * { overflow-wrap: anywhere; }  /* a long token or URL wraps, not the page */
/* a slider moved with the keyboard shows where the focus is */
input[type=range]:focus-visible { outline: 3px solid var(--color-accent) !important; outline-offset: 3px; }
#pa-note p { margin: 0 0 0.3em 0; }
footer { display: none !important; }
@media (max-width: 640px) {
  /* one column on a phone, in the order a visitor needs: pick, see, set w, chat; then the details */
  .pa-main, .pa-main > .pa-main-col { display: contents; }
  /* the family's note (for the demo: not an aligned or safe model) right before the chat */
  #pa-pickers { order: 1; } #pa-front { order: 2; } #pa-simplex-group, #pa-parcoords { order: 3; }
  #pa-w-group { order: 4; } #pa-marker-row { order: 5; } #pa-note { order: 6; } #pa-chat { order: 7; }
  #pa-msg-row { order: 8; } #pa-stop-row { order: 9; } #pa-settings { order: 10; } #pa-pick { order: 11; }
  #pa-card { order: 12; } #pa-axis-row { order: 13; } #pa-axes { order: 14; } #pa-summary { order: 15; }
  #pa-add { order: 16; }
  #pa-summary table { display: block; overflow-x: auto; max-width: calc(100vw - 40px); }
  /* an answer keeps a readable column (a few words a line); the table scrolls sideways instead */
  .pa-answers td:last-child { min-width: 15em; }
  #pa-chat { height: 380px !important; }
  #pa-title p { display: none; }
  .pa-pickers > .form { flex-direction: column; }
  .pa-pickers > .form > * { width: 100%; min-width: 0 !important; }
  #pa-title h1 { font-size: 1.2em; }
  #pa-title p { font-size: 0.88em; }
  #pa-front { min-height: 0; }
  #pa-front .pa-plot { height: 330px; }
  /* five tabs in 390 px: every name readable, none behind an overflow menu */
  .tab-container button, [role="tab"] { padding-left: 5px !important; padding-right: 5px !important;
                                        font-size: 0.88em !important; }
}
"""


def family_line(entry: FamilyEntry, what: str = "Answers come from") -> str:
    """The line that says which family a tab uses (the one chosen on the Explore tab)."""
    return f"{what} **{entry.key}** ({get_method(entry.manifest.method).title}); change the family on the Explore tab."


def method_line(name: str) -> str:
    """'Title (reference): what w does.' from the method registry."""
    method = get_method(name)
    ref = f" ({method.reference})" if method.reference else ""
    return f"{method.title}{ref}: {method.summary}."


def _is_path(v) -> bool:
    """A file-system path from the machine that built the family: meaningless (and private) to a visitor."""
    return isinstance(v, str) and (v.startswith(("/", "~", "./", "../")) or ":\\" in v[:3])


def base_text(name_or_path: str) -> str:
    """A base model as a visitor should see it: a Hub id or a pip spec as is, a local folder by its name only."""
    if _is_path(name_or_path):
        return f"`{Path(name_or_path).name}` (a local folder on the machine that serves the app)"
    return f"`{name_or_path}`"


def _bullets(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        if _is_path(v):
            continue
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


def range_text(m) -> str:
    """The preference range in words: trained range, and how far past it the family may go."""
    if m.in_sample_low is None:
        trained = "the trained range is not recorded"
    else:
        trained = "trained on " + ", ".join(f"{o.name} {lo:g}–{hi:g}" for o, lo, hi in
                                           zip(m.objectives, m.in_sample_low, m.in_sample_high))
    if not _extrapolates(m):
        return f"{trained}; no extrapolation."
    if m.w_low is None:
        return f"{trained}; any real w is allowed (outside the trained range is extrapolation)."
    allowed = ", ".join(f"{o.name} {lo:g}–{hi:g}" for o, lo, hi in zip(m.objectives, m.w_low, m.w_high))
    own = " (extrapolating w is this project's extension)" if get_method(m.method).extrapolation == "extension" else ""
    return f"{trained}; extrapolation allowed up to {allowed}{own}."


# A demo family's card lists the bounds of its checks it missed, each as "<check> <value> (bound <bound>)" in the
# checks' own names (``behaviour_summary`` in its results). These say each in a visitor's words; a check
# that is not here is shown with its own name. {v}: the measured value, {b}: the aim, in words.
MISSED_BOUNDS: dict[str, str] = {
    r"harmless end refuses harmful": "with all weight on harmless it refuses {v} of harmful prompts (the aim: {b})",
    r"harmless end refuses benign": "with all weight on harmless it also refuses {v} of harmless prompts (the aim: {b})",
    r"helpful end answers benign": "with all weight on helpful it answers {v} of harmless prompts (the aim: {b})",
    r"degenerate rate \(worst w\)": "at its worst w, {v} of its answers are degenerate (the aim: {b})",
    r"monotone (?P<objective>\S+) \(.*\)": ("as the weight on {objective} grows, its {objective} score drops {v} "
                                             "time(s) by more than the noise (the aim: never)"),
    r"trade-off (?P<objective>\S+)": ("all weight on {objective} does not score better on {objective} than the "
                                     "other ends do (it differs by {v}; the aim: better)"),
    r"(?P<kind>harmful|benign) prompts": "only {v} {kind} held-out prompts were measured (the aim: {b})",
    r"max new tokens": "answers were cut at {v} tokens (the aim: {b})",
    r"preferences": "only {v} preferences were evaluated (the aim: {b})",
    r"distinct non-dominated points": "only {v} distinct best trade-offs (the aim: {b})",
}
RATE_CHECKS = ("refuses", "answers", "degenerate")  # checks whose value is a share: shown as a percentage
_MISSED = re.compile(r"^(?P<name>.+) (?P<value>\S+) \(bound (?P<bound>[^)]*)\)$")
_AIM = {">=": "at least", "<=": "at most", ">": "above", "<": "below"}


def _aim(bound: str, rate: bool) -> str:
    """A bound as written by the checks (">= 0.8", "0 violations") in words ("at least 80%")."""
    op, _, number = bound.partition(" ")
    if op in _AIM:
        try:
            return f"{_AIM[op]} {float(number):.0%}" if rate else f"{_AIM[op]} {float(number):g}"
        except ValueError:
            pass
    return bound


def missed_bound_text(item: str) -> str:
    """One missed bound ("degenerate rate (worst w) 0.219 (bound <= 0.05)") in a visitor's words."""
    m = _MISSED.match(item.strip())
    if m is None:
        return item.strip()
    name, raw = m["name"], m["value"]
    rate = any(word in name for word in RATE_CHECKS)
    try:
        value = f"{float(raw):.0%}" if rate else f"{float(raw):.3g}"
    except ValueError:
        value = raw
    for pattern, words in MISSED_BOUNDS.items():
        found = re.fullmatch(pattern, name)
        if found:
            return words.format(v=value, b=_aim(m["bound"], rate), **found.groupdict())
    return f"{name}: {value} (the aim: {_aim(m['bound'], rate)})"


def behaviour_markdown(summary: str) -> str:
    """A family's measured behaviour for its card: the summary's first sentence as it is, the bounds it missed
    in words."""
    head, _, missed = summary.partition(". Bounds missed: ")
    if not missed:
        return summary
    items = [missed_bound_text(i) for i in missed.rstrip(".").split("; ") if i.strip()]
    return f"{head}.\n\n**Short of its aims:** " + "; ".join(items) + "."


def family_card(entry: FamilyEntry) -> str:
    """The few lines shown next to the front: what the family is, what w does, how far w goes, how it behaves."""
    m = entry.manifest
    method = get_method(m.method)
    lines = [f"**{entry.key}** · {method.title}: {method.summary}.", f"**w:** {range_text(m)}"]
    r = entry.results
    meta = r.meta if r is not None else {}
    if meta.get("ood_summary"):
        lines.append(f"**On prompts it never saw:** {meta['ood_summary']}")
    if meta.get("behaviour_summary"):
        tokens = meta.get("settings", {}).get("max_new_tokens")
        where = f"held-out prompts from its training sources, {tokens} new tokens" if tokens else "its held-out prompts"
        lines.append(f"**Measured on {where}:** {behaviour_markdown(meta['behaviour_summary'])}")
    return "\n\n".join(lines)


def family_note(entry: FamilyEntry) -> str:
    """The first sentence of the family's description, shown above the chat: for the demo, that it shows a
    method's behaviour and is not an aligned or safe model (on a phone too, before the chat)."""
    d = entry.manifest.description
    return f"{d.split('. ')[0].rstrip('.')}." if d else ""


def axes_caption(entry: FamilyEntry, x: str | None, y: str | None) -> str:
    """What the plot's axes measure (the scorers behind them) and which way is better."""
    r = entry.results
    if r is None or x is None:
        return ""
    scorers = {s["name"]: s for s in r.meta.get("scorers", [])}
    objectives = dict(zip(r.objectives, entry.objective_names))
    parts = []
    for axis, name in (("x", x), ("y", y)):
        s = scorers.get(name)
        if s is None:
            continue
        better = "higher is better" if s["higher_is_better"] else "lower is better"
        objective = objectives.get(name)
        head = f"{objective} = `{name}`" if objective and objective != name else f"`{name}`"
        parts.append(f"**{axis}: {head}** ({better}): {s.get('description') or 'no description'}")
    n = r.meta.get("prompts", {}).get("n", "?")
    parts.append(f"Each point: one w, mean over {n} held-out prompts.")
    return "  \n".join(parts)


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
        f"**Base model.** {base_text(m.base_model.name_or_path)}"
        + (f" @ `{m.base_model.revision}`" if m.base_model.revision else ""),
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
        "### Ways to find your w",
        "- **Front and slider** (Explore): click a point or move the slider; the star sits only where the front "
        "was measured, and *Evaluate this w* measures any other w on the same held-out prompts.",
        "- **Three objectives**: the preference triangle sets w with a click and colours the evaluated points by "
        "any objective; the x and y axes pick which two objectives the front shows. More than three: parallel "
        "coordinates of every evaluated point.",
        "- **Pick by constraint** (Explore): give a floor for some objectives and one to maximise; the front "
        "picks the w (between evaluated points only where the family changes smoothly with w, and says so).",
        "- **One prompt's front** (Prompts): one held-out prompt's answers and scores at every evaluated w, read "
        "from the results; or your own prompt answered at every w in one batch.",
        "- **Blind A/B** (Side by side): two answers at two hidden w, a few times; a Bayesian update over your "
        "weights proposes the evaluated w you would prefer.",
        "- **Share a point**: `?family=NAME&w=a,b` opens the app there (every chat answer carries its link).",
        "",
        "### How the app serves every w from one model",
        "Each adapted layer computes `y = W0 x + B diag(g(w)) A x`: the family's adapters are stacked along the "
        "rank axis and only their per-rank gains g(w) depend on the preference. The gains travel with each "
        "request, so the slider costs nothing, two browser sessions with different w never interfere, and the "
        "side-by-side comparison is one batched generation with two rows. Export writes `W0 + B diag(g(w)) A` "
        "as plain weights once.",
    ]
    return "\n".join(lines)
