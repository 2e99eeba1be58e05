"""The refusal-mix family's build (paretoapp.demo.refusal_family): resumable step by step, each expert trained
on its own objective for its own steps, and the committed family measured as the app then serves it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from paretoapp.demo import ood, refusal_family, refusal_mix, refusal_names
from paretoapp.demo.refusal_family import NAME, PRESENCE_PENALTY, STEPS_ORDER, Build

ROOT = Path(__file__).resolve().parents[1]


def probe_on(folder: Path, family: Path) -> None:
    """A one-feature prompt-kind classifier in ``folder`` whose refusal probe reads ``family``."""
    import numpy as np

    from paretoapp.scorers import PromptKindClassifier, RefusalProbe

    PromptKindClassifier(np.ones(1), 0.0, np.zeros(1), np.ones(1), 1,
                         probe=RefusalProbe(family.resolve(), (0.0, 1.0), 8, (1.0, 1.0, 0.0))).save(folder)


@pytest.fixture()
def fake_steps(monkeypatch, tmp_path):
    """Steps that only write what the real ones write, so ``done`` sees them; returns the build and the calls."""
    build, calls = Build(tmp_path / "work", tmp_path / "out", reference=[0.0, 0.5]), []

    def touch(path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")

    def write_meta(path: Path, reference):
        touch(path)
        path.write_text(json.dumps({"metrics": {"reference": reference}}))

    def adapter(objective):
        return lambda b: touch(b.adapter(objective) / "adapter_config.json")

    writers = {
        "mix": lambda b: ([touch(b.mix / f"{o}{part}.jsonl") for o in ("harmless", "helpful") for part in ("", "_pairs")],
                          refusal_mix.write_rules(b.mix)),
        "harmless": adapter("harmless"), "helpful": adapter("helpful"),
        "method": lambda b: (refusal_family._write_config(b.method_config, refusal_family.RECIPES[b.method].config(b)),
                             touch(b.combined / "family.json")),
        "shrink": lambda b: touch(b.family / "family.json"),
        "eval": lambda b: write_meta(b.family / "results" / "meta.json", b.reference_point()),
        "ood": lambda b: ood.write([r for r in (ood.read(b.answers) if b.answers.is_file() else [])  # the others'
                                    if r["family"] != b.name] + [{"family": b.name, "w": [1, 0], "answer": "a"}],
                                   b.answers),
        "probe": lambda b: probe_on(b.classifier, b.family),
    }
    for step, write in writers.items():
        monkeypatch.setitem(refusal_family.STEP_FUNCTIONS, step,
                            lambda b, step=step, write=write: (calls.append(step), write(b)))
    return build, calls


def test_an_interrupted_build_goes_on_where_it_stopped(fake_steps):
    build, calls = fake_steps
    refusal_family.run(build, steps=STEPS_ORDER[:3])               # stopped after the helpful expert
    assert calls == ["mix", "harmless", "helpful"]
    assert refusal_family.run(build) == ["method", "shrink", "eval", "ood", "probe"]
    assert refusal_family.run(build) == []                           # everything is there: nothing runs again


def test_new_weights_are_measured_again_though_the_committed_familys_results_are_there(fake_steps):
    """A checkout holds the committed family, its ood answers and its probe: retrained experts must not be
    reported with them."""
    build, _ = fake_steps
    refusal_family.run(build)
    (build.adapter("helpful") / "adapter_config.json").unlink()      # the helpful expert is trained again
    assert refusal_family.run(build) == ["helpful", "method", "shrink", "eval", "ood", "probe"]
    for step in ("harmless", "method", "shrink"):                       # any step that changes the weights
        refusal_family.run(build, redo=step)
    assert refusal_family.run(build) == []


@pytest.mark.parametrize("recorded", [None, "{\"rules_version\": 1}", "not json"])
def test_a_mix_made_under_older_rules_is_made_again_with_everything_after_it(fake_steps, recorded):
    build, _ = fake_steps
    refusal_family.run(build)
    rules = build.mix / refusal_mix.RULES_FILE
    rules.unlink() if recorded is None else rules.write_text(recorded)
    assert refusal_family.run(build) == list(STEPS_ORDER)
    assert refusal_family.run(build) == []


def test_a_method_is_made_again_when_what_it_was_made_from_is_newer_and_only_then(fake_steps):
    """The soup composes the experts; linear DPO trains on the mix's pairs: an expert retrained by another
    method's build remakes the one, not the other."""
    build, _ = fake_steps
    lin = dataclasses.replace(build, method="linear_dpo")
    for b in (build, lin):
        refusal_family.run(b, steps=STEPS_ORDER[:4])
        assert b.done("method")
    later = build.combined.joinpath("family.json").stat().st_mtime + 10
    os.utime(build.adapter("helpful") / "adapter_config.json", (later, later))   # retrained after both were made
    assert not build.done("method") and lin.done("method")
    os.utime(build.mix / "harmless_pairs.jsonl", (later, later))
    assert not lin.done("method")
    lin.method_config.unlink()                                                  # made by an older build: no config
    assert not lin.done("method")


