"""A stand-in for one `vllm serve BASE --enable-lora` replica, for the gateway's tests (no vLLM here).

It speaks the part of vLLM's HTTP API the gateway uses (``/v1/models``,
``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter``, streamed ``/v1/completions``
with ``return_token_ids``) and answers like vLLM does: the base plus the named
LoRA adapter, read from its folder with PEFT, greedy. So a test that the
gateway's answer equals the in-process engine's checks the adapter and the
prompt ids for real; only the batching is not vLLM's.
"""

from __future__ import annotations

import contextlib
import json
import threading

import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from transformers import AutoModelForCausalLM


class FakeVllm:
    def __init__(self, base_dir: str, max_model_len: int = 256, stop_after: int | None = None):
        self.base_dir = base_dir
        self.max_model_len = max_model_len
        self.stop_after = stop_after  # drop the stream (no [DONE]) after this many tokens: a replica that dies
        self.adapters: dict[str, str] = {}
        self.loads: list[str] = []
        self.unloads: list[str] = []
        self.completions: list[dict] = []
        self._model = None
        self._peft_names: dict[str, str] = {}  # adapter name -> PEFT's name for it (no dots allowed there)
        self._lock = threading.Lock()

    def model_for(self, name: str):
        """The base with adapter ``name`` active (loaded from its folder once), or the bare base."""
        from peft import PeftModel

        if self._model is None:
            self._model = AutoModelForCausalLM.from_pretrained(self.base_dir).eval()
        if name == "base":
            return self._model
        if name not in self._peft_names:
            key = self._peft_names[name] = f"a{len(self._peft_names)}"
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(self.adapters[name], adapter_name=key)
            else:
                self._model = PeftModel.from_pretrained(self._model, self.adapters[name], adapter_name=key).eval()
        self._model.set_adapter(self._peft_names[name])
        return self._model

    @torch.no_grad()
    def greedy(self, name: str, ids: list[int], max_tokens: int, eos: int) -> list[int]:
        from peft import PeftModel

        with self._lock:
            model = self.model_for(name)
            bare = name == "base" and isinstance(model, PeftModel)
            with model.disable_adapter() if bare else contextlib.nullcontext():
                out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                   max_new_tokens=max_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos)
        return out[0, len(ids):].tolist()

    def app(self, eos: int = 2) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "base", "parent": None, "max_model_len": self.max_model_len}] +
                    [{"id": n, "parent": "base"} for n in self.adapters]}

        @app.post("/v1/load_lora_adapter")
        async def load(request: Request):
            body = await request.json()
            self.adapters[body["lora_name"]] = body["lora_path"]
            self.loads.append(body["lora_name"])
            return "Success"

        @app.post("/v1/unload_lora_adapter")
        async def unload(request: Request):
            body = await request.json()
            self.adapters.pop(body["lora_name"], None)
            self.unloads.append(body["lora_name"])
            return "Success"

        @app.post("/v1/completions")
        async def completions(request: Request):
            body = await request.json()
            self.completions.append(body)
            name = body["model"]
            if name != "base" and name not in self.adapters:
                return JSONResponse({"error": {"message": f"The model `{name}` does not exist.", "code": 404}}, 404)
            tokens = self.greedy(name, body["prompt"], body["max_tokens"], eos)

            def events():
                for i, t in enumerate(tokens):
                    if self.stop_after is not None and i == self.stop_after:
                        return  # the connection ends without [DONE]
                    finish = None if i < len(tokens) - 1 else "stop"
                    yield f"data: {json.dumps({'choices': [{'index': 0, 'token_ids': [t], 'finish_reason': finish}]})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return app
