"""One objective's adapter, as the trainer trains it: its pairs, from theta_0, against theta_0, with the config's beta.

Rewarded Soups' per-objective models, Preference Vector's +/- runs and PEO's phase 1 are all this run, so
these tests run ``train_objective_adapter`` itself and check what the loop was given and what the loss computed
(``trainer_spies``), not the config it was called with.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import PAIRS, write_config
from trainer_spies import (
    chosen_nll_per_token,
    dpo_losses,
    nearly,
    pair_texts,
    probe_logits,
    prompt_texts,
    record_runs,
    response_texts,
    sft_nll,
)
from transformers import AutoTokenizer

from paretoapp.trainers import objective_adapter
from paretoapp.trainers.config import load_config
from paretoapp.trainers.lora import load_base

FAST = {"learning_rate": 5e-2, "max_steps": 3, "batch_size": 3}


def _cfg(tmp_path, tiny_base, pref_jsonl, **train):
    path = write_config(tmp_path / "cfg.yaml", tiny_base, pref_jsonl, tmp_path / "run", train={**FAST, **train})
    return load_config(objective_adapter.AdaptersConfig, str(path))


def base_logits(tiny_base):
    model, _ = load_base(str(tiny_base))
    return probe_logits(model)


def dpo_oracle(beta, label_smoothing=0.0, sft_weight=0.0):
    """The loss a DPO run must compute: DPO at ``beta`` against theta_0 (+ RPO's NLL), and two it must not."""
    def oracle(run, model, batch, metrics):
        dpo = float(dpo_losses(model, batch, beta, label_smoothing=label_smoothing).mean())
        nll = chosen_nll_per_token(model, batch)
        return {"loss": dpo + sft_weight * nll, "dpo": dpo,
                "other_beta": float(dpo_losses(model, batch, 0.1, label_smoothing=label_smoothing).mean())
                + sft_weight * nll}
    return oracle


def assert_steps_match(run, n_steps=3, other="other_beta"):
    """Every step's loss is the oracle's, and the oracle tells ``other`` apart (the test can bite)."""
    assert len(run.steps) == n_steps
    for step in run.steps:
        assert nearly(step.loss, step.expected["loss"]), (step.loss, step.expected)
    assert max(abs(s.expected["loss"] - s.expected[other]) for s in run.steps) > 1e-3


def seen_pairs(tokenizer, run) -> list[tuple[str, str, str]]:
    return [t for step in run.steps for t in pair_texts(tokenizer, step.batch)]


@pytest.mark.parametrize("objective", ["helpful", "harmless"])
def test_a_dpo_run_trains_its_objectives_pairs_from_the_base_against_the_base(tmp_path, tiny_base, pref_jsonl,
                                                                             monkeypatch, objective):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, beta=0.3, label_smoothing=0.1)
    rec = record_runs(monkeypatch, dpo_oracle(0.3, label_smoothing=0.1))
    objective_adapter.train_objective_adapter(cfg, next(o for o in cfg.objectives if o.name == objective), "dpo")
    assert rec.names() == [f"{objective}-dpo"]
    run = rec[f"{objective}-dpo"]
    assert sorted((r["prompt"], r["chosen"], r["rejected"]) for r in run.rows) == \
        sorted((p, " " + c, " " + r) for p, c, r in PAIRS[objective])
    # three steps of three pairs over six pairs: every pair once per epoch, chosen rows first, each with its prompt
    tok = AutoTokenizer.from_pretrained(tiny_base)
    seen = seen_pairs(tok, run)
    assert len(seen) == 9 and set(seen) == set(PAIRS[objective])
    torch.testing.assert_close(run.start_logits, base_logits(tiny_base))  # a fresh adapter: theta_0
    assert run.trainable and all("lora_" in n and ".default." in n for n in run.trainable)
    assert {(c.kwargs.get("beta"), c.kwargs.get("label_smoothing")) for c in rec.calls_of("dpo_loss", run.name)} \
        == {(0.3, 0.1)}
    assert_steps_match(run)