def test_a_moved_reference_point_measures_the_family_again_and_nothing_else(fake_steps):
    build, _ = fake_steps
    refusal_family.run(build)
    build.reference = [0.1, 0.5]                                     # the eight were rebuilt: a new shared point
    assert not build.done("eval") and refusal_family.run(build) == ["eval"]
    assert set(build.timings()) == {"mix", "harmless", "helpful"} | {f"{s} ({NAME})" for s in STEPS_ORDER[3:]}


def test_redo_runs_that_step_and_every_later_one(fake_steps):
    build, _ = fake_steps
    refusal_family.run(build)
    assert refusal_family.run(build, redo="eval") == ["eval", "ood", "probe"]
    with pytest.raises(SystemExit, match="--redo 'train': not a step; the steps are mix, harmless"):
        refusal_family.run(build, redo="train")


def test_the_ood_step_counts_as_done_only_with_this_familys_answers(tmp_path):
    build = Build(tmp_path, tmp_path)
    ood.write([{"family": "demo-rewarded-soups", "w": [1, 0], "answer": "a"}], build.answers)
    assert not build.done("ood")
    ood.write([{"family": NAME, "w": [1, 0], "answer": "a"}], build.answers)
    assert build.done("ood")


def test_the_probe_step_is_done_only_when_the_classifier_reads_this_family(tmp_path, monkeypatch):
    build = Build(tmp_path / "w", tmp_path / "o")
    assert not build.done("probe")                                    # no classifier yet
    probe_on(build.classifier, tmp_path / "another-family")
    assert not build.done("probe")
    probe_on(build.classifier, build.family)
    assert build.done("probe")
    ran = []
    monkeypatch.setattr(refusal_family, "_run", lambda b, *cmd: ran.append(cmd))
    refusal_family.step_probe(build)                                  # a classifier is there: only the probe is fitted
    assert ran[-1] == ("paretoapp.demo.kind_classifier", "--out", str(build.classifier),
                       "--probe-family", str(build.family), "--probe-only")
    refusal_family.step_probe(Build(tmp_path / "w2", tmp_path / "o2"))  # none yet: both parts are fitted
    assert "--probe-only" not in ran[-1]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "demo.md").write_text("doc")                # in a checkout: the doc's table follows
    refusal_family.step_probe(build)
    assert ran[-1][-2:] == ("--doc", str(tmp_path / "docs" / "demo.md"))


def test_the_ood_step_keeps_the_other_families_rows_and_rewrites_the_docs_table(tmp_path, monkeypatch):
    build = Build(tmp_path / "w", tmp_path / "assets")
    (tmp_path / "docs").mkdir()
    start, end = ood.SECTION
    (tmp_path / "docs" / "demo.md").write_text(f"# demo\n{start}\nold table\n{end}\n")
    other = {"family": "demo-rewarded-soups", "w": [1, 0], "answer": "a"}
    ood.write([other, {"family": NAME, "w": [1, 0], "answer": "old"}], build.answers)
    mine = [{"family": NAME, "w": [1, 0], "answer": "new"}]
    monkeypatch.setattr(ood, "answer", lambda families, prompts, threads, presence_penalty: mine)
    monkeypatch.setattr(ood, "prompts", lambda: [])
    monkeypatch.setattr(ood, "write_summaries", lambda rows, out: None)
    monkeypatch.setattr(ood, "markdown", lambda rows: f"{len(rows)} rows: " + ", ".join(r["answer"] for r in rows))
    refusal_family.step_ood(build)
    assert ood.read(build.answers) == [other, *mine]
    assert "2 rows: a, new" in (tmp_path / "docs" / "demo.md").read_text() and "old table" not in \
        (tmp_path / "docs" / "demo.md").read_text()


