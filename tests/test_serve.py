"""paretoapp serve: the adapter maker, the w grid, the LRU, the wire format, and the API on both backends.

The vLLM backend is tested against fake replicas (tests/fake_vllm.py: vLLM's HTTP API, answering
with the base plus the adapter file through PEFT); scripts/vllm_check.sh runs the real vLLM.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import openai
import pytest
import torch
from fake_vllm import FakeVllm
from helpers import make_family, make_tiny_family, peft_with_adapters, tiny_model
from safetensors.torch import load_file
from starlette.testclient import TestClient

from paretoapp.bank import bank_layers
from paretoapp.conditioning import Conditioning
from paretoapp.errors import InputError, PreferenceError
from paretoapp.family import load_family
from paretoapp.gates import Gate
from paretoapp.generate import GenerationSettings, load_policy
from paretoapp.serve.adapters import AdapterCache, check_grid, snap
from paretoapp.serve.backends import EngineBackend
from paretoapp.serve.openai_api import build_app
from paretoapp.serve.protocol import parse_chat_request
from paretoapp.serve.streaming import AnswerText
from paretoapp.serve.vllm_backend import VllmBackend

PROMPTS = ["The quick brown fox", "Tell me about the sea", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory, tokenizer_dir):
    return make_tiny_family(tmp_path_factory.mktemp("serve"), tokenizer_dir)


@pytest.fixture(scope="module")
def policy(family_dir):
    return load_policy(family_dir)


@pytest.fixture(scope="module")
def ric_dir(family_dir, tokenizer_dir):
    """A second family on the same base whose prompts carry Rewards-in-Context reward tags."""
    model, _ = tiny_model("llama", tokenizer_dir)
    peft_model, names = peft_with_adapters(model, "llama", k=1, seed=3)
    base = str(family_dir.parent / "base")
    family = make_family(model, peft_model, names, name="tiny-ric", method="rewards_in_context", k=2, base=base,
                         gate=Gate.affine([[0.0, 0.0]], [1.0]), w_low=[0.0, 0.0], w_high=[1.0, 1.0],
                         conditioning=Conditioning(["<r1>", "<r2>"], [-1.0, -1.0], [1.0, 1.0]))
    return family.save(family_dir.parent / "ric")


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------------ the adapter maker
@pytest.mark.parametrize("w", [[0.3, 0.7], [1.4, -0.3], [0.0, 1.0]])
def test_the_adapter_equals_the_bank_at_w(policy, tmp_path, w):
    adapter = run(AdapterCache(tmp_path, 4).acquire(policy.family, w, 0.01))
    tensors = load_file(adapter.path / "adapter_model.safetensors")
    config = json.loads((adapter.path / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    g = policy.bank.rank_gains(w)[0]
    worst = 0.0
    for module, layer in bank_layers(policy.model).items():
        a = tensors[f"base_model.model.{module}.lora_A.weight"].double()
        b = tensors[f"base_model.model.{module}.lora_B.weight"].double()
        want = layer.delta(policy.bank.bank_id, g).double()
        got = scale * b @ a
        worst = max(worst, float((got - want).abs().max() / want.abs().max()))
    assert worst < 1e-6
    assert config["r"] == int((g != 0).sum()) <= policy.manifest.total_rank


def test_the_adapter_loaded_with_peft_answers_as_the_bank(policy, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    w = [0.6, 0.4]
    adapter = run(AdapterCache(tmp_path, 4).acquire(policy.family, w, 0.01))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(policy.manifest.base_model.name_or_path),
                                      adapter.path).eval()
    enc = policy.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad(), policy.bank.preference([w] * len(PROMPTS)):
        want = policy.model(**enc).logits
    with torch.no_grad():
        got = model(**enc).logits
    real = enc["attention_mask"].bool()  # padding positions hold nothing to compare
    error = (got[real] - want[real]).abs().max() / want[real].abs().max()
    assert error < 1e-4  # float32 forward noise of another summation order (the weights agree to 1e-6, above)


def test_a_w_with_no_update_is_served_by_the_base(policy, tmp_path):
    adapter = run(AdapterCache(tmp_path, 4).acquire(policy.family, [0.0, 0.0], 0.01))
    assert adapter.path is None and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the grid and the LRU
def test_snap_rounds_to_the_grid_inside_the_range():
    assert snap([0.333333, 0.666667], 0.01) == [0.33, 0.67]
    assert snap([-0.004, 1.2], 0.01, [0, 0], [1, 1]) == [0.0, 1.0]
    assert snap([0.35, 0.65], 0.1) == [0.4, 0.7]                    # half away from zero, per coordinate
    assert snap([0.35, 0.65], 0.1, keep_sum=True) == [0.3, 0.7]     # on the simplex the sum stays 1
    assert snap([1 / 3] * 3, 0.01, keep_sum=True) == [0.34, 0.33, 0.33]
    assert snap([0.126, 0.874], 0.25) == [0.25, 0.75]
    with pytest.raises(InputError, match="grid step must be in"):
        check_grid(0)


def test_the_lru_evicts_the_oldest_idle_adapter_and_removes_its_files(policy, tmp_path):
    evicted = []

    async def on_evict(adapter):
        evicted.append(adapter.name)

    async def scenario():
        cache = AdapterCache(tmp_path, 2, on_evict=on_evict)
        a = await cache.acquire(policy.family, [0.1, 0.9], 0.01)
        cache.release(a)
        b = await cache.acquire(policy.family, [0.2, 0.8], 0.01)   # held: never evicted while in use
        c = await cache.acquire(policy.family, [0.3, 0.7], 0.01)
        assert evicted == [a.name] and not a.path.exists() and b.path.exists() and c.path.exists()
        d = await cache.acquire(policy.family, [0.4, 0.6], 0.01)   # b and c in use: the cache grows past 2
        assert len(cache) == 3 and evicted == [a.name]
        for x in (b, c, d):
            cache.release(x)
        await cache.trim()
        assert len(cache) == 2 and evicted == [a.name, b.name]
        again = await cache.acquire(policy.family, [0.1, 0.9], 0.01)  # made anew
        assert again.path.exists() and cache.made == 5

    run(scenario())


# ------------------------------------------------------------------ the wire format
@pytest.mark.parametrize("body,message", [
    ([], "request body must be a JSON object"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "'model' must be the name of a family"),
    ({"model": "m", "messages": []}, "'messages' must be a non-empty list"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "temperature must be between 0 and 2"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": 0}, "top_p must be in (0, 1]"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "repetition_penalty": 0},
     "repetition_penalty must be in (0, 2]"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "presence_penalty": 2.5},
     "presence_penalty must be in [-2, 2], got 2.5"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "frequency_penalty": "much"},
     "frequency_penalty"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["a"] * 5}, "at most 4"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_new_tokens must be at least 1"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, "tool calls are not supported"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "only text parts"),
])
def test_bad_requests_are_one_line(body, message):
    with pytest.raises(InputError) as err:
        parse_chat_request(body)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_request_reads_as_openai_defines_it():
    req = parse_chat_request({"model": "m", "messages": [{"role": "developer", "content": "Be brief."},
                                                          {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                              "max_completion_tokens": 7, "temperature": 0, "stop": "\n", "seed": 3, "w": "0.2,0.8"})
    assert req.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (req.max_tokens, req.greedy, req.stop, req.seed, req.w) == (7, True, ["\n"], 3, [0.2, 0.8])
    with pytest.raises(PreferenceError, match="not a list of numbers"):
        parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "w": "x"})


def test_streamed_text_never_shows_what_the_answer_drops(tokenizer_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tok("Hello world. END of it", add_special_tokens=False)["input_ids"]
    a = AnswerText(tok, ["END"], frozenset(), max_tokens=100)
    deltas = [a.update(ids[:i]) for i in range(1, len(ids) + 1)] + [a.update(ids, final=True)]
    assert "".join(deltas) == "Hello world." == a.sent
    assert a.finish_reason == "stop"
    emoji = tok("🙂", add_special_tokens=False)["input_ids"]   # several byte tokens for one character
    b = AnswerText(tok, [], frozenset(), max_tokens=len(emoji))
    assert "\ufffd" not in "".join(b.update(emoji[:i]) for i in range(1, len(emoji)))
    assert b.update(emoji, final=True) == "🙂" and b.finish_reason == "length"


# ------------------------------------------------------------------ the API on the in-process engine
@pytest.fixture(scope="module")
def engine_client(policy):
    with TestClient(build_app(EngineBackend({"tiny": policy}))) as http:
        yield openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=http, max_retries=0)


def engine_answer(policy, prompt, w, max_tokens=12):
    return policy.generate([prompt], [w], GenerationSettings(max_new_tokens=max_tokens))[0]


def test_the_openai_client_gets_the_engines_greedy_answers(engine_client, policy):
    assert [m.id for m in engine_client.models.list()] == ["tiny"]
    for prompt, w in zip(PROMPTS, ([0.2, 0.8], [1.0, 0.0], [1.5, -0.5])):
        r = engine_client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}],
                                                  max_tokens=12, temperature=0,
                                                  extra_body={"w": w, "return_token_ids": True})
        assert r.choices[0].message.content == engine_answer(policy, prompt, w)
        assert policy.tokenizer.decode(r.choices[0].token_ids, skip_special_tokens=True).strip() == \
            r.choices[0].message.content
        assert r.w == w and r.usage.completion_tokens <= 12 and r.choices[0].finish_reason in ("stop", "length")
        assert r.usage.prompt_tokens == policy.prompt_tokens(prompt, w)


def test_a_stream_adds_up_to_the_whole_answer(engine_client, policy):
    kw = dict(model="tiny", messages=[{"role": "user", "content": PROMPTS[1]}], max_tokens=16, temperature=0,
              extra_body={"w": [0.4, 0.6]})
    whole = engine_client.chat.completions.create(**kw)
    chunks = list(engine_client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens and not chunks[-1].choices


def test_a_missing_w_is_the_default_and_stop_cuts_as_the_engine_does(engine_client, policy):
    from paretoapp.preferences import PreferenceSpace

    default = PreferenceSpace(policy.manifest).default_w()
    r = engine_client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPTS[0]}],
                                              max_tokens=12, temperature=0)
    assert r.w == default and r.choices[0].message.content == engine_answer(policy, PROMPTS[0], default)
    full = r.choices[0].message.content
    stop = full.split()[2]  # a word from inside the answer
    cut = engine_client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPTS[0]}],
                                                max_tokens=12, temperature=0, stop=[stop])
    want = policy.generate([PROMPTS[0]], [default], GenerationSettings(max_new_tokens=12, stop=[stop]))[0]
    assert cut.choices[0].message.content == want and stop not in want and len(want) < len(full)
    assert cut.choices[0].finish_reason == "stop"


def test_a_repetition_penalty_reaches_the_engine(engine_client, policy):
    """vLLM's extra field: the API's answer is the engine's with the same penalty (and differs from none)."""
    from paretoapp.preferences import PreferenceSpace

    default = PreferenceSpace(policy.manifest).default_w()
    kw = dict(model="tiny", messages=[{"role": "user", "content": PROMPTS[0]}], max_tokens=16, temperature=0)
    got = engine_client.chat.completions.create(**kw, extra_body={"repetition_penalty": 1.8}).choices[0].message.content
    want = policy.generate([PROMPTS[0]], [default], GenerationSettings(max_new_tokens=16, repetition_penalty=1.8))[0]
    assert got == want != engine_client.chat.completions.create(**kw).choices[0].message.content


