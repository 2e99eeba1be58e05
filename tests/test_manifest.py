"""The family manifest and tensors without a model: fields, defaults, gains per rank, ranges, and every
validation error named exactly (mutation testing found these unchecked; docs/mutation.md)."""

import json
from types import SimpleNamespace

import pytest
import torch

from paretoapp.conditioning import Conditioning
from paretoapp.family import (
    MANIFEST_FILE,
    TENSORS_FILE,
    BaseModelRef,
    Block,
    Family,
    FamilyError,
    FamilyManifest,
    Objective,
    load_family,
    make_family,
    model_signature,
)
from paretoapp.gates import Gate
from paretoapp.methods import method_names


def tensors(rank: int = 3, modules=("m.q", "m.v")) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    out = {}
    for m in modules:
        out[f"{m}.lora_A"] = torch.randn(rank, 4)
        out[f"{m}.lora_B"] = torch.randn(5, rank)
    return out


def small(**fields) -> Family:
    return make_family("small", "rewarded_soups", BaseModelRef("tiny", signature={"model_type": "llama"}),
                       ["helpful", Objective("harmless", higher_is_better=False)], tensors(),
                       [Block("a", 1), Block("b", 2)], Gate.identity(2), **fields)


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(FamilyError) as e:
        fn(*args, **kwargs)
    return str(e.value)


def test_manifest_fields_and_defaults():
    m = small().manifest
    assert (m.k, m.total_rank) == (2, 3)
    assert [o.name for o in m.objectives] == ["helpful", "harmless"] and not m.objectives[1].higher_is_better
    d = m.to_dict()
    assert d == {
        "format": "paretoapp.family", "version": 1, "name": "small", "method": "rewarded_soups", "description": "",
        "base_model": {"name_or_path": "tiny", "revision": None, "signature": {"model_type": "llama"},
                       "tokenizer": None},
        "objectives": [{"name": "helpful", "higher_is_better": True, "description": ""},
                       {"name": "harmless", "higher_is_better": False, "description": ""}],
        "blocks": [{"name": "a", "rank": 1}, {"name": "b", "rank": 2}],
        "gate": {"kind": "affine", "matrix": [[1.0, 0.0], [0.0, 1.0]], "offset": [0.0, 0.0]},
        "w_low": None, "w_high": None, "in_sample_low": None, "in_sample_high": None, "on_simplex": True,
        "conditioning": None, "system_prompt": None, "prompt_format": "chat", "training": {}}
    # a minimal stored manifest takes the defaults
    minimal = {k: d[k] for k in ("format", "version", "name", "method", "base_model", "objectives", "blocks", "gate")}
    again = FamilyManifest.from_dict(minimal)
    assert again.to_dict() == d
    full = small(w_low=[-1.0, -1.0], w_high=[2.0, 2.0], in_sample_low=[0.0, 0.0], in_sample_high=[1.0, 1.0],
                 on_simplex=False, system_prompt="Be brief.", prompt_format="raw", description="x",
                 training={"steps": 3},
                 conditioning=Conditioning(tags=["<a>", "<b>"], low=[-1, -1], high=[1, 1])).manifest
    again = FamilyManifest.from_dict(json.loads(json.dumps(full.to_dict())))
    assert again.to_dict() == full.to_dict()
    # RiC's family is its conditioning: the stored manifest keeps it (a round trip of None would also compare equal)
    assert again.conditioning == full.conditioning and again.conditioning.targets([0.3, 0.7]) == [-0.4, 0.4]


def test_rank_gains_repeat_each_block_gain_over_its_ranks():
    m = small(w_low=[-1.0, -1.0], w_high=[2.0, 2.0]).manifest
    assert m.rank_gains([0.25, 0.75]).tolist() == [[0.25, 0.75, 0.75]]
    assert m.rank_gains([[1.0, 0.0], [2.0, -1.0]]).tolist() == [[1.0, 0.0, 0.0], [2.0, -1.0, -1.0]]
    with pytest.raises(ValueError, match="outside this family's allowed range"):
        m.rank_gains([2.5, 0.0])


def test_in_sample_range():
    m = small(in_sample_low=[0.0, 0.0], in_sample_high=[1.0, 1.0]).manifest
    assert m.is_in_sample([0.0, 1.0]) and m.is_in_sample([1.0 + 1e-10, -1e-10])
    assert not m.is_in_sample([1.0 + 1e-6, 0.0]) and not m.is_in_sample([0.5, -1e-6])
    assert m.is_in_sample([0.0 - 1e-9, 1.0 + 1e-9])  # exactly at the slack: inside
    assert small().manifest.is_in_sample([5.0, -5.0])  # no range recorded: everything is in sample
    m.in_sample_high = None
    assert m.is_in_sample([5.0, -5.0])


