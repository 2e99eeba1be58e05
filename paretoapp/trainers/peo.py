"""PEO (arXiv 2503.01233): aspect experts, an interpolated generalist, post-training extrapolation.

What the paper confirms (abstract/introduction, docs/methods.md "PEO"): two
objectives; phase 1 is plain DPO per objective from theta_0; the whole front
comes from one training pass; a post-training search over extrapolation
coefficients, scored by reward models, picks the family. The method sections
could not be read, so phases 2 and 3 follow the **reconstruction** in
docs/methods.md; every choice below marked [recon] is configurable:

1. Phase 1 (paper): delta_1, delta_2 = DPO LoRA adapters on each objective's
   pairs from theta_0 (``trainers.objective_adapter``; shared with Rewarded
   Soups and Preference Vector through ``adapters_dir``).
2. Phase 2 [recon]: the generalist starts at the interpolation
   theta_g(0) = theta_0 + a*delta_1 + (1-a)*delta_2   (``alpha`` = a, default 0.5)
   and a short DPO run on both objectives' pairs trains a fresh LoRA
   correction delta_g on top, delta_1 and delta_2 frozen at gains a and 1-a:
   theta_g = theta_0 + a*delta_1 + (1-a)*delta_2 + delta_g.
   The DPO reference is theta_0 as in every other run (``generalist_reference:
   init`` uses the interpolated start instead).
3. Phase 3 [recon; the paper's search could not be read]: an **exhaustive
   grid** over coefficients, in the spirit of ExPO's theta + s*(theta - theta_0):
   every candidate theta_0 + c_g*(theta_g - theta_0) + c_1*delta_1 + c_2*delta_2
   with c_g in ``coef_generalist`` and c_1, c_2 in ``coef_objective`` (reaching
   past [0, 1]) answers the same held-out prompts (``n_eval_prompts``, default
   16) and the scorers score every answer; a candidate's score is its mean over
   the prompts. The non-dominated candidates are min-max normalised per
   objective, and each **anchor** w = (w_1, 1 - w_1), w_1 on a grid of step
   ``anchor_step``, takes the argmax of w . (normalised scores) (``anchor_rule:
   linear``), or the candidate nearest the ideal point in the w-weighted
   Chebyshev sense, argmin max_j w_j (1 - s_j) (``anchor_rule: tchebycheff``,
   augmented by 1e-3 times the linear term to break ties): a linear argmax
   only ever picks candidates on the convex hull of the scores, so a front
   with a concave stretch is served by two or three candidates however many
   non-dominated ones the search found; Tchebycheff reaches every one of them
   (Miettinen 1999, ch. 3.4). Preferences
   between anchors are **interpolated** (the gains of the two neighbouring
   anchors mixed linearly): no policy between anchors is ever generated from or
   scored. The build record (manifest ``training.search``) keeps every
   candidate's gains, its per-prompt and mean scores, the prompts, and the anchor
   each preference took.

In the bank all of this is gains on three stacked blocks [delta_1, delta_2,
delta_g]: a candidate's gains are (c_g*a + c_1, c_g*(1-a) + c_2, c_g). The
family's gate is an anchors table over w_1 in [0, 1] (**in-sample**: chosen by
the search) extended to [-e, 1+e] (**extrapolated preference**, this project's
extension: the paper extrapolates in *weight* space, not in w; beyond a vertex
the gains continue along g(w_1=1) - g(w_1=0), the direction from the best
objective-2 candidate to the best objective-1 candidate). The manifest records
the in-sample range so the UI can mark the rest.

    paretoapp train peo --config peo.yaml
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from paretoapp.family import BaseModelRef, Block, Family, make_family
from paretoapp.gates import Gate
from paretoapp.pareto import nondominated_mask

from .cli import method_main
from .config import ConfigError, MethodConfig, TrainConfig, to_dict
from .data import PreferenceCollator, hh_to_messages, read_rows, train_eval_pairs
from .family_io import family_from_run, load_stacked, save_family
from .loop import on_main_process, start_run, train_adapter
from .lora import activate, attach_lora, load_adapters, load_run_base, reference
from .multi_objective import last_user_text
from .objective_adapter import check_recipe, make_loss_fn, train_objective_adapter, write_recipe

BLOCK_GENERALIST = "generalist"
log = logging.getLogger(__name__)
REFERENCES = ("base", "init")
ANCHOR_RULES = ("linear", "tchebycheff")
AUGMENT = 1e-3  # the augmented Tchebycheff rule's linear term: among equal max terms, the better sum wins
Scorer = Callable[[Sequence[str], Sequence[str]], Sequence[float]]


@dataclass
class PEOConfig(MethodConfig):
    alpha: float = 0.5                              # generalist start: alpha*delta_1 + (1-alpha)*delta_2
    generalist_train: TrainConfig | None = None     # phase-2 optimisation (default: ``train``)
    generalist_reference: str = "base"              # DPO reference in phase 2: "base" (theta_0) or "init"
    coef_generalist: list[float] = field(default_factory=lambda: [0.0, 1.0, 1.5])
    coef_objective: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5])
    scorers: list[str] = field(default_factory=list)  # one paretoapp.scorers spec per objective
    eval_prompts: str | None = None                 # .jsonl ("prompt" field) or .txt; default: the data's prompts
    n_eval_prompts: int = 16                        # prompts every candidate answers in the search
    max_new_tokens: int = 48
    generation_batch_size: int = 64
    anchor_step: float = 0.1
    anchor_rule: str = "linear"                     # or "tchebycheff": how an anchor w picks its candidate
    # candidates with a larger share of degenerate answers (loop, collapse, empty) on the search prompts are not
    # offered to the anchors: a mean score can hide a candidate that answers half the prompts with nothing
    max_degenerate_rate: float | None = None
    extrapolate: float = 0.5                        # w_1 offered in [-extrapolate, 1 + extrapolate]

    def check(self) -> None:
        super().check()
        if len(self.objectives) != 2:
            raise ConfigError(f"PEO is bi-factorial: give exactly 2 objectives, got {len(self.objectives)}")
        if self.generalist_reference not in REFERENCES:
            raise ConfigError(f"generalist_reference must be one of {REFERENCES}")
        if not 0 < self.anchor_step <= 0.5 or self.extrapolate < 0:
            raise ConfigError("need 0 < anchor_step <= 0.5 and extrapolate >= 0")
        if self.max_degenerate_rate is not None and not 0 <= self.max_degenerate_rate <= 1:
            raise ConfigError(f"max_degenerate_rate must be in [0, 1] or null, got {self.max_degenerate_rate}")
        if self.anchor_rule not in ANCHOR_RULES:
            raise ConfigError(f"anchor_rule must be one of {ANCHOR_RULES}, got {self.anchor_rule!r}")
        if self.n_eval_prompts < 1:
            raise ConfigError(f"n_eval_prompts must be at least 1, got {self.n_eval_prompts}")


# --------------------------------------------------------------------------- phase 2
def generalist_model(cfg: PEOConfig, delta_1: Path, delta_2: Path):
    """The phase-2 model: theta_0 + a*delta_1 + (1-a)*delta_2 (frozen) + delta_g (trainable, starts at 0)."""
    base, tokenizer = load_run_base(cfg)
    model = load_adapters(base, {"delta_1": delta_1, "delta_2": delta_2})
    torch.manual_seed((cfg.generalist_train or cfg.train).seed)
    attach_lora(model, cfg.lora, adapter_name=BLOCK_GENERALIST)
    activate(model, ["delta_1", "delta_2", BLOCK_GENERALIST], trainable=[BLOCK_GENERALIST],
             scales={"delta_1": cfg.alpha, "delta_2": 1.0 - cfg.alpha})
    return model, tokenizer


@contextlib.contextmanager
def interpolated_start(model):
    """Reference = the generalist's starting point (delta_g switched off, experts still on)."""
    from peft.tuners.lora import LoraLayer
    layers = [m for m in getattr(model, "module", model).modules() if isinstance(m, LoraLayer)]
    for m in layers:
        m.set_scale(BLOCK_GENERALIST, 0.0)
    try:
        yield
    finally:
        for m in layers:
            m.set_scale(BLOCK_GENERALIST, 1.0)