def test_presence_and_frequency_penalties_reach_the_engine(engine_client, policy):
    """OpenAI's own fields: the API's answer is the engine's with the same penalties (and differs from none)."""
    from paretoapp.preferences import PreferenceSpace

    default = PreferenceSpace(policy.manifest).default_w()
    kw = dict(model="tiny", messages=[{"role": "user", "content": PROMPTS[0]}], max_tokens=16, temperature=0)
    got = engine_client.chat.completions.create(**kw, presence_penalty=2.0, frequency_penalty=0.5)
    want = policy.generate([PROMPTS[0]], [default], GenerationSettings(max_new_tokens=16, presence_penalty=2.0,
                                                                        frequency_penalty=0.5))[0]
    assert got.choices[0].message.content == want != engine_client.chat.completions.create(**kw).choices[0].message.content


def test_sampling_follows_seed_and_n(engine_client):
    kw = dict(model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=1.0, top_p=0.9,
              seed=11, n=2)
    first = [c.message.content for c in engine_client.chat.completions.create(**kw).choices]
    second = [c.message.content for c in engine_client.chat.completions.create(**kw).choices]
    assert first == second and len(first) == 2


@pytest.mark.parametrize("kw,message", [
    ({"model": "nope"}, "no family named 'nope' is served here; use one of tiny"),
    ({"extra_body": {"w": [0.5]}}, "preference has 1 values but this family has 2 objectives"),
    ({"extra_body": {"w": [9.0, 0.0]}}, "outside this family's allowed range"),
    ({"messages": [{"role": "user", "content": "word " * 400}]}, "tokens but at most"),
])
def test_a_bad_request_is_a_400_with_its_one_line(engine_client, kw, message):
    args = dict(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    args.update(kw)
    with pytest.raises(openai.BadRequestError) as err:
        engine_client.chat.completions.create(**args)
    assert err.value.status_code == 400 and message in err.value.body["message"]


# ------------------------------------------------------------------ the API on (fake) vLLM replicas
def failing(request):
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture()
def replicas(family_dir):
    return {"http://r1": FakeVllm(str(family_dir.parent / "base")), "http://r2": FakeVllm(str(family_dir.parent / "base"))}


def vllm_client(backend_kw: dict, fakes: dict, families: dict, dead: tuple = ()):
    mounts = {url: httpx.ASGITransport(app=f.app()) for url, f in fakes.items()}
    mounts.update({url: httpx.MockTransport(failing) for url in dead})
    backend = VllmBackend(families, [*fakes, *dead], client_kw={"mounts": mounts}, **backend_kw)
    return backend, TestClient(build_app(backend))


def ask(client, model, prompt, w, max_tokens=12, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                          max_tokens=max_tokens, temperature=0, extra_body={"w": w}, **kw)


def test_vllm_answers_equal_the_engines_at_the_snapped_w(family_dir, ric_dir, replicas, tmp_path):
    families = {"tiny": load_family(family_dir), "tiny-ric": load_family(ric_dir)}
    backend, http = vllm_client({"adapter_dir": tmp_path}, replicas, families)
    with http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=http, max_retries=0)
        for name, w, snapped in [("tiny", [0.333, 0.667], [0.33, 0.67]), ("tiny", [1.5, -0.5], [1.5, -0.5]),
                                 ("tiny-ric", [0.204, 0.796], [0.2, 0.8])]:
            r = ask(client, name, PROMPTS[2], w)
            assert r.w == snapped
            assert r.choices[0].message.content == engine_answer(load_policy(families[name]), PROMPTS[2], snapped)
        sent = [c for f in replicas.values() for c in f.completions if c["model"].startswith("tiny-ric")]
        prompt_text = load_policy(families["tiny-ric"]).tokenizer.decode(sent[0]["prompt"])
        assert "<r1> " in prompt_text and "<r2> " in prompt_text  # Rewards-in-Context's tags, at the snapped w
        assert not {"presence_penalty", "frequency_penalty", "repetition_penalty"} & set(sent[0])
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPTS[2]}], max_tokens=4,
                                       temperature=0, presence_penalty=1.0, frequency_penalty=0.5,
                                       extra_body={"w": [0.5, 0.5], "repetition_penalty": 1.1})
        last = max((c for f in replicas.values() for c in f.completions), key=lambda c: "presence_penalty" in c)
        assert (last["presence_penalty"], last["frequency_penalty"], last["repetition_penalty"]) == (1.0, 0.5, 1.1)


