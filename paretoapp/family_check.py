"""Can this family be served here? Its base model is present and the bank fits it, checked before any request.

Beside the bank and family code because it builds an empty copy of the base and attaches the bank to it;
``validation`` only parses what callers send.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from .bank import PreferenceBank
from .errors import BaseModelError, FamilyError, one_line
from .models import base_config, check_tokenizer_folder, local_base_folder


def check_family_base(family, allow_pickle: bool | None = None) -> None:
    """At add time, before anything is served: the family's base is here and the bank fits it.

    Reads the base's config and file list (never its weights), refuses pickle-only
    weights and a missing tokenizer, then attaches the bank to an empty ("meta")
    copy of the base, so a family for another base fails now with the bank's own
    message instead of at the first request. Raises ``FamilyError``.
    """
    ref = family.manifest.base_model
    name = family.manifest.name
    try:
        config = base_config(ref.name_or_path, ref.revision, allow_pickle, tokenizer=not ref.tokenizer)
        if ref.tokenizer and (folder := local_base_folder(ref.tokenizer)) is not None:
            check_tokenizer_folder(folder)
    except (BaseModelError, OSError) as exc:
        raise FamilyError(f"family {name!r} cannot be served here: {one_line(exc)}") from None
    if config is None:
        return
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, OSError) as exc:
        raise FamilyError(f"family {name!r}: its base model {ref.name_or_path!r} has an architecture this "
                          f"transformers cannot build ({one_line(exc)[:200]}); upgrade transformers") from None
    PreferenceBank(skeleton, family, bank_id="add-time-check")
