"""The shared trainer core: data layouts, tokenisation, losses (checked against TRL), loop, resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from trainer_fixtures import *  # noqa: F401,F403
from trainer_fixtures import OBJECTIVES, PAIRS, write_config

from paretoapp.trainers.config import ConfigError, MethodConfig, load_config
from paretoapp.trainers.data import (
    DataError,
    PreferenceCollator,
    hh_to_messages,
    load_pairs,
    split_hh_transcript,
    tokenize_pair,
)
from paretoapp.trainers.losses import dpo_batch_loss, dpo_loss, sequence_logprobs, sft_loss


# ------------------------------------------------------------------ data
def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_trl_layout_with_objective_column(pref_jsonl):
    pairs = load_pairs(str(pref_jsonl), "harmless")
    assert len(pairs) == len(PAIRS["harmless"])
    assert pairs[0]["chosen"].strip() == PAIRS["harmless"][0][1]
    swapped = load_pairs(str(pref_jsonl), "harmless", swap=True)
    assert swapped[0]["chosen"] == pairs[0]["rejected"] and swapped[0]["rejected"] == pairs[0]["chosen"]
    with pytest.raises(DataError, match="objective"):
        load_pairs(str(pref_jsonl), "funny")
    with pytest.raises(DataError, match="name one"):
        load_pairs(str(pref_jsonl))


def test_pku_layout_reads_both_labels(tmp_path):
    path = _write_jsonl(tmp_path / "pku.jsonl", [
        {"prompt": "p", "response_0": "helpful but unsafe", "response_1": "safe refusal",
         "better_response_id": 0, "safer_response_id": 1}])
    helpful = load_pairs(str(path), "helpful")[0]
    harmless = load_pairs(str(path), "harmless")[0]
    assert (helpful["chosen"], helpful["rejected"]) == ("helpful but unsafe", "safe refusal")
    assert (harmless["chosen"], harmless["rejected"]) == ("safe refusal", "helpful but unsafe")
    with pytest.raises(DataError, match="objective must be one of"):
        load_pairs(str(path), "funny")


def test_hh_layout_splits_the_transcript(tmp_path):
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: Sure, here is how."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: No."
    prompt, c, r = split_hh_transcript(chosen, rejected)
    assert prompt.endswith("Assistant:") and c == " Sure, here is how." and r == " No."
    assert hh_to_messages(prompt) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                      {"role": "user", "content": "help me"}]
    path = _write_jsonl(tmp_path / "hh.jsonl", [{"chosen": chosen, "rejected": rejected}])
    pair = load_pairs(str(path), "helpful", chat=True)[0]
    assert pair["prompt"][-1] == {"role": "user", "content": "help me"} and pair["chosen"] == "Sure, here is how."
    assert pair["rejected"] == "No."


def test_data_files_layouts_and_held_out_pairs_read_as_written(tmp_path):
    """The readers behind every trainer's pairs: .json files, line numbers in errors, HH transcripts whose
    earlier turns differ, plain (non-chat) HH text kept as written, PKU's prompt, held-out pairs from a file
    or a seeded fraction."""
    from paretoapp.trainers.data import DataSpec, train_eval_pairs

    rows = [{"prompt": "p", "chosen": "c", "rejected": "r"}, {"prompt": "q", "chosen": "d", "rejected": "s"}]
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": rows}))
    assert load_pairs(str(tmp_path / "list.json")) == load_pairs(str(tmp_path / "wrapped.json")) == rows
    (tmp_path / "bad.json").write_text(json.dumps({"rows": rows}))
    with pytest.raises(DataError) as e:
        load_pairs(str(tmp_path / "bad.json"))
    assert str(e.value) == f"{tmp_path / 'bad.json'}: expected a JSON list of objects (or {{'data': [...]}})"
    (tmp_path / "broken.jsonl").write_text(json.dumps(rows[0]) + "\n{oops\n")
    with pytest.raises(DataError, match=r"broken\.jsonl:2: not valid JSON \(.*\); each line must be one JSON object$"):
        load_pairs(str(tmp_path / "broken.jsonl"))
    one = _write_jsonl(tmp_path / "one.jsonl", [{**rows[0], "objective": "helpful"}])
    assert load_pairs(str(one), "helpful") == [rows[0]]
    with pytest.raises(DataError) as e:
        load_pairs(str(one), "harmless")
    assert str(e.value) == f"{one}: no rows with objective 'harmless'; the file has ['helpful']"

    # HH: the rejected transcript's earlier turns differ from the chosen one's; plain text is kept as written
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: Sure."
    rejected = "\n\nHuman: hi\n\nAssistant: hey you\n\nHuman: help me\n\nAssistant: No."
    prompt, c, r = split_hh_transcript(chosen, rejected)
    assert (prompt, c, r) == (chosen[: -len(" Sure.")], " Sure.", " No.")
    assert split_hh_transcript("\n\nAssistant: a", "\n\nAssistant: b") == ("\n\nAssistant:", " a", " b")
    hh = _write_jsonl(tmp_path / "hh.jsonl", [{"chosen": chosen, "rejected": rejected}])
    assert load_pairs(str(hh), "helpful") == [{"prompt": prompt, "chosen": " Sure.", "rejected": " No."}]
    long = "x" * 100
    with pytest.raises(DataError) as e:
        split_hh_transcript(long, long)
    assert str(e.value) == f"HH-RLHF transcript without 'Assistant:': {long[:80]!r}"
    not_hh = "\n\nRobot: a" + long
    with pytest.raises(DataError) as e:
        hh_to_messages(not_hh)
    assert str(e.value) == f"HH-RLHF prompt not made of Human/Assistant turns: {not_hh[:80]!r}"
    # an empty user turn is kept; consecutive user turns stay apart
    assert hh_to_messages("\n\nHuman:\n\nAssistant: ok\n\nHuman: a\n\nHuman: b\n\nHuman: c\n\nAssistant:") == [
        {"role": "user", "content": ""}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "a"},
        {"role": "user", "content": "b"}, {"role": "user", "content": "c"}]

    pku = _write_jsonl(tmp_path / "pku.jsonl", [{"prompt": "p", "response_0": "a", "response_1": "b",
                                                 "better_response_id": 1, "safer_response_id": 0}])
    assert load_pairs(str(pku), "helpful") == [{"prompt": "p", "chosen": "b", "rejected": "a"}]
    for label, objective in (("better_response_id", "helpful"), ("safer_response_id", "harmless")):  # one label
        one_label = _write_jsonl(tmp_path / f"{label}.jsonl", [{"prompt": "p", "response_0": "a", "response_1": "b",
                                                               label: 1}])
        assert load_pairs(str(one_label), objective) == [{"prompt": "p", "chosen": "b", "rejected": "a"}]
    only_chosen = _write_jsonl(tmp_path / "only_chosen.jsonl", [{"chosen": "x"}])
    with pytest.raises(DataError) as e:
        load_pairs(str(only_chosen), "helpful")
    assert str(e.value) == (
        "cannot tell the data layout from the columns ['chosen']; expected prompt/chosen/rejected (trl), "
        "response_0/response_1/better_response_id/safer_response_id (pku), or chosen/rejected transcripts (hh)")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError) as e:
        load_pairs(str(tmp_path / "empty.jsonl"))
    assert str(e.value) == f"{tmp_path / 'empty.jsonl'}: holds no rows"
    (tmp_path / "pairs.txt").write_text("p")
    with pytest.raises(DataError) as e:
        load_pairs(str(tmp_path / "pairs.txt"))
    assert str(e.value) == f"{tmp_path / 'pairs.txt'}: unsupported file type '.txt'; use .jsonl, .json or .csv"
    # a named layout wins over the columns; chat wraps a plain prompt as one user turn; non-string answers refused
    both = _write_jsonl(tmp_path / "both.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r", "response_0": "a",
                                                   "response_1": "b", "better_response_id": 1}])
    assert load_pairs(str(both), "helpful", layout="trl") == [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    assert load_pairs(str(both), "helpful") == [{"prompt": "p", "chosen": "b", "rejected": "a"}]
    with pytest.raises(DataError) as e:
        load_pairs(str(both), "helpful", layout="xml")
    assert str(e.value) == "unknown layout 'xml'; expected one of ('auto', 'trl', 'pku', 'hh')"
    assert load_pairs(str(tmp_path / "list.json"), chat=True)[0] == {
        "prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"}
    number = _write_jsonl(tmp_path / "number.jsonl", [{"prompt": "p", "chosen": 1, "rejected": "r"}])
    with pytest.raises(DataError) as e:
        load_pairs(str(number))
    assert str(e.value) == f"{number}: pair 0: chosen and rejected must be strings"
    for name in ("nope.jsonl", "nope.json", "nope.csv", "./nope", "/nope/pairs", "~/nope-pairs"):  # not Hub ids
        with pytest.raises(DataError) as e:
            load_pairs(name)
        assert str(e.value) == f"{name}: no such file; give a local .jsonl/.json/.csv path or a Hub dataset id"
    # CSV: a quoted field keeps its own line break as written
    (tmp_path / "pairs.csv").write_bytes(b'prompt,chosen,rejected\r\n"p","line 1\r\nline 2","r"\r\n')
    assert load_pairs(str(tmp_path / "pairs.csv")) == [{"prompt": "p", "chosen": "line 1\r\nline 2", "rejected": "r"}]

    # held-out pairs: another file (whole, whatever the training limit), or a seeded fraction (at least one)
    many = _write_jsonl(tmp_path / "many.jsonl", [{"prompt": f"p{i}", "chosen": "c", "rejected": "r"} for i in range(5)])
    train, held = train_eval_pairs(DataSpec(source=str(many), limit=2, eval_source=str(tmp_path / "list.json")), 0)
    assert [p["prompt"] for p in train] == ["p0", "p1"] and held == rows
    train, held = train_eval_pairs(DataSpec(source=str(many), eval_fraction=0.05), 0)
    assert len(held) == 1 and len(train) == 4 and held[0] not in train
    with pytest.raises(DataError) as e:
        train_eval_pairs(DataSpec(source=str(many), eval_fraction=1.0), 0)
    assert str(e.value) == f"{many}: eval_fraction 1.0 leaves no training pairs"


def test_a_hub_source_asks_datasets_for_the_right_subset_split_and_revision(monkeypatch):
    """No network: datasets.load_dataset is replaced, and the call it gets is what the spec says (HH's
    subset per objective, the split, the pinned revision, a config from extra)."""
    import datasets

    from paretoapp.trainers.data import DataSpec, read_rows

    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return [{"prompt": "p", "chosen": "c", "rejected": "r"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = read_rows(DataSpec(source="Anthropic/hh-rlhf", objective="harmless", split="test", revision="abc"))
    assert rows == [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    assert calls[-1] == ("Anthropic/hh-rlhf", None, {"data_dir": "harmless-base", "split": "test", "revision": "abc"})
    read_rows(DataSpec(source="me/pairs", objective="funny", layout="hh", hh_subset="funny-base"))
    assert calls[-1] == ("me/pairs", None, {"data_dir": "funny-base", "split": "train", "revision": None})
    read_rows(DataSpec(source="PKU-Alignment/PKU-SafeRLHF", objective="helpful", extra={"config": "default"}))
    assert calls[-1] == ("PKU-Alignment/PKU-SafeRLHF", "default", {"split": "train", "revision": None})
    read_rows(DataSpec(source="PKU-Alignment/PKU-SafeRLHF", objective="helpful", split="test", revision="v1"))
    assert calls[-1] == ("PKU-Alignment/PKU-SafeRLHF", None, {"split": "test", "revision": "v1"})  # pinned too
    with pytest.raises(DataError) as e:
        read_rows(DataSpec(source="Anthropic/hh-rlhf", objective="funny"))
    assert str(e.value) == ("HH-RLHF needs hh_subset (e.g. 'helpful-base' or 'harmless-base') for objective "
                            "'funny'")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_pairs(str(tmp_path / "nope.jsonl"), "helpful")


def test_tokenize_pair_marks_only_response_tokens(tokenizer_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    pair = {"prompt": "Human: hi\n\nAssistant:", "chosen": " hello there", "rejected": " no"}
    t = tokenize_pair(tok, pair)
    assert tok.decode(t["prompt_ids"] + t["chosen_ids"]) == pair["prompt"] + pair["chosen"] + tok.eos_token
    batch = PreferenceCollator(tok)([pair])
    assert batch["input_ids"].shape[0] == 2  # chosen row, then rejected row
    assert batch["completion_mask"][0].sum() == len(t["chosen_ids"])
    assert batch["completion_mask"][1].sum() == len(t["rejected_ids"])
    pretokenized = PreferenceCollator(tok)([t])  # UPO's collator hands it tokenised pairs
    assert all(torch.equal(pretokenized[k], batch[k]) for k in batch)
    # a prompt whose last token merges with the answer: the prompt is the tokens both texts share
    merged = tokenize_pair(tok, {"prompt": "Human: hi\n\nAssistant: ", "chosen": "hello", "rejected": "no"})
    assert len(merged["prompt_ids"]) == len(tok("Human: hi\n\nAssistant: ")["input_ids"]) - 1
    assert tok.decode(merged["prompt_ids"] + merged["chosen_ids"]) == "Human: hi\n\nAssistant: hello" + tok.eos_token
    # an answer that already ends in EOS gets no second one
    ended = tokenize_pair(tok, {**pair, "chosen": " hello there" + tok.eos_token})
    assert ended["chosen_ids"] == t["chosen_ids"]
    # a prompt that fills max_length leaves no response token (the row is cut at max_length)
    full = PreferenceCollator(tok, max_length=len(t["prompt_ids"]))([pair])
    assert full["completion_mask"].sum() == 0 and full["attention_mask"].sum(-1).tolist() == [len(t["prompt_ids"])] * 2
    chat = tokenize_pair(tok, {"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello", "rejected": "no"})
    assert "hello" in tok.decode(chat["chosen_ids"]) and "hi" in tok.decode(chat["prompt_ids"])


# ------------------------------------------------------------------ losses
def test_dpo_loss_formula():
    pc, pr, rc, rr = torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.5])
    beta = 0.5
    h = beta * ((-1.0 + 2.0) - (-3.0 + 2.5))
    out = dpo_loss(pc, pr, rc, rr, beta)
    assert out.loss.item() == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(h)).item(), abs=1e-6)
    assert out.chosen_rewards.item() == pytest.approx(0.5) and out.rejected_rewards.item() == pytest.approx(-0.25)


def _peft_tiny(tiny_base, nonzero=True):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_base)
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"],
                        init_lora_weights=not nonzero, lora_dropout=0.0)
    return base, config, tok


def test_sequence_logprobs_matches_a_manual_sum(tiny_base):
    base, _, tok = _peft_tiny(tiny_base)
    pair = {"prompt": "Human: hi\n\nAssistant:", "chosen": " hello", "rejected": " no thanks"}
    batch = PreferenceCollator(tok)([pair])
    got = sequence_logprobs(base, batch)
    t = tokenize_pair(tok, pair)
    for row, resp in enumerate((t["chosen_ids"], t["rejected_ids"])):
        ids = torch.tensor([t["prompt_ids"] + resp])
        logp = base(ids).logits[0].log_softmax(-1)
        n = len(t["prompt_ids"])
        want = sum(logp[n - 1 + j, tok_id] for j, tok_id in enumerate(resp))
        assert got[row].item() == pytest.approx(want.item(), abs=1e-4)
    # SFT loss is the mean token NLL over the same response tokens
    sft_batch = {k: v[:1] for k, v in batch.items()}
    n_tokens = len(t["chosen_ids"])
    assert sft_loss(base, sft_batch).item() == pytest.approx(-got[0].item() / n_tokens, abs=1e-4)


def test_dpo_loss_matches_trl_dpotrainer(tiny_base, tmp_path):
    """Oracle: the same pairs and the same LoRA model give TRL's DPOTrainer loss."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    base, lora_config, tok = _peft_tiny(tiny_base, nonzero=True)
    pairs = [{"prompt": f"Human: {p}\n\nAssistant:", "chosen": " " + c, "rejected": " " + r}
             for p, c, r in PAIRS["helpful"][:4] + PAIRS["harmless"][:2]]
    args = DPOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=len(pairs), beta=0.3,
                     max_length=None, report_to=[], use_cpu=True, bf16=False, fp16=False,
                     dataloader_num_workers=0, seed=0)
    torch.manual_seed(0)
    trainer = DPOTrainer(model=base, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tok,
                         peft_config=lora_config)
    model = trainer.model
    model.eval()
    trl_batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, trl_batch).item()
        ours = dpo_batch_loss(model, PreferenceCollator(tok)(pairs), beta=0.3)
    assert abs(ours.loss.item() - torch.log(torch.tensor(2.0)).item()) > 1e-3, "adapter must move the policy"
    assert ours.loss.item() == pytest.approx(trl_loss, abs=1e-5)
    # with the reference log-probs kept (the demo build): the same loss, the second time from the cache
    from paretoapp.trainers.losses import REFERENCE_CACHE, cache_reference_logps

    cache_reference_logps(True)
    try:
        with torch.no_grad():
            for _ in range(2):
                cached = dpo_batch_loss(model, PreferenceCollator(tok)(pairs[::-1]), beta=0.3)
                assert cached.loss.item() == pytest.approx(trl_loss, abs=1e-5)
        assert REFERENCE_CACHE.hits == 2 * len(pairs)
    finally:
        cache_reference_logps(False)


