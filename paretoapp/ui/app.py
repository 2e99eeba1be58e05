"""The Gradio app: front, preference, chat, side by side, export, about.

State that belongs to one browser session (its w, its last export) lives in
``gr.State``; the families and their models are shared read-only, and every
generation passes its own w down to the bank (design.md), so sessions never
see each other's preference. Handlers are plain functions of their inputs,
which also keeps them safe under ZeroGPU (``spaces.GPU`` runs them in a
forked worker: nothing they change survives, nothing they need is global
mutable state).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import gradio as gr

from ..export import ExportError, check_export_name, export_merged, push_to_hub, zip_folder
from ..family import FamilyError
from ..gates import PreferenceError
from ..generate import GenerationSettings, PromptTooLongError
from .catalog import Catalog, FamilyEntry
from .plot import front_figure, shared_objectives, summary_markdown
from .preference import MAX_CONTROLS, PreferenceSpace
from .texts import CSS, TAGLINE, TITLE, about_markdown

log = logging.getLogger(__name__)

try:  # ZeroGPU on Spaces: only when the package is there
    import spaces  # type: ignore

    gpu = spaces.GPU
    log.info("generation handlers wrapped with spaces.GPU (a no-op off ZeroGPU)")
except ImportError:  # pragma: no cover - the normal local case
    def gpu(fn=None, **_):
        return fn if fn is not None else (lambda f: f)

    log.info("no spaces package: no ZeroGPU decorator, handlers run as they are")

USER_ERRORS = (PreferenceError, FamilyError, ExportError, PromptTooLongError, ValueError)
_CANCEL: dict[tuple[str, str], threading.Event] = {}
_SCORERS: dict[str, list] = {}
_SCORER_LOCK = threading.Lock()


def plotly_js_path() -> Path:
    import plotly
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


PLOT_TEMPLATE = '<div class="pa-plot"></div>'
PLOT_JS = """
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


def _is_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def _err(exc: BaseException) -> gr.Error:
    return gr.Error(str(exc), duration=None)


# --------------------------------------------------------------------------- helpers (pure)

def plot_entries(catalog: Catalog, active: str, overlay) -> list[FamilyEntry]:
    keys = [active] + [k for k in (overlay or []) if k != active and k in catalog.entries]
    return [catalog.get(k) for k in keys]


def plot_json(catalog: Catalog, active: str, overlay, w, x=None, y=None) -> str:
    entries = plot_entries(catalog, active, overlay)
    return front_figure(entries, catalog.get(active), w, x, y).to_json()


def slider_updates(entry: FamilyEntry, w) -> list:
    space = PreferenceSpace(entry.manifest)
    controls, values = space.controls(), space.to_controls(w)
    ups = []
    for i in range(MAX_CONTROLS):
        if i < len(controls):
            c = controls[i]
            ups.append(gr.update(visible=True, minimum=c.low, maximum=c.high, step=c.step, label=c.label,
                                 info=c.info, value=values[i]))
        else:
            ups.append(gr.update(visible=False))
    return ups


def _text_of(content) -> str:
    """Chatbot message content (a string, or a list of blocks through the API) -> text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(c) for c in content)
    return "" if content is None else str(content)


def history_messages(history) -> list[dict]:
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role in ("user", "assistant") and _text_of(content).strip():
            out.append({"role": role, "content": _text_of(content)})
    return out


def settings_from(temperature, max_tokens) -> GenerationSettings:
    t = float(temperature or 0)
    return GenerationSettings(max_new_tokens=int(max_tokens), do_sample=t > 0, temperature=t if t > 0 else 0.7,
                              overflow="truncate_left")


def default_export_name(entry: FamilyEntry, w) -> str:
    # percent, no dots: a dot would read as a file suffix (".50.zip")
    parts = "_".join(("m" if v < 0 else "") + f"{round(abs(float(v)) * 100):d}" for v in w)
    base = "".join(c if c.isalnum() or c in "._-" else "-" for c in entry.manifest.name).strip("-.") or "model"
    return f"{base}-w{parts}"[:96]


def live_scorers(entry: FamilyEntry) -> list:
    """Offline-buildable scorers for the family's objectives (cached per family); [] if none."""
    with _SCORER_LOCK:
        if entry.key in _SCORERS:
            return _SCORERS[entry.key]
    from ..rewards import PRESETS, REGISTRY, ScorerContext, build_scorer

    names = []
    if entry.results is not None:
        names = entry.results.meta.get("live_scorers") or [s["name"] for s in entry.results.meta.get("scorers", [])]
    allow_hf = os.environ.get("PARETOAPP_APP_REWARD_MODELS") == "1"
    policy = entry.policy()
    ctx = ScorerContext(causal_lm=policy.model, tokenizer=policy.tokenizer, model_id=entry.manifest.base_model.name_or_path,
                        system_prompt=entry.manifest.system_prompt, device=str(policy.device), show_progress=False)
    scorers = []
    for name in names:
        if name in REGISTRY or (allow_hf and name in PRESETS):
            try:
                scorers.append(build_scorer(name, ctx))
            except Exception as exc:  # a scorer that cannot load here is skipped, not fatal
                log.warning("scorer %s unavailable in the app: %s", name, exc)
    with _SCORER_LOCK:
        _SCORERS[entry.key] = scorers
    return scorers


