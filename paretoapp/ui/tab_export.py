"""The Export tab: the session's w as a merged checkpoint (zip download) or a Hub repo.

Exports go to a per-session folder under ``PARETOAPP_EXPORT_DIR`` (default: the
system temp folder); the merged weights are W0 + B diag(g(w)) A written once.
One export at a time per session, within ``PARETOAPP_EXPORT_MAX_MB`` for all of
them (``export_space.py``); a push asks the Hub first and keeps nothing on disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import numpy as np

from .. import settings
from ..export import (
    EXPORTERS,
    ExportError,
    check_destination,
    check_hub_access,
    check_push_target,
    export_dtype,
    export_merged,
    push_to_hub,
    zip_folder,
)
from ..preferences import PreferenceSpace
from .catalog import FamilyEntry
from .export_space import ExportSpace
from .session import USER_ERRORS, Session, session_id
from .tab import Shared, Shown, Start, Tab, Updates


def default_export_name(entry: FamilyEntry, w) -> str:
    """``<family>-w<percent>_<percent>``: no dots, which would read as a file suffix (".50.zip")."""
    parts = "_".join(("m" if v < 0 else "") + f"{round(abs(float(v)) * 100):d}" for v in w)
    base = "".join(c if c.isalnum() or c in "._-" else "-" for c in entry.manifest.name).strip("-.") or "model"
    return f"{base}-w{parts}"[:96]


DTYPES = {"the base's own (default)": None, "bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}
KINDS = {e.label: kind for kind, e in EXPORTERS.items()}  # the choice shown (and sent by API clients) -> the kind


def export_root() -> Path:
    return settings.EXPORT_DIR.get()


def export_ttl_s() -> float:
    """How long an export stays on disk after it is built (``PARETOAPP_EXPORT_TTL_S``, default 30 minutes)."""
    return settings.EXPORT_TTL_S.get()


def export_parent(request: gr.Request | None) -> Path:
    session = getattr(request, "session_hash", None) or "local"
    return export_root() / "".join(c for c in session if c.isalnum())[:40]


def remove_old_exports(root: Path, ttl_s: float) -> int:
    """Delete exports (zips, folders) older than ``ttl_s``: the app never keeps a download for long."""
    import shutil
    import time

    if not root.is_dir():
        return 0
    cutoff, removed = time.time() - ttl_s, 0
    for session in root.iterdir():
        for item in (session.iterdir() if session.is_dir() else []):
            if item.stat().st_mtime < cutoff:
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
                removed += 1
        if session.is_dir() and not any(session.iterdir()):
            session.rmdir()
    return removed


def size_bound(policy, dtype_label=None) -> int:
    """Bytes a merged export of ``policy`` takes at most (every tensor of the model in the export's dtype); a LoRA
    adapter takes less."""
    itemsize = export_dtype(policy, DTYPES.get(dtype_label)).itemsize
    return sum(t.numel() for t in policy.model.state_dict().values()) * itemsize


def scores_at(entry: FamilyEntry, w) -> dict[str, float] | None:
    """The evaluated mean scores at exactly this w (for the model card), else None."""
    r = entry.results
    if r is None or len(r.w_columns) != len(w) or r.meta.get("synthetic"):
        return None
    d = np.abs(r.means[r.w_columns].to_numpy(float) - np.asarray(w, float)).max(axis=1)
    if d.min() > 1e-6:
        return None
    row = r.means.iloc[int(d.argmin())]
    return {n: float(row[n]) for n in r.objectives}


def export_head(entry: FamilyEntry, w) -> str:
    return (f"Exports **{entry.key}** at the current preference — {PreferenceSpace(entry.manifest).describe(w)}.\n\n"
            "The merged checkpoint is a plain `transformers` model: it loads anywhere without paretoapp.")


class ExportTab(Tab):
    """Build the session's w as a zip (merged or LoRA, in a dtype), or push it to the Hub."""

    def __init__(self, start: Start):
        self.ctx, first, w0 = start.ctx, start.first, start.w0
        with gr.Tab("Export", id="export"):
            self.head = gr.Markdown(export_head(first, w0))
            with gr.Row():
                with gr.Column():
                    gr.Markdown("### Download")
                    self.name = gr.Textbox(label="Name", placeholder=default_export_name(first, w0),
                                           info="letters, digits, '.', '_' or '-'; empty = the name shown",
                                           elem_id="pa-export-name")
                    with gr.Row():
                        self.kind = gr.Radio(list(KINDS), value=next(iter(KINDS)), label="What",
                                             elem_id="pa-export-kind",
                                             info=" · ".join(e.hint for e in EXPORTERS.values() if e.hint))
                        self.dtype = gr.Dropdown(list(DTYPES), value=next(iter(DTYPES)), label="Weights dtype",
                                                 elem_id="pa-export-dtype")
                    self.go = gr.Button("Build (zip)", variant="primary", elem_id="pa-export-go")
                    self.file = gr.File(label="Your export", interactive=False, elem_id="pa-export-file")
                    gr.Markdown(f"Exports are deleted from the server {export_ttl_s() / 60:g} minutes after they "
                                "are built; download yours before then.", elem_classes="pa-muted")
                    self.status = gr.Markdown(elem_id="pa-export-status")
                with gr.Column():
                    gr.Markdown("### Push to the Hugging Face Hub")
                    if start.on_space:
                        gr.LoginButton()
                        self.token = gr.Textbox(visible=False)
                    else:
                        self.token = gr.Textbox(label="Hub token (write access)", type="password",
                                                placeholder="hf_…  (never stored)")
                    self.repo = gr.Textbox(label="Repository", placeholder="your-name/model-name")
                    self.private = gr.Checkbox(value=True, label="Private repository")
                    self.push = gr.Button("Push to the Hub", elem_id="pa-push-go")
                    self.push_status = gr.Markdown(elem_id="pa-push-status")
        self.space = ExportSpace()

    @property
    def preference_outputs(self) -> list:
        return [self.head, self.name]

    def preference_updates(self, entry: FamilyEntry, shown: Shown) -> Updates:
        w = shown.session.w_for(entry)
        return {self.head: export_head(entry, w), self.name: gr.update(placeholder=default_export_name(entry, w))}

    def wire(self, shared: Shared) -> None:
        self._wire_export(shared)
        self._wire_push(shared)

    def _wire_export(self, shared: Shared) -> None:
        ctx = self.ctx

        def do_export(key, sess: Session, export_name, kind=next(iter(KINDS)), dtype_label=None,
                      request: gr.Request = None, progress=gr.Progress()):
            remove_old_exports(export_root(), export_ttl_s())
            exporter = EXPORTERS[KINDS.get(kind, "merged")]
            try:
                entry = ctx.entry(key)
                w = sess.w_for(entry)
                export_name = (export_name or "").strip() or default_export_name(entry, w)
                check_destination(export_parent(request), export_name, overwrite=True)
                progress(0.05, desc="loading the family")
                policy = entry.policy()
                with self.space.claim(session_id(request), export_root(), 2 * size_bound(policy, dtype_label)):
                    progress(0.25, desc=exporter.step)
                    folder = exporter.write(policy, w, export_parent(request), export_name,
                                            scores=scores_at(entry, w), overwrite=True, dtype=DTYPES.get(dtype_label))
                    progress(0.75, desc="zipping")
                    try:
                        z = zip_folder(folder)
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)  # the zip is what is served; one copy on disk
            except (*USER_ERRORS, OSError) as exc:
                return None, f"❌ **Export failed:** {exc}"
            size = z.stat().st_size / 2 ** 20
            msg = (f"✅ **{z.name}** ({size:.1f} MB): {exporter.writes}, tokenizer and a model card, "
                   f"at w = ({', '.join(f'{v:g}' for v in w)}).")
            return str(z), msg

        self.go.click(do_export, [shared.family, shared.session, self.name, self.kind, self.dtype],
                      [self.file, self.status], api_name="export", concurrency_id="export", concurrency_limit=2)

    def _wire_push(self, shared: Shared) -> None:
        ctx = self.ctx

        def do_push(key, sess: Session, export_name, repo_id, is_private, token_text,
                    oauth_token: gr.OAuthToken | None = None, request: gr.Request = None, progress=gr.Progress()):
            """Merge at the session's w into a folder of its own, upload it, and remove it whatever happened:
            the Hub keeps the copy, the server none."""
            tok = (oauth_token.token if oauth_token is not None else None) or (token_text or "").strip() or None
            try:
                if (repo_id or "").strip() and not tok:
                    raise ExportError("log in with the button above (on a Space) or paste a Hub token with write access")
                repo_id = check_push_target(repo_id, tok)  # before the merge, not after it
                progress(0.05, desc="asking the Hub")
                check_hub_access(repo_id, tok)
                entry = ctx.entry(key)
                w = sess.w_for(entry)
                push_name = f"{((export_name or '').strip() or default_export_name(entry, w))[:91]}-push"
                folder = check_destination(export_parent(request), push_name, overwrite=True)
                policy = entry.policy()
                with self.space.claim(session_id(request), export_root(), size_bound(policy)):
                    progress(0.1, desc="merging")
                    try:
                        export_merged(policy, w, folder.parent, folder.name, scores=scores_at(entry, w),
                                      overwrite=True)
                        progress(0.4, desc="uploading")
                        url = push_to_hub(folder, repo_id, token=tok, private=bool(is_private))
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
            except (*USER_ERRORS, OSError) as exc:
                return f"❌ **Push failed:** {exc}"
            except Exception as exc:  # an error of the Hub client that is neither a refusal nor the network
                return f"❌ **Push failed:** {type(exc).__name__}: {exc}"
            return f"✅ Pushed to [{repo_id}]({url})."

        self.push.click(do_push, [shared.family, shared.session, self.name, self.repo, self.private, self.token],
                        self.push_status, api_name="push", concurrency_id="export")