def test_the_negative_run_trains_the_swapped_pairs(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    rec = record_runs(monkeypatch, dpo_oracle(0.1))
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], "dpo", negative=True)
    run = rec["helpful-dpo-neg"]
    seen = seen_pairs(AutoTokenizer.from_pretrained(tiny_base), run)
    assert set(seen) == {(p, r, c) for p, c, r in PAIRS["helpful"]}
    torch.testing.assert_close(run.start_logits, base_logits(tiny_base))
    for step in run.steps:
        assert nearly(step.loss, step.expected["loss"])


def test_rpo_adds_the_nll_of_the_chosen_answers(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """train.sft_weight = lambda: each step's loss is DPO + lambda * the chosen answers' NLL per token."""
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, sft_weight=0.5, beta=0.2)
    rec = record_runs(monkeypatch, dpo_oracle(0.2, sft_weight=0.5))
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], "dpo")
    run = rec["helpful-dpo"]
    assert_steps_match(run)
    for step in run.steps:
        assert nearly(step.metrics["dpo_loss"], step.expected["dpo"]) and step.loss - step.expected["dpo"] > 0.1


def test_an_sft_run_trains_on_the_chosen_responses_only(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """SFT on objective i: the chosen answers, the loss on the response tokens only (the prompt is context)."""
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)

    def oracle(run, model, batch, metrics):
        return {"loss": sft_nll(model, batch), "with_prompt": sft_nll(model, batch, "attention_mask")}

    rec = record_runs(monkeypatch, oracle)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[1], "sft")
    run = rec["harmless-sft"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    pairs = {(p, c) for p, c, _ in PAIRS["harmless"]}
    for step in run.steps:
        rows = set(zip(prompt_texts(tok, step.batch), response_texts(tok, step.batch)))
        assert rows <= pairs and len(rows) == 3
    torch.testing.assert_close(run.start_logits, base_logits(tiny_base))
    assert_steps_match(run, other="with_prompt")
    assert len(rec.calls_of("sft_loss", run.name)) == 3 and not rec.calls_of("dpo_loss")


def test_an_sft_run_truncates_as_configured(tmp_path, tiny_base, pref_jsonl, monkeypatch):
    """train.max_prompt_length keeps the prompt's last tokens and train.max_length cuts the response: every SFT
    row is at most max_length real tokens, its prompt at most max_prompt_length, the loss on what is left of the
    chosen answer (its start)."""
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, max_length=9, max_prompt_length=4)
    rec = record_runs(monkeypatch)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[1], "sft")
    run = rec["harmless-sft"]
    tok = AutoTokenizer.from_pretrained(tiny_base)
    chosen = [c for _, c, _ in PAIRS["harmless"]]
    for step in run.steps:
        real = step.batch["attention_mask"].sum(-1)
        prompt = real - step.batch["completion_mask"].sum(-1)
        assert real.max() == 9 and prompt.max() == 4 and prompt.min() >= 1
        for response in response_texts(tok, step.batch):
            assert response and any(c.startswith(response) and c != response for c in chosen), response


