"""The shared losses by hand on a model with fixed logits: sequence log-probs, SFT, DPO (with label
smoothing), KTO, and the reference context."""

import contextlib
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from paretoapp.trainers.losses import (
    REFERENCE_CACHE,
    cache_reference_logps,
    dpo_batch_loss,
    dpo_loss,
    kto_loss,
    policy_and_reference_logps,
    sequence_logprobs,
    sft_loss,
)

VOCAB = 5


class FixedLM(torch.nn.Module):
    """logits[b, t] = table[input_ids[b, t]] (+ 1 on the next token id in reference mode): log-probs by hand."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Parameter(torch.arange(VOCAB * VOCAB, dtype=torch.float32).reshape(VOCAB, VOCAB) / 7)
        self.reference_mode = False
        self.calls = []

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        self.calls.append((self.reference_mode, torch.is_grad_enabled()))
        logits = self.table[input_ids]
        if self.reference_mode:
            logits = logits + F.one_hot((input_ids + 1) % VOCAB, VOCAB)
        return SimpleNamespace(logits=logits)


@contextlib.contextmanager
def reference_mode(model):
    model.reference_mode = True
    try:
        yield
    finally:
        model.reference_mode = False


def logp(model, prev: int, nxt: int, reference: bool = False) -> float:
    row = model.table[prev].detach() + (F.one_hot(torch.tensor((prev + 1) % VOCAB), VOCAB) if reference else 0)
    return float(row.log_softmax(-1)[nxt])


# rows: [chosen_1, chosen_2, rejected_1, rejected_2]; prompt tokens 0, response tokens 1, padding 0
BATCH = {
    "input_ids": torch.tensor([[1, 2, 3, 0], [4, 1, 0, 0], [1, 2, 4, 4], [4, 3, 0, 0]]),
    "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]]),
    "completion_mask": torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0]]),
}


def by_hand(model, reference=False):
    """Summed log-probs of each row's response tokens, and their counts."""
    sums, counts = [], []
    for ids, mask in zip(BATCH["input_ids"].tolist(), BATCH["completion_mask"].tolist()):
        terms = [logp(model, ids[t - 1], ids[t], reference) for t in range(1, len(ids)) if mask[t]]
        sums.append(sum(terms))
        counts.append(len(terms))
    return sums, counts


def test_sequence_logprobs_and_sft_by_hand():
    model = FixedLM()
    sums, counts = by_hand(model)
    assert counts == [2, 1, 2, 1]
    assert sequence_logprobs(model, BATCH).tolist() == pytest.approx(sums, rel=1e-6)
    assert sequence_logprobs(model, BATCH, average=True).tolist() == pytest.approx(
        [s / n for s, n in zip(sums, counts)], rel=1e-6)
    empty = {k: v[:1].clone() for k, v in BATCH.items()}
    empty["completion_mask"].zero_()
    assert sequence_logprobs(model, empty, average=True).tolist() == [0.0]  # no response tokens: 0, not NaN
    # SFT: the mean negative log-likelihood over every response token of the batch
    assert sft_loss(model, BATCH).item() == pytest.approx(-sum(sums) / sum(counts), rel=1e-6)


def test_reference_forward_runs_in_its_context_without_gradient():
    model = FixedLM()
    pc, pr, rc, rr = policy_and_reference_logps(model, BATCH, reference_context=reference_mode)
    sums, _ = by_hand(model)
    ref_sums, _ = by_hand(model, reference=True)
    assert [pc.tolist(), pr.tolist()] == [pytest.approx(sums[:2], rel=1e-6), pytest.approx(sums[2:], rel=1e-6)]
    assert [rc.tolist(), rr.tolist()] == [pytest.approx(ref_sums[:2], rel=1e-6),
                                          pytest.approx(ref_sums[2:], rel=1e-6)]
    assert model.calls == [(False, True), (True, False)]
    assert pc.requires_grad and not rc.requires_grad
    result = dpo_batch_loss(model, BATCH, beta=0.5, label_smoothing=0.1, reference_context=reference_mode)
    want = dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.1)
    assert result.loss.item() == pytest.approx(want.loss.item(), rel=1e-6)


class EmbeddedLM(FixedLM):
    """FixedLM with input embeddings (the reference cache names a model by them)."""

    def get_input_embeddings(self):
        return SimpleNamespace(weight=self.table)


