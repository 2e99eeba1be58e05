"""Hugging Face reward models as scorers: by Hub id, local folder or short preset name.

The pitfalls this module exists to get right: no double BOS after a chat template, the score read at
the same token transformers would read for the row on its own (so scores do not move with padding or
batch size), and a one-line error for a model that is not a classifier. Presets for the reward models
the papers use are in :data:`PRESETS` (``ray-helpful``, ``beaver-cost`` ...).
"""

from __future__ import annotations

import re

import torch

from ..errors import ScorerError, one_line
from .base import Scorer
from .batching import length_sorted_batches, progress, right_pad


def _strip_double_bos(ids: list[int], bos_id: int | None) -> list[int]:
    """A chat template that writes BOS plus a tokenizer that adds one gives two; keep one."""
    while bos_id is not None and len(ids) >= 2 and ids[0] == bos_id and ids[1] == bos_id:
        ids = ids[1:]
    return ids


BEAVER_TEMPLATE = "BEGINNING OF CONVERSATION: USER: {prompt} ASSISTANT:{response}"
HH_PROMPT_TEMPLATE = "\n\nHuman: {prompt} \n\nAssistant:"


class HFRewardScorer(Scorer):
    """A Hugging Face sequence-classification reward model, by Hub id or local folder.

    ``input_format`` says how a (prompt, response) row becomes model input:

    * ``"chat"``: the tokenizer's chat template over a user and an assistant turn,
      tokenized without adding special tokens again (no double BOS);
    * ``"pair"``: ``tokenizer(prompt_template.format(prompt=...), response)`` as a
      text pair, the way the Ray2333 GPT-2 and OpenAssistant DeBERTa reward models
      are documented to be called;
    * ``"text"``: one string ``template.format(prompt=..., response=...)``;
    * ``"auto"``: ``chat`` if the tokenizer has a chat template, else ``pair``.

    The score is the single logit (``num_labels == 1``), or for a classifier the
    softmax probability (``label_output="prob"``) or logit of ``label`` (a label
    name from ``id2label`` or an index).  For decoder models the logit is read at
    the position transformers reads for the row *on its own* (its last token that
    is not the pad token), computed on right-padded batches, so scores do not
    depend on the batch or its padding.

    PKU beaver models (``LlamaForScore``, from the safe-rlhf package) are loaded
    by ``loader="beaver"``: their weights are read into
    ``LlamaForSequenceClassification`` with ``score_head`` renamed to ``score``
    (same computation: a bias-free linear head on the last token).
    """

    def __init__(
        self,
        model_id: str,
        name: str | None = None,
        higher_is_better: bool = True,
        label: str | int | None = None,
        label_output: str = "prob",
        input_format: str = "auto",
        prompt_template: str = "{prompt}",
        template: str = BEAVER_TEMPLATE,
        loader: str = "auto",
        revision: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        max_length: int = 1024,
        trust_remote_code: bool = False,
        show_progress: bool = True,
        allow_pickle: bool | None = None,
    ):
        if input_format not in ("auto", "chat", "pair", "text"):
            raise ScorerError(f"input_format must be auto, chat, pair or text, not {input_format!r}")
        if label_output not in ("prob", "logit"):
            raise ScorerError(f"label_output must be 'prob' or 'logit', not {label_output!r}")
        self.model_id, self.revision = str(model_id), revision
        self.name = name or _default_name(str(model_id))
        self.higher_is_better = higher_is_better
        self.label_output, self.prompt_template, self.template = label_output, prompt_template, template
        self.batch_size, self.max_length, self.show_progress = batch_size, max_length, show_progress
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = _resolve_dtype(dtype, self.device)
        self.model, self.tokenizer = _load_classifier(self.model_id, loader, revision, self.dtype, trust_remote_code,
                                                      allow_pickle)
        self.model.to(self.device).eval().requires_grad_(False)
        if self.tokenizer.pad_token is None:
            # only used to fill padding: the score position is found from the attention mask
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.input_format = input_format if input_format != "auto" else (
            "chat" if getattr(self.tokenizer, "chat_template", None) else "pair"
        )
        self.label_index = _label_index(self.model.config, label, self.model_id)

    def spec(self) -> dict:
        return {
            **super().spec(),
            "model": self.model_id,
            "revision": self.revision,
            "label": self.label_index,
            "label_output": self.label_output,
            "input_format": self.input_format,
            "prompt_template": self.prompt_template,
            "template": self.template if self.input_format == "text" else None,
            "dtype": str(self.dtype),
            "max_length": self.max_length,
        }

    # -- input building
    def encode(self, prompt: str, response: str) -> list[int]:
        """Token ids of one row, exactly as the model sees it."""
        tok = self.tokenizer
        if self.input_format == "chat":
            text = tok.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
        elif self.input_format == "pair":
            ids = tok(self.prompt_template.format(prompt=prompt), response)["input_ids"]
        else:
            ids = tok(self.template.format(prompt=prompt, response=response))["input_ids"]
        ids = _strip_double_bos(list(ids), tok.bos_token_id)
        if len(ids) > self.max_length:  # keep the end: that is where a decoder's score is read
            ids = ids[-self.max_length :] if self._is_decoder_head() else ids[: self.max_length]
        return ids

    def _is_decoder_head(self) -> bool:
        return isinstance(getattr(self.model, "score", None), torch.nn.Linear)

    # -- scoring
    @torch.no_grad()
    def logits(self, rows: list[list[int]]) -> torch.Tensor:
        """Pooled logits [n, num_labels] in float32 for already-encoded rows."""
        pad = self.tokenizer.pad_token_id
        out = torch.zeros((len(rows), self.model.config.num_labels), dtype=torch.float32)
        batches = length_sorted_batches([len(r) for r in rows], self.batch_size)
        for batch in progress(batches, f"scoring {self.name}", self.show_progress and len(batches) > 1):
            ids, mask = right_pad([rows[i] for i in batch], pad, self.device)
            if self._is_decoder_head():
                hidden = self.model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
                pos = torch.tensor([self._score_position(rows[i]) for i in batch], device=self.device)
                pooled = self.model.score(hidden[torch.arange(len(batch), device=self.device), pos])
            else:  # encoders pool their own first token; padding is masked out
                pooled = self.model(input_ids=ids, attention_mask=mask).logits
            out[torch.tensor(batch)] = pooled.float().cpu()
        return out

    def _score_position(self, row: list[int]) -> int:
        """Where transformers reads the score for this row alone: its last token that is not the pad token."""
        pad = self.model.config.pad_token_id
        if pad is None:
            return len(row) - 1
        for p in range(len(row) - 1, -1, -1):
            if row[p] != pad:
                return p
        return len(row) - 1

    def _score(self, prompts, responses):
        logits = self.logits([self.encode(p, r) for p, r in zip(prompts, responses)])
        if self.label_index is None:
            return logits[:, 0].numpy()
        if self.label_output == "prob":
            return torch.softmax(logits, dim=-1)[:, self.label_index].numpy()
        return logits[:, self.label_index].numpy()


