"""Hessian-vector products by micro-batch (`hvp.HessianOperator(micro_batch=k)`): the same products
as the whole batch's graph where the loss is a mean over samples, refused where it is not, and chosen
automatically where the memory plan bounds the Krylov vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dstab import zoo, zooresults
from dstab.analysis import hessian, hessian_memory
from dstab.analysis.hvp import HessianOperator, NotAMean
from dstab.errors import DstabError
from dstab.probes import module_probe

torch.set_num_threads(1)


def mlp_probe(loss=None, batch=12):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.SiLU(), nn.GroupNorm(4, 16), nn.Linear(16, 3))
    gen = torch.Generator().manual_seed(1)
    data = {"x": torch.randn(batch, 6, generator=gen), "y": torch.randn(batch, 3, generator=gen)}
    return module_probe(net, loss or (lambda f, x, y: ((f(x) - y) ** 2).mean()), name="mlp", data=data)


def test_split_shares_and_parts():
    probe = mlp_probe(batch=10)
    parts = probe.split(4)
    assert [round(w, 6) for w, _ in parts] == [0.4, 0.4, 0.2]
    assert [len(p.data["x"]) for _, p in parts] == [4, 4, 2]
    assert torch.equal(parts[2][1].data["y"], probe.data["y"][8:])
    assert probe.split(10) is None  # one micro-batch: nothing to split
    other = module_probe(
        nn.Linear(2, 1), lambda f, a, b: f(a).mean() + b.sum(), data={"a": torch.ones(3, 2), "b": torch.ones(5)}
    )
    assert other.split(1) is None  # no common batch axis
    with pytest.raises(DstabError, match="at least one sample"):
        probe.split(0)


def test_digits_dm_products_by_micro_batch_equal_the_whole_batch():
    """The report's digits DM probe (GroupNorm UNet, several timesteps): products by micro-batches of
    24 samples (the last one shorter) equal the whole batch's to float32 rounding, and so do the loss
    and the gradient norm; the operator keeps no graph between products."""
    probe = zooresults.HESSIAN.probe.build(zoo.load_checkpoint("digits/dm-eps-s0"))
    batch = len(probe.data["x0"])
    assert batch > 48 and batch % 24
    whole, micro = HessianOperator(probe), HessianOperator(probe, micro_batch=24)
    assert micro.micro_batch == 24 and len(micro.parts) == -(-batch // 24) and micro._roots == []
    assert micro.loss == pytest.approx(whole.loss, rel=1e-6)
    assert micro.grad_norm == pytest.approx(whole.grad_norm, rel=1e-5)
    V = torch.randn(2, whole.n, generator=torch.Generator().manual_seed(2))
    a, b = whole.batched(V), micro.batched(V)
    assert float((a - b).norm() / a.norm()) < 2e-5
    # and the Rayleigh quotients a Lanczos run is built from
    np.testing.assert_allclose((V * b).sum(1).numpy(), (V * a).sum(1).numpy(), rtol=2e-5)


def test_a_loss_that_is_not_a_mean_is_refused_or_taken_whole():
    """A loss coupling the samples (each output centred on the batch's mean) changes with the split:
    asked for micro-batches, the operator refuses naming why; chosen automatically, the spectrum takes
    the whole batch instead."""
    coupled = lambda f, x, y: ((f(x) - f(x).mean(0) - y) ** 2).mean()  # noqa: E731
    probe = mlp_probe(coupled)
    with pytest.raises(NotAMean, match=r"not the mean of its samples' losses .* \(micro_batch=0\)"):
        HessianOperator(probe, micro_batch=3)
    summed = mlp_probe(lambda f, x, y: ((f(x) - y) ** 2).sum())  # a sum, not a mean
    with pytest.raises(NotAMean):
        HessianOperator(summed, micro_batch=3)


def test_the_spectrum_takes_micro_batches_where_the_plan_bounds_the_vectors(monkeypatch):
    """With a Krylov share of 12 vectors (a capped top-k, a local SLQ) the spectrum takes products by
    micro-batches of 1/8 of the batch (12 samples: 2 each), says so in its plan, and returns the whole
    batch's values; a coupled loss falls back to the whole batch."""
    probe = mlp_probe()
    n = probe.num_params
    monkeypatch.setattr(hessian_memory, "krylov_share", lambda: 12 * 4 * n)
    kw = dict(top_k=3, trace_samples=2, slq_runs=1, slq_steps=30, tol=1e-4)
    auto = hessian.spectrum(probe, **kw)
    whole = hessian.spectrum(probe, micro_batch=0, **kw)
    assert auto.info["micro_batch"] == 2 and whole.info["micro_batch"] is None
    assert "products taken 2 samples at a time" in auto.info["memory_plan"]
    assert "at a time" not in whole.info["memory_plan"]
    np.testing.assert_allclose(auto.top_eigenvalues, whole.top_eigenvalues, rtol=1e-4)
    assert auto.trace == pytest.approx(whole.trace, rel=1e-4)
    coupled = mlp_probe(lambda f, x, y: ((f(x) - f(x).mean(0) - y) ** 2).mean())
    assert hessian.spectrum(coupled, **kw).info["micro_batch"] is None
    # without the bound, the whole batch (its graph kept: the fastest products)
    monkeypatch.undo()
    assert hessian.spectrum(probe, **kw).info["micro_batch"] is None


def test_the_environment_sets_the_micro_batch_for_the_cli_and_the_page(monkeypatch):
    """DSTAB_MICRO_BATCH overrides the automatic choice (0: the whole batch even in the bounded regime; k:
    k samples, refused with NotAMean where the loss is not a mean); a bad value is one clear error."""
    probe = mlp_probe()
    n = probe.num_params
    monkeypatch.setattr(hessian_memory, "krylov_share", lambda: 12 * 4 * n)
    kw = dict(top_k=2, trace_samples=2, slq_runs=1, slq_steps=20, tol=1e-4)
    monkeypatch.setenv("DSTAB_MICRO_BATCH", "0")
    assert hessian.spectrum(probe, **kw).info["micro_batch"] is None
    monkeypatch.setenv("DSTAB_MICRO_BATCH", "5")
    res = hessian.spectrum(probe, **kw)
    assert res.info["micro_batch"] == 5 and "products taken 5 samples at a time" in res.info["memory_plan"]
    coupled = mlp_probe(lambda f, x, y: ((f(x) - f(x).mean(0) - y) ** 2).mean())
    with pytest.raises(NotAMean):
        hessian.spectrum(coupled, **kw)
    for bad in ("-1", "two"):
        monkeypatch.setenv("DSTAB_MICRO_BATCH", bad)
        with pytest.raises(DstabError, match=rf"DSTAB_MICRO_BATCH must be a whole number of samples .*got '{bad}'"):
            hessian.spectrum(probe, **kw)
