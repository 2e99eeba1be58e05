"""The engine: many requests, w and families in one batch give exactly their solo answers; joining, cancel, errors."""

import threading

import pytest
import torch
from helpers import make_family, peft_with_adapters, save_tiny_base, tiny_model

from paretoapp.engine import EngineBusy, EngineConfig, RequestError, set_engine
from paretoapp.gates import PreferenceError
from paretoapp.generate import GenerationSettings, Policy, PromptTooLongError, load_policy

PROMPTS = ["Tell me about cats.", "How do I bake bread?", "Write a poem about the sea, please.", "Hi",
           "Why is the sky blue?", "List three fruits.", "What is a prime number?", "Say something kind."]


@pytest.fixture(scope="module")
def two(tmp_path_factory, tokenizer_dir):
    """Two families (k=2 and k=3, different ranks) on one base model, loaded as the app loads them."""
    root = tmp_path_factory.mktemp("engine")
    base = save_tiny_base(root / "base", "llama", tokenizer_dir, seed=5)
    policies = []
    for name, k, seed in [("fam-a", 2, 11), ("fam-b", 3, 12)]:
        model, _ = tiny_model("llama", tokenizer_dir, 5)
        peft_model, names = peft_with_adapters(model, "llama", k=k, seed=seed)
        family = make_family(model, peft_model, names, name=name, base=str(base), w_low=[-2.0] * k,
                             w_high=[3.0] * k)
        policies.append(load_policy(family.save(root / name)))
    assert policies[0].model is policies[1].model, "both families must share one base model"
    return policies


def sixteen(two):
    """16 requests: two families, 16 different w, different lengths, four sampled with seeds."""
    pa, pb = two
    out = []
    for i in range(16):
        policy = pa if i % 2 == 0 else pb
        w = [1.0 - i / 15, i / 15] if policy is pa else [i / 15, 0.5 - i / 30, 0.5 - i / 30]
        settings = GenerationSettings(max_new_tokens=4 + i % 5 * 3, do_sample=i % 4 == 3, temperature=0.9, seed=i)
        out.append((policy, PROMPTS[i % len(PROMPTS)], w, settings))
    return out


def run_together(requests) -> list:
    """Every request from its own thread, all released at once."""
    barrier = threading.Barrier(len(requests))
    results, errors = [None] * len(requests), []

    def one(i, policy, prompt, w, settings):
        try:
            barrier.wait()
            results[i] = policy.generate([prompt], [w], settings)[0]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, *r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def batch_sizes(model) -> tuple[list, object]:
    sizes = []
    handle = model.register_forward_pre_hook(lambda m, a, kw: sizes.append(tuple(kw["input_ids"].shape)),
                                              with_kwargs=True)
    return sizes, handle


@pytest.mark.parametrize("decoder", ["dynamic", "static"])
def test_sixteen_requests_two_families_equal_their_solo_answers(two, decoder):
    requests = sixteen(two)
    model = two[0].model
    solo = [p.generate([prompt], [w], s)[0] for p, prompt, w, s in requests]
    assert len(set(solo)) > 8, "the requests should differ"
    # an independent reference for some greedy rows: plain transformers generate on the merged model
    for p, prompt, w, s in requests[:3]:
        assert p.generate([prompt], [w], s, model=p.bank.merged_model(w)) == [solo[requests.index((p, prompt, w, s))]]
    if decoder == "static":  # slots and columns small enough that rows wait, move and get compacted
        set_engine(model, EngineConfig(decoder="static", max_batch=6, cache_len=80))
    sizes, handle = batch_sizes(model)
    try:
        together = run_together(requests)
    finally:
        handle.remove()
        set_engine(model, EngineConfig())
    assert together == solo
    assert max(b for b, _ in sizes) >= 6, f"requests were not batched: {sizes[:20]}"


def test_a_request_joins_mid_flight(two):
    pa, pb = two
    engine = pa.engine
    first = pa.rows(["Tell me a long story."], [[1.0, 0.0]], GenerationSettings(max_new_tokens=30))
    first[0].eos = frozenset()  # runs its 30 tokens
    second = pb.rows(["Hi"], [[0.2, 0.3, 0.5]], GenerationSettings(max_new_tokens=6))
    solo = [engine.submit(first).result(), engine.submit(second).result()]
    jobs = {}

    def hook(module, args, kwargs):  # runs in the engine's thread: submit the second while the first decodes
        job = jobs.get("first")
        if job is not None and "second" not in jobs and len(job.tokens[0]) >= 3:
            jobs["second"] = engine.submit(second)

    sizes, h1 = batch_sizes(pa.model)
    h2 = pa.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        jobs["first"] = engine.submit(first)
        assert jobs["first"].result() == solo[0]
        assert jobs["second"].result() == solo[1]
    finally:
        h1.remove()
        h2.remove()
    assert (2, 1) in sizes, "the second request should decode in the same batch as the first"
    assert len(jobs["second"].tokens[0]) > 0