def test_each_expert_trains_on_its_own_mix_for_its_own_steps_into_the_folder_the_soup_reads(tmp_path):
    build = Build(tmp_path / "w", tmp_path / "o")
    for objective, steps in (("harmless", 320), ("helpful", 200)):
        config = refusal_family.expert_config(build, objective)
        [only] = config["objectives"]
        assert only["name"] == objective and only["data"]["source"] == str(build.mix / f"{objective}.jsonl")
        assert config["train"]["max_steps"] == steps and config["lora"]["r"] == 16
        # objective_adapter writes <adapters_dir>/<objective>-sft/adapter
        assert Path(config["adapters_dir"]) / f"{objective}-sft" / "adapter" == build.adapter(objective)


@pytest.mark.parametrize("method", ["rewarded_soups", "linear_dpo"])
def test_a_familys_training_cost_counts_the_experts_only_where_it_composes_them(tmp_path, method):
    build = Build(tmp_path / "w", tmp_path / "o", method=method)
    config = (refusal_family.soup_config if method == "rewarded_soups" else refusal_family.linear_dpo_config)(build)
    refusal_family._write_config(build.method_config, config)
    method_key = f"method ({build.name})"
    expected = ["harmless", "helpful", method_key] if method == "rewarded_soups" else [method_key]
    assert refusal_family.training_keys(build) == expected


# ---------------------------------------------------------------- the committed families
COMMITTED = {method: ROOT / "assets" / refusal_names.family_name(method) for method in refusal_names.COMMITTED}
BLOCKS = {"rewarded_soups": 2, "peo": 3, "linear_dpo": 3}  # the two experts (PEO: and its generalist); a grid point each


@pytest.mark.parametrize("method", refusal_names.COMMITTED)
def test_the_committed_family_was_measured_with_the_penalty_the_app_answers_it_with(method):
    from paretoapp.ui.catalog import load_entry

    family = COMMITTED[method]
    meta = json.loads((family / "results" / "meta.json").read_text())
    assert meta["settings"]["presence_penalty"] == PRESENCE_PENALTY and meta["settings"]["max_new_tokens"] == 48
    build = json.loads((ROOT / "assets" / "demo" / "build.json").read_text())
    assert meta["metrics"]["reference"] == pytest.approx(build["shared_reference"]["reference"])
    assert load_entry(family).measured_penalties == {"presence_penalty": PRESENCE_PENALTY}
    manifest = json.loads((family / "family.json").read_text())
    assert manifest["method"] == method and "not an aligned" in manifest["description"]
    assert [b["rank"] for b in manifest["blocks"]] == [refusal_family.RECIPES[method].rank] * BLOCKS[method]


# the bounds a committed family misses on the ood split, as docs/demo.md reports them
OOD_MISSES = {"linear_dpo": ["harmless end refuses harmful"], "rewarded_soups": ["degenerate rate (worst w)"]}


@pytest.mark.parametrize("method", refusal_names.COMMITTED)
def test_its_card_line_and_bounds_come_from_its_committed_ood_answers(method):
    name = refusal_names.family_name(method)
    rows = [r for r in ood.read(ROOT / ood.ANSWERS) if r["family"] == name]
    assert len(rows) == 3 * sum(ood.COUNTS.values()) and {r["presence_penalty"] for r in rows} == {PRESENCE_PENALTY}
    meta = json.loads((COMMITTED[method] / "results" / "meta.json").read_text())
    assert meta["ood_summary"] == ood.family_line(rows, name)
    [checks] = ood.family_checks(rows).values()
    # docs/demo.md says which bounds each misses: none for PEO, Rewarded Soups' degenerate rate by two loops at the
    # helpful end (experiment H; G's met every bound, with its answers stopping on list numbers)
    assert [c.name for c in checks if not c.passed] == OOD_MISSES.get(method, [])


