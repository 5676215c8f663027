"""Consistency (paper Eq. 1): PSNR and C(q) by hand, N copies of one model, shared noise, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from dstab import checkpoints
from dstab.analysis import consistency as cons
from dstab.diffusion import NoiseSource
from dstab.errors import DstabError
from dstab.plots import consistency as consistency_plots
from dstab.sampling import generate

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """Per-model samples go through the results cache: keep it out of the repository."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_psnr_by_hand():
    a = torch.zeros(2, 1, 4, 4)
    b = torch.cat([torch.full((1, 1, 4, 4), 0.1), torch.zeros(1, 1, 4, 4)])
    got = cons.psnr(a, b)
    assert got[0].item() == pytest.approx(10 * math.log10(4 / 0.01))  # 26.0206 dB, peak 2 for [-1, 1]
    assert got[1].item() == cons.PSNR_CAP_DB  # identical images: capped, not inf
    assert cons.psnr(a, b, peak=1.0)[0].item() == pytest.approx(20.0)


def test_consistency_score_2x2_by_hand():
    # N = 2 models, M = 2 images; model 2 is off by 0.1 on image 1 and by 0.2 on image 2
    q1 = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5)])
    q2 = q1 + torch.tensor([0.1, 0.2]).view(2, 1, 1, 1)
    matrix = cons.psnr_matrix(torch.stack([q1, q2]))
    expected = (10 * math.log10(4 / 0.01) + 10 * math.log10(4 / 0.04)) / 2  # (26.0206 + 20.0) / 2
    assert cons.consistency_score(matrix) == pytest.approx(expected)
    assert cons.consistency_score(matrix) == pytest.approx(23.0103, abs=1e-4)
    assert matrix[0, 0].tolist() == [cons.PSNR_CAP_DB] * 2


def test_reference_is_the_first_model():
    # three models; PSNR between models 2 and 3 must not enter C(q)
    base = torch.zeros(1, 1, 2, 2)
    q = torch.stack([base, base + 0.1, base - 0.1])  # (N=3, M=1, 1, 2, 2)
    matrix = cons.psnr_matrix(q)
    assert cons.consistency_score(matrix) == pytest.approx(10 * math.log10(4 / 0.01))
    assert matrix[1, 2, 0].item() == pytest.approx(10 * math.log10(4 / 0.04))


@pytest.mark.parametrize("sampler,steps", [("ddim", 5), ("ddpm", None)])
def test_copies_of_one_model_are_capped(ckpts, sampler, steps):
    bundles = [checkpoints.load(ckpts["toy_dm"]) for _ in range(3)]
    res = cons.consistency(bundles, num=8, seed=3, sampler=sampler, steps=steps)
    assert res.score == cons.PSNR_CAP_DB
    assert res.samples.shape == (3, 8, 2)
    s = res.summary()
    assert s["psnr_vs_first_db"] == [100.0, 100.0] and s["cap_db"] == 100.0


def test_dm_group_shares_noise_and_differs(ckpts, user_cache):
    a, b = checkpoints.load(ckpts["toy_dm"]), checkpoints.load(ckpts["toy_dm_b"])
    res = cons.consistency([a, b], num=6, seed=1, sampler="ddim", steps=4, eta=1.0)
    # every model's row is exactly what it draws alone with the same seed: x_T and per-step noise are shared
    torch.testing.assert_close(res.samples[1], cons.draw(b, 6, 1, "ddim", 4, 1.0, "cpu"), rtol=0, atol=0)
    # points are not clipped to [-1, 1] (images are): toy data spans about +-2.4
    noise = NoiseSource(1, (6, 2))
    unclipped = b.diffusion.sample(b.model.eval(), noise, "ddim", 4, 1.0, clip=False)
    torch.testing.assert_close(res.samples[1], unclipped, rtol=0, atol=0)
    torch.testing.assert_close(unclipped, generate(b, 6, 1, "ddim", 4, 1.0), rtol=0, atol=0)
    assert math.isfinite(res.score) and res.score < cons.PSNR_CAP_DB  # random weights: far apart, even < 0 dB
    # the toy peak is the training set's coordinate range, not 2
    assert res.peak > 2.0
    again = cons.consistency([a, b], num=6, seed=1, sampler="ddim", steps=4, eta=1.0)
    assert again.score == res.score
    # each model was sampled once and stored: the second run read its samples back
    assert len(list((user_cache / "samples").glob("*.npz"))) == 2


def test_gan_group_shares_latents(ckpts):
    g1, g2 = checkpoints.load(ckpts["digits_gan"]), checkpoints.load(ckpts["digits_gan_b"])
    res = cons.consistency([g1, g2], num=4, seed=0)
    assert res.samples.shape == (2, 4, 1, 8, 8) and res.peak == 2.0
    assert res.settings["sampler"] == "gan"
    torch.testing.assert_close(res.samples[0], generate(g1, 4, 0), rtol=0, atol=0)
    img = consistency_plots.grid(res.samples.numpy(), scale=1, columns=3)
    assert img.size == (3 * 9 + 1, 2 * 9 + 1)  # N rows x 3 columns of 8x8 with 1-pixel padding
    meta, arrays = res.to_record()
    back = cons.ConsistencyResult.from_record(meta, arrays)
    assert back.score == res.score and back.names == res.names


def test_bad_groups(ckpts):
    dm, gan, digits = (checkpoints.load(ckpts[k]) for k in ("toy_dm", "digits_gan", "digits_dm"))
    with pytest.raises(DstabError, match="at least 2 models"):
        cons.consistency([dm])
    with pytest.raises(DstabError, match="all DMs or all GANs"):
        cons.consistency([dm, gan])
    with pytest.raises(DstabError, match="different shapes"):
        cons.consistency([dm, digits])
    with pytest.raises(DstabError, match="samples per model"):
        cons.consistency([dm, dm], num=0)
    with pytest.raises(DstabError, match="at least 2 models"):
        cons.consistency_score(torch.zeros(1, 1, 3))
