"""The losses every trainer is built from: sequence log-probabilities, DPO, KTO, SFT.

DPO (Rafailov et al. 2023, eq. 7), as written in docs/methods.md::

    h = beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))]
    L_DPO = -log sigma(h)

with label smoothing eps (conservative DPO) ``-(1-eps) log sigma(h) - eps log sigma(-h)``.
The reference is the base with its LoRA adapters switched off (``lora.reference``),
so no second model is held in memory.

KTO (Ethayarajh et al. 2024, eq. 7), in TRL's ``KTOTrainer`` form: with
r(x, y) = log pi(y|x) - log ref(y|x) and z = max(0, mean r(x, y')) over mismatched
(prompt, completion) pairs of the batch (detached),

    desirable y:    L = w_D (1 - sigma(beta (r(x, y) - z)))
    undesirable y:  L = w_U (1 - sigma(beta (z - r(x, y))))

averaged over every example. Paired data gives one desirable (chosen) and one
undesirable (rejected) example per pair.

Multi-objective trainers reuse ``dpo_loss`` on per-objective batches and combine
the per-example losses themselves (``DPOResult.losses``).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .lora import reference


def sequence_logprobs(model, batch: dict, average: bool = False) -> torch.Tensor:
    """Sum (or mean) of log p(token) over the response tokens of each row: shape [rows].

    ``batch`` has ``input_ids``, ``attention_mask`` and ``completion_mask``
    (1 on response tokens). Log-probs are taken in float32 via logsumexp, so no
    full [rows, length, vocab] log-softmax copy is kept.
    """
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    logits = out.logits[:, :-1].float()
    labels = batch["input_ids"][:, 1:]
    mask = batch["completion_mask"][:, 1:].to(logits.dtype)
    token_logps = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    total = (token_logps * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average else total


@dataclass
class DPOResult:
    loss: torch.Tensor             # scalar, mean over the pairs
    losses: torch.Tensor           # [pairs]
    chosen_rewards: torch.Tensor   # [pairs] beta * (log pi - log ref) on y_w, detached
    rejected_rewards: torch.Tensor
    kl: torch.Tensor | None = None  # KTO: the batch's reference point z

    def metrics(self) -> dict[str, float]:
        margin = self.chosen_rewards - self.rejected_rewards
        out = {"loss": self.loss.item(), "reward_margin": margin.mean().item(),
               "reward_accuracy": (margin > 0).float().mean().item(),
               "chosen_reward": self.chosen_rewards.mean().item(),
               "rejected_reward": self.rejected_rewards.mean().item()}
        return out if self.kl is None else {**out, "kl": self.kl.item()}


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float = 0.1, label_smoothing: float = 0.0) -> DPOResult:
    """The DPO loss of the pairs (see module docstring)."""
    chosen_logratio = policy_chosen_logps - ref_chosen_logps
    rejected_logratio = policy_rejected_logps - ref_rejected_logps
    h = beta * (chosen_logratio - rejected_logratio)
    losses = -(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    return DPOResult(loss=losses.mean(), losses=losses,
                     chosen_rewards=(beta * chosen_logratio).detach(),
                     rejected_rewards=(beta * rejected_logratio).detach())


def kto_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             policy_kl_logps: torch.Tensor, ref_kl_logps: torch.Tensor, beta: float = 0.1,
             desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> DPOResult:
    """The KTO loss of desirable (chosen) and undesirable (rejected) examples (see module docstring).

    ``policy_kl_logps``/``ref_kl_logps``: log-probs of mismatched (prompt, completion)
    pairs, which estimate the reference point z; no gradient flows through z.
    """
    kl = (policy_kl_logps - ref_kl_logps).mean().detach().clamp(min=0)
    chosen_logratio = policy_chosen_logps - ref_chosen_logps
    rejected_logratio = policy_rejected_logps - ref_rejected_logps
    chosen_losses = 1 - torch.sigmoid(beta * (chosen_logratio - kl))
    rejected_losses = 1 - torch.sigmoid(beta * (kl - rejected_logratio))
    losses = torch.cat([desirable_weight * chosen_losses, undesirable_weight * rejected_losses])
    return DPOResult(loss=losses.mean(), losses=losses, chosen_rewards=(beta * chosen_logratio).detach(),
                     rejected_rewards=(beta * rejected_logratio).detach(), kl=kl)


class ReferenceCache:
    """Reference log-probs by (reference, sequence), kept for the process when switched on.

    The reference is frozen, so its log-prob of a sequence never changes: every DPO run on the same pairs
    (each expert, its opposite run, each grid point, Panacea, UPO) can reuse it instead of a forward per step,
    a quarter of a DPO step's compute (TRL's ``precompute_ref_log_probs``, computed lazily). Off by default;
    the demo build switches it on (``cache_reference_logps``). Only for runs whose base weights stay frozen: the
    key names the model by its path, dtype and a checksum of its input embeddings, taken once per model object.
    """

    def __init__(self):
        self.enabled = False
        self.values: dict[bytes, float] = {}
        self.hits = self.misses = 0
        self._models: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def model_key(self, model) -> bytes:
        inner = getattr(model, "module", model)
        if inner not in self._models:
            emb = inner.get_input_embeddings().weight.detach()
            name = getattr(getattr(inner, "config", None), "_name_or_path", "")
            self._models[inner] = f"{name}|{emb.dtype}|{emb.double().sum().item():.10e}".encode()
        return self._models[inner]

    def row_keys(self, model, batch: dict, reference_context) -> list[bytes]:
        ref_name = getattr(reference_context, "cache_key",
                           f"{reference_context.__module__}.{reference_context.__qualname__}")
        head = self.model_key(model) + b"|" + ref_name.encode()
        keys = []
        for ids, attn, comp in zip(batch["input_ids"], batch["attention_mask"], batch["completion_mask"]):
            keep = attn.bool()
            digest = hashlib.sha1(head)
            digest.update(ids[keep].cpu().numpy().tobytes())
            digest.update(comp[keep].cpu().numpy().astype("int8").tobytes())
            keys.append(digest.digest())
        return keys


REFERENCE_CACHE = ReferenceCache()


def cache_reference_logps(enabled: bool = True) -> None:
    """Keep reference log-probs for the rest of the process (see ReferenceCache); ``False`` empties it.
    Either way the hit and miss counts start again."""
    REFERENCE_CACHE.enabled = enabled
    REFERENCE_CACHE.hits = REFERENCE_CACHE.misses = 0
    if not enabled:
        REFERENCE_CACHE.values.clear()


def reference_logprobs(model, batch: dict, reference_context=reference) -> torch.Tensor:
    """``sequence_logprobs`` under ``reference_context(model)`` without gradient, from the cache where it can."""
    cache = REFERENCE_CACHE
    if not cache.enabled:
        with torch.no_grad(), reference_context(model):
            return sequence_logprobs(model, batch)
    keys = cache.row_keys(model, batch, reference_context)
    missing = [i for i, key in enumerate(keys) if key not in cache.values]
    cache.hits, cache.misses = cache.hits + len(keys) - len(missing), cache.misses + len(missing)
    if missing:
        rows = torch.tensor(missing, device=batch["input_ids"].device)
        sub = {k: batch[k].index_select(0, rows) for k in ("input_ids", "attention_mask", "completion_mask")}
        with torch.no_grad(), reference_context(model):
            fresh = sequence_logprobs(model, sub)
        for i, value in zip(missing, fresh.tolist()):
            cache.values[keys[i]] = value
    # sequence_logprobs sums in float32 whatever the model's dtype
    return torch.tensor([cache.values[key] for key in keys], device=batch["input_ids"].device, dtype=torch.float32)


def policy_and_reference_logps(model, batch: dict, reference_context=reference) -> tuple[torch.Tensor, ...]:
    """For a PreferenceCollator batch: (policy chosen, policy rejected, ref chosen, ref rejected).

    The reference forward runs under ``torch.no_grad`` inside
    ``reference_context(model)``: by default every adapter off (theta_0); a
    method whose reference is something else passes its own context manager.
    """
    logps = sequence_logprobs(model, batch)
    ref = reference_logprobs(model, batch, reference_context)
    chosen, rejected = logps.chunk(2)
    ref_chosen, ref_rejected = ref.chunk(2)
    return chosen, rejected, ref_chosen, ref_rejected


def chosen_nll_per_token(chosen_logps: torch.Tensor, batch: dict) -> torch.Tensor:
    """Mean over pairs of the chosen answer's NLL per completion token: RPO's likelihood term (Pang et al. 2024,
    arXiv 2404.19733), which keeps the chosen answers likely while DPO pushes the rejected ones down."""
    n_tokens = batch["completion_mask"][:, 1:].sum(-1).chunk(2)[0].clamp(min=1).to(chosen_logps.dtype)
    return -(chosen_logps / n_tokens).mean()


def dpo_batch_loss(model, batch: dict, beta: float = 0.1, label_smoothing: float = 0.0,
                   reference_context=reference) -> DPOResult:
    """DPO loss of a PreferenceCollator batch on a LoRA model (reference: adapters off, unless given)."""
    return dpo_loss(*policy_and_reference_logps(model, batch, reference_context),
                    beta=beta, label_smoothing=label_smoothing)


def sft_loss(model, batch: dict) -> torch.Tensor:
    """Mean negative log-likelihood per response token over the batch (padding and prompt excluded)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    logits = out.logits[:, :-1].float()
    labels = batch["input_ids"][:, 1:].masked_fill(batch["completion_mask"][:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)
