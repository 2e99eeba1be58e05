"""The bank equals PEFT's exact merge, serves per-row w, and is thread-safe."""

import contextvars
import threading

import pytest
import torch
from helpers import make_family, peft_with_adapters, tiny_model

from paretoapp.bank import UNION, ActiveGains, PreferenceBank, bank_layers, layout_of, svd_lora_tensors, use_gains
from paretoapp.family import BaseModelRef, Family, FamilyError, FamilyManifest, Objective, model_signature
from paretoapp.gates import PreferenceError

WEIGHTS = [(1.0, 0.0), (0.3, 0.7), (-0.5, 1.5), (2.0, -1.0)]


def _ids(vocab, batch=3, length=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (batch, length), generator=g)


def _peft_merged_logits(arch, tokenizer_dir, w, ids, use_rslora=False, how="scale"):
    """Reference: PEFT merges the weighted adapters and unloads them into a plain model.

    "scale": all adapters active, each LoRA layer's scale set to w_i, merge_and_unload.
    "cat": PEFT's exact `add_weighted_adapter(combination_type="cat")`. (With rsLoRA
    PEFT gives the concatenated adapter alpha = rank and so scales it by sqrt(rank):
    not the weighted sum, so "cat" is only a reference without rsLoRA.)
    """
    from peft.tuners.lora import LoraLayer
    model, _ = tiny_model(arch, tokenizer_dir, dtype=torch.float64)
    peft_model, names = peft_with_adapters(model, arch, use_rslora=use_rslora)
    if how == "cat":
        peft_model.add_weighted_adapter(names, list(w), adapter_name="mix", combination_type="cat")
        peft_model.set_adapter("mix")
    else:
        peft_model.base_model.set_adapter(names)
        for layer in peft_model.modules():
            if isinstance(layer, LoraLayer):
                for name, wi in zip(names, w):
                    layer.set_scale(name, wi)
    merged = peft_model.merge_and_unload()
    with torch.no_grad():
        return merged(ids).logits


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox"])
@pytest.mark.parametrize("use_rslora", [False, True])
def test_bank_equals_peft_merge(arch, use_rslora, tokenizer_dir):
    """float64 so that "equal" can mean 1e-9, not a loose float32 tolerance."""
    model, tok = tiny_model(arch, tokenizer_dir, dtype=torch.float64)
    peft_model, names = peft_with_adapters(model, arch, use_rslora=use_rslora)
    family = make_family(model, peft_model, names)
    plain, _ = tiny_model(arch, tokenizer_dir, dtype=torch.float64)
    bank = PreferenceBank(plain, family)
    ids = _ids(len(tok))
    with torch.no_grad():
        base_logits = plain(ids).logits
    for w in WEIGHTS:
        ref = _peft_merged_logits(arch, tokenizer_dir, w, ids, use_rslora)
        if not use_rslora:
            cat = _peft_merged_logits(arch, tokenizer_dir, w, ids, use_rslora, how="cat")
            torch.testing.assert_close(cat, ref, atol=1e-9, rtol=1e-9)
        assert (ref - base_logits).abs().max() > 0.1, "adapters too small to test anything"
        with torch.no_grad(), bank.preference(w):
            got = plain(ids).logits
        torch.testing.assert_close(got, ref, atol=1e-9, rtol=1e-9)
        # materialised weights give the same model
        merged = bank.merged_model(w)
        with torch.no_grad():
            torch.testing.assert_close(merged(ids).logits, ref, atol=1e-9, rtol=1e-9)


def test_no_preference_is_the_base_model(tokenizer_dir):
    model, tok = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    family = make_family(model, peft_model, names)
    plain, _ = tiny_model("llama", tokenizer_dir)
    ids = _ids(len(tok))
    with torch.no_grad():
        before = plain(ids).logits
        PreferenceBank(plain, family)
        assert torch.equal(plain(ids).logits, before)
        with PreferenceBank(plain, family, bank_id="b2").preference([0.0, 0.0]):
            torch.testing.assert_close(plain(ids).logits, before)


