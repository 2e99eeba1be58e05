"""The bank's small contracts, found unchecked by mutation testing (docs/mutation.md): the SVD-LoRA
conversion's names, defaults and errors; detaching one of several families."""

import pytest
import torch
from helpers import make_family, peft_with_adapters, tiny_model

from paretoapp.bank import BankLinear, PreferenceBank, bank_layers, svd_lora_tensors


def test_svd_lora_tensors_by_hand():
    u = torch.arange(12.0).reshape(3, 4)          # [out 3, r + k = 4]
    v = torch.arange(20.0).reshape(5, 4) / 10     # [in 5, r + k]
    layers = {"m": {"U": u, "V": v, "sigma": torch.tensor([2.0, -1.0]), "s": torch.tensor(3.0), "scaling": 0.5}}
    tensors, blocks, gate = svd_lora_tensors(layers, k=2)
    assert set(tensors) == {"m.lora_A", "m.lora_B"}
    torch.testing.assert_close(tensors["m.lora_A"], v.T)
    torch.testing.assert_close(tensors["m.lora_B"], u * torch.tensor([2.0, -1.0, 3.0, 3.0]) * 0.5)
    assert [(b.name, b.rank) for b in blocks] == [("singular_values", 2), ("preference_0", 1), ("preference_1", 1)]
    assert gate.matrix == [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]] and gate.offset == [1.0, 0.0, 0.0]
    # no scaling given: c = 1
    layers["m"].pop("scaling")
    tensors, _, _ = svd_lora_tensors(layers, k=2)
    torch.testing.assert_close(tensors["m.lora_B"], u * torch.tensor([2.0, -1.0, 3.0, 3.0]))


@pytest.mark.parametrize("u_cols, v_cols", [(3, 4), (4, 5), (5, 5)])
def test_svd_lora_tensors_names_a_wrong_shape(u_cols, v_cols):
    layers = {"layer.q": {"U": torch.zeros(3, u_cols), "V": torch.zeros(5, v_cols), "sigma": torch.zeros(2),
                          "s": 1.0}}
    with pytest.raises(ValueError) as e:
        svd_lora_tensors(layers, k=2)
    assert str(e.value) == f"layer.q: U and V need r + k = 4 columns, got {u_cols} and {v_cols}"


def test_detaching_one_family_keeps_the_other(tokenizer_dir):
    """Two families on one model, one adapting fewer layers: detaching either leaves the other intact."""
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    full = make_family(model, peft_model, names, name="full")
    part = make_family(model, peft_model, names, name="part")
    part.tensors = {k: v for k, v in part.tensors.items() if ".q_proj." in k}
    plain, _ = tiny_model("llama", tokenizer_dir)
    originals = {n: m for n, m in plain.named_modules() if n.endswith(("q_proj", "v_proj"))}
    a = PreferenceBank(plain, full, bank_id="full")
    b = PreferenceBank(plain, part, bank_id="part")
    b.detach()  # layers part never adapted must survive the detach (and keep full's bank)
    layers = bank_layers(plain)
    assert set(layers) == set(full.modules)
    assert all(set(layer.banks) == {"full"} for layer in layers.values())
    a.detach()
    assert not bank_layers(plain)
    for name, module in originals.items():
        assert plain.get_submodule(name) is module and not isinstance(module, BankLinear)


def test_merged_weights_keep_the_base_dtype_and_need_one_w(tokenizer_dir):
    """A bfloat16 base merges in float32 and stores bfloat16 weights (an export the size of the base)."""
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    family = make_family(model, peft_model, names)
    plain, _ = tiny_model("llama", tokenizer_dir)
    plain = plain.to(torch.bfloat16)
    bank = PreferenceBank(plain, family)
    sd = bank.merged_state_dict([0.3, 0.7])
    g = bank.rank_gains([[0.3, 0.7]])[0]
    for name, layer in bank_layers(plain).items():
        want = (layer.weight.float() + layer.delta(bank.bank_id, g)).to(torch.bfloat16)
        assert sd[f"{name}.weight"].dtype == torch.bfloat16 and torch.equal(sd[f"{name}.weight"], want)
    with pytest.raises(ValueError) as e:
        bank.merged_state_dict([[0.3, 0.7], [0.5, 0.5]])
    assert str(e.value) == "merging needs exactly one preference vector"
