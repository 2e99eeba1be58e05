"""trainers/lora.py on the tiny base: what is trainable, what is switched on, the reference, saving and loading.

Every weight-space trainer rests on these helpers, so each behaviour is asserted on the model's outputs or
parameters, not on a config string.
"""

from __future__ import annotations

import pytest
import torch
from trainer_fixtures import tiny_base  # noqa: F401  (fixture)

from paretoapp.trainers import lora

SETTINGS = lora.LoraSettings(r=2, alpha=4.0, target_modules=["q_proj", "v_proj"])
IDS = torch.tensor([[1, 5, 9, 14, 3]])


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


def nudge(model, name: str, seed: int):
    """Give adapter ``name`` a non-zero delta (a fresh LoRA's B is zero, so it changes nothing yet)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if f".{name}." in n and "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.fixture()
def base(tiny_base):  # noqa: F811
    model, _ = lora.load_base(str(tiny_base))
    return model


def test_peft_config_carries_every_setting():
    cfg = lora.LoraSettings(r=3, alpha=6.0, dropout=0.1, target_modules=["k_proj"], use_rslora=True).peft_config()
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, set(cfg.target_modules), cfg.use_rslora, cfg.bias) == (
        3, 6.0, 0.1, {"k_proj"}, True, "none")
    assert str(cfg.task_type).endswith("CAUSAL_LM")


def test_load_base_is_frozen_and_checks_the_dtype(tiny_base):  # noqa: F811
    model, tokenizer = lora.load_base(str(tiny_base))
    assert not any(p.requires_grad for p in model.parameters()) and tokenizer is not None
    assert next(model.parameters()).dtype == torch.float32
    bf16, _ = lora.load_base(str(tiny_base), dtype="bfloat16")
    assert next(bf16.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="'half' is not one of"):
        lora.load_base(str(tiny_base), dtype="half")


def test_attach_trains_only_the_new_adapter_and_a_second_one_joins_the_first(base):
    model = lora.attach_lora(base, SETTINGS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".default." in n and "lora_" in n for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # A and B, on q and v, in 2 layers
    same = lora.attach_lora(model, SETTINGS, adapter_name="second")
    assert same is model
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 8 and all(".second." in n for n in trainable)
    assert model.base_model.active_adapters == ["second"]


def test_activate_adds_the_named_deltas_and_scales_them(base):
    plain = logits(base)
    model = lora.attach_lora(base, SETTINGS, adapter_name="one")
    lora.attach_lora(model, SETTINGS, adapter_name="two")
    nudge(model, "one", 0)
    nudge(model, "two", 1)
    lora.activate(model, ["one"])
    only_a = logits(model)
    assert not torch.allclose(only_a, plain)
    assert not any(p.requires_grad for p in model.parameters())  # trainable defaults to none
    lora.activate(model, ["one", "two"], trainable=["two"])
    both = logits(model)
    assert not torch.allclose(both, only_a)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".two." in n and "lora_" in n for n in trainable)
    # a scale of 0 removes an adapter's delta; the layer's scaling is factor * alpha / r
    lora.activate(model, ["one", "two"], scales={"two": 0.0})
    assert torch.allclose(logits(model), only_a, atol=1e-6)
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in model.modules() if isinstance(m, LoraLayer))
    assert layer.scaling["two"] == 0.0 and layer.scaling["one"] == pytest.approx(4.0 / 2)
    lora.activate(model, ["one"], scales={"one": 0.5})
    assert layer.scaling["one"] == pytest.approx(0.5 * 4.0 / 2)
    lora.activate(model, ["one"])  # no scales: back to 1
    assert layer.scaling["one"] == pytest.approx(4.0 / 2) and torch.allclose(logits(model), only_a, atol=1e-6)


def test_trainable_parameters_are_the_adapters_and_none_is_an_error(base):
    with pytest.raises(RuntimeError, match="attach a LoRA adapter first"):
        lora.trainable_parameters(base)
    model = lora.attach_lora(base, SETTINGS)
    params = lora.trainable_parameters(model)
    assert len(params) == 8 and all(p.requires_grad for p in params)


class _Wrapped(torch.nn.Module):  # what accelerate / DDP put around a model
    def __init__(self, module):
        super().__init__()
        self.module = module


def test_the_reference_is_the_base_with_every_adapter_off(base):
    plain = logits(base)
    model = lora.attach_lora(base, SETTINGS)
    nudge(model, "default", 0)
    tuned = logits(model)
    assert not torch.allclose(tuned, plain)
    with lora.reference(model):
        assert torch.allclose(logits(model), plain, atol=1e-6)
    with lora.reference(_Wrapped(model)):
        assert torch.allclose(logits(model), plain, atol=1e-6)
    assert torch.allclose(logits(model), tuned)  # switched back on afterwards


def test_save_and_load_round_trip_a_named_adapter(base, tiny_base, tmp_path):  # noqa: F811
    model = lora.attach_lora(base, SETTINGS, adapter_name="harmless")
    nudge(model, "harmless", 3)
    tuned = logits(model)
    path = lora.save_adapter(model, "harmless", tmp_path / "adapter")
    assert sorted(p.name for p in path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temporary folder left
    fresh, _ = lora.load_base(str(tiny_base))
    loaded = lora.load_adapters(fresh, {"x": path, "y": path})
    assert not any(p.requires_grad for p in loaded.parameters())
    lora.activate(loaded, ["x"])
    assert torch.allclose(logits(loaded), tuned, atol=1e-5)
    lora.activate(loaded, ["x", "y"])  # two copies: twice the delta
    assert not torch.allclose(logits(loaded), tuned, atol=1e-4)


def test_loading_a_folder_that_is_not_an_adapter_says_so(base, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="adapter 'x'"):
        lora.load_adapters(base, {"x": tmp_path / "empty"})


def test_load_base_asks_the_runtime_loader_for_a_private_cpu_copy_without_remote_code(monkeypatch, tiny_base):  # noqa: F811
    """Remote code stays off unless asked (security), and a training run never shares the app's cached model."""
    import paretoapp.models

    calls = []
    real = paretoapp.models.load_base

    def spy(name, **kwargs):
        calls.append((name, kwargs))
        return real(name, **kwargs)

    monkeypatch.setattr(paretoapp.models, "load_base", spy)
    lora.load_base(str(tiny_base))
    assert calls[-1] == (str(tiny_base), {"revision": None, "device": "cpu", "dtype": "float32",
                                          "trust_remote_code": False, "shared": False, "allow_pickle": None})
    monkeypatch.setattr(paretoapp.models, "load_base", lambda name, **kw: calls.append((name, kw)) or real(str(tiny_base)))
    lora.load_base("org/model", revision="abc", dtype="bfloat16", trust_remote_code=True, device="meta",
                   allow_pickle=True)
    assert calls[-1] == ("org/model", {"revision": "abc", "device": "meta", "dtype": "bfloat16",
                                       "trust_remote_code": True, "shared": False, "allow_pickle": True})