def scores_markdown(scorers, prompt: str, answers: list[str]) -> list[str]:
    if not scorers:
        return ["*No reward scorers are available for this family in the app.*"] * len(answers)
    values = {s.name: s([prompt] * len(answers), answers) for s in scorers}
    out = []
    for i in range(len(answers)):
        rows = ["| scorer | score |", "|---|---:|"]
        rows += [f"| {n} {'↑' if s.higher_is_better else '↓'} | {float(values[n][i]):.3f} |"
                 for n, s in zip(values, scorers)]
        out.append("\n".join(rows))
    return out


def export_parent(request: gr.Request | None) -> Path:
    session = getattr(request, "session_hash", None) or "local"
    root = Path(os.environ.get("PARETOAPP_EXPORT_DIR") or Path(tempfile.gettempdir()) / "paretoapp-exports")
    return root / "".join(c for c in session if c.isalnum())[:40]


# --------------------------------------------------------------------------- the app

def build_app(catalog: Catalog) -> gr.Blocks:
    if not len(catalog):
        raise FamilyError("no family to show: pass --family PATH or build the demo into assets/")
    first = catalog.get(catalog.keys[0])
    w0 = PreferenceSpace(first.manifest).default_w()
    gr.set_static_paths([str(plotly_js_path().parent)])
    head = f'<script src="/gradio_api/file={plotly_js_path()}"></script>'

    with gr.Blocks(title="paretoapp") as demo:
        gr.Markdown(f"# {TITLE}\n{TAGLINE}", elem_id="pa-title")
        banner = gr.Markdown(f"⚠️ {first.note}" if first.note else "", visible=bool(first.note),
                             elem_classes="pa-banner")
        w_state = gr.State(list(w0))
        export_state = gr.State(None)  # (folder, w) of this session's last export

        with gr.Tabs():
            # ------------------------------------------------------------- explore
            with gr.Tab("Explore & chat", id="explore"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=6, min_width=480):
                        with gr.Row():
                            family = gr.Dropdown(catalog.keys, value=first.key, label="Family",
                                                 info="the model you chat with and export", scale=2)
                            overlay = gr.Dropdown(catalog.keys, value=[], multiselect=True, label="Compare fronts",
                                                  info="overlay other families on the plot", scale=3)
                        objs = shared_objectives([first])
                        with gr.Row(visible=len(objs) > 2) as axis_row:
                            x_axis = gr.Dropdown(objs, value=objs[0] if objs else None, label="x axis")
                            y_axis = gr.Dropdown(objs, value=objs[1] if len(objs) > 1 else None, label="y axis")
                        plot = gr.HTML(plot_json(catalog, first.key, [], w0), html_template=PLOT_TEMPLATE,
                                       js_on_load=PLOT_JS, head=head, elem_id="pa-front", padding=False,
                                       container=True, label="Pareto front")
                        with gr.Group():
                            w_text = gr.Markdown(PreferenceSpace(first.manifest).describe(w0), elem_id="pa-w-text",
                                                 padding=True)
                            sliders = []
                            for i, up in enumerate(slider_updates(first, w0)):
                                kw = {k: v for k, v in up.items() if k != "__type__"}
                                sliders.append(gr.Slider(elem_id=f"pa-w{i}", **{"minimum": 0, "maximum": 1, **kw}))
                        summary = gr.Markdown(summary_markdown([first]), elem_classes="pa-scores")
                        with gr.Accordion("Add a family folder", open=False, visible=not _is_space()):
                            with gr.Row():
                                add_path = gr.Textbox(label="Folder with family.json", scale=4,
                                                      placeholder="/path/to/family")
                                add_btn = gr.Button("Add", scale=1)
                            add_status = gr.Markdown()
                    with gr.Column(scale=5, min_width=420):
                        chatbot = gr.Chatbot(label="Chat at the current w", height=560, elem_id="pa-chat",
                                             buttons=["copy"], placeholder="Ask something. The answer uses the "
                                             "preference on the left; move it and ask again to see the difference.")
                        with gr.Row():
                            msg = gr.Textbox(show_label=False, placeholder="Type a message and press Enter",
                                             scale=6, elem_id="pa-msg", autofocus=False)
                            send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="pa-send")
                        with gr.Row():
                            stop = gr.Button("Stop", variant="stop", size="sm", elem_id="pa-stop")
                            clear = gr.Button("Clear", size="sm", elem_id="pa-clear")
                        with gr.Accordion("Generation settings", open=False):
                            system = gr.Textbox(label="System prompt", lines=2,
                                                value=first.manifest.system_prompt or "",
                                                placeholder="(the family's default)")
                            with gr.Row():
                                temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature",
                                                        info="0 = greedy (deterministic)")
                                max_tokens = gr.Slider(8, 512, value=96, step=8, label="Max new tokens")

            # ------------------------------------------------------- side by side
            with gr.Tab("Side by side", id="compare"):
                gr.Markdown("Two preferences, one prompt: both answers come from **one batched generation** "
                            "with a different w per row.")
                side = {}
                with gr.Row():
                    for slot, w_init in (("A", _end_w(first, 0)), ("B", _end_w(first, 1))):
                        with gr.Column():
                            head_md = gr.Markdown(f"### {slot}\n" + PreferenceSpace(first.manifest).describe(w_init),
                                                  elem_classes="pa-side-head")
                            ctrls = []
                            for i, up in enumerate(slider_updates(first, w_init)):
                                kw = {k: v for k, v in up.items() if k != "__type__"}
                                ctrls.append(gr.Slider(elem_id=f"pa-{slot.lower()}{i}", **{"minimum": 0, "maximum": 1, **kw}))
                            side[slot] = [head_md, ctrls]
                with gr.Row():
                    cmp_prompt = gr.Textbox(label="Prompt", scale=6, elem_id="pa-cmp-prompt",
                                            placeholder="One prompt for both preferences; press Enter or Compare")
                    cmp_btn = gr.Button("Compare", variant="primary", scale=1, elem_id="pa-cmp-go")
                    cmp_stop = gr.Button("Stop", variant="stop", scale=1)
                with gr.Row():
                    for slot in ("A", "B"):
                        with gr.Column():
                            answer = gr.Textbox(label=f"Answer at {slot}", lines=8, max_lines=20, interactive=False,
                                                elem_id=f"pa-answer-{slot.lower()}", buttons=["copy"])
                            scores = gr.Markdown(elem_id=f"pa-scores-{slot.lower()}", elem_classes="pa-scores")
                            side[slot] += [answer, scores]
                copy_btn = gr.Button("Set A to the current w from the Explore tab", size="sm")

            # ------------------------------------------------------------- export
            with gr.Tab("Export", id="export"):
                export_head = gr.Markdown(_export_head(first, w0))
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Download a merged checkpoint")
                        name = gr.Textbox(label="Name", placeholder=default_export_name(first, w0),
                                          info="letters, digits, '.', '_' or '-'; empty = the name shown",
                                          elem_id="pa-export-name")
                        export_btn = gr.Button("Build merged checkpoint (zip)", variant="primary",
                                               elem_id="pa-export-go")
                        export_file = gr.File(label="Merged checkpoint", interactive=False, elem_id="pa-export-file")
                        export_status = gr.Markdown(elem_id="pa-export-status")
                    with gr.Column():
                        gr.Markdown("### Push to the Hugging Face Hub")
                        if _is_space():
                            gr.LoginButton()
                            token = gr.Textbox(visible=False)
                        else:
                            token = gr.Textbox(label="Hub token (write access)", type="password",
                                               placeholder="hf_…  (never stored)")
                        repo = gr.Textbox(label="Repository", placeholder="your-name/model-name")
                        private = gr.Checkbox(value=True, label="Private repository")
                        push_btn = gr.Button("Push to the Hub", elem_id="pa-push-go")
                        push_status = gr.Markdown(elem_id="pa-push-status")

            # -------------------------------------------------------------- about
            with gr.Tab("About", id="about"):
                about = gr.Markdown(about_markdown(first))

        # ================================================================ events
        view_inputs = [family, overlay, w_state, x_axis, y_axis]

        def redraw(key, over, w, x, y):
            return plot_json(catalog, key, over, w, x, y)

        def on_family(key, w, over, x, y):
            try:
                entry = catalog.get(key)
            except FamilyError as exc:
                raise _err(exc)
            space = PreferenceSpace(entry.manifest)
            try:  # keep the session's w when it is valid for the new family
                w = space.to_w(space.to_controls(w)) if len(w) == entry.k else space.default_w()
            except PreferenceError:
                w = space.default_w()
            objs = shared_objectives(plot_entries(catalog, key, over))
            x = x if x in objs else (objs[0] if objs else None)
            y = y if y in objs else (objs[1] if len(objs) > 1 else x)
            ends = [_end_w(entry, 0), _end_w(entry, 1)]
            return [
                w, plot_json(catalog, key, over, w, x, y), summary_markdown(plot_entries(catalog, key, over)),
                space.describe(w), *slider_updates(entry, w),
                gr.update(value=f"⚠️ {entry.note}" if entry.note else "", visible=bool(entry.note)),
                gr.update(visible=len(objs) > 2), gr.update(choices=objs, value=x), gr.update(choices=objs, value=y),
                about_markdown(entry), _export_head(entry, w), gr.update(placeholder=default_export_name(entry, w)),
                entry.manifest.system_prompt or "",
                *[f"### {s}\n" + space.describe(e) for s, e in zip("AB", ends)],
                *slider_updates(entry, ends[0]), *slider_updates(entry, ends[1]),
            ]

        family.change(
            on_family, [family, w_state, overlay, x_axis, y_axis],
            [w_state, plot, summary, w_text, *sliders, banner, axis_row, x_axis, y_axis, about, export_head, name,
             system, side["A"][0], side["B"][0], *side["A"][1], *side["B"][1]],
            api_name=False)

        def on_overlay(key, over, w, x, y):
            entries = plot_entries(catalog, key, over)
            objs = shared_objectives(entries)
            x = x if x in objs else (objs[0] if objs else None)
            y = y if y in objs else (objs[1] if len(objs) > 1 else x)
            return (plot_json(catalog, key, over, w, x, y), summary_markdown(entries), gr.update(visible=len(objs) > 2),
                    gr.update(choices=objs, value=x), gr.update(choices=objs, value=y))

        overlay.change(on_overlay, view_inputs, [plot, summary, axis_row, x_axis, y_axis], api_name=False)
        for ax in (x_axis, y_axis):
            ax.input(redraw, view_inputs, plot, api_name=False)

        def set_preference(key, *values):
            *controls, over, x, y = values
            entry = catalog.get(key)
            space = PreferenceSpace(entry.manifest)
            try:
                w = space.to_w(controls[: len(space.controls())])
            except PreferenceError as exc:
                raise _err(exc)
            return (w, space.describe(w), plot_json(catalog, key, over, w, x, y), _export_head(entry, w),
                    gr.update(placeholder=default_export_name(entry, w)))

        for s in sliders:
            s.release(set_preference, [family, *sliders, overlay, x_axis, y_axis],
                      [w_state, w_text, plot, export_head, name], trigger_mode="always_last",
                      api_name="set_preference" if s is sliders[0] else False)

        def on_point_click(key, over, x, y, evt: gr.EventData):
            data = getattr(evt, "_data", None) or {}
            target = data.get("family") or key
            try:
                entry = catalog.get(target)
                w = PreferenceSpace(entry.manifest).to_w(PreferenceSpace(entry.manifest).to_controls(data.get("w") or []))
            except (FamilyError, PreferenceError, IndexError, TypeError) as exc:
                raise _err(exc)
            over = list(over or [])
            if target != key and key not in over:
                over.append(key)  # keep the family we came from on the plot
            space = PreferenceSpace(entry.manifest)
            return (target, over, w, space.describe(w), plot_json(catalog, target, over, w, x, y),
                    *[u for u in slider_updates(entry, w)], _export_head(entry, w),
                    gr.update(placeholder=default_export_name(entry, w)))

        plot.point_click(on_point_click, [family, overlay, x_axis, y_axis],
                         [family, overlay, w_state, w_text, plot, *sliders, export_head, name], api_name=False)

        # ------------------------------------------------------------ chat
        @gpu
        def respond(message, history, key, w, system_prompt, temp, max_new, request: gr.Request = None):
            message = (message or "").strip()
            history = list(history or [])
            if not message:
                yield history, ""
                return
            try:
                entry = catalog.get(key)
                settings = settings_from(temp, max_new)
                policy = entry.policy()
            except USER_ERRORS as exc:
                raise _err(exc)
            convo = history_messages(history) + [{"role": "user", "content": message}]
            history = history + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
            cancel = threading.Event()
            session = (getattr(request, "session_hash", None) or "local", "chat")
            _CANCEL[session] = cancel
            yield history, ""
            try:
                for texts in policy.stream([convo], [w], settings, system_prompt=(system_prompt or None), cancel=cancel):
                    history[-1] = {"role": "assistant", "content": texts[0]}
                    yield history, ""
                if not history[-1]["content"]:
                    history[-1] = {"role": "assistant", "content": "*(the model returned an empty answer)*"}
                    yield history, ""
            except USER_ERRORS as exc:
                raise _err(exc)
            finally:
                cancel.set()
                if _CANCEL.get(session) is cancel:
                    _CANCEL.pop(session, None)

        chat_inputs = [msg, chatbot, family, w_state, system, temperature, max_tokens]
        ev_submit = msg.submit(respond, chat_inputs, [chatbot, msg], api_name="chat", concurrency_id="generate",
                               concurrency_limit=8)
        ev_send = send.click(respond, chat_inputs, [chatbot, msg], api_name=False, concurrency_id="generate")

        def stop_chat(request: gr.Request = None, kind: str = "chat"):
            ev = _CANCEL.get((getattr(request, "session_hash", None) or "local", kind))
            if ev is not None:
                ev.set()

        stop.click(stop_chat, None, None, cancels=[ev_submit, ev_send], queue=False, api_name=False)
        clear.click(lambda: ([], ""), None, [chatbot, msg], queue=False, api_name="clear")

        # ---------------------------------------------------- side by side
        a_ctrls, b_ctrls = side["A"][1], side["B"][1]

        def side_head(slot):
            def fn(key, *values):
                entry = catalog.get(key)
                space = PreferenceSpace(entry.manifest)
                try:
                    w = space.to_w(values[: len(space.controls())])
                except PreferenceError as exc:
                    return f"### {slot}\n⚠️ {exc}"
                return f"### {slot}\n" + space.describe(w)
            return fn

        for slot, ctrls in (("A", a_ctrls), ("B", b_ctrls)):
            for s in ctrls:
                s.release(side_head(slot), [family, *ctrls], side[slot][0], api_name=False)

        @gpu
        def compare(prompt, key, *values, request: gr.Request = None):
            *ctrl_values, system_prompt, temp, max_new = values
            prompt = (prompt or "").strip()
            if not prompt:
                raise gr.Error("Type a prompt to compare the two preferences on.")
            try:
                entry = catalog.get(key)
                space = PreferenceSpace(entry.manifest)
                n = len(space.controls())
                wa = space.to_w(ctrl_values[:MAX_CONTROLS][:n])
                wb = space.to_w(ctrl_values[MAX_CONTROLS:][:n])
                settings = settings_from(temp, max_new)
                policy = entry.policy()
            except USER_ERRORS as exc:
                raise _err(exc)
            cancel = threading.Event()
            session = (getattr(request, "session_hash", None) or "local", "compare")
            _CANCEL[session] = cancel
            texts = ["", ""]
            head_a, head_b = (f"### {s}\n" + space.describe(w) for s, w in (("A", wa), ("B", wb)))
            try:
                yield "", "", "*generating…*", "*generating…*", head_a, head_b
                for texts in policy.stream([prompt, prompt], [wa, wb], settings,
                                           system_prompt=(system_prompt or None), cancel=cancel):
                    yield texts[0], texts[1], "*generating…*", "*generating…*", head_a, head_b
                yield texts[0], texts[1], "*scoring…*", "*scoring…*", head_a, head_b
                sa, sb = scores_markdown(live_scorers(entry), prompt, list(texts))
                yield texts[0], texts[1], sa, sb, head_a, head_b
            except USER_ERRORS as exc:
                raise _err(exc)
            finally:
                cancel.set()
                if _CANCEL.get(session) is cancel:
                    _CANCEL.pop(session, None)

        cmp_inputs = [cmp_prompt, family, *a_ctrls, *b_ctrls, system, temperature, max_tokens]
        cmp_outputs = [side["A"][2], side["B"][2], side["A"][3], side["B"][3], side["A"][0], side["B"][0]]
        ev_cmp = cmp_btn.click(compare, cmp_inputs, cmp_outputs, api_name="compare", concurrency_id="generate")
        ev_cmp2 = cmp_prompt.submit(compare, cmp_inputs, cmp_outputs, api_name=False, concurrency_id="generate")
        def stop_compare(request: gr.Request = None):
            stop_chat(request, "compare")

        cmp_stop.click(stop_compare, None, None, cancels=[ev_cmp, ev_cmp2], queue=False, api_name=False)

        def copy_current(key, w):
            entry = catalog.get(key)
            space = PreferenceSpace(entry.manifest)
            return [f"### A\n" + space.describe(w), *slider_updates(entry, w)]

        copy_btn.click(copy_current, [family, w_state], [side["A"][0], *a_ctrls], api_name=False)

        # ----------------------------------------------------------- export
        def do_export(key, w, export_name, request: gr.Request = None, progress=gr.Progress()):
            try:
                entry = catalog.get(key)
                export_name = (export_name or "").strip() or default_export_name(entry, w)
                check_export_name(export_name)
                progress(0.05, desc="loading the family")
                policy = entry.policy()
                progress(0.25, desc="merging W0 + B·diag(g(w))·A")
                folder = export_merged(policy, w, export_parent(request), export_name,
                                       scores=_scores_at(entry, w), overwrite=True)
                progress(0.75, desc="zipping")
                z = zip_folder(folder)
            except USER_ERRORS + (OSError,) as exc:
                return None, f"❌ **Export failed:** {exc}", None
            size = z.stat().st_size / 2 ** 20
            msg = (f"✅ **{z.name}** ({size:.1f} MB): merged weights (safetensors), tokenizer and a model card, "
                   f"at w = ({', '.join(f'{v:g}' for v in w)}).")
            return str(z), msg, [str(folder), list(w)]

        export_btn.click(do_export, [family, w_state, name], [export_file, export_status, export_state],
                         api_name="export", concurrency_id="export", concurrency_limit=2)

        def do_push(key, w, export_name, repo_id, is_private, token_text, last,
                    oauth_token: gr.OAuthToken | None = None, request: gr.Request = None, progress=gr.Progress()):
            tok = (oauth_token.token if oauth_token is not None else None) or (token_text or "").strip() or None
            try:
                if not (repo_id or "").strip():
                    raise ExportError("give a repository id like 'your-name/model-name'")
                if not tok:
                    raise ExportError("log in with the button above (on a Space) or paste a Hub token with write access")
                entry = catalog.get(key)
                if last and list(last[1]) == list(w) and Path(last[0]).is_dir():
                    folder = Path(last[0])
                else:
                    progress(0.1, desc="merging")
                    export_name = (export_name or "").strip() or default_export_name(entry, w)
                    folder = export_merged(entry.policy(), w, export_parent(request), export_name,
                                           scores=_scores_at(entry, w), overwrite=True)
                progress(0.4, desc="uploading")
                url = push_to_hub(folder, repo_id.strip(), token=tok, private=bool(is_private))
            except USER_ERRORS + (OSError,) as exc:
                return f"❌ **Push failed:** {exc}"
            except Exception as exc:  # network / auth errors from the Hub client
                return f"❌ **Push failed:** {type(exc).__name__}: {exc}"
            return f"✅ Pushed to [{repo_id}]({url})."

        push_btn.click(do_push, [family, w_state, name, repo, private, token, export_state], push_status,
                       api_name="push", concurrency_id="export")

        # ---------------------------------------------------- add a family
        def add_family(path, key, over):
            path = (path or "").strip()
            if _is_space() and not os.environ.get("PARETOAPP_ALLOW_PATHS"):
                return "❌ Adding folders is disabled on a Space.", gr.update(), gr.update()
            try:
                entry = catalog.add(path, device=catalog.get(key).device)
            except (FamilyError, OSError, ValueError) as exc:
                return f"❌ {exc}", gr.update(), gr.update()
            over = list(over or [])
            if entry.key != key and entry.key not in over:
                over.append(entry.key)
            return (f"✅ Added **{entry.key}**" + ("" if entry.results else " (no evaluation results found next to it)"),
                    gr.update(choices=catalog.keys), gr.update(choices=catalog.keys, value=over))

        add_btn.click(add_family, [add_path, family, overlay], [add_status, family, overlay], api_name="add_family")

        # ------------------------------------------- API-only (stateless: w is passed in)
        def families() -> list[dict]:
            """Every family the app serves: objectives, allowed and trained preference ranges, front metrics."""
            out = []
            for e in catalog.entries.values():
                m = e.manifest
                mt = (e.results.meta.get("metrics", {}) if e.results is not None else {})
                out.append({"name": e.key, "method": m.method, "objectives": e.objective_names,
                            "w_low": m.w_low, "w_high": m.w_high, "in_sample_low": m.in_sample_low,
                            "in_sample_high": m.in_sample_high, "on_simplex": m.on_simplex,
                            "default_w": PreferenceSpace(m).default_w(),
                            "hypervolume": mt.get("hypervolume"), "reference_point": mt.get("reference")})
            return out

        @gpu
        def generate(prompt: str, w: list[float], family: str = "", max_new_tokens: int = 64,
                     temperature: float = 0.0, system_prompt: str = "") -> str:
            """One answer to ``prompt`` from ``family`` (default: the first) at preference ``w``."""
            try:
                entry = catalog.get(family or catalog.keys[0])
                return entry.policy().generate([prompt], [list(map(float, w))],
                                               settings_from(temperature, max_new_tokens),
                                               system_prompt=system_prompt or None)[0]
            except USER_ERRORS as exc:
                raise _err(exc)

        gr.api(families, api_name="families")
        gr.api(generate, api_name="generate", concurrency_id="generate")

    demo.queue(default_concurrency_limit=16)
    return demo


