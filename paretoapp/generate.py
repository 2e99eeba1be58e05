"""Generation with a per-row preference: batched answers and streaming chat.

A ``Policy`` is one family attached to its base model. Every call takes one
preference per row and hands its rows to the model's engine (``engine.py``),
which decodes them together with every other request on the same base, at any
w and from any family attached to it; nothing about w is stored on the model.

Over-long prompts: by default they are rejected with ``PromptTooLongError``
(silently dropping the start of a chat would drop its system prompt and the
question's context). ``GenerationSettings(overflow="truncate_left")`` keeps the
most recent tokens instead and logs a warning. Prompts and settings are checked
by ``validation.py``, the same checks the CLI and the app use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .bank import PreferenceBank
from .engine import Engine, Job, Row, engine_for
from .family import Family, load_family
from .gates import Preferences
from .models import load_base
from .sampling import AnswerRepeatPenalty
from .validation import PromptTooLongError as PromptTooLongError  # re-exported: callers catch it from here
from .validation import (
    answer_penalty,
    chat_messages,
    check_prompt_length,
    check_room,
    max_new_tokens,
    real_number,
    repetition_penalty,
    rows_at_once,
    tokens_at_least,
    whole_number,
)

log = logging.getLogger(__name__)

Message = dict  # {"role": "user" | "assistant" | "system", "content": str}
Prompt = str | Sequence[Message]
PLAIN_TEMPLATE = "Human: {prompt}\n\nAssistant:"


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
    return sys_text + history + PLAIN_TEMPLATE.format(prompt=turns[-1]["content"])  # the system text first


def answer_text(tokenizer, ids: Sequence[int], stop: Sequence[str] = ()) -> str:
    """One answer's text from its generated token ids: special tokens dropped, cut at the first stop string, stripped.

    The one place answers become text, whichever engine wrote the tokens (``paretoapp.serve`` decodes vLLM's too).
    """
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    for s in stop:
        if s and s in text:
            text = text[: text.index(s)]
    return text.strip()


# each decoding penalty and the value that turns it off (a record leaves a penalty out when it is off)
PENALTY_NONE = {"repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}


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
    repetition_penalty: float = 1.0       # transformers' rule (a seen token's logit / p if > 0, * p if < 0); 1 = none
    presence_penalty: float = 0.0         # OpenAI's: an answer token already used loses this from its logit; 0 = none
    frequency_penalty: float = 0.0        # OpenAI's: ... and this times the number of uses; 0 = none

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
        if self.temperature < 0:
            raise ValueError(f"temperature {self.temperature:g} is negative; give 0 for greedy decoding or a "
                             "positive number like 0.7 to sample")
        if self.do_sample and not self.temperature > 0:
            raise ValueError("temperature must be > 0 when sampling (use do_sample=False for greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p:g}; use e.g. 0.95 (1 keeps every token)")
        if self.overflow not in ("error", "truncate_left"):
            raise ValueError("overflow must be 'error' or 'truncate_left'")
        self.repetition_penalty = repetition_penalty(self.repetition_penalty)
        self.presence_penalty = answer_penalty(self.presence_penalty, "presence_penalty")
        self.frequency_penalty = answer_penalty(self.frequency_penalty, "frequency_penalty")

    def to_dict(self) -> dict:
        """The settings as recorded (results meta, cache keys); a penalty that is off is left out, so records and
        cache keys made before the field existed still match."""
        d = asdict(self)
        for name, none in PENALTY_NONE.items():
            if d[name] == none:
                del d[name]
        return d


class PromptFormat:
    """How one family's prompts become token ids: conditioning c(w), system prompt, template, context checks.

    It needs the manifest and the tokenizer only, not the model, so a gateway in
    front of another serving engine (``paretoapp.serve``) formats every prompt
    exactly as the in-process engine does without loading the weights.
    """

    def __init__(self, manifest, tokenizer):
        self.manifest = manifest
        self.tokenizer = tokenizer
        self._longest_token: int | None = None

    def longest_token(self) -> int:
        """Characters in the tokenizer's longest token (for ``validation.tokens_at_least``), computed once."""
        if self._longest_token is None:
            self._longest_token = max(map(len, self.tokenizer.get_vocab()), default=1)
        return self._longest_token

    def uses_chat_template(self) -> bool:
        return uses_chat_template(self.tokenizer, self.manifest.prompt_format)

    def render(self, prompt: Prompt, w: Sequence[float], system_prompt: str | None = None) -> str:
        """Prompt text for one row, formatted as the family was trained: conditioning c(w), then the template."""
        messages = chat_messages(prompt)  # checked, a fresh list ending with the user's turn
        if self.manifest.conditioning is not None:
            messages[-1]["content"] = self.manifest.conditioning.apply(messages[-1]["content"], w)
        system = system_prompt if system_prompt is not None else self.manifest.system_prompt
        return render_messages(self.tokenizer, with_system(messages, system), self.manifest.prompt_format)

    def prompt_tokens(self, prompt: Prompt, w: Sequence[float], system_prompt: str | None = None) -> int:
        """How many tokens the model reads for this prompt at this w (as ``generate`` would render it)."""
        special = not self.uses_chat_template()
        return len(self.tokenizer(self.render(prompt, list(w), system_prompt), add_special_tokens=special)["input_ids"])

    def prompt_ids(self, prompts: Sequence[Prompt], ws, settings: GenerationSettings, context: int,
                   system_prompt: str | None = None) -> list[list[int]]:
        """Each row's prompt token ids, checked against ``context`` tokens (or cut on the left, if allowed)."""
        texts = [self.render(p, [float(v) for v in w], system_prompt) for p, w in zip(prompts, ws)]
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
        return ids


class Policy:
    """A family on its base model: the one object generation, evaluation and the UI use."""

    def __init__(self, family: Family, model, tokenizer, bank: PreferenceBank | None = None):
        self.family = family
        self.manifest = family.manifest
        self.model = model
        self.tokenizer = tokenizer
        self.bank = bank or PreferenceBank(model, family)
        self.format = PromptFormat(self.manifest, tokenizer)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def objectives(self):
        return self.manifest.objectives

    @property
    def device(self):
        return self.bank.device

    @property
    def engine(self) -> Engine:
        return engine_for(self.model)

    def longest_token(self) -> int:
        return self.format.longest_token()

    def context_length(self) -> int:
        """Tokens one row may hold, prompt and answer together."""
        return self.engine.max_context

    # ------------------------------------------------------------- prompting (see ``PromptFormat``)
    def uses_chat_template(self) -> bool:
        return self.format.uses_chat_template()

    def render(self, prompt: Prompt, w: Sequence[float], system_prompt: str | None = None) -> str:
        return self.format.render(prompt, w, system_prompt)

    def prompt_tokens(self, prompt: Prompt, w: Sequence[float], system_prompt: str | None = None) -> int:
        return self.format.prompt_tokens(prompt, w, system_prompt)

    def prompt_ids(self, prompts: Sequence[Prompt], ws: torch.Tensor, settings: GenerationSettings,
                   system_prompt: str | None = None) -> list[list[int]]:
        """Each row's prompt token ids, checked against the engine's context (``PromptFormat.prompt_ids``)."""
        return self.format.prompt_ids(prompts, ws, settings, self.context_length(), system_prompt)

    def encode(self, prompts: Sequence[Prompt], ws: torch.Tensor, settings: GenerationSettings,
               system_prompt: str | None = None) -> dict:
        """The prompts as one left-padded batch (for a plain forward or ``generate``)."""
        ids = self.prompt_ids(prompts, ws, settings, system_prompt)
        width = max(len(r) for r in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in ids])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids])
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _prepare(self, prompts, ws, settings):
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
        return prompts, w, settings or GenerationSettings()

    def rows(self, prompts: Prompt | Sequence[Prompt], ws: Preferences, settings: GenerationSettings | None = None,
             system_prompt: str | None = None, seeds: Sequence[int] | None = None) -> list[Row]:
        """The engine's rows for these prompts: ids, this family's gains at each row's w, the sampling settings.

        Row i samples with seed ``seeds[i]``, by default ``settings.seed + i``
        (none: a fresh random seed), so a sampled answer does not depend on
        which other rows share its batch.
        """
        prompts, w, settings = self._prepare(prompts, ws, settings)
        ids = self.prompt_ids(prompts, w, settings, system_prompt)
        gains = self.bank.rank_gains(w)
        if seeds is None:
            seeds = [None if settings.seed is None else settings.seed + i for i in range(len(ids))]
        eos = frozenset([self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else [])
        return [Row(ids=r, max_new_tokens=int(settings.max_new_tokens), gains=(self.bank.bank_id, g),
                    do_sample=settings.do_sample, temperature=float(settings.temperature), top_p=float(settings.top_p),
                    seed=seed, stop=tuple(s for s in settings.stop if s), eos=eos,
                    repetition_penalty=float(settings.repetition_penalty),
                    presence_penalty=float(settings.presence_penalty), frequency_penalty=float(settings.frequency_penalty))
                for r, g, seed in zip(ids, gains, seeds)]

    def _generate_kwargs(self, settings: GenerationSettings, prompt_len: int) -> dict:
        kw = dict(max_new_tokens=int(settings.max_new_tokens), do_sample=settings.do_sample,
                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        if settings.do_sample:
            kw.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if settings.stop:
            kw.update(stop_strings=list(settings.stop), tokenizer=self.tokenizer)
        if settings.repetition_penalty != 1.0:
            kw.update(repetition_penalty=float(settings.repetition_penalty))
        if settings.presence_penalty or settings.frequency_penalty:
            from transformers import LogitsProcessorList

            kw.update(logits_processor=LogitsProcessorList([AnswerRepeatPenalty(
                prompt_len, settings.presence_penalty, settings.frequency_penalty)]))
        return kw

    def _decode(self, row_ids, settings: GenerationSettings) -> str:
        return answer_text(self.tokenizer, row_ids, settings.stop)

    # ------------------------------------------------------------ generation
    def submit(self, prompts: Prompt | Sequence[Prompt], ws: Preferences, settings: GenerationSettings | None = None,
               system_prompt: str | None = None, block: bool = True, batch_size: int | None = None,
               seeds: Sequence[int] | None = None, cancel: threading.Event | None = None) -> Job:
        """Hand the rows to the model's engine; the job streams their tokens (``texts`` turns them into answers).

        ``block=False``: raise ``EngineBusy`` instead of waiting when the
        engine's queue is full (interactive callers). ``batch_size``: at most
        this many of these rows decode at once. ``cancel``: setting it stops them.
        """
        settings = settings or GenerationSettings()
        batch_size = rows_at_once(batch_size)  # before the rows are built: 0 would never make progress
        return self.engine.submit(self.rows(prompts, ws, settings, system_prompt, seeds), tokenizer=self.tokenizer,
                                  cancel=cancel, block=block, max_active=batch_size)

    def texts(self, tokens: Sequence[Sequence[int]], settings: GenerationSettings) -> list[str]:
        """Each row's answer text (cut at a stop string, stripped)."""
        return [self._decode(t, settings) for t in tokens]

    def generate(self, prompts: Prompt | Sequence[Prompt], ws: Preferences, settings: GenerationSettings | None = None,
                 system_prompt: str | None = None, model=None, block: bool = True, batch_size: int | None = None,
                 seeds: Sequence[int] | None = None) -> list[str]:
        """One answer per prompt, row i generated at preference ws[i], through the model's engine (see ``submit``).

        ``model``: generate with another model's plain ``generate`` instead,
        prompted and decoded exactly as this policy (the merged one-model-per-w
        baseline of the benchmarks); the preference then only shapes the prompt
        (conditioning).
        """
        settings = settings or GenerationSettings()
        if model is not None:
            return self._generate_with(model, prompts, ws, settings, system_prompt)
        job = self.submit(prompts, ws, settings, system_prompt, block=block, batch_size=batch_size, seeds=seeds)
        return self.texts(job.result(), settings)

    @torch.inference_mode()
    def _generate_with(self, model, prompts, ws, settings, system_prompt) -> list[str]:
        prompts, w, settings = self._prepare(prompts, ws, settings)
        enc = self.encode(prompts, w, settings, system_prompt)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        out = model.generate(**enc, **self._generate_kwargs(settings, enc["input_ids"].shape[1]))
        return [self._decode(row, settings) for row in out[:, enc["input_ids"].shape[1]:]]

    def stream(self, prompts: Prompt | Sequence[Prompt], ws: Preferences, settings: GenerationSettings | None = None,
               system_prompt: str | None = None, cancel: threading.Event | None = None,
               block: bool = True, min_interval: float = 0.05) -> Iterator[list[str]]:
        """Yield every row's answer so far whenever it grows; setting ``cancel`` (or closing this) stops them.

        At most one update per ``min_interval`` seconds (the final one at once):
        a GPU writes a token every few milliseconds, faster than a page redraws.
        """
        settings = settings or GenerationSettings()
        job = self.submit(prompts, ws, settings, system_prompt, block=block, cancel=cancel)
        try:
            last = None
            for tokens in job.updates(min_interval):
                texts = self.texts(tokens, settings)
                if texts != last:
                    last = texts
                    yield texts
        finally:
            job.cancel()  # a no-op once done; frees the rows of a reader that stopped early

    @torch.inference_mode()
    def logits(self, prompts: Sequence[Prompt], ws: Preferences, system_prompt: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits and the attention mask for each prompt (tests and scoring)."""
        prompts, w, settings = self._prepare(prompts, ws, GenerationSettings(max_new_tokens=1))
        enc = self.encode(prompts, w, settings, system_prompt)
        with self.bank.preference(w):
            return self.model(**enc).logits, enc["attention_mask"]


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
