"""Generation with a per-row preference: batched answers and streaming chat.

A ``Policy`` is one family attached to its base model. Every call takes one
preference per row, so a whole front, two side-by-side answers or many users'
chats are one batched ``generate``; nothing about w is stored on the model.

Over-long prompts: by default they are rejected with ``PromptTooLongError``
(silently dropping the start of a chat would drop its system prompt and the
question's context). ``GenerationSettings(overflow="truncate_left")`` keeps the
most recent tokens instead and logs a warning. Prompts and settings are checked
by ``validation.py``, the same checks the CLI and the app use.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from .bank import PreferenceBank
from .family import Family, load_family
from .gates import Preferences
from .models import load_base
from .validation import PromptTooLongError as PromptTooLongError  # re-exported: callers catch it from here
from .validation import (
    chat_messages,
    check_prompt_length,
    check_room,
    max_new_tokens,
    real_number,
    tokens_at_least,
    whole_number,
)

log = logging.getLogger(__name__)

Message = dict  # {"role": "user" | "assistant" | "system", "content": str}
Prompt = str | Sequence[Message]
PLAIN_TEMPLATE = "{system}Human: {prompt}\n\nAssistant:"


def as_messages(prompt: Prompt) -> list[Message]:
    """A prompt as a fresh list of chat messages ending with the user's turn (checked: ``validation.chat_messages``)."""
    return chat_messages(prompt)


def with_system(messages: list[Message], system_prompt: str | None) -> list[Message]:
    if system_prompt and messages[0]["role"] != "system":
        return [{"role": "system", "content": system_prompt}] + messages
    return messages


def uses_chat_template(tokenizer, prompt_format: str = "chat") -> bool:
    return prompt_format == "chat" and bool(getattr(tokenizer, "chat_template", None))


def render_messages(tokenizer, messages: list[Message], prompt_format: str = "chat") -> str:
    """The one place prompts become text, shared by generation and trainers.

    "chat": the tokenizer's chat template, or a Human/Assistant wrapper when it has
    none; "raw": a single user turn verbatim (data that carries its own turns).
    """
    if uses_chat_template(tokenizer, prompt_format):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    sys_text = f"{messages[0]['content']}\n\n" if messages[0]["role"] == "system" else ""
    turns = [m for m in messages if m["role"] != "system"]
    if prompt_format == "raw" and len(turns) == 1:
        return sys_text + turns[0]["content"]
    history = "".join(f"{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}\n\n" for m in turns[:-1])
    return history + PLAIN_TEMPLATE.format(system=sys_text, prompt=turns[-1]["content"])


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    max_prompt_tokens: int | None = None  # default: the model's context minus max_new_tokens
    overflow: str = "error"               # or "truncate_left"

    def __post_init__(self):
        self.max_new_tokens = max_new_tokens(self.max_new_tokens)
        self.temperature = real_number(self.temperature, "temperature")
        self.top_p = real_number(self.top_p, "top_p")
        if self.seed is not None:
            self.seed = whole_number(self.seed, "seed")
        if self.max_prompt_tokens is not None and whole_number(self.max_prompt_tokens, "max_prompt_tokens") < 1:
            raise ValueError("max_prompt_tokens must be at least 1; leave it unset to use the model's context")
        self.stop = [] if self.stop is None else self.stop
        if isinstance(self.stop, str) or not all(isinstance(s, str) for s in self.stop):
            raise ValueError("stop must be a list of strings, e.g. ['\\n\\nHuman:']")
        if self.do_sample and not self.temperature > 0:
            raise ValueError("temperature must be > 0 when sampling (use do_sample=False for greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p:g}; use e.g. 0.95 (1 keeps every token)")
        if self.overflow not in ("error", "truncate_left"):
            raise ValueError("overflow must be 'error' or 'truncate_left'")

    def to_dict(self) -> dict:
        return asdict(self)


