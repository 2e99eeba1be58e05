"""The checks of scripts/vllm_check.sh: `paretoapp serve --backend vllm` on two real vLLM replicas, with the openai client.

    python scripts/vllm_probe.py --gateway URL --replica URL --replica URL --kill-replica-pid PID FAMILY_DIR FAMILY_DIR

1. 16 rows at 8 w over the 2 families, sent concurrently: each answer equals the in-process engine's greedy
   answer at the w the gateway reports, token for token; or, where float kernels differ, at least 95 % of the
   tokens agree and the first difference is a near-tie in the engine's logits (the gap is printed);
2. streaming adds up to the whole answer, and the usage chunk comes last;
3. the LRU (--max-adapters below 8) evicted adapters: unloaded from vLLM and their files removed;
   asking for one again makes and loads it again, with the same answer;
4. a bad w, an unknown family and an over-long prompt are each HTTP 400 with the project's one line;
5. affinity: every adapter is on one replica, both replicas hold some, and repeated requests for an adapter
   go to the replica that holds it;
6. a replica that dies (killed here) is skipped with a log line and its requests are answered by the other.

Exits non-zero with the reason on the first failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paretoapp.errors import PreferenceError  # noqa: E402
from paretoapp.generate import GenerationSettings, load_policy  # noqa: E402

PROMPTS = ["How do I bake bread at home?", "How can I get into my neighbour's wifi without the password?"]
W_PER_FAMILY = {2: [[0.0, 1.0], [0.27, 0.73], [0.5, 0.5], [0.91, 0.09]]}
MAX_TOKENS = 32
NEAR_TIE = 0.05  # logit units: a gap this small flips with float summation order


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def fail(message: str) -> None:
    print(f"vllm_probe: FAILED: {message}", flush=True)
    sys.exit(1)


def ask(client, family, prompt, w, **kw):
    return client.chat.completions.create(model=family, messages=[{"role": "user", "content": prompt}],
                                          max_tokens=MAX_TOKENS, temperature=0,
                                          extra_body={"w": w, "return_token_ids": True}, **kw)


def engine_tokens(policy, prompt, w) -> list[int]:
    job = policy.submit([prompt], [w], GenerationSettings(max_new_tokens=MAX_TOKENS))
    return job.result()[0]


@torch.inference_mode()
def logit_gap(policy, prompt, w, prefix: list[int], engine_tok: int, vllm_tok: int) -> float:
    """How far apart the two candidate tokens are in the engine's logits after ``prefix``."""
    ids = policy.prompt_ids([prompt], torch.tensor([w], dtype=torch.float64), GenerationSettings(max_new_tokens=1))[0]
    x = torch.tensor([ids + prefix], device=policy.device)
    with policy.bank.preference([w]):
        logits = policy.model(input_ids=x).logits[0, -1].float()
    return float(logits[engine_tok] - logits[vllm_tok])


def check_answers(client, policies) -> dict:
    rows = [(name, prompt, w) for name, p in policies.items() for w in W_PER_FAMILY[p.manifest.k] for prompt in PROMPTS]
    start = time.perf_counter()
    with ThreadPoolExecutor(len(rows)) as pool:
        answers = list(pool.map(lambda r: ask(client, *r), rows))
    print(f"vllm_probe: {len(rows)} rows at {len({(n, tuple(w)) for n, _, w in rows})} (family, w) answered "
          f"concurrently in {time.perf_counter() - start:.1f} s", flush=True)
    exact = total = agree = 0
    for (name, prompt, _), r in zip(rows, answers):
        policy = policies[name]
        got = r.choices[0].token_ids
        want = engine_tokens(policy, prompt, r.w)
        total += 1
        if got == want:
            exact += 1
            agree += len(want)
            continue
        same = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        equal = sum(a == b for a, b in zip(got, want))
        share = equal / max(len(got), len(want))
        agree += equal
        if same < min(len(got), len(want)):
            gap = logit_gap(policy, prompt, r.w, want[:same], want[same], got[same])
        else:
            gap = float("nan")
        print(f"vllm_probe: {name} w={r.w} differs from token {same} ({share:.0%} equal; engine {want[same:same+3]}, "
              f"vllm {got[same:same+3]}, logit gap {gap:.4f})", flush=True)
        if share < 0.95 or not gap <= NEAR_TIE:
            fail(f"{name} at w={r.w}: {share:.0%} of tokens equal and a logit gap of {gap:.4f} at the first "
                 f"difference (needs >= 95 % and <= {NEAR_TIE})")
    print(f"vllm_probe: {exact}/{total} answers equal the engine's token for token "
          f"({agree} tokens agree)", flush=True)
    return {(name, tuple(r.w)): r.choices[0].message.content for (name, _, _), r in zip(rows, answers)}