@contextlib.contextmanager
def another_reference(model):
    with reference_mode(model):
        yield


@pytest.fixture
def reference_cache():
    cache_reference_logps(True)
    try:
        yield REFERENCE_CACHE
    finally:
        cache_reference_logps(False)


def test_cached_reference_logps_are_the_reference_and_skip_its_forward(reference_cache):
    model = EmbeddedLM()
    ref_sums, _ = by_hand(model, reference=True)
    first = policy_and_reference_logps(model, BATCH, reference_context=reference_mode)
    assert model.calls == [(False, True), (True, False)] and reference_cache.misses == 4
    model.calls.clear()
    again = policy_and_reference_logps(model, BATCH, reference_context=reference_mode)
    assert model.calls == [(False, True)], "a cached reference needs no forward"
    assert reference_cache.hits == 4
    for got in (first, again):
        assert torch.cat(got[2:]).tolist() == pytest.approx(ref_sums, rel=1e-6)
    # the same sequences in another batch (other rows, more padding) are found; a new one is computed alone
    other = {"input_ids": torch.tensor([[4, 3, 0, 0, 0], [2, 2, 1, 0, 0]]),
             "attention_mask": torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]),
             "completion_mask": torch.tensor([[0, 1, 0, 0, 0], [0, 1, 1, 0, 0]])}
    model.calls.clear()
    _, _, rc, rr = policy_and_reference_logps(model, other, reference_context=reference_mode)
    assert rc.item() == pytest.approx(ref_sums[3], rel=1e-6)
    assert rr.item() == pytest.approx(logp(model, 2, 2, True) + logp(model, 2, 1, True), rel=1e-6)
    assert reference_cache.hits == 5 and reference_cache.misses == 5
    # the same tokens split differently between prompt and answer are another sequence's log-prob
    split = {"input_ids": torch.tensor([[1, 2, 3], [1, 2, 3]]), "attention_mask": torch.ones(2, 3, dtype=torch.long),
             "completion_mask": torch.tensor([[0, 0, 1], [0, 0, 1]])}
    _, _, rc, _ = policy_and_reference_logps(model, split, reference_context=reference_mode)
    assert rc.item() == pytest.approx(logp(model, 2, 3, True), rel=1e-6)
    assert reference_cache.misses == 7
    # another reference, or another model's weights: never served from these entries
    model.calls.clear()
    policy_and_reference_logps(model, BATCH, reference_context=another_reference)
    changed = EmbeddedLM()
    with torch.no_grad():
        changed.table.add_(1.0)
    policy_and_reference_logps(changed, BATCH, reference_context=reference_mode)
    assert reference_cache.misses == 15 and (True, False) in model.calls and (True, False) in changed.calls
    cache_reference_logps(False)
    assert not reference_cache.values


def test_the_reference_cache_is_off_by_default():
    model = EmbeddedLM()
    policy_and_reference_logps(model, BATCH, reference_context=reference_mode)
    policy_and_reference_logps(model, BATCH, reference_context=reference_mode)
    assert model.calls.count((True, False)) == 2 and not REFERENCE_CACHE.values


def test_dpo_loss_with_label_smoothing_and_metrics_by_hand():
    pc, pr = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
    rc, rr = torch.tensor([-2.0, -2.0]), torch.tensor([-2.5, -1.5])
    beta, eps = 0.5, 0.2
    out = dpo_loss(pc, pr, rc, rr, beta, label_smoothing=eps)
    chosen = [0.5 * 1.0, 0.5 * 0.0]           # beta (log pi - log ref) on y_w
    rejected = [0.5 * -0.5, 0.5 * 0.5]
    h = [c - r for c, r in zip(chosen, rejected)]  # 0.75, -0.25

    def logsig(x):
        return -math.log1p(math.exp(-x))

    want = [-(1 - eps) * logsig(x) - eps * logsig(-x) for x in h]
    assert out.losses.tolist() == pytest.approx(want, rel=1e-6)
    assert out.loss.item() == pytest.approx(sum(want) / 2, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx(chosen) and out.rejected_rewards.tolist() == pytest.approx(rejected)
    assert out.kl is None
    assert out.metrics() == pytest.approx({"loss": sum(want) / 2, "reward_margin": 0.25, "reward_accuracy": 0.5,
                                           "chosen_reward": 0.25, "rejected_reward": 0.0})
    # a tie is not a correct ranking; beta defaults to 0.1
    tie = dpo_loss(torch.tensor([-1.0]), torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-2.0]))
    assert tie.metrics()["reward_accuracy"] == 0.0 and tie.chosen_rewards.tolist() == pytest.approx([0.1])
    model = FixedLM()
    default = dpo_batch_loss(model, BATCH, reference_context=reference_mode)
    assert default.loss.item() == pytest.approx(
        dpo_loss(*policy_and_reference_logps(model, BATCH, reference_mode), beta=0.1).loss.item(), rel=1e-6)


