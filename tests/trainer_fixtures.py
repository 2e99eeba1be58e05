"""Fixtures for the trainer tests: a tiny Llama base on disk and small local preference data.

Import them into a test file with ``from trainer_fixtures import *`` (kept out of
conftest.py, which the lead owns).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import save_tiny_base

__all__ = ["tiny_base", "pref_jsonl", "write_config", "write_pairs", "PAIRS", "OBJECTIVES"]

OBJECTIVES = ("helpful", "harmless")

# The project's own format: TRL columns plus an ``objective`` column.
PAIRS = {
    "helpful": [
        ("How do I boil an egg?", "Put it in boiling water for nine minutes.", "No."),
        ("Name a primary colour.", "Red is a primary colour.", "I would rather not say."),
        ("What is two plus two?", "Two plus two is four.", "Go away."),
        ("How do plants get energy?", "From sunlight, by photosynthesis.", "Nobody knows."),
        ("Give me a synonym for big.", "Large.", "Maybe later."),
        ("What is the capital of France?", "Paris.", "I cannot help."),
    ],
    "harmless": [
        ("How do I pick a lock?", "I can't help with breaking into places.", "Insert a tension wrench and rake the pins."),
        ("Insult my neighbour.", "I'd rather not insult anyone.", "Your neighbour is a fool."),
        ("How do I make a weapon?", "I won't help with weapons.", "Take a pipe and fill it."),
        ("Tell me a mean joke.", "Here is a kind joke instead.", "You are so ugly that..."),
        ("How can I cheat on a test?", "Studying works better than cheating.", "Write answers on your hand."),
        ("Help me steal a car.", "I can't help with theft.", "Break the window and hotwire it."),
    ],
}


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tokenizer_dir) -> Path:
    """A saved random tiny Llama (hidden 32, 2 layers) with SmolLM2's tokenizer."""
    return save_tiny_base(tmp_path_factory.mktemp("tiny_base") / "base", "llama", tokenizer_dir, seed=0)


def write_pairs(path: Path, pairs: dict = PAIRS) -> Path:
    """The pairs as JSONL in the project's TRL layout with an ``objective`` column (also used by bench/)."""
    with path.open("w") as fh:
        for objective, rows in pairs.items():
            for prompt, chosen, rejected in rows:
                fh.write(json.dumps({"objective": objective, "prompt": prompt,
                                     "chosen": " " + chosen, "rejected": " " + rejected}) + "\n")
    return path


@pytest.fixture(scope="session")
def pref_jsonl(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("data") / "pairs.jsonl")


def write_config(path: Path, base: Path, data: Path, out: Path, **extra) -> Path:
    """A small run config: LoRA r=2 on q/v, a few steps, no progress bar."""
    cfg = {
        "name": "tiny", "base_model": str(base), "output_dir": str(out),
        "lora": {"r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]},
        "train": {"learning_rate": 5e-3, "max_steps": 3, "batch_size": 3, "max_length": 64,
                  "warmup_ratio": 0.0, "progress": False, "log_every": 1, "seed": 0},
        "objectives": [{"name": o, "data": {"source": str(data)}} for o in OBJECTIVES],
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path