def _default_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", model_id.rstrip("/").split("/")[-1]).strip("_").lower() or "reward"


def _resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ScorerError(f"unknown dtype {dtype!r}; use one of {sorted(table)}")
    return table[dtype]


def _label_index(config, label, model_id: str) -> int | None:
    n = config.num_labels
    if label is None:
        if n != 1:
            names = [config.id2label[i] for i in range(n)] if config.id2label else list(range(n))
            raise ScorerError(
                f"{model_id} is a classifier with {n} labels {names}; choose one with label=NAME "
                f"(e.g. 'hf:{model_id}?label={names[-1]}')"
            )
        return None
    if isinstance(label, int) or str(label).isdigit():
        idx = int(label)
    else:
        lookup = {str(v).lower(): int(k) for k, v in (config.id2label or {}).items()}
        if str(label).lower() not in lookup:
            raise ScorerError(f"{model_id} has no label {label!r}; its labels are {sorted(lookup)}")
        idx = lookup[str(label).lower()]
    if not 0 <= idx < n:
        raise ScorerError(f"label index {idx} is out of range for {model_id}, which has {n} labels")
    return idx


_CLASSIFIER_SUFFIXES = ("ForSequenceClassification", "ForRewardModeling")


def _load_classifier(model_id: str, loader: str, revision, dtype, trust_remote_code: bool,
                     allow_pickle: bool | None = None):
    """(model, tokenizer) for a reward model, refusing anything that is not one.

    Weights are read from safetensors only, as for base models: a folder or repo with only pickle weights is
    refused unless ``allow_pickle`` (the CLI's --allow-pickle, or PARETOAPP_ALLOW_PICKLE=1) says to trust it.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from ..models import check_base_folder, local_base_folder, pickle_allowed

    allow = pickle_allowed(allow_pickle)
    try:
        folder = local_base_folder(model_id)
        if folder is not None:
            check_base_folder(folder, allow, tokenizer=False)
    except ValueError as exc:
        raise ScorerError(f"reward model {exc}") from None

    try:
        config = AutoConfig.from_pretrained(model_id, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise ScorerError(
            f"cannot load reward model {model_id!r}: {e}. Give a Hub id (needs network) or a local folder "
            "with config.json"
        ) from e
    archs = list(getattr(config, "architectures", None) or [])
    if loader == "auto" and any(a == "LlamaForScore" for a in archs):
        loader = "beaver"
    tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision, trust_remote_code=trust_remote_code)
    if loader == "beaver":
        from transformers import LlamaForSequenceClassification

        if getattr(config, "bias", False):
            raise ScorerError(f"{model_id} has a score head with a bias, which the beaver loader does not support")
        config.num_labels = int(getattr(config, "score_dim", 1) or 1)
        config.architectures = ["LlamaForSequenceClassification"]
        if config.pad_token_id is None:
            config.pad_token_id = tokenizer.pad_token_id
        model, info = _from_pretrained(
            LlamaForSequenceClassification, model_id, allow, config=config, revision=revision, dtype=dtype,
            key_mapping={r"^score_head\.": "score."}, output_loading_info=True,
        )
    elif loader == "auto":
        if not any(a.endswith(_CLASSIFIER_SUFFIXES) for a in archs):
            hint = archs[0] if archs else "no architecture recorded"
            raise ScorerError(
                f"{model_id!r} is not a sequence-classification reward model ({hint}); a reward scorer needs a "
                "checkpoint trained with a classification/score head (e.g. *ForSequenceClassification)"
            )
        model, info = _from_pretrained(
            AutoModelForSequenceClassification, model_id, allow, revision=revision, dtype=dtype,
            trust_remote_code=trust_remote_code, output_loading_info=True,
        )
    else:
        raise ScorerError(f"unknown loader {loader!r}; use 'auto' or 'beaver'")
    head_missing = [k for k in info.get("missing_keys", []) if k.split(".")[0] in ("score", "classifier", "score_head")]
    if head_missing:
        raise ScorerError(
            f"{model_id!r} has no trained score head (missing {head_missing}); transformers would use random weights"
        )
    return model, tokenizer


def _from_pretrained(cls, model_id: str, allow_pickle: bool, **kwargs):
    """``cls.from_pretrained`` reading safetensors only unless pickle is allowed; a Hub repo with only pickle
    weights is refused in one line."""
    from ..models import ALLOW_PICKLE_HINT

    try:
        return cls.from_pretrained(model_id, use_safetensors=None if allow_pickle else True, **kwargs)
    except OSError as exc:
        if allow_pickle:
            raise
        raise ScorerError(f"cannot load reward model {model_id!r} from safetensors ({one_line(exc)[:200]}); if it "
                          f"holds only pickle weights, convert them to safetensors, or {ALLOW_PICKLE_HINT}") from None


# Reward models the papers use (methods.md), by short name.
PRESETS: dict[str, dict] = {
    "ray-helpful": dict(model_id="Ray2333/gpt2-large-helpful-reward_model", name="helpful_rm",
                        input_format="pair", prompt_template=HH_PROMPT_TEMPLATE),
    "ray-harmless": dict(model_id="Ray2333/gpt2-large-harmless-reward_model", name="harmless_rm",
                         input_format="pair", prompt_template=HH_PROMPT_TEMPLATE),
    "oasst-deberta": dict(model_id="OpenAssistant/reward-model-deberta-v3-large-v2", name="oasst_reward",
                          input_format="pair"),
    "beaver-reward": dict(model_id="PKU-Alignment/beaver-7b-v1.0-reward", name="beaver_reward",
                          loader="beaver", input_format="text", template=BEAVER_TEMPLATE),
    "beaver-cost": dict(model_id="PKU-Alignment/beaver-7b-v1.0-cost", name="beaver_cost", higher_is_better=False,
                        loader="beaver", input_format="text", template=BEAVER_TEMPLATE),
    "beaver-unified-reward": dict(model_id="PKU-Alignment/beaver-7b-unified-reward", name="beaver_unified_reward",
                                  loader="beaver", input_format="text", template=BEAVER_TEMPLATE),
    "beaver-unified-cost": dict(model_id="PKU-Alignment/beaver-7b-unified-cost", name="beaver_unified_cost",
                                higher_is_better=False, loader="beaver", input_format="text",
                                template=BEAVER_TEMPLATE),
}