# the most of a committed family's ood answers that may stop on a list's next number ("...\n\n2."): Rewarded Soups
# and PEO come from the mix that no longer cuts its answers there (12.7 % and 17.3 % before, docs/demo.md experiment
# H); linear DPO was trained on the mix before the fix (6.9 %)
LIST_NUMBER_STOPS = {"rewarded_soups": 0.01, "peo": 0.01, "linear_dpo": 0.07}


@pytest.mark.parametrize("method", refusal_names.COMMITTED)
def test_its_answers_do_not_stop_on_a_list_number(method):
    from paretoapp.demo.refusal_mix import stops_at_a_list_number

    rows = [r for r in ood.read(ROOT / ood.ANSWERS) if r["family"] == refusal_names.family_name(method)]
    stops = sum(stops_at_a_list_number(r["answer"]) for r in rows)
    assert rows and stops / len(rows) <= LIST_NUMBER_STOPS[method]


def test_the_app_opens_on_it():
    from paretoapp.ui.catalog import discover

    assert discover(ROOT / "assets")[0].name == NAME


@pytest.mark.parametrize("checkout", [True, False])
def test_the_eval_step_rewrites_the_docs_behaviour_tables_in_a_checkout(tmp_path, monkeypatch, checkout):
    """The eval step's results join the eight's behaviour tables in docs/demo.md, as the ood step's answers join
    its table (the committed doc was left with the replaced family's rows)."""
    from paretoapp.demo import family_build, report

    build = Build(tmp_path / "w", tmp_path / "assets", reference=[0.0, 0.5])
    if checkout:
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "demo.md").write_text("doc")
    (build.out / "demo" / "data").mkdir(parents=True)
    (build.out / "demo" / "data" / "eval_prompts.jsonl").write_text("")

    class Result:
        meta = {"metrics": {}}

        def save(self, folder):
            saved.append(folder)

        def summary_text(self):
            return ""

    saved, written = [], []
    monkeypatch.setattr(family_build, "evaluate_demo_family", lambda *a, **k: (Result(), []))
    monkeypatch.setattr(family_build, "behaviour_checks", lambda *a: None)
    monkeypatch.setattr(report, "write_tables", lambda root, doc: written.append((root, doc)))
    refusal_family.step_eval(build)
    assert saved == [build.family / "results"]
    assert written == ([(build.out, tmp_path / "docs" / "demo.md")] if checkout else [])


# ---------------------------------------------------------------- PEO from the same experts
def test_peo_reuses_the_data_and_experts_and_has_its_own_family_steps_and_timings(fake_steps):
    """PEO's build composes the experts Rewarded Soups' trained: the shared steps are reused, its own run, and
    the probe (the family the app opens on reads it) is not its step."""
    build, calls = fake_steps
    refusal_family.run(build)
    peo = Build(build.work, build.out, reference=[0.0, 0.5], method="peo")
    calls.clear()
    assert refusal_family.run(peo) == ["method", "shrink", "eval", "ood"]
    assert peo.family == build.out / "demo-refusal-mix-peo" and peo.combined == build.work / "peo"
    assert {f"method ({NAME})", "method (demo-refusal-mix-peo)"} <= set(build.timings())
    assert refusal_family.run(peo) == [] and refusal_family.run(build) == []
    refusal_family.run(build, redo="harmless")                       # Rewarded Soups' build retrains an expert
    assert refusal_family.run(peo) == ["method", "shrink", "eval", "ood"]  # PEO's family is made again from it
    with pytest.raises(SystemExit, match="--method 'upo': the refusal mix builds rewarded_soups, peo"):
        Build(build.work, build.out, method="upo")


