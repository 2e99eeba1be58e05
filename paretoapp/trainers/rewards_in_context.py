"""Rewards-in-Context (Yang et al., arXiv 2402.10207): SFT with the reward scores written into the prompt.

As in the paper and its released code (docs/methods.md, "Baselines"):

1. Score every response of the data (chosen *and* rejected, ``responses:
   both``) with one reward model per objective (``scorers``, any
   ``paretoapp.scorers`` spec), oriented so that larger is better.
2. z-normalise each objective's scores over the training set; the prompt
   carries them rounded to 0.1: ``{prompt} <rm1_score> {s1} <rm2_score> {s2}``
   (``paretoapp.conditioning.Conditioning.render``, the same renderer the
   runtime uses, so training and inference text are identical).
   Departure from the released code, which rounds every raw reward to 0.1
   *before* z-scoring (``get_rewards`` in ``ric/utils.py``): here the raw
   scores are z-scored unrounded unless ``raw_decimals`` is set (``1`` is the
   released behaviour; off by default because a scorer with outputs in [0, 1]
   would lose most of its resolution).
3. SFT (loss on the response tokens only) of one LoRA adapter on those rows.
4. Inference: a preference w becomes target scores written into the prompt,
   c(w), with the released code's mappings (``paretoapp.conditioning``):
   ``linear`` t_i = low_i + w_i (high_i - low_i); ``l2`` w / ||w||_2 in place of
   w (what the released evaluation uses); ``linf`` (the released function's
   default) the largest weight asks for high, every other objective for
   low_i + min(k w_i, 1) (high_i - low_i); targets rounded to 0.1.
   low/high (``bounds``): ``data`` (default) the smallest and largest
   normalised training score per objective; ``normal`` the min/max of
   ``bounds_draws`` (50,000) standard-normal draws per objective from numpy
   seeded with ``bounds_seed`` (8888), as the released evaluation takes them
   (about -3.9..4.1 and -4.0..4.2). ``target_low``/``target_high`` override both.

The family is the SFT adapter as one block with a constant gain of 1 (no
preference gains) plus ``manifest.conditioning``. The chat template and the
family's system prompt are applied to training prompts exactly as
``paretoapp.generate.Policy.render`` applies them at inference.

Not implemented: RiC's optional online stage (sample at the front's edges,
keep answers above the 0.7 quantile, continue SFT).

    paretoapp train rewards_in_context --config ric.yaml
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from paretoapp.conditioning import MAPPINGS, NORMAL_DRAWS, NORMAL_SEED, Conditioning, normal_bounds
from paretoapp.gates import Gate

from .cli import method_main
from .config import ConfigError, MethodConfig, to_dict
from .data import SFTCollator, train_eval_pairs
from .family_io import write_family
from .loop import on_main_process, start_run, train_adapter
from .lora import attach_lora, load_run_base
from .multi_objective import build_objective_scorers, prompt_messages, score_responses
from .objective_adapter import finished_run, make_loss_fn, run_recipe, write_recipe

BOUNDS = ("data", "normal")


@dataclass
class RiCConfig(MethodConfig):
    scorers: list[str] | None = None        # one paretoapp.scorers spec per objective
    tags: list[str] | None = None           # default <rm1_score>, <rm2_score>, ...
    mapping: str = "linear"                 # "linear", "l2" (the released evaluation) or "linf" (released default)
    bounds: str = "data"                    # low/high: "data" (training scores' min/max) or "normal" (released eval)
    bounds_seed: int = NORMAL_SEED          # bounds: normal -- numpy seed of the standard-normal draws
    bounds_draws: int = NORMAL_DRAWS        # bounds: normal -- draws per objective
    target_low: list[float] | None = None   # overrides the low bound per objective
    target_high: list[float] | None = None  # overrides the high bound
    normalise: bool = True                  # z-score each objective over the training set
    decimals: int = 1                       # rounding of the scores in the prompt (paper: 0.1)
    responses: str = "both"                 # "both" (chosen and rejected, the paper) or "chosen"
    raw_decimals: int | None = None         # round the raw scores before z-scoring (released code: 1); None: off

    def check(self) -> None:
        super().check()
        k = len(self.objectives)
        if self.mapping not in MAPPINGS:
            raise ConfigError(f"mapping must be one of {MAPPINGS}, got {self.mapping!r}"
                              + ("; 'max' is now the released code's 'linf'" if self.mapping == "max" else ""))
        if self.bounds not in BOUNDS:
            raise ConfigError(f"bounds must be one of {BOUNDS}, got {self.bounds!r}")
        if self.bounds_draws < 2:
            raise ConfigError(f"bounds_draws must be at least 2, got {self.bounds_draws}")
        if self.responses not in ("both", "chosen"):
            raise ConfigError("responses must be 'both' or 'chosen'")
        if self.raw_decimals is not None and self.raw_decimals < 0:
            raise ConfigError(f"raw_decimals must be 0 or more (or null: no rounding), got {self.raw_decimals}")
        for name in ("tags", "target_low", "target_high"):
            v = getattr(self, name)
            if v is not None and len(v) != k:
                raise ConfigError(f"{name} needs one value per objective ({k}), got {v}")
        if not any(o.data for o in self.objectives):
            raise ConfigError("RiC trains on the objectives' data: give at least one objective a data source")

    def tag_list(self) -> list[str]:
        return self.tags or [f"<rm{i + 1}_score>" for i in range(len(self.objectives))]


# --------------------------------------------------------------------------- prompts
def conditioned_prompt(tokenizer, prompt, scores: Sequence[float], conditioning: Conditioning,
                       system_prompt: str | None = None):
    """The training prompt for ``scores``, built as ``Policy.render`` builds the inference prompt.

    With a chat template: chat messages (the collator applies the template with
    the generation prompt). Without: the runtime's plain ``Human:/Assistant:`` text.
    """
    from paretoapp.generate import render_messages, with_system
    messages = prompt_messages(prompt)
    if not messages or messages[-1]["role"] != "user":
        raise ConfigError(f"a prompt must end with a user message: {prompt!r}")
    messages[-1]["content"] = conditioning.render(messages[-1]["content"], scores)
    messages = with_system(messages, system_prompt)
    if getattr(tokenizer, "chat_template", None):
        return messages
    return render_messages(tokenizer, messages, "chat")


# --------------------------------------------------------------------------- data
def responses_of(cfg: RiCConfig) -> tuple[list[dict], list[dict]]:
    """Unique (prompt, response) rows from every objective's pairs: (train, held-out)."""
    def unique(pairs):
        seen, out = set(), []
        for p in pairs:
            for key in ("chosen", "rejected") if cfg.responses == "both" else ("chosen",):
                row = {"prompt": p["prompt"], "response": p[key]}
                sig = json.dumps(row, sort_keys=True)
                if sig not in seen:
                    seen.add(sig)
                    out.append(row)
        return out

    train, held = [], []
    for o in cfg.objectives:
        if o.data is None:
            continue
        t, e = train_eval_pairs(dataclasses.replace(o.data, objective=o.data.objective or o.name), cfg.train.seed)
        train += t
        held += e
    return unique(train), unique(held)