@pytest.fixture
def fresh(tokenizer_dir):
    """A policy on its own model, with an engine configured by the test."""
    def make(**config):
        model, tok = tiny_model("llama", tokenizer_dir, seed=7)
        peft_model, names = peft_with_adapters(model, "llama")
        plain, _ = tiny_model("llama", tokenizer_dir, seed=7)
        policy = Policy(make_family(model, peft_model, names), plain, tok)
        set_engine(plain, EngineConfig(**config))
        return policy
    return make


def long_rows(policy, n_tokens=100, prompt="Tell me a story."):
    rows = policy.rows([prompt], [[0.5, 0.5]], GenerationSettings(max_new_tokens=n_tokens))
    rows[0].eos = frozenset()
    return rows


def test_cancel_frees_the_slot(fresh):
    policy = fresh(max_batch=1)
    engine = policy.engine
    a = engine.submit(long_rows(policy, 150))
    b = engine.submit(long_rows(policy, 5, "Hi"))
    next(a.updates())  # a is decoding; b waits for the only slot
    a.cancel()
    assert len(b.result(timeout=60)[0]) == 5
    assert a.done and 0 < len(a.result()[0]) < 150


def test_stopping_a_stream_cancels_its_rows(fresh):
    policy = fresh(max_batch=1)
    stream = policy.stream(["Tell me a story."], [[0.5, 0.5]], GenerationSettings(max_new_tokens=200))
    next(stream)
    stream.close()  # the reader went away (e.g. the browser closed): the row leaves
    follow = policy.engine.submit(long_rows(policy, 3, "Hi"))
    assert len(follow.result(timeout=60)[0]) == 3


def test_a_stream_read_to_its_end_leaves_the_callers_cancel_unset(fresh):
    """The chat labels an answer "stopped" when its cancel event is set: only the user may set it."""
    policy = fresh()
    cancel = threading.Event()
    for _ in policy.stream(["Hi"], [[0.5, 0.5]], GenerationSettings(max_new_tokens=3), cancel=cancel):
        pass
    assert not cancel.is_set()


def test_a_bad_request_fails_alone(two):
    pa, pb = two
    good = sixteen(two)[:4]
    solo = [p.generate([prompt], [w], s)[0] for p, prompt, w, s in good]
    errors = {}

    def bad(kind):
        try:
            if kind == "long":
                pa.generate(["word " * 400], [[0.5, 0.5]], GenerationSettings(max_new_tokens=8))
            else:
                pb.generate(["Hi"], [[float("nan"), 0.0, 1.0]], GenerationSettings(max_new_tokens=8))
        except Exception as exc:
            errors[kind] = exc

    threads = [threading.Thread(target=bad, args=(k,)) for k in ("long", "w")]
    for t in threads:
        t.start()
    assert run_together(good) == solo
    for t in threads:
        t.join()
    assert isinstance(errors["long"], PromptTooLongError) and isinstance(errors["w"], PreferenceError)


def test_a_request_that_breaks_its_prefill_fails_alone(fresh):
    """Two requests admitted in the same step; one makes the forward raise: only that one fails."""
    policy = fresh()
    engine = policy.engine
    good, bad = long_rows(policy, 6, "Hi"), long_rows(policy, 6, "Bye")
    bad[0].ids = [bad[0].ids[0], 4242] + bad[0].ids[1:]
    solo = engine.submit(good).result()

    def poison(module, args, kwargs):
        if (kwargs["input_ids"] == 4242).any():
            raise RuntimeError("poisoned row")

    handle = policy.model.register_forward_pre_hook(poison, with_kwargs=True)
    try:
        with engine._cv:  # both wait until the driver runs: admitted in one step
            jobs = [engine.submit(bad), engine.submit(good)]
        with pytest.raises(RuntimeError, match="poisoned"):
            jobs[0].result(timeout=60)
        assert jobs[1].result(timeout=60) == solo
    finally:
        handle.remove()
    with pytest.raises(RequestError, match="token ids"):
        engine.submit([type(good[0])(ids=[10**9], max_new_tokens=2)])


def test_the_queue_limit_answers_busy(fresh):
    policy = fresh(max_batch=1, max_waiting=2)
    engine = policy.engine
    entered, gate = threading.Event(), threading.Event()

    def hold(module, args, kwargs):
        entered.set()
        assert gate.wait(60)

    handle = policy.model.register_forward_pre_hook(hold, with_kwargs=True)
    try:
        running = engine.submit(long_rows(policy, 3))
        assert entered.wait(60)  # the driver holds the only slot
        queued = [engine.submit(long_rows(policy, 3), block=False) for _ in range(2)]
        with pytest.raises(EngineBusy, match="busy.*try again"):
            engine.submit(long_rows(policy, 3), block=False)
    finally:
        gate.set()
        handle.remove()
    assert all(len(j.result(timeout=60)[0]) == 3 for j in [running, *queued])