class Policy:
    """A family on its base model: the one object generation, evaluation and the UI use."""

    def __init__(self, family: Family, model, tokenizer, bank: PreferenceBank | None = None):
        self.family = family
        self.manifest = family.manifest
        self.model = model
        self.tokenizer = tokenizer
        self.bank = bank or PreferenceBank(model, family)
        self._longest_token: int | None = None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def objectives(self):
        return self.manifest.objectives

    @property
    def device(self):
        return self.bank.device

    def longest_token(self) -> int:
        """Characters in the tokenizer's longest token (for ``validation.tokens_at_least``), computed once."""
        if self._longest_token is None:
            self._longest_token = max(map(len, self.tokenizer.get_vocab()), default=1)
        return self._longest_token

    def context_length(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))

    # ------------------------------------------------------------- prompting
    def uses_chat_template(self) -> bool:
        return uses_chat_template(self.tokenizer, self.manifest.prompt_format)

    def render(self, prompt: Prompt, w: Sequence[float], system_prompt: str | None = None) -> str:
        """Prompt text for one row, formatted as the family was trained: conditioning c(w), then the template."""
        messages = as_messages(prompt)
        if self.manifest.conditioning is not None:
            messages[-1]["content"] = self.manifest.conditioning.apply(messages[-1]["content"], w)
        system = system_prompt if system_prompt is not None else self.manifest.system_prompt
        return render_messages(self.tokenizer, with_system(messages, system), self.manifest.prompt_format)

    def prompt_tokens(self, prompt: Prompt, w: Sequence[float], system_prompt: str | None = None) -> int:
        """How many tokens the model reads for this prompt at this w (as ``generate`` would render it)."""
        special = not self.uses_chat_template()
        return len(self.tokenizer(self.render(prompt, list(w), system_prompt), add_special_tokens=special)["input_ids"])

    def encode(self, prompts: Sequence[Prompt], ws: torch.Tensor, settings: GenerationSettings,
               system_prompt: str | None = None) -> dict:
        texts = [self.render(p, w.tolist(), system_prompt) for p, w in zip(prompts, ws)]
        context = self.context_length()
        check_room(settings.max_new_tokens, context)
        limit = int(settings.max_prompt_tokens or context - settings.max_new_tokens)
        if settings.overflow == "error":
            for i, t in enumerate(texts):
                check_prompt_length(tokens_at_least(t, self.longest_token()), limit, context, settings.max_new_tokens,
                                    i, len(texts), at_least=True)
        # a chat template already writes BOS and the other special tokens itself
        special = not self.uses_chat_template()
        ids = [self.tokenizer(t, add_special_tokens=special)["input_ids"] for t in texts]
        for i, row in enumerate(ids):
            if len(row) > limit:
                if settings.overflow == "error":
                    check_prompt_length(len(row), limit, context, settings.max_new_tokens, i, len(ids))
                log.warning("prompt %d has %d tokens; keeping the last %d", i, len(row), limit)
                ids[i] = row[-limit:]
        width = max(len(r) for r in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in ids])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids])
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _prepare(self, prompts, ws, settings, system_prompt):
        if isinstance(prompts, (str, bytes, bytearray)):
            prompts = [prompts]
        elif not isinstance(prompts, (list, tuple)):
            raise ValueError(f"prompts must be a string or a list of prompts, got {type(prompts).__name__}")
        prompts = list(prompts)
        if not prompts:
            raise ValueError("no prompts given")
        w = self.manifest.check_w(ws)
        if w.shape[0] == 1 and len(prompts) > 1:
            w = w.expand(len(prompts), -1)
        if w.shape[0] != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {w.shape[0]} preference vectors; give one per prompt or one for all")
        settings = settings or GenerationSettings()
        return prompts, w, settings, self.encode(prompts, w, settings, system_prompt)

    def _generate_kwargs(self, settings: GenerationSettings, extra_stop: threading.Event | None = None) -> dict:
        kw = dict(max_new_tokens=int(settings.max_new_tokens), do_sample=settings.do_sample,
                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        if settings.do_sample:
            kw.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        criteria = []
        if settings.stop:
            kw.update(stop_strings=list(settings.stop), tokenizer=self.tokenizer)
        if extra_stop is not None:
            criteria.append(_EventStop(extra_stop))
        if criteria:
            kw["stopping_criteria"] = StoppingCriteriaList(criteria)
        return kw

    def _decode(self, row_ids, settings: GenerationSettings) -> str:
        text = self.tokenizer.decode(row_ids, skip_special_tokens=True)
        for s in settings.stop:
            if s and s in text:
                text = text[: text.index(s)]
        return text.strip()

    # ------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(self, prompts: Prompt | Sequence[Prompt], ws: Preferences, settings: GenerationSettings | None = None,
                 system_prompt: str | None = None, model=None) -> list[str]:
        """One answer per prompt, row i generated at preference ws[i].

        ``model``: generate with another model instead, prompted and decoded
        exactly as this policy (the merged one-model-per-w baseline of the
        benchmarks); the preference then only shapes the prompt (conditioning).
        """
        prompts, w, settings, enc = self._prepare(prompts, ws, settings, system_prompt)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        with self.bank.preference(w) if model is None else contextlib.nullcontext():
            out = (model or self.model).generate(**enc, **self._generate_kwargs(settings))
        new = out[:, enc["input_ids"].shape[1]:]
        return [self._decode(row, settings) for row in new]

    def stream(self, prompts: Prompt | Sequence[Prompt], ws: Preferences, settings: GenerationSettings | None = None,
               system_prompt: str | None = None, cancel: threading.Event | None = None) -> Iterator[list[str]]:
        """Yield every row's answer so far after each new token (one batched generate).

        The worker thread runs in a copy of this context, so it sees this
        request's gains and nobody else's.
        """
        prompts, w, settings, enc = self._prepare(prompts, ws, settings, system_prompt)
        streamer = _BatchStreamer(len(prompts))
        cancel = cancel if cancel is not None else threading.Event()
        kwargs = dict(**enc, **self._generate_kwargs(settings, cancel), streamer=streamer)
        errors: list[BaseException] = []

        def work():
            try:
                if settings.seed is not None:
                    torch.manual_seed(settings.seed)
                with torch.inference_mode(), self.bank.preference(w):
                    self.model.generate(**kwargs)
            except BaseException as exc:  # surfaced in the caller's thread
                errors.append(exc)
            finally:
                streamer.end()

        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(work,), daemon=True, name="paretoapp-stream")
        thread.start()
        last, finished = None, False
        try:
            for rows in streamer:
                texts = [self._decode(r, settings) for r in rows]
                if texts != last:
                    last = texts
                    yield texts
            finished = True
        finally:  # a caller that stops reading (closed generator, client gone) stops the generation too
            if not finished:
                cancel.set()
        thread.join()
        if errors:
            raise errors[0]

    @torch.inference_mode()
    def logits(self, prompts: Sequence[Prompt], ws: Preferences, system_prompt: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits and the attention mask for each prompt (tests and scoring)."""
        prompts, w, settings, enc = self._prepare(prompts, ws, GenerationSettings(max_new_tokens=1), system_prompt)
        with self.bank.preference(w):
            return self.model(**enc).logits, enc["attention_mask"]


class _EventStop(StoppingCriteria):
    """Stops generation when the user presses Stop."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class _BatchStreamer(BaseStreamer):
    """Collects the new tokens of every row; iterating yields the rows so far.

    transformers' TextIteratorStreamer handles one row only; side-by-side
    comparison streams two rows of one batch.
    """

    def __init__(self, batch: int):
        self.rows: list[list[int]] = [[] for _ in range(batch)]
        self.queue: queue.Queue = queue.Queue()
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        value = value.reshape(len(self.rows), -1) if value.numel() >= len(self.rows) else value.reshape(-1, 1)
        for row, toks in zip(self.rows, value.tolist()):
            row.extend(toks)
        self.queue.put([list(r) for r in self.rows])

    def end(self):
        self.queue.put(None)

    def __iter__(self):
        while (item := self.queue.get()) is not None:
            yield item


# ----------------------------------------------------------------- loading
_POLICIES: dict[tuple, Policy] = {}
_POLICY_LOCK = threading.Lock()


def load_policy(family: str | Path | Family, device: str = "cpu", dtype: str | torch.dtype | None = None,
                trust_remote_code: bool = False, allow_pickle: bool | None = None) -> Policy:
    """Load a family onto its base model (shared with other families on the same base); see ``load_base``."""
    family = load_family(family)
    key = (family.fingerprint(), str(device), str(dtype))
    with _POLICY_LOCK:
        if key in _POLICIES:
            return _POLICIES[key]
        ref = family.manifest.base_model
        model, tokenizer = load_base(ref.name_or_path, revision=ref.revision, device=device, dtype=dtype,
                                     trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        if ref.tokenizer and ref.tokenizer != ref.name_or_path:
            from .models import load_tokenizer
            tokenizer = load_tokenizer(ref.tokenizer, revision=ref.revision, trust_remote_code=trust_remote_code)
        policy = Policy(family, model, tokenizer, PreferenceBank(model, family, bank_id=key[0]))
        _POLICIES[key] = policy
        return policy