# ------------------------------------------------------------------ config
def test_config_rejects_unknown_keys_and_applies_overrides(tmp_path, tiny_base, pref_jsonl):
    path = write_config(tmp_path / "c.yaml", tiny_base, pref_jsonl, tmp_path / "out")
    cfg = load_config(MethodConfig, str(path), ["train.learning_rate=1e-4", "lora.r=3"])
    assert cfg.train.learning_rate == 1e-4 and cfg.lora.r == 3
    assert cfg.objectives[1].data.objective == "harmless"
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(MethodConfig, str(path), ["train.learnig_rate=1"])
    with pytest.raises(ConfigError, match="expected float"):
        load_config(MethodConfig, str(path), ["train.learning_rate=fast"])



def test_a_config_extends_another_and_takes_filled_in_values(tmp_path, tiny_base, pref_jsonl):
    """``extends:`` merges a file over its base mapping by mapping (a list is replaced); a caller's ``values``
    (the demo's paths) go over both, and ``--set`` over everything."""
    write_config(tmp_path / "base.yaml", tiny_base, pref_jsonl, tmp_path / "out")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("extends: ../base.yaml\ntrain: {max_steps: 7}\nlora: {target_modules: [q_proj]}\n")
    cfg = load_config(MethodConfig, str(child), ["train.seed=3"], values={"output_dir": "elsewhere",
                                                                         "train": {"seed": 1, "batch_size": 1}})
    assert cfg.train.max_steps == 7 and cfg.train.learning_rate == 5e-3        # the child's key, the base's others
    assert cfg.lora.target_modules == ["q_proj"] and cfg.lora.r == 2           # a list replaced, not appended
    assert cfg.output_dir == "elsewhere" and cfg.train.batch_size == 1 and cfg.train.seed == 3
    (tmp_path / "base.yaml").write_text("extends: sub/child.yaml\n")
    with pytest.raises(ConfigError, match="comes back to a file already read"):
        load_config(MethodConfig, str(child))


