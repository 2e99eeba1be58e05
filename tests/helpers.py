"""Tiny models and families built from configs, for tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPTNeoXConfig, LlamaConfig

from paretoapp.bank import stack_lora_adapters
from paretoapp.family import BaseModelRef, Family, FamilyManifest, Objective, model_signature
from paretoapp.gates import Gate

TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


def tiny_config(arch: str, vocab: int):
    if arch == "llama":
        return LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                           tie_word_embeddings=True, pad_token_id=2, bos_token_id=1, eos_token_id=2)
    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=256,
                          pad_token_id=2, bos_token_id=1, eos_token_id=2)
    if arch == "gpt_neox":
        return GPTNeoXConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=256, pad_token_id=2,
                             bos_token_id=1, eos_token_id=2)
    raise ValueError(arch)


def tiny_model(arch: str, tokenizer_dir, seed: int = 0, dtype=torch.float32):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tok))).to(dtype)
    # random init gives near-uniform logits; sharpen so greedy decoding is not a coin toss
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    return model.eval(), tok


def save_tiny_base(path: Path, arch: str, tokenizer_dir, seed: int = 0) -> Path:
    model, tok = tiny_model(arch, tokenizer_dir, seed)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def peft_with_adapters(model, arch: str, k: int = 2, r: int = 4, use_rslora: bool = False, seed: int = 0):
    """A PeftModel with k randomly initialised (non-zero) LoRA adapters a0..a{k-1}."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    names = [f"a{i}" for i in range(k)]
    peft_model = None
    for i, name in enumerate(names):
        cfg = LoraConfig(r=r + i, lora_alpha=2 * r + 3 * i, target_modules=TARGETS[arch], init_lora_weights=False,
                         use_rslora=use_rslora, fan_in_fan_out=(arch == "gpt2"))
        if peft_model is None:
            peft_model = get_peft_model(model, cfg, adapter_name=name)
        else:
            peft_model.add_adapter(name, cfg)
    with torch.no_grad():  # make the deltas large enough to matter
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.mul_(20.0)
    return peft_model, names


def make_family(model, peft_model, names, name="tiny", method="rewarded_soups", gate=None, **kw) -> Family:
    tensors, blocks = stack_lora_adapters(peft_model, names)
    k = kw.pop("k", len(names))
    manifest = FamilyManifest(
        name=name, method=method,
        base_model=BaseModelRef(name_or_path=kw.pop("base", "tiny"), signature=model_signature(model.config)),
        objectives=[Objective(f"obj{i}") for i in range(k)], blocks=blocks,
        gate=gate or Gate.identity(k), **kw)
    return Family(manifest, tensors)


def make_tiny_family(path: Path, tokenizer_dir, arch: str = "llama", k: int = 2, seed: int = 0) -> Path:
    """A saved base folder plus a Rewarded-Soups-style family on it; returns the family folder."""
    base = save_tiny_base(path / "base", arch, tokenizer_dir, seed)
    model, _ = tiny_model(arch, tokenizer_dir, seed)
    peft_model, names = peft_with_adapters(model, arch, k=k, seed=seed)
    family = make_family(model, peft_model, names, base=str(base), w_low=[-2.0] * k, w_high=[3.0] * k,
                         in_sample_low=[0.0] * k, in_sample_high=[1.0] * k)
    return family.save(path / "family")