def test_load_run_base_passes_the_runs_model_settings(monkeypatch):
    from types import SimpleNamespace

    seen = []
    monkeypatch.setattr(lora, "load_base", lambda *args, **kwargs: seen.append((args, kwargs)) or ("m", "t"))
    cfg = SimpleNamespace(base_model="org/m", revision="r1", dtype="bfloat16", trust_remote_code=True,
                          allow_pickle=False)
    assert lora.load_run_base(cfg) == ("m", "t")
    assert seen == [(("org/m", "r1", "bfloat16", True), {"allow_pickle": False})]


def test_saving_one_of_two_adapters_writes_only_that_one_and_default_saves_flat(base, tmp_path):
    model = lora.attach_lora(base, SETTINGS)  # "default"
    lora.attach_lora(model, SETTINGS, adapter_name="other")
    nudge(model, "default", 4)
    nudge(model, "other", 5)
    for name in ("default", "other"):
        path = lora.save_adapter(model, name, tmp_path / name)
        files = {p.name for p in path.iterdir()}  # PEFT adds a README for the default adapter
        assert {"adapter_config.json", "adapter_model.safetensors"} <= files and all(
            (path / f).is_file() for f in files)
        from safetensors.torch import load_file

        saved = load_file(str(path / "adapter_model.safetensors"))
        mine = {n: p for n, p in model.named_parameters() if f".{name}." in n and "lora_B" in n}
        assert len(saved) == 2 * len(mine)  # A and B of this adapter only
        assert any(torch.equal(t, p.detach()) for t in saved.values() for p in mine.values())