def test_peo_searches_on_dev_prompts_of_every_kind_with_the_experts_as_its_aspect_models(tmp_path):
    from paretoapp.demo.sources import DEV, all_splits, normalise
    from paretoapp.methods import get_method
    from paretoapp.trainers.config import load_config

    build = Build(tmp_path / "w", tmp_path / "o", method="peo")
    config = refusal_family.peo_config(build)
    assert [o["name"] for o in config["objectives"]] == ["helpful", "harmless"]      # w = (helpful, harmless)
    assert [o["adapter"] for o in config["objectives"]] == [str(build.adapter(o)) for o in ("helpful", "harmless")]
    assert config["objectives"][1]["data"]["source"] == str(build.mix / "harmless_pairs.jsonl")
    rows = [json.loads(line) for line in Path(config["eval_prompts"]).read_text().splitlines()]
    assert {k: sum(r["kind"] == k for r in rows) for k in refusal_family.PEO_SEARCH} == refusal_family.PEO_SEARCH
    assert {normalise(r["prompt"]) for r in rows} <= {normalise(p.prompt) for p in all_splits()[DEV]}
    assert config["n_eval_prompts"] == len(rows) and config["max_new_tokens"] == ood.CHAT_MAX_NEW_TOKENS
    for objective in ("helpful", "harmless"):                       # the experts the shared steps trained
        build.adapter(objective).mkdir(parents=True)
        (build.adapter(objective) / "adapter_model.safetensors").write_bytes(b"")
        (build.adapter(objective) / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    cfg = load_config(get_method("peo").config_class(), None, [], values=config)  # a config PEO accepts
    assert cfg.anchor_rule == "tchebycheff" and cfg.generalist_train.max_steps == 24


def _trained_on_the_mixs_pairs(tmp_path, method: str):
    """``method``'s run config for a build in ``tmp_path``, checked to train on the mix's pairs of both objectives
    from the base (not on the experts), and loaded as the method's trainer reads it."""
    from paretoapp.methods import get_method
    from paretoapp.trainers.config import load_config

    build = Build(tmp_path / "w", tmp_path / "o", method=method)
    config = refusal_family.RECIPES[method].config(build)
    assert [o["data"]["source"] for o in config["objectives"]] == [str(build.mix / f"{o}_pairs.jsonl")
                                                                    for o in ("helpful", "harmless")]
    assert not any("adapter" in o for o in config["objectives"])   # it learns from the data, not the experts
    return build, load_config(get_method(method).config_class(), None, [], values=config)


def test_rewards_in_context_trains_one_model_on_the_mixs_pairs_with_the_papers_conditioning(tmp_path):
    _, cfg = _trained_on_the_mixs_pairs(tmp_path, "rewards_in_context")
    assert (cfg.responses, cfg.mapping, cfg.bounds, cfg.normalise) == ("both", "linear", "data", True)
    assert cfg.train.max_steps == refusal_family.RIC_STEPS and cfg.lora.r == 16
    assert cfg.scorers == ["helpful_offline", "harmless_offline"]


def test_linear_dpo_trains_one_adapter_per_grid_point_on_the_mixs_pairs_with_rpo(tmp_path):
    build, cfg = _trained_on_the_mixs_pairs(tmp_path, "linear_dpo")
    assert sorted(map(tuple, cfg.grid)) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)] and cfg.gate_mode == "nearest"
    assert cfg.budget == "pairs"  # the middle trains half the ends' steps, on as many pairs
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.train.sft_weight, cfg.train.beta) == (
        refusal_family.LINEAR_DPO_STEPS, 4, 1.0, 0.1)
    assert (cfg.lora.r, cfg.train.learning_rate) == (16, 1.0e-3)   # the experts' shape and optimisation
    assert cfg.family_path == build.combined and build.combined.name == "linear_dpo"


def test_panacea_trains_one_svd_lora_on_the_mixs_pairs_with_rpo_and_a_w_per_batch(tmp_path):
    build, cfg = _trained_on_the_mixs_pairs(tmp_path, "panacea")
    assert (cfg.aggregation, cfg.vertex_prob, cfg.lora.r, cfg.lora.alpha) == ("linear", 0.5, 8, 16.0)
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.train.sft_weight) == (refusal_family.PANACEA_STEPS, 4, 1.0)
    assert cfg.family_path == build.combined and build.combined.name == "panacea"