# ------------------------------------------------------------------ the run's folder, recipe and reuse (no training)
class Handed:
    """Stands in for the loop: records what ``train_objective_adapter`` handed it and trains nothing."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, name, train_rows, collate, loss_fn, train, run_dir, eval_rows=()):
        self.calls.append({"name": name, "rows": train_rows, "eval": eval_rows, "collate": collate,
                           "loss_fn": loss_fn, "train": train, "run_dir": run_dir, "model": model})
        return run_dir / "adapter"


@pytest.fixture()
def handed(monkeypatch):
    spy = Handed()
    monkeypatch.setattr(objective_adapter, "train_adapter", spy)
    return spy


def test_run_folders_are_named_by_objective_loss_and_sign(tmp_path, tiny_base, pref_jsonl):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    assert objective_adapter.run_dir_for(cfg, "helpful") == cfg.adapters_path / "helpful-dpo"
    assert objective_adapter.run_dir_for(cfg, "harmless", "sft", negative=True) == cfg.adapters_path / "harmless-sft-neg"


def test_the_recipe_holds_what_makes_the_weights_and_leaves_out_only_logging(tmp_path, tiny_base, pref_jsonl):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, sft_weight=0.25)
    recipe = objective_adapter.run_recipe(cfg, loss="dpo")
    assert recipe["base_model"] == str(tiny_base) and recipe["lora"]["r"] == 2 and recipe["loss"] == "dpo"
    assert {"revision", "dtype"} <= set(recipe)
    train = recipe["train"]
    assert train["sft_weight"] == 0.25 and train["learning_rate"] == FAST["learning_rate"]
    assert not {"progress", "log_every", "eval_every", "save_every", "keep_checkpoints"} & set(train)
    assert {"seed", "beta", "max_steps", "batch_size", "max_length", "scheduler"} <= set(train)
    other = objective_adapter.run_recipe(cfg, dataclasses.replace(cfg.train, beta=0.5), loss="dpo")
    assert other["train"]["beta"] == 0.5 and other != recipe


def test_a_run_made_with_other_settings_is_refused_and_named(tmp_path, tiny_base, pref_jsonl):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    run_dir = tmp_path / "r"
    recipe = objective_adapter.run_recipe(cfg, loss="dpo", data={"source": "a"})
    objective_adapter.check_recipe(run_dir, recipe)  # nothing saved yet: anything goes
    objective_adapter.write_recipe(run_dir, recipe)
    objective_adapter.check_recipe(run_dir, recipe)
    changed = {**recipe, "base_model": "other", "data": {"source": "b"}}
    with pytest.raises(objective_adapter.ConfigError, match=r"r holds a run made with different settings "
                                                            r"\(base_model, data\); delete that folder"):
        objective_adapter.check_recipe(run_dir, changed)
    with pytest.raises(objective_adapter.ConfigError, match=r"different settings \(train\)"):
        objective_adapter.check_recipe(run_dir, {**recipe, "train": {**recipe["train"], "seed": 9}})


def test_a_run_saved_before_a_setting_existed_counts_as_made_with_its_default(tmp_path, tiny_base, pref_jsonl):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    recipe = objective_adapter.run_recipe(cfg, loss="dpo")
    old = {**recipe, "train": {k: v for k, v in recipe["train"].items() if k != "sft_weight"}}
    objective_adapter.write_recipe(tmp_path / "old", old)
    objective_adapter.check_recipe(tmp_path / "old", recipe)  # sft_weight 0.0 is the default: the same run
    with pytest.raises(objective_adapter.ConfigError, match=r"\(train\)"):
        objective_adapter.check_recipe(tmp_path / "old", {**recipe, "train": {**recipe["train"], "sft_weight": 0.5}})


def test_finished_run_is_the_adapter_of_a_finished_matching_run_only(tmp_path, tiny_base, pref_jsonl):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    recipe = objective_adapter.run_recipe(cfg, loss="dpo")
    run_dir = tmp_path / "r"
    objective_adapter.write_recipe(run_dir, recipe)
    assert objective_adapter.finished_run(run_dir, recipe) is None
    (run_dir / "adapter").mkdir()
    (run_dir / "done.json").write_text("{}")
    assert objective_adapter.finished_run(run_dir, recipe) == run_dir / "adapter"
    with pytest.raises(objective_adapter.ConfigError):
        objective_adapter.finished_run(run_dir, {**recipe, "loss": "sft"})


def test_an_unknown_loss_is_a_clear_error():
    with pytest.raises(objective_adapter.ConfigError, match=r"unknown loss 'ppo'; expected one of \('dpo', 'sft'\)"):
        objective_adapter.make_loss_fn("ppo", objective_adapter.TrainConfig())


def test_a_given_adapter_is_used_as_is_and_no_data_is_a_clear_error(tmp_path, tiny_base, pref_jsonl, handed):
    from paretoapp.trainers.config import ObjectiveSpec

    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    given = ObjectiveSpec(name="helpful", adapter="/given/pos", neg_adapter="/given/neg")
    assert str(objective_adapter.train_objective_adapter(cfg, given)) == "/given/pos"
    assert str(objective_adapter.train_objective_adapter(cfg, given, negative=True)) == "/given/neg"
    only_pos = ObjectiveSpec(name="helpful", adapter="/given/pos")
    with pytest.raises(objective_adapter.ConfigError, match="'helpful': no data to train the negative adapter"):
        objective_adapter.train_objective_adapter(cfg, only_pos, negative=True)
    with pytest.raises(objective_adapter.ConfigError, match="'harmless': no data to train the adapter from"):
        objective_adapter.train_objective_adapter(cfg, ObjectiveSpec(name="harmless"))
    assert handed.calls == []


@pytest.mark.parametrize("swap, negative, flipped", [(False, False, False), (False, True, True),
                                                     (True, False, True), (True, True, False)])
def test_the_negative_run_flips_whatever_the_data_says(tmp_path, tiny_base, pref_jsonl, handed, swap, negative,
                                                      flipped):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    objective = cfg.objectives[0]
    objective = dataclasses.replace(objective, data=dataclasses.replace(objective.data, swap=swap))
    out = objective_adapter.train_objective_adapter(cfg, objective, "dpo", negative=negative)
    call = handed.calls[0]
    want = {(p, " " + r, " " + c) if flipped else (p, " " + c, " " + r) for p, c, r in PAIRS["helpful"]}
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in call["rows"]} == want
    assert out == call["run_dir"] / "adapter" and call["run_dir"].name == "helpful-dpo" + ("-neg" if negative else "")
    saved = json.loads((call["run_dir"] / "run.json").read_text())
    assert saved["data"]["swap"] is flipped and saved["data"]["objective"] == "helpful" and saved["loss"] == "dpo"


def test_the_run_gets_the_config_its_loss_and_collator_from_the_loss_name(tmp_path, tiny_base, pref_jsonl, handed):
    from paretoapp.trainers.data import PreferenceCollator, SFTCollator

    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, max_length=40, max_prompt_length=12, eval_every=0)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[1], "sft")
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[1], "dpo")
    sft, dpo = handed.calls
    assert isinstance(sft["collate"], SFTCollator) and isinstance(dpo["collate"], PreferenceCollator)
    assert (sft["collate"].max_length, sft["collate"].max_prompt_length) == (40, 12)
    assert sft["train"] is cfg.train and sft["name"] == "default"
    assert sft["loss_fn"].__name__ == "sft" and dpo["loss_fn"].__name__ == "dpo"
    assert {r["prompt"] for r in sft["rows"]} == {p for p, _, _ in PAIRS["harmless"]}
    trainable = [n for n, p in sft["model"].named_parameters() if p.requires_grad]
    assert trainable and all(".default." in n for n in trainable)


def test_a_finished_run_is_reused_without_loading_the_base(tmp_path, tiny_base, pref_jsonl, handed, monkeypatch):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], "dpo")
    run_dir = handed.calls[0]["run_dir"]
    (run_dir / "adapter").mkdir()
    (run_dir / "done.json").write_text("{}")
    monkeypatch.setattr(objective_adapter, "load_run_base", lambda c: pytest.fail("the base was loaded"))
    assert objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], "dpo") == run_dir / "adapter"
    assert len(handed.calls) == 1


def test_the_command_trains_each_objective_and_its_opposite_when_asked(tmp_path, tiny_base, pref_jsonl,
                                                                      monkeypatch, capsys):
    asked = []

    def fake(cfg, objective, loss="dpo", negative=False, train=None):
        asked.append((objective.name, loss, negative))
        return tmp_path / f"{objective.name}-{negative}"

    monkeypatch.setattr(objective_adapter, "train_objective_adapter", fake)
    path = write_config(tmp_path / "cfg.yaml", tiny_base, pref_jsonl, tmp_path / "run")
    out = objective_adapter.main(["--config", str(path), "--set", "negatives=true", "--set", "loss=sft"])
    assert asked == [("helpful", "sft", False), ("helpful", "sft", True), ("harmless", "sft", False),
                     ("harmless", "sft", True)]
    assert out == [tmp_path / f"{n}-{neg}" for n, _, neg in asked]
    assert capsys.readouterr().out.split() == [str(p) for p in out]
    assert (tmp_path / "run" / "adapters" / "adapters-config.yaml").is_file()
    asked.clear()
    objective_adapter.main(["--config", str(path)])
    assert asked == [("helpful", "dpo", False), ("harmless", "dpo", False)]


def test_a_recipe_without_a_train_section_or_with_a_new_key_is_refused_by_name(tmp_path, tiny_base, pref_jsonl):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    recipe = objective_adapter.run_recipe(cfg, loss="dpo")
    objective_adapter.write_recipe(tmp_path / "r", {k: v for k, v in recipe.items() if k not in ("train", "loss")})
    with pytest.raises(objective_adapter.ConfigError, match=r"different settings \(loss, train\)"):
        objective_adapter.check_recipe(tmp_path / "r", recipe)


def test_the_default_loss_is_dpo_and_an_own_train_config_is_what_runs_and_is_recorded(tmp_path, tiny_base,
                                                                                     pref_jsonl, handed):
    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    own = dataclasses.replace(cfg.train, beta=0.7, seed=5)
    objective_adapter.train_objective_adapter(cfg, cfg.objectives[0], train=own)
    call = handed.calls[0]
    assert call["run_dir"].name == "helpful-dpo" and call["loss_fn"].__name__ == "dpo" and call["train"] is own
    saved = json.loads((call["run_dir"] / "run.json").read_text())
    assert (saved["train"]["beta"], saved["train"]["seed"]) == (0.7, 5)


def test_the_held_out_pairs_are_split_with_the_runs_seed_and_reach_the_loop(tmp_path, tiny_base, pref_jsonl, handed):
    from paretoapp.trainers.data import train_eval_pairs

    cfg = _cfg(tmp_path, tiny_base, pref_jsonl, seed=4)
    objective = cfg.objectives[0]
    objective = dataclasses.replace(objective, data=dataclasses.replace(objective.data, eval_fraction=0.5))
    objective_adapter.train_objective_adapter(cfg, objective, "dpo")
    call = handed.calls[0]
    want_train, want_eval = train_eval_pairs(dataclasses.replace(objective.data, objective="helpful"), seed=4)
    assert call["rows"] == want_train and call["eval"] == want_eval and len(want_eval) == 3
    other_train, _ = train_eval_pairs(dataclasses.replace(objective.data, objective="helpful"), seed=0)
    assert other_train != want_train  # the seed tells the splits apart


def test_an_objective_named_in_the_data_wins_over_the_spec_name(tmp_path, tiny_base, pref_jsonl, handed):
    from paretoapp.trainers.config import ObjectiveSpec

    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    data = dataclasses.replace(cfg.objectives[0].data, objective="harmless")
    objective_adapter.train_objective_adapter(cfg, ObjectiveSpec(name="safety", data=data), "sft")
    call = handed.calls[0]
    assert call["run_dir"].name == "safety-sft"
    assert {r["prompt"] for r in call["rows"]} == {p for p, _, _ in PAIRS["harmless"]}


@pytest.fixture()
def adapted(tiny_base):
    """The tiny base with a LoRA adapter moved off zero (so the policy and the reference differ), and a batch."""
    from paretoapp.trainers.data import PreferenceCollator
    from paretoapp.trainers.lora import LoraSettings, attach_lora

    model, tokenizer = load_base(str(tiny_base))
    model = attach_lora(model, LoraSettings(r=2, alpha=4.0, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g))
    rows = [{"prompt": p, "chosen": " " + c, "rejected": " " + r} for p, c, r in PAIRS["helpful"][:3]]
    return model, PreferenceCollator(tokenizer, max_length=64)(rows)


def test_the_dpo_losses_report_their_parts_and_use_the_given_reference_and_smoothing(adapted):
    import contextlib

    from paretoapp.trainers.lora import reference

    model, batch = adapted
    entered = []

    @contextlib.contextmanager
    def counted(m):
        entered.append(m)
        with reference(m):
            yield

    smooth = objective_adapter.TrainConfig(beta=0.2, label_smoothing=0.3)
    plain = objective_adapter.make_loss_fn("dpo", smooth, reference_context=counted)
    loss, metrics = plain(model, batch)
    assert entered and metrics["loss"] == pytest.approx(loss.item())
    unsmoothed, _ = objective_adapter.make_loss_fn("dpo", dataclasses.replace(smooth, label_smoothing=0.0))(model, batch)
    assert abs(loss.item() - unsmoothed.item()) > 1e-3
    entered.clear()
    rpo = objective_adapter.make_loss_fn("dpo", dataclasses.replace(smooth, sft_weight=0.5), reference_context=counted)
    total, parts = rpo(model, batch)
    assert entered and parts["dpo_loss"] == pytest.approx(loss.item(), abs=1e-6)
    assert parts["loss"] == pytest.approx(total.item()) == pytest.approx(parts["dpo_loss"] + 0.5 * parts["chosen_nll"])
    assert parts["chosen_nll"] > 0
    value, sft_metrics = objective_adapter.make_loss_fn("sft", smooth)(model, batch)
    assert sft_metrics == {"loss": pytest.approx(value.item())}


def test_the_command_says_what_it_does_and_passes_its_config_on(tmp_path, tiny_base, pref_jsonl, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        objective_adapter.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Train one LoRA adapter on one objective's data (DPO or SFT) from the frozen base." in shown
    assert "Run alone" not in shown  # the docstring's first line, not all of it
    got = []
    monkeypatch.setattr(objective_adapter, "train_objective_adapter",
                        lambda cfg, objective, loss="dpo", negative=False, train=None: got.append(cfg) or Path("x"))
    path = write_config(tmp_path / "cfg.yaml", tiny_base, pref_jsonl, tmp_path / "run")
    objective_adapter.main(["--config", str(path), "--set", "negatives=true"])
    assert len(got) == 4 and all(isinstance(c, objective_adapter.AdaptersConfig) and c.negatives for c in got)


def test_writing_a_recipe_twice_keeps_the_last(tmp_path):
    objective_adapter.write_recipe(tmp_path / "a" / "r", {"x": 1})
    objective_adapter.write_recipe(tmp_path / "a" / "r", {"x": 2})
    assert json.loads((tmp_path / "a" / "r" / "run.json").read_text()) == {"x": 2}


def test_a_spec_built_in_code_trains_the_rows_of_its_own_name(tmp_path, tiny_base, pref_jsonl, handed):
    """A config file fills data.objective from the name; a spec built in Python relies on the trainer doing it."""
    from paretoapp.trainers.config import ObjectiveSpec
    from paretoapp.trainers.data import DataSpec

    cfg = _cfg(tmp_path, tiny_base, pref_jsonl)
    objective_adapter.train_objective_adapter(cfg, ObjectiveSpec(name="harmless", data=DataSpec(str(pref_jsonl))), "sft")
    call = handed.calls[0]
    assert {r["prompt"] for r in call["rows"]} == {p for p, _, _ in PAIRS["harmless"]}
    assert json.loads((call["run_dir"] / "run.json").read_text())["data"]["objective"] == "harmless"