def test_per_row_settings_in_one_batch(two):
    """Each row keeps its own max tokens, stop string and seeded sampling next to other rows."""
    pa, _ = two
    plain = GenerationSettings(max_new_tokens=12)
    text = pa.generate([PROMPTS[0]], [[1.0, 0.0]], plain)[0]
    words = text.split()
    assert len(words) > 2
    stop = GenerationSettings(max_new_tokens=12, stop=[words[1]])
    sampled = GenerationSettings(max_new_tokens=10, do_sample=True, temperature=1.0, seed=3)
    short = GenerationSettings(max_new_tokens=2)
    alone = pa.generate([PROMPTS[1]], [[0.3, 0.7]], sampled)[0]
    results = run_together([(pa, PROMPTS[0], [1.0, 0.0], stop), (pa, PROMPTS[1], [0.3, 0.7], sampled),
                            (pa, PROMPTS[0], [1.0, 0.0], short), (pa, PROMPTS[0], [1.0, 0.0], plain)])
    assert results[0] == text[: text.index(words[1])].strip()
    assert results[1] == alone  # its own generator: the batch-mates do not change its draws
    assert len(pa.tokenizer(results[2], add_special_tokens=False)["input_ids"]) <= 2
    assert results[3] == text


def test_detached_family_rows_are_refused_and_others_unchanged(fresh, tokenizer_dir):
    from paretoapp.bank import PreferenceBank

    policy = fresh()
    before = policy.generate(PROMPTS[:2], [[0.2, 0.8]], GenerationSettings(max_new_tokens=6))
    model, _ = tiny_model("llama", tokenizer_dir, seed=7)
    peft_model, names = peft_with_adapters(model, "llama", k=3, seed=9)
    other = PreferenceBank(policy.model, make_family(model, peft_model, names, name="other"))
    assert policy.generate(PROMPTS[:2], [[0.2, 0.8]], GenerationSettings(max_new_tokens=6)) == before
    rows = policy.rows(PROMPTS[:1], [[0.2, 0.8]], GenerationSettings(max_new_tokens=6))
    rows[0].gains = (other.bank_id, torch.ones(other.manifest.total_rank, dtype=torch.float64))
    other.detach()
    with pytest.raises(RequestError, match="not attached"):
        policy.engine.submit(rows)
    assert policy.generate(PROMPTS[:2], [[0.2, 0.8]], GenerationSettings(max_new_tokens=6)) == before


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])
@pytest.mark.parametrize("decoder", ["dynamic", "static"])
def test_other_architectures_batch_exactly(arch, decoder, tokenizer_dir):
    """Absolute positions (GPT-2, Conv1D layers) and GPT-NeoX's fused qkv through both decoders."""
    model, tok = tiny_model(arch, tokenizer_dir, seed=3)
    peft_model, names = peft_with_adapters(model, arch)
    plain, _ = tiny_model(arch, tokenizer_dir, seed=3)
    policy = Policy(make_family(model, peft_model, names), plain, tok)
    set_engine(plain, EngineConfig(decoder=decoder, max_batch=3, cache_len=96))
    settings = GenerationSettings(max_new_tokens=6)
    ws = [[1.0, 0.0], [0.0, 1.0], [-0.5, 1.5], [0.5, 0.5], [2.0, -1.0]]
    solo = [policy.generate([p], [w], settings)[0] for p, w in zip(PROMPTS, ws)]
    assert run_together([(policy, p, w, settings) for p, w in zip(PROMPTS, ws)]) == solo
    assert policy.generate(PROMPTS[2:3], ws[2:3], settings, model=policy.bank.merged_model(ws[2])) == solo[2:3]


@pytest.mark.parametrize("decoder", ["dynamic", "static"])
def test_an_engine_does_not_keep_its_model_alive(fresh, decoder):
    import gc
    import weakref

    policy = fresh(decoder=decoder, cache_len=96, idle_exit_s=0.05)
    policy.generate(PROMPTS[:2], [[0.5, 0.5]], GenerationSettings(max_new_tokens=3))
    ref = weakref.ref(policy.model)
    engine = policy.engine
    del policy
    for _ in range(600):  # the driver thread ends after its idle spell (wait for both states, not the first)
        gc.collect()
        if ref() is None and engine._driver is None:
            break
        threading.Event().wait(0.05)
    assert engine._driver is None
    assert ref() is None, [type(r) for r in gc.get_referrers(ref())]