def train_generalist(cfg: PEOConfig, delta_1: Path, delta_2: Path) -> Path:
    train = cfg.generalist_train or cfg.train
    run_dir = Path(cfg.output_dir) / "generalist"
    specs = [dataclasses.replace(o.data, objective=o.data.objective or o.name) for o in cfg.objectives]
    recipe = {"base_model": cfg.base_model, "revision": cfg.revision, "lora": to_dict(cfg.lora),
              "alpha": cfg.alpha, "reference": cfg.generalist_reference,
              "experts": [str(Path(delta_1).resolve()), str(Path(delta_2).resolve())],
              "data": [to_dict(s) for s in specs],
              "train": {k: v for k, v in to_dict(train).items()
                        if k not in ("progress", "log_every", "eval_every", "save_every", "keep_checkpoints")}}
    check_recipe(run_dir, recipe)
    if (run_dir / "done.json").is_file():
        return run_dir / "adapter"
    model, tokenizer = generalist_model(cfg, delta_1, delta_2)
    train_rows, eval_rows = [], []
    for spec in specs:  # phase 1's split (and the search's): the generalist never trains on their held-out pairs
        t, e = train_eval_pairs(spec, seed=cfg.train.seed)
        train_rows += t
        eval_rows += e
    write_recipe(run_dir, recipe)
    ref = reference if cfg.generalist_reference == "base" else interpolated_start
    collate = PreferenceCollator(tokenizer, max_length=train.max_length, max_prompt_length=train.max_prompt_length)
    return train_adapter(model, BLOCK_GENERALIST, train_rows, collate, make_loss_fn("dpo", train, ref), train,
                         run_dir, eval_rows=eval_rows)


