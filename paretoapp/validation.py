"""Input checks shared by every door: the Python API, the CLI, the app's HTTP API and its UI.

Each function takes a value as a caller sent it (a Python object, a string
from a command line, JSON from an HTTP client) and returns it in the one form
the library uses, or raises an error whose message is one line saying what is
wrong and what to do. The same bad input therefore reads the same whichever
door it came through. The table of cases is ``tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from . import settings
from .errors import InputError, PreferenceError, PromptTooLongError, one_line, shown

ROLES = ("system", "user", "assistant")
TRUNCATE_HINT = "or ask to keep only its last tokens (overflow='truncate_left')"


# ------------------------------------------------------------------ prompts
def prompt_text(value, what: str = "the prompt") -> str:
    """Text a model can read: a str of valid Unicode, or bytes that decode as UTF-8."""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{what} is not UTF-8 text (byte {exc.start} is {value[exc.start]:#04x}); "
                             "send it encoded as UTF-8") from None
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__}; pass a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} holds {value[exc.start]!r} at position {exc.start}, which is not a character "
                         "(an unpaired surrogate, e.g. from undecodable bytes); send valid UTF-8 text") from None
    return value


def chat_messages(prompt) -> list[dict]:
    """A prompt (text, or a list of {"role", "content"} messages ending with the user's) as fresh checked messages."""
    if isinstance(prompt, (str, bytes, bytearray)):
        return [{"role": "user", "content": prompt_text(prompt)}]
    if not isinstance(prompt, (list, tuple)):
        raise InputError(f"a prompt must be text or a list of chat messages, got {type(prompt).__name__}; "
                         "pass a string or [{'role': 'user', 'content': '...'}]")
    messages = []
    for i, m in enumerate(prompt):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise InputError(f"chat message {i} is {shown(m)}; give each message as a dict with 'role' and "
                             "'content', e.g. {'role': 'user', 'content': 'Hi'}")
        if m["role"] not in ROLES:
            raise InputError(f"chat message {i} has role {shown(m['role'])}; use 'system', 'user' or 'assistant'")
        messages.append({**m, "content": prompt_text(m["content"], f"the content of chat message {i}")})
    if not messages or messages[-1]["role"] != "user":
        raise InputError("a chat prompt must end with a user message; add the user's turn last")
    return messages


def check_prompt_length(n_tokens: int, limit: int, context: int, max_new_tokens: int,
                        row: int = 0, rows: int = 1, at_least: bool = False, hint: str = TRUNCATE_HINT) -> None:
    """The one message for a prompt that does not fit, whichever door it came through (``hint`` names the way
    out that door offers)."""
    if n_tokens <= limit:
        return
    which = "the prompt" if rows == 1 else f"prompt {row + 1} of {rows}"
    raise PromptTooLongError(
        f"{which} has {'at least ' if at_least else ''}{n_tokens} tokens but at most {limit} fit (context {context}, "
        f"{max_new_tokens} reserved for the answer); shorten it or lower max_new_tokens, {hint}")


def tokens_at_least(text: str, longest_token: int) -> int:
    """A lower bound on a text's token count without tokenizing it (no token spells more than ``longest_token``
    characters), so a prompt of megabytes is refused in microseconds instead of tokenized for seconds."""
    return -(-len(text) // max(1, longest_token))


# ------------------------------------------------------------------ numbers
def whole_number(value, name: str) -> int:
    """An int from an int, an integral float or a numeric string (what JSON and forms send)."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number, got {value!r}; give one like 64")
    if isinstance(value, int):
        return value
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InputError(f"{name} {shown(value)} is not a whole number; give one like 64") from None
    if not number.is_integer():
        raise InputError(f"{name} {shown(value)} is not a whole number; give one like 64")
    return int(number)


def real_number(value, name: str) -> float:
    """A finite float from a number or a numeric string."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InputError(f"{name} {shown(value)} is not a number; give one like 0.7") from None
    if not math.isfinite(number):
        raise InputError(f"{name} is {number}; give a finite number")
    return number


def number_list(value, name: str, example: str = "0.3,0.7", error: type[ValueError] = InputError) -> list[float]:
    """Numbers from a list, or text like "0.3,0.7", "0.3 0.7" or "[0.3, 0.7]" (NaN and infinity are kept for the caller)."""
    hint = f"give numbers separated by commas, e.g. {example}"
    items = value
    if isinstance(value, str):
        text = value.strip()
        try:
            items = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
        except json.JSONDecodeError:
            raise error(f"{name} {shown(value)} is not a list of numbers; {hint}") from None
    elif hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # numpy arrays, tensors
        items = value.tolist()
    if not isinstance(items, (list, tuple)):
        raise error(f"{name} {shown(value)} is not a list of numbers; {hint}")
    out = []
    for v in items:
        try:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise TypeError
            out.append(float(v))
        except (TypeError, ValueError):
            raise error(f"{name} {shown(value)} is not a list of numbers ({shown(v, 20)} is not a number); "
                        f"{hint}") from None
    if not out:
        raise error(f"{name} is empty; {hint}")
    return out


def parse_w(value, name: str = "w") -> list[float]:
    """One preference vector as the CLI and HTTP clients send it; the family checks its length and range."""
    return number_list(value, name, "0.3,0.7 (one weight per objective)", PreferenceError)


# --------------------------------------------------------------- generation
def max_new_tokens(value, cap: int | None = None) -> int:
    """How many tokens to generate: at least 1, at most ``cap`` (the server's limit) when given."""
    n = whole_number(value, "max_new_tokens")
    if n < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {n}; ask for 1 or more new tokens")
    if cap is not None and n > cap:
        raise InputError(f"max_new_tokens {n} is more than this server allows ({cap}); ask for at most {cap} "
                         "(the server's PARETOAPP_MAX_NEW_TOKENS sets the limit)")
    return n


def repetition_penalty(value, name: str = "repetition_penalty") -> float:
    """A repetition penalty from any caller, in the range the app's setting takes (:func:`settings.penalty_in_range`)."""
    return settings.penalty_in_range(real_number(value, name), name)


def answer_penalty(value, name: str) -> float:
    """A presence or frequency penalty from any caller, in OpenAI's range (:func:`settings.answer_penalty_in_range`)."""
    return settings.answer_penalty_in_range(real_number(value, name), name)


def rows_at_once(value, name: str = "batch_size") -> int | None:
    """How many rows may decode at once: None for no limit, else at least 1 (0 would never make progress)."""
    if value is None:
        return None
    n = whole_number(value, name)
    if n < 1:
        raise InputError(f"{name} must be at least 1, got {n}; ask for 1 or more rows at once (or leave it unset)")
    return n


def check_room(max_new: int, context: int) -> None:
    """The answer must leave room for at least one prompt token in the model's context."""
    if max_new >= context:
        raise InputError(f"max_new_tokens {max_new} leaves no room for the prompt in the model's context of "
                         f"{context} tokens; ask for fewer than {context}")


def app_max_new_tokens() -> int:
    """The app's cap on max_new_tokens: ``PARETOAPP_MAX_NEW_TOKENS`` (default 1024)."""
    return settings.MAX_NEW_TOKENS.get()


def check_device(name: str | None) -> str | None:
    """A torch device this machine has ("cpu", "cuda", "cuda:1", "mps"); None stays None (the default)."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"device {shown(name)} is not a device; use cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name} is not available: this machine has no CUDA GPU; use cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {name} does not exist: this machine has {torch.cuda.device_count()} GPU(s); "
                         "use cuda:0 or another index")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name} is not available here; use cpu")
    return str(device)


# ----------------------------------------------------------------- families
def check_adapter_folder(path, what: str = "adapter") -> None:
    """A trained adapter the bank can stack: plain LoRA, saved with safetensors (checked before any run starts)."""
    from pathlib import Path

    folder = Path(path).expanduser()
    if not (folder / "adapter_model.safetensors").is_file():
        raise InputError(f"{what}: {folder} holds no adapter_model.safetensors; pass a folder written by a trainer "
                         "(its 'adapter' sub-folder) or retrain that objective")
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{what}: {folder}/adapter_config.json is missing or unreadable ({one_line(exc)[:100]}); "
                         "re-save the adapter with save_pretrained") from None
    kind = config.get("peft_type", "LORA")
    if kind != "LORA":
        raise InputError(f"{what}: {folder} is a {kind} adapter; only LoRA adapters can join a family, retrain it as LoRA")
    if config.get("use_dora"):
        raise InputError(f"{what}: {folder} is a DoRA adapter, whose update is not linear in its weight; "
                         "retrain it as plain LoRA (use_dora=False)")
    if config.get("lora_bias"):
        raise InputError(f"{what}: {folder} trains a bias (lora_bias), which a family cannot hold; retrain it "
                         "with lora_bias=False")