def test_repetition_penalty_is_transformers_and_stays_in_its_row(two):
    """A row's repetition penalty gives what transformers' generate gives with it (on the merged model, the
    prompt's tokens counted as seen), changes that row's answer, and leaves its batch-mates as they were alone."""
    pa, _ = two
    w = [0.6, 0.4]
    plain = GenerationSettings(max_new_tokens=24)
    penalised = GenerationSettings(max_new_tokens=24, repetition_penalty=1.8)
    sampled = GenerationSettings(max_new_tokens=16, do_sample=True, temperature=0.9, seed=7, repetition_penalty=1.3)
    alone = [pa.generate([PROMPTS[i]], [w], s)[0] for i, s in ((0, plain), (0, penalised), (4, sampled))]
    assert alone[1] != alone[0]
    merged = pa.bank.merged_model(w)
    assert pa.generate([PROMPTS[0]], [w], penalised, model=merged) == [alone[1]]
    assert run_together([(pa, PROMPTS[0], w, plain), (pa, PROMPTS[0], w, penalised),
                         (pa, PROMPTS[4], w, sampled)]) == alone
    with pytest.raises(ValueError, match=r"repetition_penalty must be in \(0, 2\]"):
        GenerationSettings(repetition_penalty=0)
    assert "repetition_penalty" not in plain.to_dict() and penalised.to_dict()["repetition_penalty"] == 1.8


def test_presence_and_frequency_penalties_are_openais_on_the_answer_only():
    """logit - frequency * count - presence * (count > 0), the count over the answer's tokens (never the prompt's),
    the same in the engine's sampler and in the logits processor plain generate() uses."""
    from paretoapp.sampling import AnswerRepeatPenalty, Sampler, next_tokens, penalise_answer_repeats

    logits = torch.zeros(2, 6)
    s = Sampler(presence_penalty=0.5, frequency_penalty=0.25, counts={})
    for tok in (3, 3, 1):
        s.see(tok)
    assert s.counts == {3: 2, 1: 1}
    out = penalise_answer_repeats(logits, [s, Sampler()])
    assert out[0].tolist() == [0, -0.75, 0, -1.0, 0, 0] and out[1].tolist() == [0] * 6
    assert logits.abs().sum() == 0  # the caller's logits are not touched
    prompt_then_answer = torch.tensor([[3, 3, 3, 5, 3, 3, 1], [0, 0, 3, 5, 2, 2, 2]])  # prompt of 4, answer of 3
    hf = AnswerRepeatPenalty(4, 0.5, 0.25)(prompt_then_answer, torch.zeros(2, 6))
    assert hf[0].tolist() == out[0].tolist() and hf[1].tolist() == [0, 0, -1.25, 0, 0, 0]
    assert torch.equal(AnswerRepeatPenalty(7, 0.5, 0.25)(prompt_then_answer, torch.ones(2, 6)), torch.ones(2, 6))
    assert next_tokens(torch.tensor([[0.0, 2.0, 1.9]]), [Sampler(presence_penalty=0.2, counts={1: 1})]) == [2]


def test_presence_and_frequency_penalties_reach_both_paths_and_stay_in_their_row(two):
    """A row's presence or frequency penalty changes its answer, gives what transformers' generate gives with the
    same rule, and leaves its batch-mates as they were alone."""
    pa, _ = two
    w = [0.6, 0.4]
    plain = GenerationSettings(max_new_tokens=24)
    present = GenerationSettings(max_new_tokens=24, presence_penalty=2.0)
    frequent = GenerationSettings(max_new_tokens=24, frequency_penalty=1.5)
    alone = [pa.generate([PROMPTS[i]], [w], s)[0] for i, s in ((0, plain), (0, present), (1, frequent))]
    assert alone[1] != alone[0] and alone[2] != pa.generate([PROMPTS[1]], [w], plain)[0]
    merged = pa.bank.merged_model(w)
    assert pa.generate([PROMPTS[0]], [w], present, model=merged) == [alone[1]]
    assert pa.generate([PROMPTS[1]], [w], frequent, model=merged) == [alone[2]]
    assert run_together([(pa, PROMPTS[0], w, plain), (pa, PROMPTS[0], w, present),
                         (pa, PROMPTS[1], w, frequent)]) == alone
    with pytest.raises(ValueError, match=r"presence_penalty must be in \[-2, 2\], got 2.5"):
        GenerationSettings(presence_penalty=2.5)
    with pytest.raises(ValueError, match=r"frequency_penalty must be in \[-2, 2\]"):
        GenerationSettings(frequency_penalty=-3)
    assert not {"presence_penalty", "frequency_penalty"} & set(plain.to_dict())
    assert present.to_dict()["presence_penalty"] == 2.0 and frequent.to_dict()["frequency_penalty"] == 1.5