# --------------------------------------------------------------------------- phase 3
def candidate_gains(alpha: float, coef_generalist: Sequence[float], coef_objective: Sequence[float]) -> list[list[float]]:
    """Gains on [delta_1, delta_2, delta_g] of theta_0 + c_g (theta_g - theta_0) + c_1 delta_1 + c_2 delta_2."""
    seen, out = set(), []
    for cg in coef_generalist:
        for c1 in coef_objective:
            for c2 in coef_objective:
                g = [cg * alpha + c1, cg * (1 - alpha) + c2, cg]
                key = tuple(round(v, 9) for v in g)
                if key not in seen:
                    seen.add(key)
                    out.append(g)
    return out


def candidate_family(model, tensors: dict, blocks: list[Block], prompt_format: str = "chat") -> Family:
    """A throw-away family whose 'preference' is the block gains themselves (identity gate, any value)."""
    return make_family(name="peo-candidates", method="peo", base_model=BaseModelRef.of(model, "candidates"),
                       objectives=[b.name for b in blocks], tensors=tensors, blocks=blocks,
                       gate=Gate.identity(len(blocks)), on_simplex=False, prompt_format=prompt_format)


def _user_prompt(prompt) -> str | list:
    if isinstance(prompt, str) and prompt.startswith("\n\nHuman:"):
        prompt = hh_to_messages(prompt[: prompt.rfind("\n\nAssistant:")])
    return prompt


def eval_prompts(cfg: PEOConfig) -> list:
    """Held-out prompts for the search: ``eval_prompts`` file, else the objectives' held-out/first prompts."""
    if cfg.eval_prompts:
        path = Path(cfg.eval_prompts)
        if path.suffix == ".txt":
            prompts = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        else:
            from .data import DataSpec
            prompts = [r["prompt"] for r in read_rows(DataSpec(source=str(path)))]
    else:
        prompts = []
        for o in (o for o in cfg.objectives if o.data is not None):
            train_rows, held_out = train_eval_pairs(o.data, seed=cfg.train.seed)
            prompts += [p["prompt"] for p in (held_out or train_rows)]
    unique = list({json.dumps(p): p for p in map(_user_prompt, prompts)}.values())
    if not unique:
        raise ConfigError("no prompts for the PEO search; set eval_prompts to a .jsonl or .txt file")
    if len(unique) < cfg.n_eval_prompts:
        log.warning("PEO search: only %d prompts for n_eval_prompts = %d; give eval_prompts a larger file",
                    len(unique), cfg.n_eval_prompts)
    return unique[: cfg.n_eval_prompts]