# ------------------------------------------------------------------ loop
def test_dpo_run_learns_and_resumes_identically(tmp_path, tiny_base, pref_jsonl):
    """A run interrupted after a checkpoint and resumed ends with the same adapter as one uninterrupted run."""
    from paretoapp.trainers import loop
    from paretoapp.trainers.objective_adapter import run_dir_for, train_objective_adapter

    def config(out, **train):
        path = write_config(tmp_path / f"{out}.yaml", tiny_base, pref_jsonl, tmp_path / out,
                            train={"max_steps": 4, "save_every": 2, "batch_size": 2, **train})
        return load_config(MethodConfig, str(path))

    straight = config("straight")
    adapter = train_objective_adapter(straight, straight.objectives[0])
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k), "lora_B must have moved"
    metrics = [json.loads(x) for x in (adapter.parent / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]

    # Interrupt the second run right after its step-2 checkpoint
    interrupted = config("resumed")
    real_save = loop.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(*a, **kw):
        real_save(*a, **kw)
        raise Stop

    loop.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            train_objective_adapter(interrupted, interrupted.objectives[0])
    finally:
        loop.save_checkpoint = real_save
    run_dir = run_dir_for(interrupted, "helpful")
    assert (run_dir / "checkpoints" / "step-000002").is_dir() and not (run_dir / "adapter").exists()
    resumed = train_objective_adapter(interrupted, interrupted.objectives[0])
    again = load_file(str(resumed / "adapter_model.safetensors"))
    assert set(again) == set(weights)
    for k in weights:
        torch.testing.assert_close(again[k], weights[k], atol=1e-6, rtol=1e-5)

    # A finished run is reused; a changed recipe in the same folder is refused
    assert train_objective_adapter(interrupted, interrupted.objectives[0]) == resumed
    changed = config("resumed", learning_rate=1e-4)
    with pytest.raises(ConfigError, match="different settings"):
        train_objective_adapter(changed, changed.objectives[0])


@pytest.mark.parametrize("name,module", [("pku_rewarded_soups", "rewarded_soups"),
                                         ("pku_preference_vector", "preference_vector"), ("pku_peo", "peo")])
def test_shipped_example_configs_parse(name, module):
    """The README's real-run configs stay valid as the config classes change."""
    import importlib
    from pathlib import Path
    mod = importlib.import_module(f"paretoapp.trainers.{module}")
    cls = {"rewarded_soups": "RewardedSoupsConfig", "preference_vector": "PreferenceVectorConfig", "peo": "PEOConfig"}[module]
    path = Path(__file__).resolve().parents[1] / "paretoapp" / "trainers" / "configs" / f"{name}.yaml"
    cfg = load_config(getattr(mod, cls), str(path))
    assert [o.name for o in cfg.objectives] == list(OBJECTIVES)
    assert cfg.adapters_dir == "runs/pku/adapters"
