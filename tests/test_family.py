"""The family format: atomic save, faithful load, and clear errors for broken folders."""

import json

import pytest
import torch
from helpers import make_family, peft_with_adapters, tiny_model

from paretoapp.conditioning import Conditioning
from paretoapp.family import MANIFEST_FILE, TENSORS_FILE, Family, FamilyError
from paretoapp.gates import Gate


@pytest.fixture
def family(tokenizer_dir):
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    return make_family(model, peft_model, names, in_sample_low=[0.0, 0.0], in_sample_high=[1.0, 1.0])


def test_round_trip(family, tmp_path):
    path = family.save(tmp_path / "fam")
    loaded = Family.load(path)
    assert loaded.manifest.to_dict() == family.manifest.to_dict()
    assert loaded.fingerprint() == family.fingerprint()
    for name, t in family.tensors.items():
        assert torch.equal(loaded.tensors[name], t)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folders left behind"


def test_save_refuses_to_clobber_and_overwrites_atomically(family, tmp_path):
    path = family.save(tmp_path / "fam")
    with pytest.raises(FamilyError, match="already exists"):
        family.save(path)
    family.manifest.description = "second"
    family.save(path, overwrite=True)
    assert Family.load(path).manifest.description == "second"


def test_interrupted_save_leaves_nothing(family, tmp_path, monkeypatch):
    import paretoapp.family as fam

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(fam, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        family.save(tmp_path / "fam")
    assert list(tmp_path.iterdir()) == []


def _edit_manifest(path, **changes):
    d = json.loads((path / MANIFEST_FILE).read_text())
    d.update(changes)
    (path / MANIFEST_FILE).write_text(json.dumps(d))


@pytest.mark.parametrize("changes, message", [
    ({"version": 99}, "version 99 is not supported"),
    ({"method": "magic"}, "unknown method 'magic'"),
    ({"format": "other"}, "not a paretoapp family"),
    ({"blocks": [{"name": "a", "rank": 4}]}, "drives 2 blocks but 1 are listed"),
    ({"gate": {"kind": "affine", "matrix": [[1, 0, 0], [0, 1, 0]], "offset": [0, 0]}}, "takes 3 preference values"),
    ({"gate": {"kind": "sigmoid"}}, "unknown gate kind"),
])
def test_bad_manifest_is_named(family, tmp_path, changes, message):
    path = family.save(tmp_path / "fam")
    _edit_manifest(path, **changes)
    with pytest.raises(FamilyError, match=message) as err:
        Family.load(path)
    assert MANIFEST_FILE in str(err.value)


def test_missing_and_corrupt_files(family, tmp_path):
    with pytest.raises(FamilyError, match="no such family folder"):
        Family.load(tmp_path / "nowhere")
    path = family.save(tmp_path / "fam")
    (path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(FamilyError, match="not valid JSON"):
        Family.load(path)
    path = family.save(tmp_path / "fam2")
    data = (path / TENSORS_FILE).read_bytes()
    (path / TENSORS_FILE).write_bytes(data[: len(data) // 2])  # a half-written file
    with pytest.raises(FamilyError, match="half-written"):
        Family.load(path)
    (path / TENSORS_FILE).unlink()
    with pytest.raises(FamilyError, match="bank.safetensors: missing"):
        Family.load(path)


def test_shape_mismatch_is_named(family, tmp_path):
    name = next(n for n in family.tensors if n.endswith("lora_A"))
    family.tensors[name] = family.tensors[name][:-1]
    with pytest.raises(FamilyError, match="do not belong together"):
        family.save(tmp_path / "fam")


def test_anchor_gate_interpolates_and_clamps():
    gate = Gate.anchors([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], [[0, 1], [2, 2], [1, 0]])
    g = gate.block_gains(torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.5, -0.5]], dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor([[1.0, 1.5], [2.0, 2.0], [1.0, 0.0]], dtype=torch.float64))
    nearest = Gate.anchors([[0.0, 1.0], [1.0, 0.0]], [[0, 1], [1, 0]], mode="nearest")
    assert nearest.block_gains(torch.tensor([[0.4, 0.6]])).tolist() == [[0.0, 1.0]]


def test_conditioning_round_trip():
    c = Conditioning(tags=["<rm1_score>", "<rm2_score>"], low=[-4.2, -4.2], high=[4.2, 4.2])
    assert c.targets([0.5, 1.0]) == pytest.approx([0.0, 4.2])
    text = c.apply("How do I bake bread?", [0.25, 0.75])
    assert text == "How do I bake bread? <rm1_score> -2.1 <rm2_score> 2.1"
    assert c.parse(text) == ("How do I bake bread?", [-2.1, 2.1])


def test_conditioning_rounds_half_away_from_zero_despite_float_noise():
    c = Conditioning(tags=["<a>"], low=[0.0], high=[1.0])
    assert c.render("p", [torch.tensor(-0.75, dtype=torch.float32).item()]) == "p <a> -0.8"
    assert c.render("p", [0.25]) == "p <a> 0.3" and c.render("p", [-0.04]) == "p <a> 0.0"


def test_prompt_format_round_trips_and_is_checked(family, tmp_path):
    family.manifest.prompt_format = "raw"
    path = family.save(tmp_path / "fam")
    assert Family.load(path).manifest.prompt_format == "raw"
    _edit_manifest(path, prompt_format="markdown")
    with pytest.raises(FamilyError, match="prompt_format"):
        Family.load(path)