def generate_candidates(model, tokenizer, family: Family, candidates: list[list[float]], prompts: list,
                        max_new_tokens: int, batch_size: int) -> list[list[str]]:
    """Greedy answers ``[candidate][prompt]``, each candidate's with its own gains.

    All candidates x prompts are generated as batched rows with per-row gains
    (one model in memory, nothing merged).
    """
    from paretoapp.generate import GenerationSettings, Policy

    policy = Policy(family, model, tokenizer)
    try:
        rows = [(c, p) for c in range(len(candidates)) for p in range(len(prompts))]
        responses: list[str] = []
        settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            responses += policy.generate([prompts[p] for _, p in chunk], [candidates[c] for c, _ in chunk], settings)
    finally:
        policy.bank.detach()
    n = len(prompts)
    return [responses[c * n:(c + 1) * n] for c in range(len(candidates))]


def score_answers(answers: list[list[str]], prompts: list, scorers: Sequence[Scorer]) -> np.ndarray:
    """Per-prompt scores ``[candidate, prompt, objective]``, oriented so that higher is better."""
    texts = [last_user_text(p) for p in prompts] * len(answers)
    flat = [a for per_candidate in answers for a in per_candidate]
    out = np.zeros((len(answers), len(prompts), len(scorers)))
    for j, scorer in enumerate(scorers):
        values = np.asarray(scorer(texts, flat), dtype=np.float64).reshape(len(answers), len(prompts))
        out[:, :, j] = values if getattr(scorer, "higher_is_better", True) else -values
    return out


def anchor_choice(norm: np.ndarray, w: np.ndarray, rule: str = "linear") -> int:
    """Row of ``norm`` (min-max normalised scores, higher is better) that preference ``w`` takes."""
    if rule == "linear":
        return int(np.argmax(norm @ w))
    if rule == "tchebycheff":  # distance to the ideal (1, 1) in the w-weighted max norm, augmented
        shortfall = w * (1.0 - norm)
        return int(np.argmin(shortfall.max(axis=1) + AUGMENT * shortfall.sum(axis=1)))
    raise ConfigError(f"anchor_rule must be one of {ANCHOR_RULES}, got {rule!r}")


def degenerate_rates(answers: list[list[str]]) -> np.ndarray:
    """Per candidate, the share of its answers that are degenerate (``scorers.is_degenerate``: a loop or a
    collapse, near-empty included)."""
    from paretoapp.scorers import is_degenerate

    return np.array([np.mean([is_degenerate(a) for a in per]) if per else 0.0 for per in answers])


