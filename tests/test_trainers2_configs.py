"""Trainers II: the shipped real-run configs parse, and the registry-scorer path of a command runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import write_config

from paretoapp.family import Family
from paretoapp.trainers.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "paretoapp" / "trainers" / "configs"


@pytest.mark.parametrize("name, module, cls, k", [
    ("pku_panacea", "panacea", "PanaceaConfig", 2),
    ("pku_linear_dpo", "linear_dpo", "LinearDPOConfig", 2),
    ("pku_rewards_in_context", "rewards_in_context", "RiCConfig", 2),
    ("pku_paretohqd", "paretohqd", "ParetoHqDConfig", 2),
    ("pku_upo", "upo", "UPOConfig", 1),
])
def test_example_configs_parse(name, module, cls, k):
    import importlib
    mod = importlib.import_module(f"paretoapp.trainers.{module}")
    cfg = load_config(getattr(mod, cls), str(CONFIGS / f"{name}.yaml"))
    assert len(cfg.objectives) == k and cfg.adapters_dir == "runs/pku/adapters"


def test_ric_command_with_registry_scorers(tmp_path, tiny_base, pref_jsonl):
    from paretoapp.trainers import rewards_in_context
    path = write_config(tmp_path / "ric.yaml", tiny_base, pref_jsonl, tmp_path / "run",
                        scorers=["length_words", "refusal"], mapping="linf", train={"max_steps": 1})
    family = Family.load(rewards_in_context.main(["--config", str(path)]))
    assert family.manifest.training["scorers"] == ["length_words", "refusal"]
    assert family.manifest.conditioning.mapping == "linf"
