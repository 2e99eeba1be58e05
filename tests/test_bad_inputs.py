"""Bad inputs through every door: the Python API, the CLI and the app's HTTP API, as one table.

Each case feeds one bad input through one door and checks what comes back: one
line (no traceback) that names what is wrong and says what to do (the case's
pattern, and a verb telling the user what to do), and nothing written (the
folders the case could write to are exactly as they were). The same over-long
prompt gets the very same message through all three doors; a killed client stops
its generation; an export killed mid-write leaves nothing that a later run keeps.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import make_tiny_family, save_tiny_base
from ui_support import app_env  # noqa: F401  (fixture)

from paretoapp.cli import main as cli_main

gradio_client = pytest.importorskip("gradio_client")

ROOT = Path(__file__).resolve().parents[1]
FIX_VERBS = re.compile(r"\b(use|give|pass|choose|shorten|lower|check|save|convert|log in|paste|ask|add|send|"
                       r"retrain|load|pick|set|install|upgrade)\b")
MAX_CONTROLS = 6


# ------------------------------------------------------------------ the world the cases run in
def _family_on(base: Path, template: Path, dest: Path, name: str) -> Path:
    """A copy of the family at ``template`` whose manifest names ``base`` as its base model."""
    shutil.copytree(template, dest)
    manifest = json.loads((dest / "family.json").read_text())
    manifest["base_model"]["name_or_path"], manifest["name"] = str(base), name
    (dest / "family.json").write_text(json.dumps(manifest))
    return dest


def _base_without_tokenizer(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("tokenizer*", "vocab*", "merges*", "special_tokens*",
                                                             "chat_template*"))
    return dest


def _base_with_pickle_weights(src: Path, dest: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(str(src / "model.safetensors")), dest / "pytorch_model.bin")
    return dest


def _dora_adapter(base: Path, dest: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], use_dora=True)).save_pretrained(dest)
    return dest


def _family_edited(template: Path, dest: Path, name: str, manifest=None, tensors=None) -> Path:
    """A copy of the family at ``template`` with its manifest and/or bank tensors changed (no checks on the way)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(template, dest)
    data = json.loads((dest / "family.json").read_text())
    data["name"] = name
    (dest / "family.json").write_text(json.dumps({**data, **(manifest or {})}))
    if tensors is not None:
        bank = dest / "bank.safetensors"
        save_file({k: tensors(v) for k, v in load_file(bank).items()}, str(bank), metadata={"format": "paretoapp.family"})
    return dest


def _pickled_reward_model(tokenizer_dir: Path, dest: Path) -> Path:
    """A tiny sequence-classification reward model whose folder holds only pickle weights."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.eos_token_id)
    model = LlamaForSequenceClassification(config)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    torch.save(load_file(str(dest / "model.safetensors")), dest / "pytorch_model.bin")
    (dest / "model.safetensors").unlink()
    return dest


def _hand_made_results(dest: Path) -> Path:
    """A results folder with a five-point front (no model needed): what `paretoapp pick` reads."""
    import numpy as np
    import pandas as pd

    from paretoapp.evaluate import EvalResult

    a = np.linspace(1, 0, 5)
    means = pd.DataFrame({"w_idx": range(5), "w_helpful": a, "w_harmless": 1 - a,
                          "helpful_rm": a, "harmless_rm": 1 - a})
    meta = {"w_columns": ["w_helpful", "w_harmless"], "family": {"objectives": ["helpful", "harmless"]},
            "scorers": [{"name": "helpful_rm", "higher_is_better": True},
                        {"name": "harmless_rm", "higher_is_better": True}]}
    return EvalResult(means.copy(), means, meta).save(dest)


def _trainer_config(path: Path, base: Path, adapters: list[Path], out: Path) -> Path:
    import yaml

    cfg = {"name": "bad", "base_model": str(base), "output_dir": str(out),
           "lora": {"r": 2, "alpha": 4, "target_modules": ["q_proj"]},
           "objectives": [{"name": n, "adapter": str(a)} for n, a in zip(("helpful", "harmless"), adapters)]}
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory, tokenizer_dir):
    """A good tiny family, families on broken bases, a DoRA adapter and trainer configs that use them."""
    import torch

    root = tmp_path_factory.mktemp("bad_inputs")
    good = make_tiny_family(root / "good", tokenizer_dir)
    base = root / "good" / "base"
    families = {
        "good": good,
        "no_tokenizer": _family_on(_base_without_tokenizer(base, root / "notok" / "base"), good,
                                   root / "notok" / "family", "no-tokenizer"),
        "pickled": _family_on(_base_with_pickle_weights(base, root / "pickled" / "base"), good,
                              root / "pickled" / "family", "pickled"),
        "other_base": _family_on(save_tiny_base(root / "other" / "base", "gpt2", tokenizer_dir), good,
                                 root / "other" / "family", "other-base"),
        "int32_bank": _family_edited(good, root / "int32", "int32-bank", tensors=lambda t: (t * 100).to(torch.int32)),
        "low_above_high": _family_edited(good, root / "low-above-high", "low-above-high",
                                         manifest={"w_low": [3.0, 3.0], "w_high": [-2.0, -2.0]}),
        "no_range": _family_edited(good, root / "no-range", "no-range", manifest={"w_low": None, "w_high": None}),
    }
    dora = _dora_adapter(base, root / "dora")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait?\n".encode("latin-1"))
    (root / "prompts.txt").write_text("Hi\nWhat is the sea?\n")
    (root / "broken.yaml").write_text("name: broken\nbase_model: [one, two\nobjectives:\n  - name: helpful\n")
    runs = tmp_path_factory.mktemp("runs")  # trainer output folders: must stay empty
    return SimpleNamespace(
        root=root, families=families, base=base, runs=runs,
        dora_config=_trainer_config(root / "dora.yaml", base, [dora, dora], runs / "dora"),
        missing_config=_trainer_config(root / "missing.yaml", base, [root / "nowhere", dora], runs / "missing"),
        latin1=root / "latin1.txt", broken_yaml=root / "broken.yaml",
        pickled_reward_model=_pickled_reward_model(tokenizer_dir, root / "pickled-rm"),
        results=_hand_made_results(root / "results-hand"))


@pytest.fixture(scope="module")
def policy(world):
    from paretoapp.generate import load_policy
    return load_policy(world.families["good"])


@pytest.fixture(scope="module")
def client(app_env):  # noqa: F811
    return gradio_client.Client(app_env[1], verbose=False)


# ------------------------------------------------------------------ how each door is called
def within(seconds: float, fn):
    """``fn()``'s result, or a failed test if it does not return in time (an input that hangs is a bug too)."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread)
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"no answer after {seconds:g} s: the input was not refused at once")
    if "error" in out:
        raise out["error"]
    return out["value"]