def choose_anchors(scores: np.ndarray, candidates: list[list[float]], step: float, extrapolate: float,
                   rule: str = "linear", eligible: np.ndarray | None = None):
    """Preference grid -> best non-dominated candidate (in-sample, by ``rule``) plus extrapolated ends.

    Only ``eligible`` candidates (default: all) are offered; if none is, all are (and the record says so).
    Returns (points [[w_1, 1 - w_1]], gains, record) where record says which
    candidate each in-sample point took.
    """
    offered = np.ones(len(scores), bool) if eligible is None else np.asarray(eligible, bool)
    if not offered.any():
        log.warning("no PEO candidate passed the degenerate-answer guard; all are offered")
        offered = np.ones(len(scores), bool)
    idx = np.flatnonzero(offered)
    idx = idx[nondominated_mask(scores[idx], maximise=True)]
    lo, hi = scores[idx].min(axis=0), scores[idx].max(axis=0)
    norm = (scores[idx] - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    n = int(round(1.0 / step))
    inside = [i / n for i in range(n + 1)]
    chosen = [int(idx[anchor_choice(norm, np.array([w1, 1.0 - w1]), rule)]) for w1 in inside]
    gains = {w1: np.array(candidates[c], dtype=np.float64) for w1, c in zip(inside, chosen)}
    slope = gains[1.0] - gains[0.0]
    if not np.any(slope):  # one candidate wins everywhere: extrapolate towards expert 1 and away from expert 2
        slope = np.array([1.0, -1.0, 0.0])
    m = int(round(extrapolate / step))
    outside = {-(j * step): gains[0.0] - j * step * slope for j in range(1, m + 1)}
    outside.update({1.0 + j * step: gains[1.0] + j * step * slope for j in range(1, m + 1)})
    table = {**gains, **outside}
    ws = sorted(table)
    points = [[round(w, 9), round(1.0 - w, 9)] for w in ws]
    record = {"in_sample_w1": inside, "chosen_candidate": chosen, "nondominated": idx.tolist(), "anchor_rule": rule}
    if eligible is not None:
        record["excluded"] = np.flatnonzero(~np.asarray(eligible, bool)).tolist()
    return points, [table[w].tolist() for w in ws], record


# --------------------------------------------------------------------------- the whole method
def build_scorers(cfg: PEOConfig, model, tokenizer) -> list:
    from paretoapp.scorers import ScorerContext
    from paretoapp.scorers import build_scorers as _build
    if len(cfg.scorers) != 2:
        raise ConfigError("PEO's search needs one scorer per objective: set scorers: [<helpful>, <harmless>] "
                          "(e.g. ray-helpful, ray-harmless; offline: helpful_offline, harmless_offline)")
    return _build(cfg.scorers, ScorerContext(causal_lm=model, tokenizer=tokenizer, model_id=cfg.base_model,
                                             system_prompt=cfg.system_prompt, show_progress=cfg.train.progress))


def train(cfg: PEOConfig, scorers: Sequence[Scorer] | None = None) -> Path:
    """Phases 1-3; ``scorers`` (one callable per objective) overrides ``cfg.scorers``."""
    start_run(cfg)
    o1, o2 = cfg.objectives
    delta_1 = train_objective_adapter(cfg, o1, "dpo")                 # phase 1
    delta_2 = train_objective_adapter(cfg, o2, "dpo")
    delta_g = train_generalist(cfg, delta_1, delta_2)                 # phase 2
    adapters = {o1.name: delta_1, o2.name: delta_2, BLOCK_GENERALIST: delta_g}
    on_main_process(lambda: search_and_save(cfg, adapters, scorers))           # phase 3
    return cfg.family_path


def search_and_save(cfg: PEOConfig, adapters: dict[str, Path], scorers: Sequence[Scorer] | None) -> Path:
    """Phase 3: score the candidates, choose the anchors, write the family."""
    peft_model, tokenizer, tensors, blocks = load_stacked(cfg, adapters)
    model = peft_model.unload()  # the plain base again; the bank carries the adapters from here
    from accelerate import PartialState
    model.to(PartialState().device).eval()  # generate on the GPU when there is one
    scorers = list(scorers) if scorers is not None else build_scorers(cfg, model, tokenizer)
    candidates = candidate_gains(cfg.alpha, cfg.coef_generalist, cfg.coef_objective)
    prompts = eval_prompts(cfg)
    answers = generate_candidates(model, tokenizer, candidate_family(model, tensors, blocks, cfg.prompt_format),
                                  candidates, prompts, cfg.max_new_tokens, cfg.generation_batch_size)
    per_prompt = score_answers(answers, prompts, scorers)
    scores = per_prompt.mean(axis=1)
    degenerate = degenerate_rates(answers)
    eligible = None if cfg.max_degenerate_rate is None else degenerate <= cfg.max_degenerate_rate
    points, gains, record = choose_anchors(scores, candidates, cfg.anchor_step, cfg.extrapolate, cfg.anchor_rule,
                                           eligible)
    record["degenerate_rate"] = degenerate.round(4).tolist()
    e = cfg.extrapolate
    family = family_from_run(
        cfg, "peo", model, tensors, blocks, Gate.anchors(points, gains, mode="interpolate"),
        training={"adapters": {k: str(Path(v).resolve()) for k, v in adapters.items()}, "alpha": cfg.alpha,
                  "search": {"candidates": candidates, "scores": scores.tolist(), "n_prompts": len(prompts),
                             "prompts": [last_user_text(p) for p in prompts], "per_prompt_scores": per_prompt.tolist(),
                             "scorers": [getattr(s, "name", repr(s)) for s in scorers], **record}},
        w_low=[-e, -e], w_high=[1 + e, 1 + e], in_sample_low=[0.0, 0.0], in_sample_high=[1.0, 1.0],
        on_simplex=True,
        description="PEO: experts + interpolated generalist; a grid search over their coefficients, scored on "
                    f"{len(prompts)} prompts, picks the candidate for each anchor w (step {cfg.anchor_step}, "
                    f"{cfg.anchor_rule} rule), "
                    "w between anchors interpolated; w_1 outside [0, 1] extrapolates the preference "
                    "(this project's extension; the paper extrapolates in weight space)")
    return save_family(cfg, family)


main = method_main("peo")


if __name__ == "__main__":
    main()