def test_adapters_stick_to_a_replica_spread_over_them_and_are_evicted(family_dir, replicas, tmp_path):
    backend, http = vllm_client({"adapter_dir": tmp_path, "max_adapters": 2}, replicas, {"tiny": load_family(family_dir)})
    r1, r2 = replicas.values()
    with http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=http, max_retries=0)
        for w in ([0.1, 0.9], [0.2, 0.8], [0.1, 0.9], [0.2, 0.8]):
            ask(client, "tiny", "Hi", w, max_tokens=2)
        assert len(r1.loads) == len(r2.loads) == 1 and r1.loads != r2.loads      # one adapter each, loaded once
        assert len(r1.completions) == len(r2.completions) == 2                      # affinity
        ask(client, "tiny", "Hi", [0.3, 0.7], max_tokens=2)                          # a third: the oldest goes
        first = r1.loads[0]
        assert r1.unloads == [first] and not (tmp_path / first).exists()
        ask(client, "tiny", "Hi", [0.1, 0.9], max_tokens=2)                          # back: made and loaded again
        assert backend.cache.made == 4 and [*r1.loads, *r2.loads].count(first) == 2
    assert not any(tmp_path.iterdir())  # shutdown unloads and removes every adapter


def test_a_request_for_an_adapter_still_loading_goes_where_it_is_loading(tmp_path):
    from paretoapp.serve.adapters import Adapter
    from paretoapp.serve.replicas import Replica, ReplicaPool

    pool = ReplicaPool(["http://r1", "http://r2"])
    pool.replicas = [Replica("http://r1", alive=True), Replica("http://r2", alive=True)]
    adapter, other = Adapter("a", tmp_path / "a"), Adapter("b", tmp_path / "b")
    first = run(pool.choose(adapter))
    assert run(pool.choose(adapter)) is first            # placed, not yet loaded: the same replica
    assert run(pool.choose(other)) is not first           # a new adapter goes to the least loaded
    base = Adapter("base", None)                          # no adapter (every gain zero): no affinity
    assert {run(pool.choose(base)).url for _ in range(2)} == {"http://r1", "http://r2"}