def python_call(fn):
    """The error message of ``fn(ctx)``, which must raise a ValueError (every paretoapp error is one) in time."""
    def call(ctx):
        try:
            within(120, lambda: fn(ctx))
        except ValueError as exc:
            return str(exc)
        pytest.fail("no error was raised")
    return call


def cli_call(argv):
    """stderr of ``paretoapp ARGS`` run in-process; it must exit with code 2, in time."""
    def call(ctx):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = within(120, lambda: cli_main([str(a) for a in argv(ctx)]))
        assert code == 2, err.getvalue()
        text = err.getvalue().strip()
        assert text.startswith("error: ")
        return text
    return call


def http_call(api_name, args, pick=None):
    """The error the app sends back (or, for endpoints that answer with a status, that status)."""
    def call(ctx):
        try:
            out = ctx.client.predict(*args(ctx), api_name=api_name)
        except Exception as exc:  # gradio_client's AppError carries the app's message
            return str(exc)
        if pick is None:
            pytest.fail(f"{api_name} answered {out!r} instead of an error")
        return pick(out)
    return call


def rest_call(api_name, body: bytes):
    """The error of a raw REST call (what curl sends: JSON may carry escapes gradio_client cannot encode)."""
    def call(ctx):
        import httpx

        url = ctx.client.src.rstrip("/")
        posted = httpx.post(f"{url}/gradio_api/call{api_name}", content=body,
                            headers={"content-type": "application/json"})
        posted.raise_for_status()
        with httpx.stream("GET", f"{url}/gradio_api/call{api_name}/{posted.json()['event_id']}", timeout=60) as sse:
            events = "".join(sse.iter_text())
        assert "event: error" in events, events
        data = next(line for line in events.splitlines() if line.startswith("data:"))
        return json.loads(data[5:])["error"]
    return call


def status_of_export(out):
    path, status = out
    assert path is None
    return status


@dataclass
class Case:
    door: str
    name: str
    call: object
    says: str  # what the message must say: the problem and the fix

    @property
    def id(self) -> str:
        return f"{self.door}-{self.name}"


def fam(name):
    return lambda ctx: ctx.world.families[name]


LONG = "Tell me everything about the sea. " * 400  # ~3200 tokens: more than either test model's context
GOOD = "0.5,0.5"


def export_args(w=GOOD, *extra, family="good"):
    return lambda ctx: ["export", ctx.world.families[family], "--w", w, "--out", ctx.tmp / "out", "--name", "x", *extra]


def gen(prompt, w=(0.5, 0.5), family="tiny-random", max_new=8, temperature=0.0):
    return lambda ctx: (prompt, list(w) if isinstance(w, tuple) else w, family, max_new, temperature, "")


