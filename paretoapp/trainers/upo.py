"""UPO (arXiv 2405.17956, TMLR 2025; v1 "HPO"): preference loss plus offline auxiliary objectives.

What is the paper's (abstract and v1 introduction, docs/methods.md "UPO"):

* a **preference term built on KTO** ("roughly ten additional lines of model
  code on top of KTO"): ``preference_loss: kto`` here, KTO as TRL's
  ``KTOTrainer`` computes it (``losses.kto_loss``) on the same pairs: each
  chosen response is a desirable example, each rejected one an undesirable
  example, the reference point z estimated from mismatched (prompt, completion)
  pairs of the batch;
* auxiliary *designer* objectives a_j(x, y) (toxicity, obscenity, reading
  level, ...) optimised **offline** as an **advantage-weighted maximum-likelihood
  term on the data's own responses**: no sampling from the policy, no
  clipping, no importance weights, no bootstrapping.

What is this project's (the method section could not be read), all settings:

* ``preference_loss: dpo`` is the **default** (the same pairs through DPO);
* the exact weighting: a softmax over the batch of the advantages, a
  temperature ``tau`` and the sum over the batch::

      L = L_pref - gamma * sum_{(x,y) in batch} softmax_batch(A(x,y) / tau) * log pi(y|x)
      A(x, y) = sum_j c_j a_j(x, y)

  The softmax weights sum to 1, so the sum is already a weighted *mean* of the
  log-likelihoods (no further division by the batch size). There is no
  baseline: a softmax over the batch is unchanged by subtracting a constant, so
  a batch-mean baseline would change nothing, and a per-prompt baseline b(x) (a
  value function, as in AWR) is not estimated.
  The batch is every response of the preference batch (chosen and rejected);
  the softmax weights are constants (no gradient through them). With gamma = 0
  the loss *is* the preference loss (a test checks it). ``likelihood: mean``
  uses the per-token mean log-likelihood (``sum`` for the sequence sum);
  ``normalise: true`` z-scores each a_j over the training data so the c_j weigh
  comparable scales;
* **the family indexed by w**: the objectives are the preference objective
  followed by the auxiliary ones; a preference w = (w_pref, w_aux_1..m) on the
  simplex trains one adapter with gamma(w) = ``gamma`` * (1 - w_pref) and
  c = w_aux / (1 - w_pref). The vertex w_pref = 1 is the plain preference loss.
  One LoRA adapter per grid point; the gate interpolates the nearest trained
  points (``gate_mode``).

The auxiliary objectives are ``paretoapp.scorers`` scorers (e.g. ``not_profane``,
``refusal``, ``length_words``, any ``hf:`` classifier), scored once on every
response of the data before training, oriented so that larger is better.

    paretoapp train upo --config upo.yaml
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .cli import method_main
from .config import ConfigError, MethodConfig, to_dict
from .data import PreferenceCollator, tokenize_pair, train_eval_pairs
from .loop import on_main_process, start_run, train_adapter
from .lora import attach_lora, load_run_base, reference
from .losses import dpo_loss, kto_loss, reference_logprobs, sequence_logprobs
from .multi_objective import build_objective_scorers, point_label, preference_grid, score_responses, write_anchor_family
from .objective_adapter import finished_run, run_recipe, write_recipe


@dataclass
class AuxiliarySpec:
    """A designer objective: a name (the family's objective) and a paretoapp.scorers scorer spec.

    ``higher_is_better``: which way of the scorer's output to push; default (null)
    the scorer's own direction (e.g. ``profanity`` is lower-is-better).
    """
    name: str
    scorer: str = ""
    higher_is_better: bool | None = None


PREFERENCE_LOSSES = ("dpo", "kto")


@dataclass
class UPOConfig(MethodConfig):
    auxiliary: list[AuxiliarySpec] = field(default_factory=list)
    preference_loss: str = "dpo"          # "dpo" (default) or "kto" (the paper's base, TRL's KTO form)
    gamma: float = 1.0                    # auxiliary weight at w_pref = 0
    tau: float = 1.0                      # softmax temperature of the advantages
    likelihood: str = "mean"              # "mean" (per token) or "sum" log pi(y|x)
    normalise: bool = True                # z-score each auxiliary score over the data
    grid: list[list[float]] | None = None
    grid_resolution: int = 2              # k=2: w_pref in {1, 0.5, 0}
    gate_mode: str = "interpolate"

    def check(self) -> None:
        super().check()
        if len(self.objectives) != 1:
            raise ConfigError("UPO takes exactly one preference objective (with pairs) in 'objectives:'; "
                              "designer objectives go in 'auxiliary:' with a scorer each")
        if not self.auxiliary:
            raise ConfigError("UPO needs at least one auxiliary objective: auxiliary: [{name: ..., scorer: ...}]")
        if self.likelihood not in ("mean", "sum") or self.tau <= 0 or self.gamma < 0:
            raise ConfigError("need likelihood in (mean, sum), tau > 0 and gamma >= 0")
        if self.preference_loss not in PREFERENCE_LOSSES:
            raise ConfigError(f"preference_loss must be one of {PREFERENCE_LOSSES}, got {self.preference_loss!r}")
        if self.gate_mode not in ("nearest", "interpolate"):
            raise ConfigError(f"gate_mode must be 'nearest' or 'interpolate', got {self.gate_mode!r}")
        preference_grid(self.k, self.grid, self.grid_resolution)

    @property
    def k(self) -> int:
        return 1 + len(self.auxiliary)


def weights_for(w: Sequence[float], gamma_max: float) -> tuple[float, list[float]]:
    """Preference (w_pref, w_aux...) -> (gamma, c): gamma = gamma_max (1 - w_pref), c = w_aux / (1 - w_pref)."""
    rest = 1.0 - float(w[0])
    if rest <= 1e-12:
        return 0.0, [0.0] * (len(w) - 1)
    return gamma_max * rest, [float(v) / rest for v in w[1:]]


# --------------------------------------------------------------------------- the loss
@dataclass
class UPOCollator:
    """PreferenceCollator batch plus ``aux`` [2B, m]: the rows' auxiliary scores (chosen rows, then rejected).

    ``kto``: also ``kl``, a batch of mismatched (prompt, completion) rows for KTO's
    reference point (``mismatched_pairs``).
    """
    tokenizer: object
    max_length: int | None = None
    max_prompt_length: int | None = None
    kto: bool = False

    def __post_init__(self):
        self.inner = PreferenceCollator(self.tokenizer, self.max_length, self.max_prompt_length)

    def __call__(self, pairs: list[dict]) -> dict:
        tokenized = [tokenize_pair(self.tokenizer, p) for p in pairs]
        batch = self.inner(tokenized)
        if self.kto:
            batch["kl"] = self.inner(mismatched_pairs(tokenized))
        batch["aux"] = torch.tensor([p["aux_chosen"] for p in pairs] + [p["aux_rejected"] for p in pairs],
                                    dtype=torch.float32)
        return batch


def mismatched_pairs(tokenized: list[dict]) -> list[dict]:
    """Tokenised pairs -> pairs whose rows are KTO's mismatched (prompt, completion) examples.

    The batch's examples are [chosen_1..chosen_B, rejected_1..rejected_B]; example j
    takes the completion of example j - 1 (cyclically), as TRL's ``KTOTrainer``
    builds ``KL_completion_ids``. Collated by ``PreferenceCollator`` the rows keep
    the batch's order, so row j holds prompt j with a completion that is not its own.
    """
    completions = [t["chosen_ids"] for t in tokenized] + [t["rejected_ids"] for t in tokenized]
    shifted = completions[-1:] + completions[:-1]
    n = len(tokenized)
    return [{"prompt_ids": t["prompt_ids"], "chosen_ids": shifted[j], "rejected_ids": shifted[n + j]}
            for j, t in enumerate(tokenized)]



def upo_loss(model, batch: dict, c: Sequence[float], gamma: float, tau: float = 1.0, beta: float = 0.1,
             likelihood: str = "mean", label_smoothing: float = 0.0, reference_context=reference,
             preference_loss: str = "dpo"):
    """L_pref - gamma * sum_b softmax(A_b / tau) log pi(y_b|x_b); returns (loss, preference result, metrics).

    L_pref is DPO, or KTO (``preference_loss: kto``; the batch then needs ``kl`` rows, ``UPOCollator(kto=True)``).
    """
    total = sequence_logprobs(model, batch)
    ref = reference_logprobs(model, batch, reference_context)
    if preference_loss == "kto":
        with torch.no_grad():
            kl_policy = sequence_logprobs(model, batch["kl"])
        kl_ref = reference_logprobs(model, batch["kl"], reference_context)
        pref = kto_loss(*total.chunk(2), *ref.chunk(2), kl_policy, kl_ref, beta=beta)
    else:
        pref = dpo_loss(*total.chunk(2), *ref.chunk(2), beta=beta, label_smoothing=label_smoothing)
    logp = total / batch["completion_mask"][:, 1:].sum(-1).clamp(min=1) if likelihood == "mean" else total
    adv = batch["aux"].to(total) @ torch.as_tensor(list(c), dtype=total.dtype, device=total.device)
    weights = torch.softmax(adv / tau, dim=0).detach()
    awr = (weights * logp).sum()
    loss = pref.loss - gamma * awr
    return loss, pref, {"loss": loss.item(), f"{preference_loss}_loss": pref.loss.item(), "awr_loglik": awr.item(),
                        **{f"{preference_loss}_{k}": v for k, v in pref.metrics().items() if k != "loss"}}


# --------------------------------------------------------------------------- data
def score_pairs(pairs: list[dict], scorers: Sequence, stats: tuple[np.ndarray, np.ndarray] | None = None):
    """Attach ``aux_chosen``/``aux_rejected`` (oriented, z-scored with ``stats`` = (mean, std) when given)."""
    prompts = [p["prompt"] for p in pairs]
    chosen = score_responses(scorers, prompts, [p["chosen"] for p in pairs])
    rejected = score_responses(scorers, prompts, [p["rejected"] for p in pairs])
    if stats is not None:
        mean, std = stats
        chosen, rejected = (chosen - mean) / std, (rejected - mean) / std
    return [{**p, "aux_chosen": a.tolist(), "aux_rejected": b.tolist()} for p, a, b in zip(pairs, chosen, rejected)]


def scored_data(cfg: UPOConfig, scorers: Sequence) -> tuple[list[dict], list[dict], dict]:
    o = cfg.objectives[0]
    if o.data is None:
        raise ConfigError(f"objective {o.name!r} needs preference data (UPO trains on its pairs)")
    spec = dataclasses.replace(o.data, objective=o.data.objective or o.name)
    train_rows, eval_rows = train_eval_pairs(spec, seed=cfg.train.seed)
    raw = score_pairs(train_rows, scorers)
    stats = None
    if cfg.normalise:
        allv = np.array([r["aux_chosen"] for r in raw] + [r["aux_rejected"] for r in raw])
        std = allv.std(axis=0)
        stats = (allv.mean(axis=0), np.where(std > 0, std, 1.0))
    train_rows = score_pairs(train_rows, scorers, stats)
    eval_rows = score_pairs(eval_rows, scorers, stats) if eval_rows else []
    record = {"mean": stats[0].tolist(), "std": stats[1].tolist()} if stats else {}
    return train_rows, eval_rows, record


# --------------------------------------------------------------------------- training
class _Directed:
    """A plain scoring callable with the direction the config gives it."""

    def __init__(self, fn, higher_is_better: bool):
        self.fn, self.higher_is_better = fn, higher_is_better
        self.name = getattr(fn, "name", getattr(fn, "__name__", "callable"))

    def __call__(self, prompts, responses):
        return self.fn(prompts, responses)


def train_point(cfg: UPOConfig, w: list[float], train_rows, eval_rows, scorer_specs: list) -> Path:
    gamma, c = weights_for(w, cfg.gamma)
    run_dir = cfg.adapters_path / f"upo-{point_label(w)}"
    recipe = run_recipe(cfg, w=w, gamma=gamma, c=c, tau=cfg.tau, likelihood=cfg.likelihood, normalise=cfg.normalise,
                        scorers=scorer_specs, data=to_dict(cfg.objectives[0].data),
                        **({"preference_loss": cfg.preference_loss} if cfg.preference_loss != "dpo" else {}))
    if (done := finished_run(run_dir, recipe)) is not None:
        return done
    model, tokenizer = load_run_base(cfg)
    torch.manual_seed(cfg.train.seed)
    model = attach_lora(model, cfg.lora, adapter_name="default")
    collate = UPOCollator(tokenizer, cfg.train.max_length, cfg.train.max_prompt_length,
                          kto=cfg.preference_loss == "kto")

    def loss_fn(m, batch):
        loss, _, metrics = upo_loss(m, batch, c, gamma, cfg.tau, cfg.train.beta, cfg.likelihood,
                                    cfg.train.label_smoothing, preference_loss=cfg.preference_loss)
        return loss, metrics

    write_recipe(run_dir, recipe)
    return train_adapter(model, "default", train_rows, collate, loss_fn, cfg.train, run_dir, eval_rows=eval_rows)


def train(cfg: UPOConfig, scorers: Sequence | None = None) -> Path:
    """Score the data with the auxiliary scorers, train one adapter per grid point, write the family.

    ``scorers`` (one callable per auxiliary objective) overrides the config's scorer specs.
    """
    start_run(cfg)
    if scorers is None:
        scorers = build_objective_scorers([a.scorer for a in cfg.auxiliary], cfg, len(cfg.auxiliary),
                                          "UPO's auxiliary objectives")
    if len(scorers) != len(cfg.auxiliary):
        raise ConfigError(f"{len(cfg.auxiliary)} auxiliary objectives but {len(scorers)} scorers")
    # the config's direction wins; otherwise the scorer's own (a plain callable: higher is better)
    scorers = [_Directed(s, a.higher_is_better if a.higher_is_better is not None
                         else getattr(s, "higher_is_better", True)) for s, a in zip(scorers, cfg.auxiliary)]
    specs = [a.scorer or s.name for a, s in zip(cfg.auxiliary, scorers)]
    train_rows, eval_rows, stats = scored_data(cfg, scorers)
    points = preference_grid(cfg.k, cfg.grid, cfg.grid_resolution)
    adapters = {point_label(w): train_point(cfg, w, train_rows, eval_rows, specs) for w in points}
    objectives = [cfg.objectives[0].name] + [a.name for a in cfg.auxiliary]

    def write():
        # the family's objectives: the preference objective, then the designer objectives
        saved = cfg.objectives
        cfg.objectives = [dataclasses.replace(saved[0])] + [
            dataclasses.replace(saved[0], name=a.name, data=None, higher_is_better=bool(s.higher_is_better))
            for a, s in zip(cfg.auxiliary, scorers)]
        try:
            return write_anchor_family(
                cfg, "upo", adapters, points, cfg.gate_mode,
                training={"preference_loss": cfg.preference_loss, "gamma_max": cfg.gamma, "tau": cfg.tau,
                          "likelihood": cfg.likelihood,
                          "scorers": specs, "aux_normalisation": stats,
                          "weights": {point_label(w): dict(zip(("gamma", "c"), weights_for(w, cfg.gamma)))
                                      for w in points}},
                description=f"UPO: {cfg.preference_loss.upper()} on {objectives[0]} plus advantage-weighted likelihood of "
                            f"{', '.join(objectives[1:])}; one adapter per auxiliary weight")
        finally:
            cfg.objectives = saved
    on_main_process(write)
    return cfg.family_path


main = method_main("upo")


if __name__ == "__main__":
    main()
