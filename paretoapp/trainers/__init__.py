"""Trainers: one module per multi-objective alignment method, each writing a Family on disk.

Shared core (used by every method, including Trainers II):

    data.py              load_pairs / DataSpec: per-objective preference pairs (TRL, PKU-SafeRLHF, HH-RLHF,
                         the project's JSONL); PreferenceCollator / SFTCollator (TRL-compatible tokenisation)
    losses.py            sequence_logprobs, dpo_loss -> DPOResult, dpo_batch_loss, sft_loss
    lora.py              load_base, attach_lora, load_adapters, activate, reference (adapters off), save_adapter
    loop.py              train_adapter: accelerate loop, eval, checkpoints, resume, adapter saved last
    checkpoint.py        pickle-free checkpoints (safetensors + JSON)
    config.py            TrainConfig, ObjectiveSpec, MethodConfig; YAML + --set overrides
    objective_adapter.py train (or reuse) one objective's DPO/SFT adapter from the base
    family_io.py         adapters -> Family on disk

Methods: preference_vector.py, rewarded_soups.py, peo.py, panacea.py, paretohqd.py, upo.py,
rewards_in_context.py, linear_dpo.py (``paretoapp train <name> --config cfg.yaml``, registered in ``paretoapp/methods.py``);
multi_objective.py holds what the multi-objective ones share.
"""