CASES = [
    # ---- Python API
    Case("python", "non-utf8-bytes", python_call(lambda c: c.policy.generate([b"caf\xe9"], [[0.5, 0.5]])),
         r"not UTF-8 text \(byte 3 is 0xe9\); send it encoded as UTF-8"),
    Case("python", "lone-surrogate", python_call(lambda c: c.policy.generate(["hi \udcff"], [[0.5, 0.5]])),
         r"not a character .*send valid UTF-8 text"),
    Case("python", "prompt-not-text", python_call(lambda c: c.policy.generate([None], [[0.5, 0.5]])),
         r"must be text or a list of chat messages, got NoneType; pass a string"),
    Case("python", "message-without-content",
         python_call(lambda c: c.policy.generate([[{"role": "user"}]], [[0.5, 0.5]])),
         r"chat message 0 .*give each message as a dict with 'role' and 'content'"),
    Case("python", "chat-ends-with-assistant",
         python_call(lambda c: c.policy.generate([[{"role": "assistant", "content": "hi"}]], [[0.5, 0.5]])),
         r"must end with a user message; add the user's turn last"),
    Case("python", "prompt-too-long", python_call(lambda c: c.policy.generate([LONG], [[0.5, 0.5]])),
         r"the prompt has (at least )?\d+ tokens but at most \d+ fit .*shorten it or lower max_new_tokens"),
    Case("python", "no-room-for-the-prompt",
         python_call(lambda c: c.policy.generate(["Hi"], [[0.5, 0.5]], _settings(max_new_tokens=256))),
         r"max_new_tokens 256 leaves no room for the prompt .*context of 256 tokens; ask for fewer than 256"),
    Case("python", "max-new-tokens-text", python_call(lambda c: _settings(max_new_tokens="lots")),
         r"max_new_tokens 'lots' is not a whole number; give one like 64"),
    Case("python", "repetition-penalty-too-high", python_call(lambda c: _settings(repetition_penalty=3)),
         r"repetition_penalty must be in \(0, 2\], got 3; use 1 for none, 1.1 to 1.3 to discourage loops"),
    Case("python", "w-wrong-length", python_call(lambda c: c.policy.generate(["Hi"], [[0.5]])),
         r"1 values but this family has 2 objectives; pass one weight per objective"),
    Case("python", "w-nan", python_call(lambda c: c.policy.generate(["Hi"], [[float("nan"), 0.5]])),
         r"NaN or infinity; use finite numbers"),
    Case("python", "pickle-only-base", python_call(lambda c: _load(c.world.families["pickled"])),
         r"only pickle weights \(pytorch_model.bin\).*convert them to safetensors.*allow_pickle=True"),
    Case("python", "base-without-tokenizer", python_call(lambda c: _load(c.world.families["no_tokenizer"])),
         r"no tokenizer .*save it into the folder with tokenizer.save_pretrained"),
    Case("python", "family-for-another-base", python_call(lambda c: _load(c.world.families["other_base"])),
         r"does not fit this model \(model_type: family 'llama' vs model 'gpt2'\); load the family's own base"),
    Case("python", "export-to-proc", python_call(lambda c: _export(c.policy, "/proc/paretoapp-test", "x")),
         r"cannot write to /proc/paretoapp-test: .*choose a folder you can write to"),
    Case("python", "export-hostile-name", python_call(lambda c: _export(c.policy, c.tmp / "out", "../up")),
         r"export name '../up' is not allowed: use 1-96 letters"),
    Case("python", "push-offline", python_call(lambda c: _push_offline(c.world.base)),
         r"push to me/model failed: cannot reach the Hub .*check your network and try again"),
    # issue 25: inputs that could not make progress, or were taken for something they are not
    Case("python", "batch-size-zero",
         python_call(lambda c: c.policy.generate(["Hi"], [[0.5, 0.5]], _settings(max_new_tokens=4), batch_size=0)),
         r"batch_size must be at least 1, got 0; ask for 1 or more rows at once"),
    Case("python", "family-with-int32-bank", python_call(lambda c: _family(c.world.families["int32_bank"])),
         r"lora_A holds int32 numbers; a bank holds float weights .*save the family from the trained float tensors"),
    Case("python", "manifest-w-low-above-high", python_call(lambda c: _family(c.world.families["low_above_high"])),
         r"w_low\[0\] = 3.0 is above w_high\[0\] = -2.0, so no w fits; give each objective's low end first"),
    Case("python", "w-of-truth-values", python_call(lambda c: c.policy.generate(["Hi"], [[True, False]])),
         r"True is a truth value, not a number; give numbers like 0.3, 0.7"),
    Case("python", "w-huge-without-a-range",
         python_call(lambda c: _load(c.world.families["no_range"]).generate(["Hi"], [[1e30, 0.0]])),
         r"w\[0\] = 1e\+30 is too large: past ±1000 the model's numbers overflow; choose a value between -1000"),
    Case("python", "negative-temperature", python_call(lambda c: _settings(temperature=-1.0)),
         r"temperature -1 is negative; give 0 for greedy decoding or a positive number"),
    Case("python", "reward-model-with-pickle-weights",
         python_call(lambda c: _scorer(f"hf:{c.world.pickled_reward_model}")),
         r"reward model .*pickled-rm: holds only pickle weights \(pytorch_model.bin\).*allow_pickle=True"),
    # ---- CLI (paretoapp.cli.main, in-process)
    Case("cli", "w-not-numbers", cli_call(export_args("abc")),
         r"--w 'abc' is not a list of numbers .*give numbers separated by commas, e.g. 0.3,0.7"),
    Case("cli", "w-out-of-range", cli_call(export_args("5,5")),
         r"w\[0\] = 5 is outside this family's allowed range \[-2, 3\]; choose a value inside it"),
    Case("cli", "out-under-proc", cli_call(lambda c: ["export", c.world.families["good"], "--w", GOOD,
                                                      "--out", "/proc/x/y", "--name", "x"]),
         r"cannot write to /proc/x/y: .*choose a folder you can write to"),
    Case("cli", "out-under-a-file", cli_call(lambda c: ["export", c.world.families["good"], "--w", GOOD,
                                                        "--out", c.world.latin1 / "sub", "--name", "x"]),
         r"latin1.txt is a file, not a folder; choose another folder"),
    Case("cli", "bad-repo-id", cli_call(export_args(GOOD, "--push", "bad id!", "--token", "hf_x")),
         r"invalid Hub repo id 'bad id!'.*use 'user-or-org/model-name'"),
    Case("cli", "push-without-token", cli_call(export_args(GOOD, "--push", "me/model")),
         r"needs a write token: log in, or paste a token"),
    Case("cli", "pickle-only-base", cli_call(export_args(GOOD, family="pickled")),
         r"only pickle weights .*--allow-pickle"),
    Case("cli", "base-without-tokenizer", cli_call(export_args(GOOD, family="no_tokenizer")),
         r"no tokenizer .*tokenizer.save_pretrained"),
    Case("cli", "unknown-device", cli_call(export_args(GOOD, "--device", "cuda:99")),
         r"device cuda:99 .*; use c"),
    Case("cli", "unknown-dtype", cli_call(export_args(GOOD, "--dtype", "fp8")),
         r"dtype 'fp8' is not supported; use float32, bfloat16 or float16"),
    Case("cli", "no-such-family", cli_call(lambda c: ["export", c.tmp / "nothing", "--w", GOOD, "--name", "x",
                                                      "--out", c.tmp / "out"]),
         r"no such family folder; pass a folder that holds family.json"),
    Case("cli", "max-new-tokens-zero", cli_call(lambda c: ["evaluate", c.world.families["good"], "--prompts",
                                                           c.world.latin1, "--scorers", "length_words,refusal",
                                                           "--max-new-tokens", "0", "--out", c.tmp / "r"]),
         r"max_new_tokens must be at least 1, got 0; ask for 1 or more"),
    Case("cli", "prompt-file-not-utf8", cli_call(lambda c: ["evaluate", c.world.families["good"], "--prompts",
                                                            c.world.latin1, "--scorers", "length_words,refusal",
                                                            "--out", c.tmp / "r", "--no-cache"]),
         r"latin1.txt is not UTF-8 text \(byte 3 is 0xe9\); save it as UTF-8"),
    Case("cli", "results-under-proc", cli_call(lambda c: ["evaluate", c.world.families["good"], "--prompts",
                                                          c.world.latin1, "--scorers", "length_words,refusal",
                                                          "--out", "/proc/x/r"]),
         r"cannot write to /proc/x: .*choose a folder you can write to"),
    Case("cli", "ref-not-numbers", cli_call(lambda c: ["compare", c.tmp, "--ref", "low,high"]),
         r"--ref 'low,high' is not a list of numbers .*give numbers separated by commas"),
    Case("cli", "app-with-pickled-family", cli_call(lambda c: ["app", "--family", c.world.families["pickled"],
                                                               "--no-assets", "--device", "cpu"]),
         r"family 'pickled' cannot be served here: .*only pickle weights.*convert them to safetensors"),
    Case("cli", "train-with-dora-adapter", cli_call(lambda c: ["train", "rewarded_soups", "--config",
                                                               c.world.dora_config]),
         r"is a DoRA adapter, whose update is not linear .*retrain it as plain LoRA"),
    Case("cli", "train-with-missing-adapter", cli_call(lambda c: ["train", "rewarded_soups", "--config",
                                                                  c.world.missing_config]),
         r"nowhere holds no adapter_model.safetensors; pass a folder written by a trainer"),
    # issue 25
    Case("cli", "batch-size-zero", cli_call(lambda c: ["evaluate", c.world.families["good"], "--prompts",
                                                       c.world.root / "prompts.txt", "--scorers", "length_words,refusal",
                                                       "--batch-size", "0", "--max-new-tokens", "4", "--no-cache",
                                                       "--out", c.tmp / "r", "--quiet"]),
         r"batch_size must be at least 1, got 0; ask for 1 or more rows at once"),
    Case("cli", "config-with-a-yaml-syntax-error",
         cli_call(lambda c: ["train", "rewarded_soups", "--config", c.world.broken_yaml]),
         r"broken.yaml: not valid YAML \(.* at line 3, column \d+\); check the syntax there"),
    Case("cli", "pick-at-least-nan", cli_call(lambda c: ["pick", c.world.results, "--at-least", "helpful=nan"]),
         r"--at-least 'helpful=nan': a bound must be a finite number; give one like harmless=0.9"),
    Case("cli", "evaluate-with-a-pickled-reward-model",
         cli_call(lambda c: ["evaluate", c.world.families["good"], "--prompts", c.world.root / "prompts.txt",
                             "--scorers", f"hf:{c.world.pickled_reward_model},length_words", "--max-new-tokens", "4",
                             "--no-cache", "--out", c.tmp / "r", "--quiet"]),
         r"holds only pickle weights \(pytorch_model.bin\).*--allow-pickle"),
    Case("cli", "push-to-an-unreachable-hub-before-any-export", cli_call(export_args(GOOD, "--push", "me/model",
                                                                                      "--token", "hf_x")),
         r"push to me/model cannot start: cannot reach the Hub .*check your network and try again"),
    # ---- HTTP (gradio_client against the app on the loopback address)
    Case("http", "generate-prompt-too-long", http_call("/generate", gen(LONG)),
         r"the prompt has \d+ tokens but at most \d+ fit .*shorten it or lower max_new_tokens"),
    Case("http", "generate-one-megabyte", http_call("/generate", gen("x" * 2**20)),
         r"the prompt has at least \d+ tokens but at most 1016 fit"),
    Case("http", "generate-max-new-tokens-over-cap", http_call("/generate", gen("Hi", max_new=100000)),
         r"max_new_tokens 100000 is more than this server allows \(1024\); ask for at most 1024"),
    Case("http", "generate-no-room", http_call("/generate", gen("Hi", max_new=1024)),
         r"leaves no room for the prompt .*context of 1024 tokens; ask for fewer than 1024"),
    Case("http", "generate-w-text", http_call("/generate", gen("Hi", w="abc")),
         r"w 'abc' is not a list of numbers .*give numbers separated by commas"),
    Case("http", "generate-w-out-of-range", http_call("/generate", gen("Hi", w=(5.0, -4.0))),
         r"outside this family's allowed range .*choose a value inside it"),
    Case("http", "generate-lone-surrogate",
         rest_call("/generate", b'{"data": ["caf\\udce9", [0.5, 0.5], "tiny-random", 8, 0, ""]}'),
         r"not a character .*send valid UTF-8 text"),
    Case("http", "generate-temperature-text", http_call("/generate", gen("Hi", temperature="hot")),
         r"temperature 'hot' is not a number; give one like 0.7"),
    Case("http", "generate-unknown-family", http_call("/generate", gen("Hi", family="nope")),
         r"no family named 'nope' is loaded; pick one of tiny-random"),
    Case("http", "chat-prompt-too-long", http_call("/chat", lambda c: (LONG, [], "tiny-random", "", 0.0, 8)),
         r"the prompt has \d+ tokens but at most \d+ fit"),
    Case("http", "export-path-name", http_call("/export", lambda c: ("tiny-random", "../escape"), status_of_export),
         r"export name '../escape' is not allowed"),
    Case("http", "push-bad-repo-before-any-export",
         http_call("/push", lambda c: ("tiny-random", "", "bad repo id!", True, "hf_x"), lambda s: s),
         r"invalid Hub repo id 'bad repo id!'.*use 'user-or-org/model-name'"),
    Case("http", "add-family-with-pickled-base",
         http_call("/add_family", lambda c: (str(c.world.families["pickled"]), "tiny-random", []), lambda o: o[0]),
         r"❌ family 'pickled' cannot be served here: .*only pickle weights"),
    Case("http", "add-family-for-another-base",
         http_call("/add_family", lambda c: (str(c.world.families["other_base"]), "tiny-random", []), lambda o: o[0]),
         r"❌ .*does not fit this model \(model_type: family 'llama' vs model 'gpt2'\)"),
    # issue 25
    Case("http", "add-family-with-int32-bank",
         http_call("/add_family", lambda c: (str(c.world.families["int32_bank"]), "tiny-random", []), lambda o: o[0]),
         r"❌ .*lora_A holds int32 numbers; a bank holds float weights"),
    Case("http", "add-family-outside-the-families-folder",
         http_call("/add_family", lambda c: (str(c.tmp), "tiny-random", []), lambda o: o[0]),
         r"^❌ this app adds families only from its own families folder; give the name of a folder inside it"),
    Case("http", "generate-negative-temperature", http_call("/generate", gen("Hi", temperature=-1.0)),
         r"temperature -1 is negative; give 0 for greedy decoding or a positive number"),
    Case("http", "push-to-an-unreachable-hub-before-any-export",
         http_call("/push", lambda c: ("tiny-random", "", "me/model", True, "hf_x"), lambda s: s),
         r"push to me/model cannot start: cannot reach the Hub .*check your network and try again"),
    Case("http", "slider-sent-text", http_call("/set_preference", lambda c: ("tiny-random", "abc", *[0.5] * 5, [],
                                                                             "harmless_score", "helpful_score")),
         r"weight on harmless .*: 'abc' is not a number; give a number between -1 and 2"),
    Case("http", "slider-sent-text-over-rest",
         rest_call("/set_preference", b'{"data": ["tiny-random", "abc", 0.5, 0.5, 0.5, 0.5, 0.5, [], '
                                      b'"harmless_score", "helpful_score"]}'),
         r"weight on harmless .*: 'abc' is not a number; give a number between -1 and 2"),
    Case("http", "number-box-sent-text",
         http_call("/pick", lambda c: ("tiny-random", [], None, None, "harmless_score", "abc", *[None] * 5)),
         r"harmless_score at least: 'abc' is not a number; give a number"),
    Case("http", "dropdown-sent-another-value",
         http_call("/pick", lambda c: ("tiny-random", [], None, None, "nope", *[None] * 6)),
         r"then maximise: 'nope' is not one of its choices; pick one of 'harmless_score', 'helpful_score'"),
    Case("http", "chat-history-not-a-list",
         http_call("/chat", lambda c: ("Hi", "not a list", "tiny-random", "", 0.0, 8)),
         r"an input is not in the form this endpoint takes .*check the endpoint's parameters"),
]