def test_fingerprint_changes_with_manifest_and_tensors():
    a, b = small(), small()
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    b.manifest.description = "other"
    assert a.fingerprint() != b.fingerprint()
    c = small()
    c.tensors["m.q.lora_B"] = c.tensors["m.q.lora_B"] + 1e-3
    assert a.fingerprint() != c.fingerprint()
    d = small()
    d.tensors = {k.replace("m.q", "m.k"): v for k, v in d.tensors.items()}
    assert a.fingerprint() != d.fingerprint()  # names count, not only values
    assert a.modules == ["m.q", "m.v"]
    # the same content gives the same fingerprint whatever the order of a dict's keys or the storage dtype
    e, f = small(training={"a": 1, "b": 2}), small(training={"b": 2, "a": 1})
    assert e.fingerprint() == f.fingerprint()
    g = small()
    g.tensors = {k: (v * 4).round() / 4 for k, v in g.tensors.items()}  # values bfloat16 holds exactly
    h = small()
    h.tensors = {k: v.to(torch.bfloat16) for k, v in g.tensors.items()}
    assert g.fingerprint() == h.fingerprint()


@pytest.mark.parametrize("changes, message", [
    ({"format": "other"}, "family.json: not a paretoapp family manifest (format is 'other', expected "
                          "'paretoapp.family')"),
    ({"version": 2}, "family.json: manifest version 2 is not supported by this paretoapp (it reads version 1); "
                     "upgrade paretoapp or re-export the family"),
    ({"method": "magic"}, f"family.json: unknown method 'magic'; expected one of {', '.join(method_names())} (a "
                          "method from a plugin must be registered with paretoapp.methods.register before its "
                          "families load)"),
    ({"name": None}, None),
    ({"blocks": [{"name": "a"}]}, "family.json: invalid field: Block.__init__() missing 1 required positional "
                                  "argument: 'rank'"),
    ({"gate": {"kind": "affine", "matrix": [], "offset": []}}, "family.json: invalid field: affine gate needs a "
                                                                "non-empty matrix [n_blocks][k]"),
    ({"objectives": []}, "family.json: a family needs at least one objective"),
    ({"prompt_format": "markdown"}, "family.json: prompt_format 'markdown' is not one of ('chat', 'raw')"),
    ({"gate": {"kind": "affine", "matrix": [[1, 0, 0], [0, 1, 0]], "offset": [0, 0]}},
     "family.json: the gate takes 3 preference values but there are 2 objectives"),
    ({"blocks": [{"name": "a", "rank": 3}]}, "family.json: the gate drives 2 blocks but 1 are listed"),
    ({"blocks": [{"name": "a", "rank": 3}, {"name": "b", "rank": 0}]},
     "family.json: every block needs a positive rank"),
    ({"w_low": [0.0, 0.0]}, "family.json: w_low/w_high must both be given with one value per objective"),
    ({"w_low": [0.0], "w_high": [1.0]}, "family.json: w_low/w_high must both be given with one value per objective"),
    ({"w_low": [0.0, 0.0], "w_high": [1.0]}, "family.json: w_low/w_high must both be given with one value per "
                                             "objective"),
    ({"in_sample_high": [1.0, 1.0]}, "family.json: in_sample_low/in_sample_high must both be given with one value "
                                     "per objective"),
    ({"conditioning": {"kind": "reward_tags", "tags": ["<a>"], "low": [0], "high": [1]}},
     "family.json: conditioning has 1 tags for 2 objectives"),
])
def test_bad_manifest_fields_are_named_exactly(changes, message):
    d = {**small().manifest.to_dict(), **changes}
    if changes == {"name": None}:
        del d["name"]
        message = "family.json: missing field 'name'; the manifest is incomplete, re-save the family"
    assert error_of(FamilyManifest.from_dict, d) == message


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.update({"m.q.weight": torch.zeros(1)}),
     "bank.safetensors: unexpected tensor 'm.q.weight'; only '<module>.lora_A' and '<module>.lora_B' belong here"),
    (lambda t: t.pop("m.q.lora_B"),
     "bank.safetensors: m.q.lora_A has no matching m.q.lora_B; the file is incomplete, re-save the family"),
    (lambda t: t.pop("m.v.lora_A"),
     "bank.safetensors: m.v.lora_B has no matching lora_A; the file is incomplete, re-save the family"),
    (lambda t: t.update({"m.q.lora_A": torch.zeros(2, 4)}),
     "bank.safetensors: m.q has A (2, 4) and B (5, 3) but the manifest's blocks add up to rank 3; the manifest "
     "and tensors do not belong together"),
    (lambda t: t.update({"m.q.lora_B": torch.zeros(5, 2)}),
     "bank.safetensors: m.q has A (3, 4) and B (5, 2) but the manifest's blocks add up to rank 3; the manifest "
     "and tensors do not belong together"),
    (lambda t: t.update({"m.q.lora_A": torch.zeros(3)}),
     "bank.safetensors: m.q has A (3,) and B (5, 3) but the manifest's blocks add up to rank 3; the manifest "
     "and tensors do not belong together"),
    (lambda t: t.update({"m.q.lora_B": torch.zeros(5, 3, 1)}),
     "bank.safetensors: m.q has A (3, 4) and B (5, 3, 1) but the manifest's blocks add up to rank 3; the manifest "
     "and tensors do not belong together"),
    (lambda t: t["m.v.lora_A"].__setitem__((0, 0), float("nan")),
     "bank.safetensors: m.v holds NaN or infinite values; the family is corrupt, retrain or re-export it"),
    (lambda t: t["m.v.lora_B"].__setitem__((0, 0), float("inf")),
     "bank.safetensors: m.v holds NaN or infinite values; the family is corrupt, retrain or re-export it"),
    (lambda t: t.clear(),
     "bank.safetensors: holds no tensors and the family has no conditioning: nothing to serve"),
])
def test_bad_tensors_are_named_exactly(edit, message):
    family = small()
    edit(family.tensors)
    assert error_of(family.validate_tensors) == message


