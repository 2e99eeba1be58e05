"""Rewarded Soups (Ramé et al., arXiv 2306.04488): one adapter per objective, mixed by weight.

Eq. (1) of the paper, as in docs/methods.md::

    theta(w) = sum_i w_i * theta_i,  w on the simplex

with every theta_i fine-tuned from the same theta_0. With LoRA the exact form
is theta_0 + sum_i w_i * delta_i (delta_i = B_i A_i * scaling_i). The
paper's released code averages A and B separately, which is not the weighted
sum of deltas; the bank stacks the adapters instead, so the family is exact.

Each delta_i is DPO (default) or SFT on objective i's data, from the base
(``trainers.objective_adapter``). That is a departure: the paper fine-tunes
each expert with RL (PPO on one reward model). A trained adapter can be passed per
objective instead (``objectives[i].adapter``), e.g. the phase-1 adapters that
Preference Vector and PEO share.

    paretoapp train rewarded_soups --config rs.yaml
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paretoapp.gates import Gate

from .cli import method_main
from .config import ConfigError, MethodConfig
from .family_io import write_family
from .loop import on_main_process, start_run
from .objective_adapter import LOSSES, train_objective_adapter


@dataclass
class RewardedSoupsConfig(MethodConfig):
    loss: str = "dpo"   # "dpo" on pairs, or "sft" on each pair's chosen response

    def check(self) -> None:
        super().check()
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")


def train(cfg: RewardedSoupsConfig) -> Path:
    """Train (or reuse) one adapter per objective and write the family; returns its folder."""
    start_run(cfg)
    adapters = {o.name: train_objective_adapter(cfg, o, cfg.loss) for o in cfg.objectives}
    k = len(cfg.objectives)
    on_main_process(lambda: write_family(cfg, "rewarded_soups", adapters, Gate.identity(k),
                        training={"loss": cfg.loss},
                        w_low=[0.0] * k, w_high=[1.0] * k, in_sample_low=[0.0] * k, in_sample_high=[1.0] * k,
                        on_simplex=True,
                        description=f"Rewarded Soups: theta_0 + sum_i w_i delta_i, one {cfg.loss.upper()} "
                                    "LoRA adapter per objective"))
    return cfg.family_path


main = method_main("rewarded_soups")


if __name__ == "__main__":
    main()