def _settings(**kw):
    from paretoapp.generate import GenerationSettings
    return GenerationSettings(**kw)


def _load(family):
    from paretoapp.generate import load_policy
    return load_policy(family)


def _family(folder):
    from paretoapp.family import Family
    return Family.load(folder)


def _scorer(spec):
    from paretoapp.scorers import build_scorer
    return build_scorer(spec)


def _export(policy, parent, name):
    from paretoapp.export import export_merged
    return export_merged(policy, [0.5, 0.5], parent, name)


def _push_offline(folder):
    from paretoapp.export import push_to_hub
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # conftest: the Hub client refuses to connect, as offline
    push_to_hub(folder, "me/model", token="hf_x")


def snapshot(*roots: Path) -> dict:
    """Every file under ``roots`` with its size and modification time, and every folder."""
    out = {}
    for root in roots:
        for p in [root, *root.rglob("*")] if root.exists() else []:
            out[str(p)] = (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "folder"
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_that_says_what_to_do(case, request, world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    ctx = SimpleNamespace(world=world, tmp=tmp_path)
    roots = [tmp_path, world.root, world.runs]
    if case.door == "python":
        ctx.policy = request.getfixturevalue("policy")
    if case.door == "http":
        env = request.getfixturevalue("app_env")
        ctx.client, catalog = request.getfixturevalue("client"), env[2]
        roots.append(Path(env[3]))
        keys = list(catalog.keys)
        monkeypatch.setenv("PARETOAPP_FAMILY_ROOT", str(world.root))  # where /add_family may add from
        capfd = request.getfixturevalue("capfd")
        capfd.readouterr()
    before = snapshot(*roots)
    message = case.call(ctx)
    assert "\n" not in message.strip() and "Traceback" not in message, message
    if case.door == "http":
        assert "Traceback" not in capfd.readouterr().err, "the server logged a traceback for a user's mistake"
    assert re.search(case.says, message), f"{message!r} does not say {case.says!r}"
    assert FIX_VERBS.search(message), f"{message!r} does not say what to do"
    assert snapshot(*roots) == before, "the bad input wrote something"
    if case.door == "http":
        assert catalog.keys == keys


def test_the_table_covers_every_door():
    doors = {c.door for c in CASES}
    assert doors == {"python", "cli", "http"} and len(CASES) >= 25


def test_allow_pickle_is_an_explicit_choice(world):
    from paretoapp.models import load_base
    base = world.families["pickled"].parent / "base"
    with pytest.raises(ValueError, match="only pickle weights"):
        load_base(str(base), shared=False)
    model, _ = load_base(str(base), shared=False, allow_pickle=True)
    assert model.config.model_type == "llama"


def test_the_same_over_long_prompt_reads_the_same_through_every_door(app_env, client, tmp_path):  # noqa: F811
    """Python API, CLI (evaluate one prompt at one w) and HTTP give the very same message."""
    family, prompt = app_env[2].get("tiny-random"), LONG.strip()  # a prompt file's lines are stripped
    with pytest.raises(ValueError) as python_error:
        family.policy().generate([prompt], [[0.5, 0.5]], _settings(max_new_tokens=8))
    with pytest.raises(Exception) as http_error:
        client.predict(prompt, [0.5, 0.5], "tiny-random", 8, 0.0, "", api_name="/generate")
    prompts = tmp_path / "long.txt"
    prompts.write_text(prompt + "\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["evaluate", str(family.path), "--prompts", str(prompts), "--scorers",
                         "length_words,refusal", "--grid", "points:0.5,0.5", "--max-new-tokens", "8",
                         "--out", str(tmp_path / "r"), "--no-cache", "--quiet"])
    assert code == 2
    message = str(python_error.value)
    assert message.startswith("the prompt has ")
    assert str(http_error.value) == message
    assert err.getvalue().strip() == f"error: {message}"


def test_a_client_that_goes_away_stops_its_generation(app_env):  # noqa: F811
    """Kill a client mid-answer: the model stops within a few tokens instead of running to max_new_tokens."""
    policy = app_env[2].get("tiny-random").policy()
    calls, forward = [0], policy.model.forward

    def counted(*a, **k):
        calls[0] += 1
        time.sleep(0.01)  # slow enough that 900 tokens would take many seconds
        return forward(*a, **k)

    script = ("import sys, time\nfrom gradio_client import Client\n"
              "job = Client(sys.argv[1], verbose=False).submit('Hi', [0.5, 0.5], 'tiny-random', 900, 0.0, '', "
              "api_name='/generate')\n"
              "while not job.outputs():\n    time.sleep(0.01)\n"
              "print('streaming', flush=True)\ntime.sleep(600)\n")
    policy.model.forward = counted
    try:
        child = subprocess.Popen([sys.executable, "-c", script, app_env[1]], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "streaming"  # the answer is reaching the client
        child.send_signal(signal.SIGKILL)
        child.wait()
        _wait_for(lambda: not any(t.name == "paretoapp-stream" for t in threading.enumerate()),
                  "the generation to stop", timeout=120)
    finally:
        policy.model.forward = forward
    assert calls[0] < 300, f"{calls[0]} forward passes: the generation ran on after its client died"


def _wait_for(condition, what, timeout=180.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------ a killed export
KILLED_WRITER = """
import sys, threading, time, zipfile
from pathlib import Path
from paretoapp.export import export_merged, zip_folder
from paretoapp.generate import load_policy

family, parent = sys.argv[1], Path(sys.argv[2])
policy = load_policy(family)
export_merged(policy, [0.5, 0.5], parent, "done")           # a finished export, zipped below
save = policy.tokenizer.save_pretrained
def stall(path, *a, **k):                                    # the folder holds the weights, then hangs
    save(path, *a, **k)
    time.sleep(600)
policy.tokenizer.save_pretrained = stall
write = zipfile.ZipFile.write
def stall_zip(self, *a, **k):
    write(self, *a, **k)
    time.sleep(600)
zipfile.ZipFile.write = stall_zip
threading.Thread(target=zip_folder, args=(parent / "done",), daemon=True).start()
export_merged(policy, [0.5, 0.5], parent, "killed")
"""


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and "partial" in p.name)


def test_an_export_killed_mid_write_is_cleaned_up_by_the_next_run(world, tmp_path):
    from paretoapp.export import export_merged, zip_folder
    from paretoapp.generate import load_policy

    parent = tmp_path / "exports"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(world.families["good"]), str(parent)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"})
    try:
        _wait_for(lambda: parent.is_dir() and len(_partials(parent)) == 2
                  and any((parent / p / "model.safetensors").is_file() for p in _partials(parent)),
                  "both writes to be under way")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = _partials(parent)
    assert any(n.startswith(".killed.partial.") for n in left) and any(n.startswith(".done.zip.") for n in left)
    assert not (parent / "killed").exists() and not (parent / "done.zip").exists()

    policy = load_policy(world.families["good"])  # a later run, writing something else in the same folder
    folder = export_merged(policy, [0.3, 0.7], parent, "later")
    assert _partials(parent) == [], "the killed writer's temporaries are still there"
    zip_folder(folder)
    assert sorted(p.name for p in parent.iterdir()) == ["done", "later", "later.zip"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask  # not tempfile's 0700
    assert stat.S_IMODE((parent / "later.zip").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_a_library_writes_through_its_own_temp_file_get_the_umask_modes(tmp_path, umask):
    """safetensors' save_file renames its own 0600 temp file into place; the saved family and an atomic_file
    body that does the same still end with the modes a plain open() gives."""
    import torch
    from safetensors.torch import save_file

    from paretoapp.atomic import atomic_file
    from paretoapp.family import BaseModelRef, Block, make_family
    from paretoapp.gates import Gate

    old = os.umask(umask)
    try:
        tensors = {"m.lora_A": torch.ones(2, 3), "m.lora_B": torch.ones(4, 2)}
        fam = make_family("f", "rewarded_soups", BaseModelRef("tiny"), ["a", "b"], tensors,
                          [Block("a", 1), Block("b", 1)], Gate.identity(2))
        saved = fam.save(tmp_path / "fam")
        with atomic_file(tmp_path / "one.safetensors") as tmp:
            save_file(tensors, str(tmp))
    finally:
        os.umask(old)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o777 & ~umask
    for f in (saved / "bank.safetensors", saved / "family.json", tmp_path / "one.safetensors"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name


def test_a_live_writers_temporaries_are_left_alone(tmp_path):
    from paretoapp.atomic import atomic_folder, sweep_stale

    with atomic_folder(tmp_path / "mine") as tmp:
        (tmp / "f").write_text("x")
        assert sweep_stale(tmp_path) == [] and tmp.is_dir()  # this process is alive: not stale
    assert (tmp_path / "mine" / "f").read_text() == "x"


def test_allow_pickle_flag_reaches_the_loader_as_an_argument_not_through_the_environment(world, tmp_path, monkeypatch):
    import paretoapp.generate as generate

    monkeypatch.delenv("PARETOAPP_ALLOW_PICKLE", raising=False)
    seen = []
    real = generate.load_policy

    def spy(*args, **kwargs):
        seen.append((kwargs.get("allow_pickle"), os.environ.get("PARETOAPP_ALLOW_PICKLE")))
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "load_policy", spy)
    argv = ["export", world.families["pickled"], "--w", GOOD, "--out", tmp_path, "--name", "x", "--allow-pickle"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([str(a) for a in argv]) == 0
    assert seen == [(True, None)] and (tmp_path / "x" / "model.safetensors").is_file()


# ------------------------------------------------------------------ issue 25: what the table cannot show
def test_a_pickled_reward_model_loads_when_the_user_says_they_trust_it(world):
    from paretoapp.scorers import ScorerContext, build_scorer

    spec = f"hf:{world.pickled_reward_model}"
    scorer = build_scorer(spec, ScorerContext(allow_pickle=True, show_progress=False))
    assert len(scorer(["Hi"], ["Hello"])) == 1


def test_add_family_refuses_every_path_outside_its_folder_in_the_same_words(world, tmp_path, monkeypatch):
    """Existing or not, a folder or a file, by `..` or by a link: outside the families folder one answer,
    so the refusal tells nothing about the server's folders. Inside it, a folder's name is enough."""
    from paretoapp.ui import Catalog

    inside = tmp_path / "families"
    shutil.copytree(world.families["good"], inside / "mine")
    (inside / "link").symlink_to(world.root)
    catalog = Catalog(root=inside)
    answers = set()
    for text in (str(world.root), str(world.root / "no-such-folder"), "/etc/passwd", "../", "link/good/family",
                 f"{inside}/../../"):
        with pytest.raises(ValueError) as refused:
            catalog.add_visitors(text)
        answers.add(str(refused.value))
    assert len(answers) == 1, answers
    assert not any(str(world.root) in a or "passwd" in a or "exist" in a for a in answers)
    monkeypatch.setenv("PARETOAPP_FAMILY_ROOT", str(world.root))  # the setting moves the folder
    with pytest.raises(ValueError, match="only from its own families folder"):
        catalog.add_visitors(str(inside / "mine"))
    monkeypatch.delenv("PARETOAPP_FAMILY_ROOT")
    assert catalog.add_visitors("mine").path == (inside / "mine").resolve()


@pytest.fixture()
def blocked_export(monkeypatch):
    """The merged export made to wait until the test lets it go (``started`` is set once it waits)."""
    from paretoapp import export as export_module

    real = export_module.EXPORTERS["merged"]
    started, release = threading.Event(), threading.Event()

    def write(*args, **kwargs):
        started.set()
        release.wait(120)
        return real.write(*args, **kwargs)

    monkeypatch.setitem(export_module.EXPORTERS, "merged", export_module.Exporter(
        write, real.label, real.description, real.writes, real.step))
    yield started, release
    release.set()


def test_exports_are_one_at_a_time_per_client_and_capped_in_total(app_env, client, blocked_export,  # noqa: F811
                                                                  monkeypatch):
    started, release = blocked_export
    export_dir = Path(app_env[3])
    first = client.submit("tiny-random", "first", "Merged checkpoint", "float32", api_name="/export")
    assert started.wait(120)
    path, status = client.predict("tiny-random", "second", "Merged checkpoint", "float32", api_name="/export")
    assert path is None and "an export of yours is still being built; wait for it to finish" in status
    release.set()
    path, status = first.result(timeout=120)
    assert path and status.startswith("✅")

    before = snapshot(export_dir)
    monkeypatch.setenv("PARETOAPP_EXPORT_MAX_MB", "1")  # below one tiny export
    path, status = client.predict("tiny-random", "third", "Merged checkpoint", "float32", api_name="/export")
    assert path is None and "the server's export space is full" in status and "try again" in status
    assert snapshot(export_dir) == before, "a refused export wrote something"


def test_a_push_that_fails_after_the_merge_leaves_nothing_on_disk(app_env, client, monkeypatch):  # noqa: F811
    """The Hub answered the check, then the upload failed: the merged folder is removed at once."""
    from paretoapp.export import ExportError
    from paretoapp.ui import tab_export

    uploads = []

    def refuse(folder, repo_id, **kwargs):
        uploads.append(sorted(p.name for p in Path(folder).iterdir()))
        raise ExportError(f"push to {repo_id} failed: the Hub answered HTTP 500: boom; check the repo id")

    monkeypatch.setattr(tab_export, "check_hub_access", lambda repo_id, token: None)
    monkeypatch.setattr(tab_export, "push_to_hub", refuse)
    before = snapshot(Path(app_env[3]))
    status = client.predict("tiny-random", "", "me/model", True, "hf_x", api_name="/push")
    assert status.startswith("❌") and "HTTP 500" in status
    assert uploads and "model.safetensors" in uploads[0], "the push never got a merged folder"
    assert snapshot(Path(app_env[3])) == before, "the failed push left its files on disk"


OVERWRITE_KILLED = """
import pathlib, sys, time
from paretoapp.export import export_merged
from paretoapp.generate import load_policy

family, parent = sys.argv[1], pathlib.Path(sys.argv[2])
policy = load_policy(family)
export_merged(policy, [0.25, 0.75], parent, "mine")          # the copy a user has
rename = pathlib.Path.rename
def stall(self, target):                                     # the new copy is written; swapping it in hangs
    if self.name.startswith(".mine.partial."):
        time.sleep(600)
    return rename(self, target)
pathlib.Path.rename = stall
export_merged(policy, [0.5, 0.5], parent, "mine", overwrite=True)
"""


def test_an_overwrite_killed_between_its_two_renames_keeps_the_old_copy(world, tmp_path):
    from paretoapp.export import export_merged
    from paretoapp.generate import load_policy

    parent = tmp_path / "exports"
    child = subprocess.Popen([sys.executable, "-c", OVERWRITE_KILLED, str(world.families["good"]), str(parent)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"})
    try:  # the old copy swapped out, the new one complete but not yet in place
        _wait_for(lambda: parent.is_dir() and not (parent / "mine").exists()
                  and any(n.startswith(".mine.old-") for n in os.listdir(parent)), "the old copy to be swapped out")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    export_merged(load_policy(world.families["good"]), [0.3, 0.7], parent, "later")  # any later write there
    assert sorted(p.name for p in parent.iterdir()) == ["later", "mine"]
    assert json.loads((parent / "mine" / "paretoapp_export.json").read_text())["w"] == [0.25, 0.75]