def conditioning_for(cfg: RiCConfig, z: np.ndarray) -> Conditioning:
    """The conditioning: tags, the mapping and low/high from the training scores ``z`` or the normal reference."""
    if cfg.bounds == "normal":
        low, high = normal_bounds(z.shape[1], cfg.bounds_seed, cfg.bounds_draws)
        extra = {"bounds": "normal", "seed": cfg.bounds_seed, "draws": cfg.bounds_draws}
    else:
        low, high = z.min(axis=0).tolist(), z.max(axis=0).tolist()
        extra = {"bounds": "data"}
    low, high = cfg.target_low or low, cfg.target_high or high
    return Conditioning(tags=cfg.tag_list(), low=list(map(float, low)), high=list(map(float, high)),
                        mapping=cfg.mapping, decimals=cfg.decimals, extra=extra)


def build_rows(cfg: RiCConfig, tokenizer, scorers: Sequence):
    """SFT rows with conditioned prompts, the conditioning, and the normalisation record."""
    train, held = responses_of(cfg)

    def scores_of(items):
        raw = score_responses(scorers, [r["prompt"] for r in items], [r["response"] for r in items])
        return raw if cfg.raw_decimals is None else np.round(raw, cfg.raw_decimals)

    raw = scores_of(train)
    mean = raw.mean(axis=0) if cfg.normalise else np.zeros(raw.shape[1])
    std = raw.std(axis=0) if cfg.normalise else np.ones(raw.shape[1])
    std = np.where(std > 0, std, 1.0)
    z = (raw - mean) / std
    cond = conditioning_for(cfg, z)

    def rows(items, scores):
        return [{"prompt": conditioned_prompt(tokenizer, r["prompt"], s, cond, cfg.system_prompt),
                 "response": r["response"]} for r, s in zip(items, scores)]

    held_rows = []
    if held:
        zh = (scores_of(held) - mean) / std
        held_rows = rows(held, zh)
    record = {"mean": mean.tolist(), "std": std.tolist(), "n_train": len(train),
              "z_min": z.min(axis=0).tolist(), "z_max": z.max(axis=0).tolist()}
    if cfg.raw_decimals is not None:
        record["raw_decimals"] = cfg.raw_decimals
    return rows(train, z), held_rows, cond, record