def test_conditioning_family_needs_no_tensors():
    family = small(conditioning=Conditioning(tags=["<a>", "<b>"], low=[-1, -1], high=[1, 1]))
    family.tensors = {}
    family.validate_tensors()  # RiC: the prompt carries w, the bank may be empty


def test_make_family_and_load_errors(tmp_path):
    assert error_of(make_family, "x", "magic", BaseModelRef("tiny"), ["a"], tensors(1), [Block("a", 1)],
                    Gate.identity(1)) == f"unknown method 'magic'; expected one of {', '.join(method_names())}"
    assert error_of(make_family, "x", "custom", BaseModelRef("tiny"), ["a", "b"], tensors(1), [Block("a", 1)],
                    Gate.identity(1)) == "family 'x': the gate takes 1 preference values but there are 2 objectives"
    assert error_of(make_family, "x", "custom", BaseModelRef("tiny"), ["a"], tensors(2), [Block("a", 1)],
                    Gate.identity(1)).startswith("family 'x': m.q has A (2, 4)")
    fam = small()
    path = fam.save(tmp_path / "f")
    assert fam.path == path
    assert error_of(fam.save, path) == f"{path} already exists; pass overwrite=True or choose another folder"
    assert load_family(fam) is fam and load_family(path).fingerprint() == fam.fingerprint()
    assert load_family(str(path)).path == path
    nowhere = tmp_path / "nowhere"
    assert error_of(Family.load, nowhere) == (f"{nowhere}: no such family folder; pass a folder that holds "
                                              f"{MANIFEST_FILE} and {TENSORS_FILE}")
    (path / TENSORS_FILE).unlink()
    assert error_of(Family.load, path) == (f"{path / TENSORS_FILE}: missing; the family has a manifest but no bank "
                                           "tensors: re-save it")
    (path / MANIFEST_FILE).unlink()
    assert error_of(Family.load, path) == (f"{path / MANIFEST_FILE}: missing; this folder is not a family (or a save "
                                           "was interrupted): re-save it")


def test_saved_files_and_errors_that_name_them(tmp_path):
    fam = small()
    path = fam.save(tmp_path / "f")
    from safetensors import safe_open
    with safe_open(str(path / TENSORS_FILE), "pt") as fh:
        assert fh.metadata() == {"format": "paretoapp.family"}
    assert (path / MANIFEST_FILE).read_text().startswith('{\n  "format": "paretoapp.family",\n  "version": 1,')
    # errors found while loading name the file they are in
    d = json.loads((path / MANIFEST_FILE).read_text())
    (path / MANIFEST_FILE).write_text(json.dumps({**d, "prompt_format": "html"}))
    assert error_of(Family.load, path) == f"{path / MANIFEST_FILE}: prompt_format 'html' is not one of ('chat', 'raw')"
    (path / MANIFEST_FILE).write_text(json.dumps(d))
    from safetensors.torch import save_file
    save_file({**fam.tensors, "m.k.lora_B": torch.zeros(5, 3)}, str(path / TENSORS_FILE))
    assert error_of(Family.load, path) == (f"{path / TENSORS_FILE}: m.k.lora_B has no matching lora_A; the file is "
                                           "incomplete, re-save the family")


def test_model_signature_keeps_the_architecture_numbers():
    llama = SimpleNamespace(model_type="llama", hidden_size=64, num_hidden_layers=3, vocab_size=10, rope_theta=1e4)
    assert model_signature(llama) == {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 3,
                                      "vocab_size": 10}
    config = SimpleNamespace(model_type="gpt2", n_embd=32, n_layer=2, vocab_size=100, hidden_size=None,
                             num_attention_heads=4)
    assert model_signature(config) == {"model_type": "gpt2", "vocab_size": 100, "n_embd": 32, "n_layer": 2}
    assert BaseModelRef.of(SimpleNamespace(config=config), "gpt2-tiny", "main") == BaseModelRef(
        "gpt2-tiny", "main", {"model_type": "gpt2", "vocab_size": 100, "n_embd": 32, "n_layer": 2})
