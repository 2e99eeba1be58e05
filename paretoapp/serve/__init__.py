"""Serving past one process: an OpenAI-compatible HTTP API on the in-process engine or on vLLM.

``paretoapp serve FAMILY_DIR... --backend engine|vllm`` (``cli/serve.py``) runs
``openai_api.build_app`` over a backend (``backends.EngineBackend``, or
``vllm_backend.VllmBackend``: one exact LoRA adapter per (family, snapped w),
kept in an LRU (``adapters.py``), on one or more vLLM replicas
(``replicas.py``)). ``remote_policy.py`` lets the Gradio app answer through the
same gateway. Nothing here imports vLLM: it is a separate server reached over
HTTP (docs/serving.md).
"""

DEFAULT_GRID = 0.01          # w is snapped to this grid per coordinate on vLLM (one adapter per point)
DEFAULT_MAX_ADAPTERS = 64    # adapters the vLLM gateway keeps (LRU)