def test_a_dead_replica_is_skipped_with_a_log_line(family_dir, replicas, tmp_path, caplog):
    fakes = {"http://r1": replicas["http://r1"]}
    backend, http = vllm_client({"adapter_dir": tmp_path}, fakes, {"tiny": load_family(family_dir)},
                                dead=("http://gone",))
    with caplog.at_level(logging.WARNING), http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=http, max_retries=0)
        r = ask(client, "tiny", PROMPTS[0], [0.5, 0.5])
    assert r.choices[0].message.content == engine_answer(load_policy(family_dir), PROMPTS[0], [0.5, 0.5])
    assert any("http://gone is not answering" in m for m in caplog.messages)


def test_an_answer_cut_by_a_dying_replica_goes_on_elsewhere(family_dir, tmp_path, caplog):
    base = str(family_dir.parent / "base")
    fakes = {"http://dies": FakeVllm(base, stop_after=3), "http://lives": FakeVllm(base)}
    backend, http = vllm_client({"adapter_dir": tmp_path}, fakes, {"tiny": load_family(family_dir)})
    with caplog.at_level(logging.WARNING), http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=http, max_retries=0)
        text = "".join(c.choices[0].delta.content or "" for c in
                       ask(client, "tiny", PROMPTS[1], [0.7, 0.3], max_tokens=10, stream=True) if c.choices)
    assert text == engine_answer(load_policy(family_dir), PROMPTS[1], [0.7, 0.3], max_tokens=10)
    assert any("http://dies is down" in m and "retrying its requests on another replica" in m for m in caplog.messages)
    continued = fakes["http://lives"].completions[0]
    assert continued["max_tokens"] == 7 and len(continued["prompt"]) == len(fakes["http://dies"].completions[0]["prompt"]) + 3


