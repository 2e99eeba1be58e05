"""Shared test set-up: one torch thread (the machine has 2 shared cores), quiet logs."""

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer_dir():
    from paretoapp.models import smollm2_tokenizer_dir
    return smollm2_tokenizer_dir()