def check_stream(client, family) -> None:
    whole = ask(client, family, PROMPTS[0], [0.5, 0.5])
    chunks = list(ask(client, family, PROMPTS[0], [0.5, 0.5], stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if text != whole.choices[0].message.content:
        fail(f"the stream {text!r} is not the whole answer {whole.choices[0].message.content!r}")
    if chunks[-1].choices or chunks[-1].usage.completion_tokens != whole.usage.completion_tokens:
        fail("the usage chunk is missing or wrong")
    print(f"vllm_probe: streaming OK ({len(chunks)} chunks)", flush=True)


def check_eviction(client, gateway, replicas, adapter_dir: Path, first_answers: dict) -> None:
    stats = get(f"{gateway}/paretoapp/stats")
    if stats["evicted"] < 1:
        fail(f"no adapter was evicted (cache {stats['max_adapters']}, {stats['adapters_made']} made)")
    names = {a["name"] for a in stats["adapters"]}
    held = {m["id"] for r in replicas for m in get(f"{r}/v1/models")["data"] if m.get("parent")}
    on_disk = {p.name for p in adapter_dir.iterdir()}
    if not held <= names or not on_disk <= names:
        fail(f"evicted adapters are still loaded or on disk: {sorted(held - names)}, {sorted(on_disk - names)}")
    cached = {(a["family"], tuple(a["w"])) for a in stats["adapters"]}
    family, w = next(k for k in first_answers if k not in cached)
    again = ask(client, family, PROMPTS[0], list(w))
    after = get(f"{gateway}/paretoapp/stats")
    if after["adapters_made"] != stats["adapters_made"] + 1:
        fail("asking again for an evicted adapter did not make it again")
    if again.choices[0].message.content != ask(client, family, PROMPTS[0], list(w)).choices[0].message.content:
        fail("the reloaded adapter answers differently")
    print(f"vllm_probe: LRU OK ({stats['evicted']} evicted, unloaded from vLLM, files removed; "
          f"{family} w={list(w)} made and loaded again)", flush=True)


def check_errors(client, policies) -> None:
    name = next(iter(policies))
    try:
        policies[name].manifest.check_w([0.5])
    except PreferenceError as exc:
        want_w = str(exc)
    cases = [(dict(model=name, extra_body={"w": [0.5]}), want_w),
             (dict(model="no-such-family"), "no family named 'no-such-family' is served here"),
             (dict(model=name, messages=[{"role": "user", "content": "word " * 3000}]), "tokens but at most")]
    for kw, message in cases:
        args = dict(model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        args.update(kw)
        try:
            client.chat.completions.create(**args)
        except openai.BadRequestError as exc:
            if exc.status_code != 400 or message not in exc.body["message"]:
                fail(f"expected 400 with {message!r}, got {exc.status_code}: {exc.body['message']!r}")
            print(f"vllm_probe: 400 {exc.body['message']}", flush=True)
            continue
        fail(f"no error for {kw}")


def check_affinity(client, gateway) -> tuple[str, list[float]]:
    replicas = get(f"{gateway}/paretoapp/stats")["replicas"]
    sets = [set(r["adapters"]) for r in replicas]
    if sets[0] & sets[1] or not sets[0] or not sets[1]:
        fail(f"adapters are not spread one replica each: {[sorted(s) for s in sets]}")
    name = sorted(sets[1])[0]
    adapter = next(a for a in get(f"{gateway}/paretoapp/stats")["adapters"] if a["name"] == name)
    family, w = adapter["family"], adapter["w"]
    before = [r["answered"] for r in replicas]
    for _ in range(3):
        ask(client, family, PROMPTS[1], w)
    after = [r["answered"] for r in get(f"{gateway}/paretoapp/stats")["replicas"]]
    if after[1] - before[1] != 3 or after[0] != before[0]:
        fail(f"three requests for {name} (held by replica 2) were answered {after[0] - before[0]} / "
             f"{after[1] - before[1]} times by replica 1 / 2")
    print(f"vllm_probe: affinity OK (replica adapters {len(sets[0])} + {len(sets[1])}, disjoint; three requests "
          f"for {name} all went to its replica)", flush=True)
    return family, w


def check_dead_replica(client, gateway, pid: int, family, w, log_path: Path) -> None:
    os.killpg(pid, signal.SIGKILL)  # the replica holding (family, w) dies
    time.sleep(2)
    r = ask(client, family, PROMPTS[1], w)
    stats = get(f"{gateway}/paretoapp/stats")["replicas"]
    if stats[1]["alive"] or not r.choices[0].message.content:
        fail("the dead replica is still listed alive, or its request got no answer")
    lines = [ln for ln in log_path.read_text().splitlines() if "is down" in ln or "is not answering" in ln]
    if not lines:
        fail("no log line says the replica is down")
    print(f"vllm_probe: dead replica skipped, request answered by the other; the log says: {lines[-1]}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("families", nargs=2)
    p.add_argument("--gateway", required=True)
    p.add_argument("--replica", action="append", required=True)
    p.add_argument("--replica-pid", type=int, required=True, help="process group of the second replica (killed last)")
    p.add_argument("--adapter-dir", type=Path, required=True)
    p.add_argument("--gateway-log", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    policies = {}
    for folder in args.families:
        policy = load_policy(folder)
        policies[policy.manifest.name] = policy
    client = openai.OpenAI(base_url=f"{args.gateway}/v1", api_key="none", max_retries=0, timeout=600)
    if sorted(m.id for m in client.models.list()) != sorted(policies):
        fail("GET /v1/models does not list the families")
    first = check_answers(client, policies)
    check_stream(client, next(iter(policies)))
    check_eviction(client, args.gateway, args.replica, args.adapter_dir, first)
    check_errors(client, policies)
    family, w = check_affinity(client, args.gateway)
    check_dead_replica(client, args.gateway, args.replica_pid, family, w, args.gateway_log)
    print("vllm_probe: passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
