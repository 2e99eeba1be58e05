"""Shrinking a family's bank (paretoapp.shrink): the same function of w at full rank, the best rank-r
approximation of each block below it, and one-line errors that leave nothing behind."""

from __future__ import annotations

import pytest
import torch

from paretoapp.errors import FamilyError
from paretoapp.family import BaseModelRef, Block, Family, make_family
from paretoapp.gates import Gate
from paretoapp.shrink import main, shrink_family, truncate

MODULES = ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj")


def family(ranks=(4, 6), d_in=12, d_out=10, seed=0) -> Family:
    g = torch.Generator().manual_seed(seed)
    total = sum(ranks)
    tensors = {}
    for m in MODULES:
        tensors[f"{m}.lora_A"] = torch.randn(total, d_in, generator=g)
        tensors[f"{m}.lora_B"] = torch.randn(d_out, total, generator=g)
    return make_family("fam", "rewarded_soups", BaseModelRef("tiny"), ["helpful", "harmless"], tensors,
                       [Block("helpful", ranks[0]), Block("harmless", ranks[1])], Gate.identity(2),
                       description="A family.")


def delta(fam: Family, module: str, w) -> torch.Tensor:
    """The bank's update of one module at w: B diag(g(w)) A."""
    gains = fam.manifest.rank_gains([w])[0].double()
    a, b = fam.tensors[f"{module}.lora_A"].double(), fam.tensors[f"{module}.lora_B"].double()
    return (b * gains) @ a


def block_delta(fam: Family, module: str, index: int) -> torch.Tensor:
    start = sum(b.rank for b in fam.manifest.blocks[:index])
    r = fam.manifest.blocks[index].rank
    a, b = fam.tensors[f"{module}.lora_A"].double(), fam.tensors[f"{module}.lora_B"].double()
    return b[:, start:start + r] @ a[start:start + r]


def test_at_full_rank_the_family_is_the_same_function_of_w():
    fam = family()
    out, kept = shrink_family(fam, rank=6)
    assert [b.rank for b in out.manifest.blocks] == [4, 6] and kept == pytest.approx(1.0)
    for w in ([1.0, 0.0], [0.3, 0.7], [0.0, 1.0]):
        for m in MODULES:
            torch.testing.assert_close(delta(out, m, w), delta(fam, m, w), atol=1e-5, rtol=1e-5)


def test_below_it_each_block_is_its_best_rank_r_approximation():
    fam = family()
    out, kept = shrink_family(fam, rank=3)
    assert [b.rank for b in out.manifest.blocks] == [3, 3]
    assert out.tensors[f"{MODULES[0]}.lora_A"].shape == (6, 12)
    worst = 1.0
    for m in MODULES:
        for i in range(2):
            full = block_delta(fam, m, i)
            u, s, vh = torch.linalg.svd(full)
            best = (u[:, :3] * s[:3]) @ vh[:3]  # Eckart-Young: the closest rank-3 matrix
            torch.testing.assert_close(block_delta(out, m, i), best, atol=1e-5, rtol=1e-5)
            worst = min(worst, float((s[:3] ** 2).sum() / (s ** 2).sum()))
        # the gate is untouched: w still weighs the (shrunk) blocks as before
        w = [0.25, 0.75]
        torch.testing.assert_close(delta(out, m, w), 0.25 * block_delta(out, m, 0) + 0.75 * block_delta(out, m, 1))
    assert kept == pytest.approx(worst)


def test_the_dtype_and_the_description_say_what_was_done(tmp_path):
    out, _ = shrink_family(family(), rank=2, dtype="bfloat16")
    assert all(t.dtype == torch.bfloat16 for t in out.tensors.values())
    assert out.manifest.description == "A family. Each block shrunk to rank 2 by truncated SVD, stored as bfloat16."
    saved = Family.load(out.save(tmp_path / "small"))
    assert [b.rank for b in saved.manifest.blocks] == [2, 2]


def test_the_command_writes_the_shrunk_family_under_its_new_name(tmp_path, capsys):
    family().save(tmp_path / "big")
    main([str(tmp_path / "big"), str(tmp_path / "small"), "--rank", "2", "--name", "small-fam"])
    small = Family.load(tmp_path / "small")
    assert small.manifest.name == "small-fam" and [b.rank for b in small.manifest.blocks] == [2, 2]
    assert "the worst block keeps" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--rank", "0"], "--rank 0: a block needs at least rank 1"),
    (["--rank", "2", "--dtype", "int8"], "invalid choice"),
])
def test_a_bad_argument_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    family().save(tmp_path / "big")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "big"), str(tmp_path / "small"), *args])
    assert message in str(exc.value) + capsys.readouterr().err
    assert not (tmp_path / "small").exists()


def test_a_missing_family_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: .*no such family folder"):
        main([str(tmp_path / "nowhere"), str(tmp_path / "small"), "--rank", "2"])
    with pytest.raises(FamilyError, match="at least rank 1"):
        shrink_family(family(), rank=0)


def test_an_all_zero_block_keeps_all_of_its_nothing_and_a_small_one_is_still_cut():
    """An untrained LoRA block (B = 0, as PEFT initialises it) has no norm to keep: kept is 1, not a division by
    zero; a block of small numbers (squared norm under 1) is measured like any other."""
    fam = family(ranks=(4, 4))
    for m in MODULES:
        fam.tensors[f"{m}.lora_B"][:, :4] = 0.0            # the helpful block never trained
        fam.tensors[f"{m}.lora_B"][:, 4:] *= 1e-3           # the harmless block: tiny updates
    out, kept = shrink_family(fam, rank=2)
    assert 0.0 < kept < 1.0                                 # the tiny block lost its tail, the zero one nothing
    for m in MODULES:
        assert torch.count_nonzero(block_delta(out, m, 0)) == 0
        u, s, vh = torch.linalg.svd(block_delta(fam, m, 1))
        torch.testing.assert_close(block_delta(out, m, 1), (u[:, :2] * s[:2]) @ vh[:2], atol=1e-9, rtol=1e-5)
    zero = family(ranks=(4, 4))
    for m in MODULES:
        zero.tensors[f"{m}.lora_B"].zero_()
    assert shrink_family(zero, rank=2)[1] == 1.0
    b, a, kept = truncate(torch.zeros(5, 3), torch.zeros(3, 7), 2)
    assert kept == 1.0 and b.shape == (5, 2) and a.shape == (2, 7) and not (b @ a).any()


def test_rank_one_is_the_smallest_and_a_bad_dtype_is_named():
    out, _ = shrink_family(family(), rank=1)
    assert [b.rank for b in out.manifest.blocks] == [1, 1]
    with pytest.raises(FamilyError, match=r"^--dtype 'int8': choose one of float32, bfloat16, float16$"):
        shrink_family(family(), rank=2, dtype="int8")
