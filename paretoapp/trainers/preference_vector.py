"""Preference Vector (arXiv 2504.20106, EACL 2026): +/- DPO runs, their difference as a vector.

As in the paper (docs/methods.md, "Preference Vector"):

1. theta_0 is the base (SFT) model and the DPO reference of every run.
2. For each objective i two DPO runs from theta_0: on its pairs (theta_i+) and
   on the same pairs with chosen and rejected swapped (theta_i-).
3. The preference vector is the difference of the two runs (Sec. 3):
   phi_i = theta_i+ - theta_i-.
4. At test time (eq. for the merged model): theta = theta_0 + sum_i eta_i phi_i,
   with user coefficients eta_i, any real value (default 1; the paper sweeps
   [-1, 1] and beyond; negative eta reverses a behaviour).

With LoRA, phi_i = B_i+ A_i+ s_i+ - B_i- A_i- s_i-, which the bank holds
exactly: blocks [obj1+, obj1-, obj2+, obj2-, ...] and an affine gate with rows
+e_i and -e_i. ``positive_only: true`` builds the paper's ablation instead
(phi_i = theta_i+ - theta_0), which it reports as clearly worse.

A new objective only adds its own +/- pair; the others are reused from
``adapters_dir``.

    paretoapp train preference_vector --config pv.yaml
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from paretoapp.gates import Gate

from .cli import method_main
from .config import ConfigError, MethodConfig
from .family_io import write_family
from .loop import on_main_process, start_run
from .objective_adapter import train_objective_adapter


@dataclass
class PreferenceVectorConfig(MethodConfig):
    positive_only: bool = False
    eta_low: float = -2.0            # the slider range offered (any real value is valid in principle)
    eta_high: float = 2.0
    in_sample_low: float = -1.0      # the range the paper evaluates and finds reliable
    in_sample_high: float = 1.0
    # sft_weight (DPO + NLL of the chosen answer, TrainConfig) of the opposite-preference runs; None: as
    # train.sft_weight. The paper trains both runs with plain DPO; an NLL on the *swapped* pairs fine-tunes
    # theta_i- to write the rejected answers, and theta_i+ - theta_i- then leaves the fluent model (the
    # embedded demo keeps NLL on theta_i+, shared with Rewarded Soups and PEO, and plain DPO on theta_i-)
    negative_sft_weight: float | None = None

    def check(self) -> None:
        super().check()
        if not self.eta_low <= self.in_sample_low <= self.in_sample_high <= self.eta_high:
            raise ConfigError("need eta_low <= in_sample_low <= in_sample_high <= eta_high")


def vector_gate(k: int, positive_only: bool = False) -> Gate:
    """Rows +e_i (and -e_i) for blocks [obj1+, obj1-, ...]: gains +eta_i on theta_i+, -eta_i on theta_i-."""
    rows = []
    for i in range(k):
        e = [1.0 if j == i else 0.0 for j in range(k)]
        rows.append(e)
        if not positive_only:
            rows.append([-v for v in e])
    return Gate.affine(rows)


def train(cfg: PreferenceVectorConfig) -> Path:
    start_run(cfg)
    adapters: dict[str, Path] = {}
    for o in cfg.objectives:
        adapters[f"{o.name}_pos"] = train_objective_adapter(cfg, o, "dpo")
        if not cfg.positive_only:
            neg_train = (dataclasses.replace(cfg.train, sft_weight=cfg.negative_sft_weight)
                         if cfg.negative_sft_weight is not None else None)
            adapters[f"{o.name}_neg"] = train_objective_adapter(cfg, o, "dpo", negative=True, train=neg_train)
    k = len(cfg.objectives)
    kind = "theta_i+ - theta_0 (positive-only ablation)" if cfg.positive_only else "theta_i+ - theta_i-"
    on_main_process(lambda: write_family(cfg, "preference_vector", adapters, vector_gate(k, cfg.positive_only),
                        training={"vector": kind},
                        w_low=[cfg.eta_low] * k, w_high=[cfg.eta_high] * k,
                        in_sample_low=[cfg.in_sample_low] * k, in_sample_high=[cfg.in_sample_high] * k,
                        on_simplex=False,
                        description=f"Preference Vector: theta_0 + sum_i eta_i phi_i, phi_i = {kind}"))
    return cfg.family_path


main = method_main("preference_vector")


if __name__ == "__main__":
    main()