def _end_w(entry: FamilyEntry, which: int) -> list[float]:
    """The two ends of the trained range (for side by side): all on one objective, then the other."""
    space = PreferenceSpace(entry.manifest)
    if entry.k == 2:
        w = [1.0, 0.0] if which == 0 else [0.0, 1.0]
    else:
        w = [1.0 if i == which else 0.0 for i in range(entry.k)]
    try:
        return space.to_w(space.to_controls(w))
    except PreferenceError:
        return space.default_w()


def _scores_at(entry: FamilyEntry, w) -> dict[str, float] | None:
    """The evaluated mean scores at exactly this w (for the model card), else None."""
    r = entry.results
    if r is None or len(r.w_columns) != len(w) or r.meta.get("synthetic"):
        return None
    import numpy as np
    W = r.means[r.w_columns].to_numpy(float)
    d = np.abs(W - np.asarray(w, float)).max(axis=1)
    if d.min() > 1e-6:
        return None
    row = r.means.iloc[int(d.argmin())]
    return {n: float(row[n]) for n in r.objectives}


def _export_head(entry: FamilyEntry, w) -> str:
    space = PreferenceSpace(entry.manifest)
    return (f"Exports **{entry.key}** at the current preference — {space.describe(w)}.\n\n"
            "The merged checkpoint is a plain `transformers` model: it loads anywhere without paretoapp.")


def launch_kwargs() -> dict:
    """App-level look (Gradio 6 takes these in ``launch``)."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink", neutral_hue="slate")
    return dict(theme=theme, css=CSS)