def test_no_module_of_the_package_imports_vllm():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "paretoapp"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "vllm" or n.startswith("vllm.") for n in names), path


def test_the_app_seam_answers_rows_at_their_own_w_on_vllm(family_dir, replicas, tmp_path):
    from paretoapp.serve.remote_policy import Gateway
    from paretoapp.ui.catalog import build_catalog

    mounts = {url: httpx.ASGITransport(app=f.app()) for url, f in replicas.items()}
    gateway = Gateway(list(replicas), adapter_dir=tmp_path, client_kw={"mounts": mounts})
    catalog = build_catalog([str(family_dir)], assets=None, allow_fallback=False, wrap_policy=gateway.wrap)
    remote = catalog.get("tiny").policy()
    local = load_policy(family_dir)
    ws = [[0.2, 0.8], [0.9, 0.1]]
    settings = GenerationSettings(max_new_tokens=10)
    assert remote.generate(PROMPTS[:2], ws, settings) == local.generate(PROMPTS[:2], ws, settings)
    assert list(remote.stream(PROMPTS[:2], ws, settings))[-1] == local.generate(PROMPTS[:2], ws, settings)
    assert remote.model is local.model and remote.context_length() == 256  # the rest is the local policy's
    assert sum(len(f.completions) for f in replicas.values()) == 4
    gateway.call(gateway.backend.close())


def test_the_vllm_it_starts_fits_the_families_and_listens_on_loopback(family_dir, ric_dir, monkeypatch):
    from paretoapp.serve.vllm_launch import max_lora_rank, vllm_command

    families = [load_family(family_dir), load_family(ric_dir)]
    assert max_lora_rank(families) == 16  # total ranks 4 + 5 = 9 and 4: the next rank vLLM accepts
    monkeypatch.setenv("PARETOAPP_VLLM_COMMAND", "/venv/bin/python -m vllm.entrypoints.openai.api_server")
    cmd = vllm_command("/models/base", 8123, 16, 4, ["--dtype", "float32"])
    assert cmd[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for flag in ("--model /models/base", "--host 127.0.0.1", "--port 8123", "--enable-lora", "--max-lora-rank 16",
                 "--max-loras 4", "--generation-config vllm", "--dtype float32"):
        assert flag in joined


def test_the_command_says_in_one_line_what_is_wrong(family_dir, capsys):
    from paretoapp.cli import main

    assert main(["serve", str(family_dir), str(family_dir)]) == 2
    assert "two families are named 'tiny'" in capsys.readouterr().err
    assert main(["serve", str(family_dir), "--backend", "vllm", "--vllm-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no vLLM server answers at http://127.0.0.1:9;") and err.count("\n") == 1