def test_rows_use_their_own_preference(tokenizer_dir):
    model, tok = tiny_model("gpt2", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "gpt2")
    plain, _ = tiny_model("gpt2", tokenizer_dir)
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    ids = _ids(len(tok), batch=len(WEIGHTS))
    with torch.no_grad(), bank.preference(WEIGHTS):
        batched = plain(ids).logits
    for i, w in enumerate(WEIGHTS):
        with torch.no_grad(), bank.preference(w):
            alone = plain(ids[i: i + 1]).logits
        torch.testing.assert_close(batched[i: i + 1], alone, atol=1e-5, rtol=1e-5)


def test_threads_do_not_see_each_others_preference(tokenizer_dir):
    model, tok = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    plain, _ = tiny_model("llama", tokenizer_dir)
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    ids = _ids(len(tok), batch=1)
    expected = {}
    for w in [(1.0, 0.0), (0.0, 1.0)]:
        with torch.no_grad(), bank.preference(w):
            expected[w] = plain(ids).logits
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def worker(w):
        try:
            with torch.no_grad(), bank.preference(w):
                barrier.wait()  # both threads are inside their own `with` before either computes
                for _ in range(5):
                    out = plain(ids).logits
                    torch.testing.assert_close(out, expected[w])
            results[w] = out
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not torch.allclose(results[(1.0, 0.0)], results[(0.0, 1.0)])


def test_new_thread_starts_without_gains_unless_context_is_copied(tokenizer_dir):
    model, tok = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    plain, _ = tiny_model("llama", tokenizer_dir)
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    from paretoapp.bank import _ACTIVE
    seen = {}
    with bank.preference([1.0, 0.0]):
        t = threading.Thread(target=lambda: seen.setdefault("plain", _ACTIVE.get()))
        t.start()
        t.join()
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(lambda: seen.setdefault("copied", _ACTIVE.get()),))
        t.start()
        t.join()
    assert seen["plain"] is None
    assert isinstance(seen["copied"], ActiveGains)


@pytest.mark.parametrize("bad, message", [
    ([float("nan"), 0.0], "NaN"),
    ([float("inf"), 0.0], "NaN or infinity"),
    ([0.5], "2 objectives"),
    ([0.2, 0.3, 0.5], "2 objectives"),
    (torch.zeros(0, 2), "empty batch"),
    ("abc", "numbers"),
])
def test_bad_preferences_are_rejected(bad, message, tokenizer_dir):
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    plain, _ = tiny_model("llama", tokenizer_dir)
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    with pytest.raises(PreferenceError, match=message):
        bank.active(bad)


def test_declared_range_is_enforced(tokenizer_dir):
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    family = make_family(model, peft_model, names, w_low=[0.0, 0.0], w_high=[1.0, 1.0])
    with pytest.raises(PreferenceError, match="outside this family's allowed range"):
        family.manifest.check_w([1.5, 0.0])


def test_adapters_for_another_base_are_rejected(tokenizer_dir):
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    family = make_family(model, peft_model, names)
    other, _ = tiny_model("gpt2", tokenizer_dir)
    with pytest.raises(FamilyError, match="does not fit this model"):
        PreferenceBank(other, family)
    # same signature but different modules: named in the error
    family.manifest.base_model.signature = {}
    with pytest.raises(FamilyError, match="another base model"):
        PreferenceBank(other, family)