def test_kto_loss_by_hand():
    pc, pr = torch.tensor([-1.0, -2.0], requires_grad=True), torch.tensor([-3.0], requires_grad=True)
    rc, rr = torch.tensor([-3.0, -1.0]), torch.tensor([-2.5])
    kl_policy = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    kl_ref = torch.tensor([-1.5, -2.5, -1.0])   # z = mean(0.5, 0.5, 0.5) = 0.5
    beta = 0.5
    out = kto_loss(pc, pr, rc, rr, kl_policy, kl_ref, beta=beta, desirable_weight=2.0, undesirable_weight=0.5)

    def sig(x):
        return 1 / (1 + math.exp(-x))

    # chosen log-ratios 2, -1; rejected -0.5
    want = [2.0 * (1 - sig(beta * (2 - 0.5))), 2.0 * (1 - sig(beta * (-1 - 0.5))), 0.5 * (1 - sig(beta * (0.5 + 0.5)))]
    assert out.kl.item() == pytest.approx(0.5)
    assert out.losses.tolist() == pytest.approx(want, rel=1e-6)
    assert out.loss.item() == pytest.approx(sum(want) / 3, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([1.0, -0.5]) and out.rejected_rewards.tolist() == [-0.25]
    assert out.metrics()["kl"] == pytest.approx(0.5)
    out.loss.backward()
    assert kl_policy.grad is None and pc.grad is not None and pr.grad is not None  # z is a constant
    # a negative KL estimate is clamped to 0; default weights are 1
    out = kto_loss(pc, pr, rc, rr, kl_ref, kl_policy, beta=beta)
    assert out.kl.item() == 0.0
    want = [1 - sig(beta * 2), 1 - sig(beta * -1), 1 - sig(beta * 0.5)]
    assert out.losses.tolist() == pytest.approx(want, rel=1e-6)
    # beta defaults to 0.1, as in DPO
    out = kto_loss(pc, pr, rc, rr, kl_ref, kl_policy)
    assert out.losses.tolist() == pytest.approx([1 - sig(0.2), 1 - sig(-0.1), 1 - sig(0.05)], rel=1e-6)


def test_the_reference_cache_keys_name_the_model_and_the_reference():
    """A fresh cache is off and empty; a model is keyed through a DDP-style ``.module`` wrapper as itself, by its
    path as well as its embeddings; a reference context's own ``cache_key`` names it; switching the process's
    cache on takes no argument."""
    from paretoapp.trainers.losses import ReferenceCache

    fresh = ReferenceCache()
    assert (fresh.enabled, fresh.values, fresh.hits, fresh.misses) == (False, {}, 0, 0)
    model, other_path = EmbeddedLM(), EmbeddedLM()
    model.config, other_path.config = SimpleNamespace(_name_or_path="a"), SimpleNamespace(_name_or_path="b")
    wrapped = SimpleNamespace(module=model)
    assert fresh.model_key(wrapped) == fresh.model_key(model)
    assert fresh.model_key(other_path) != fresh.model_key(model)  # the same weights under another path

    def context_named(name):
        ctx = contextlib.contextmanager(lambda m: (yield))
        ctx.cache_key = name
        return ctx

    assert fresh.row_keys(model, BATCH, context_named("x")) != fresh.row_keys(model, BATCH, context_named("y"))
    assert fresh.row_keys(model, BATCH, context_named("x")) == fresh.row_keys(model, BATCH, context_named("x"))
    try:
        cache_reference_logps()
        assert REFERENCE_CACHE.enabled
    finally:
        cache_reference_logps(False)