# --------------------------------------------------------------------------- training
def train(cfg: RiCConfig, scorers: Sequence | None = None) -> Path:
    """Score, condition, SFT, write the family; ``scorers`` (callables) override ``cfg.scorers``."""
    start_run(cfg)
    k = len(cfg.objectives)
    if scorers is None:
        scorers = build_objective_scorers(cfg.scorers or [], cfg, k, "Rewards-in-Context")
    names = [getattr(s, "name", getattr(s, "__name__", "callable")) for s in scorers]
    model, tokenizer = load_run_base(cfg)
    train_rows, eval_rows, cond, record = build_rows(cfg, tokenizer, scorers)
    run_dir = cfg.adapters_path / "ric-sft"
    recipe = run_recipe(cfg, scorers=cfg.scorers or names, conditioning=cond.to_dict(), normalisation=record,
                        responses=cfg.responses, system_prompt=cfg.system_prompt,
                        data=[to_dict(o.data) for o in cfg.objectives if o.data])
    adapter = finished_run(run_dir, recipe)
    if adapter is None:
        torch.manual_seed(cfg.train.seed)
        model = attach_lora(model, cfg.lora, adapter_name="default")
        collate = SFTCollator(tokenizer, max_length=cfg.train.max_length, max_prompt_length=cfg.train.max_prompt_length)
        write_recipe(run_dir, recipe)
        adapter = train_adapter(model, "default", train_rows, collate, make_loss_fn("sft", cfg.train), cfg.train,
                                run_dir, eval_rows=eval_rows)
    on_main_process(lambda: write_family(
        cfg, "rewards_in_context", {"sft": adapter}, Gate.affine([[0.0] * k], [1.0]),
        training={"scorers": cfg.scorers or names, "normalisation": record, "responses": cfg.responses},
        conditioning=cond, w_low=[0.0] * k, w_high=[1.0] * k, in_sample_low=[0.0] * k, in_sample_high=[1.0] * k,
        on_simplex=True, prompt_format="chat",  # conditioned_prompt builds chat prompts whatever the data
        description="Rewards-in-Context: SFT on prompts carrying the responses' normalised reward scores; "
                    f"a preference asks for target scores ({cfg.mapping} mapping, {cfg.bounds} bounds)"))
    return cfg.family_path


main = method_main("rewards_in_context")


if __name__ == "__main__":
    main()