def test_generate_grows_batch_with_num_return_sequences(tokenizer_dir):
    model, tok = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    plain, _ = tiny_model("llama", tokenizer_dir)
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    ids = _ids(len(tok), batch=2, length=4)
    with torch.no_grad(), bank.preference([(1.0, 0.0), (0.0, 1.0)]):
        out = plain.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,
                             num_beams=2, num_return_sequences=2, pad_token_id=2)
    assert out.shape[0] == 4
    for row, w in [(0, (1.0, 0.0)), (2, (0.0, 1.0))]:
        with torch.no_grad(), bank.preference(w):
            alone = plain.generate(ids[row // 2: row // 2 + 1], attention_mask=torch.ones_like(ids[:1]),
                                   max_new_tokens=3, do_sample=False, num_beams=2, pad_token_id=2)
        assert torch.equal(out[row], alone[0])


def test_zero_gain_blocks_are_skipped_exactly(tokenizer_dir):
    model, tok = tiny_model("llama", tokenizer_dir, dtype=torch.float64)
    peft_model, names = peft_with_adapters(model, "llama", k=3)
    plain, _ = tiny_model("llama", tokenizer_dir, dtype=torch.float64)
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    active = bank.active([0.0, 1.0, 0.0])
    assert (active.start, active.stop) == (4, 9)  # adapters of rank 4, 5, 6: the middle one only
    ids = _ids(len(tok))
    full = ActiveGains(active.bank_id, active.gains, 0, None)
    with torch.no_grad():
        with use_gains(active):
            sliced = plain(ids).logits
        with use_gains(full):
            dense = plain(ids).logits
    torch.testing.assert_close(sliced, dense, atol=1e-9, rtol=1e-9)


def test_detach_restores_plain_modules(tokenizer_dir):
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama")
    plain, _ = tiny_model("llama", tokenizer_dir)
    keys = set(plain.state_dict())
    bank = PreferenceBank(plain, make_family(model, peft_model, names))
    assert bank_layers(plain) and set(plain.state_dict()) == keys
    bank.detach()
    assert not bank_layers(plain)


def test_panacea_svd_lora_bank_matches_its_formula(tokenizer_dir):
    """W = W0 + c U diag(sigma, s*w) V^T, served by an affine gate [1..1, w]."""
    plain, tok = tiny_model("llama", tokenizer_dir)
    torch.manual_seed(3)
    r, k, c = 3, 2, 0.5
    layers, reference = {}, {}
    for name, mod in plain.named_modules():
        if name.endswith(("q_proj", "down_proj")):
            out_f, in_f = mod.weight.shape
            p = {"U": torch.randn(out_f, r + k), "V": torch.randn(in_f, r + k), "sigma": torch.randn(r),
                 "s": 0.7, "scaling": c}
            layers[name] = p
            reference[name] = mod.weight.detach().clone()
    tensors, blocks, gate = svd_lora_tensors(layers, k)
    manifest = FamilyManifest(name="panacea", method="panacea",
                              base_model=BaseModelRef("tiny", signature=model_signature(plain.config)),
                              objectives=[Objective("a"), Objective("b")], blocks=blocks, gate=gate)
    bank = PreferenceBank(plain, Family(manifest, tensors))
    w = [0.25, 0.75]
    sd = bank.merged_state_dict(w)
    for name, p in layers.items():
        diag = torch.cat([p["sigma"], p["s"] * torch.tensor(w)])
        expected = reference[name] + c * p["U"] @ torch.diag(diag) @ p["V"].T
        torch.testing.assert_close(sd[f"{name}.weight"], expected, atol=1e-5, rtol=1e-5)


def test_union_of_two_families_serves_rows_of_both_exactly(tokenizer_dir):
    """Gains over the union axis, zero outside each row's family, equal each family's own bank per row."""
    plain, tok = tiny_model("llama", tokenizer_dir, dtype=torch.float64)
    banks = []
    for k, seed, name in [(2, 0, "a"), (3, 1, "b")]:
        model, _ = tiny_model("llama", tokenizer_dir, dtype=torch.float64)
        peft_model, names = peft_with_adapters(model, "llama", k=k, seed=seed)
        banks.append(PreferenceBank(plain, make_family(model, peft_model, names, name=name)))
    layout = layout_of(plain)
    assert layout.total == sum(b.manifest.total_rank for b in banks)
    ws = [[0.3, 0.7], [1.0, -0.5, 0.25]]
    ids = _ids(len(tok), batch=2)
    gains = torch.zeros(2, layout.total, dtype=torch.float64)
    for row, (bank, w) in enumerate(zip(banks, ws)):
        start, stop = layout.span(bank.bank_id)
        gains[row, start:stop] = bank.rank_gains(w)[0]
    with torch.no_grad():
        with use_gains(ActiveGains(UNION, gains)):
            both = plain(ids).logits
        for row, (bank, w) in enumerate(zip(banks, ws)):
            with bank.preference(w):
                alone = plain(ids[row: row + 1]).logits
            torch.testing.assert_close(both[row: row + 1], alone, atol=1e-9, rtol=1e-9)
    banks[0].detach()  # the other family keeps its place on a shorter axis and its answers
    assert layout.span(banks[1].bank_id) == (0, banks[1].manifest.total_rank)
    with torch.no_grad(), banks[1].preference(ws[1]):
        torch.testing.assert_close(plain(ids[1:]).logits, alone, atol=1e-9, rtol=1e-9)
