"""The public API (dstab.probe / surface / interpolate / hessian / consistency) on a model written here."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import dstab
from dstab import cache
from dstab.analysis.interpolation import interpolation_alphas
from dstab.analysis.specs import SurfaceSpec
from dstab.errors import DstabError
from tests.conftest import assert_unchanged, module_state


class MLP(nn.Module):
    """Three layers, with dropout and BatchNorm so that train/eval mode matters."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Linear(3, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1)
        )

    def forward(self, x):
        return self.net(x)


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, generator=gen)
    return x, torch.sin(x.sum(dim=1, keepdim=True))


@pytest.fixture
def trained():
    model = MLP()
    model.net[1].running_mean.fill_(0.1)  # eval-mode BatchNorm with non-trivial statistics
    model.train()  # left in train mode: the probe must not switch it
    model.net[0].weight.requires_grad_(False)  # a frozen layer stays frozen (and is still analysed)
    return model


def flat_loss(model, batch):
    """The probe's loss as a function of one flat parameter vector, by torch.func (the reference)."""
    frozen = MLP().eval()
    frozen.load_state_dict(model.state_dict())
    names = [n for n, _ in frozen.named_parameters()]
    shapes = [p.shape for _, p in frozen.named_parameters()]
    buffers = dict(frozen.named_buffers())
    theta = torch.cat([p.detach().reshape(-1) for _, p in frozen.named_parameters()]).double()

    def f(vec):
        parts, i = {}, 0
        for n, s in zip(names, shapes):
            parts[n] = vec[i : i + s.numel()].reshape(s)
            i += s.numel()
        out = torch.func.functional_call(
            frozen.double(), {**parts, **{k: v.double() for k, v in buffers.items()}}, (batch[0].double(),)
        )
        return ((out - batch[1].double()) ** 2).mean()

    return f, theta


def test_hessian_lambda_max_matches_autograd(trained, batch, caches):
    before = module_state(trained)
    p = dstab.probe(trained, mse, batch)
    spec = dstab.hessian(p, top_k=1, trace_samples=10, slq_runs=1, slq_steps=20, tol=1e-8)
    f, theta = flat_loss(trained, batch)
    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, theta))
    assert spec.n == theta.numel()
    assert spec.lambda_1 == pytest.approx(float(eig[-1]), rel=1e-5)
    assert spec.loss == pytest.approx(float(f(theta)), rel=1e-5)
    assert_unchanged(trained, before)
    assert trained.training and not trained.net[0].weight.requires_grad


def test_surface_centre_is_the_loss_and_is_cached(trained, batch, caches):
    before = module_state(trained)
    p = dstab.probe(trained, mse, batch)
    surf = dstab.surface(p, grid=5, radius=0.5)
    f, theta = flat_loss(trained, batch)
    assert surf.loss.shape == (5, 5) and np.isfinite(surf.loss).all()
    assert surf.centre_loss == pytest.approx(float(f(theta)), rel=1e-5)
    assert surf.loss.min() < surf.loss.max()
    # the same model, batch and loss: the stored result, as the CLI writes it (JSON + NPZ in the user cache)
    params = {"probe": {"kind": "custom"}, **SurfaceSpec(grid=5, radius=0.5).own_params()}
    stored = cache.lookup("surface", params, [p.describe()["checkpoint_sha256"]])
    assert stored.source == "user" and stored.meta["probe"]["num_params"] == p.num_params  # derived: meta
    np.testing.assert_array_equal(stored.arrays["loss"], surf.loss)
    np.testing.assert_array_equal(dstab.surface(dstab.probe(trained, mse, batch), grid=5, radius=0.5).loss, surf.loss)
    assert_unchanged(trained, before)


def test_surface_engines_agree(trained, batch, caches):
    p = dstab.probe(trained, mse, batch)
    ours, ref = dstab.surface(p, grid=3, radius=0.3), dstab.surface(p, grid=3, radius=0.3, engine="loss-landscapes")
    np.testing.assert_allclose(ours.loss, ref.loss, rtol=1e-5, atol=1e-7)


def test_interpolation_between_two_models(batch, caches):
    early, late = MLP(seed=1), MLP(seed=2)
    pa, pb = dstab.probe(late, mse, batch), dstab.probe(early, mse, batch)
    curve = dstab.interpolate(pa, pb, lo=-0.5, hi=1.5, steps=4)
    np.testing.assert_allclose(curve.alphas, interpolation_alphas(-0.5, 1.5, 4))
    a_ref, _ = flat_loss(late.eval(), batch)
    b_ref, _ = flat_loss(early.eval(), batch)
    assert curve.meta["loss_a"] == pytest.approx(float(a_ref(flat_loss(late, batch)[1])), rel=1e-5)
    assert curve.meta["loss_b"] == pytest.approx(float(b_ref(flat_loss(early, batch)[1])), rel=1e-5)
    # the midpoint: weights and BatchNorm statistics blended half and half
    mid = MLP().eval()
    mid.load_state_dict(
        {k: (v + early.state_dict()[k]) / 2 if v.is_floating_point() else v for k, v in late.state_dict().items()}
    )
    with torch.no_grad():
        assert float(curve.loss[curve.alphas == 0.5][0]) == pytest.approx(float(mse(mid, batch)), rel=1e-5)


def test_a_changed_batch_or_loss_is_a_new_result(trained, batch, caches):
    p = dstab.probe(trained, mse, batch)
    other_batch = dstab.probe(trained, mse, (batch[0] + 1, batch[1]))
    l1 = dstab.probe(trained, lambda model, b: (model(b[0]) - b[1]).abs().mean(), batch)
    shas = {q.describe()["checkpoint_sha256"] for q in (p, other_batch, l1)}
    assert len(shas) == 3
    scale = torch.Generator()  # C state a hash cannot read: never cached
    opaque = dstab.probe(trained, lambda model, b: mse(model, b) * (1 if scale else 0), batch)
    assert opaque.describe()["checkpoint_sha256"] is None and opaque.describe()["cache"].startswith("off")


def test_consistency_of_sample_functions():
    w = torch.randn(4, 2)

    def gan_a(noise):
        return torch.tanh(noise.latent((4,)) @ w)

    def gan_b(noise):  # the same function up to a small change: high PSNR
        return torch.tanh(noise.latent((4,)) @ (w + 0.01))

    def unrelated(noise):  # ignores the shared noise
        return torch.tanh(torch.randn(noise.shape, generator=torch.Generator().manual_seed(3)))

    close = dstab.consistency([gan_a, gan_b], shape=(2,), num=8)
    far = dstab.consistency([gan_a, unrelated], shape=(2,), num=8)
    a = gan_a(dstab.api.NoiseSource(0, (8, 2)))
    b = gan_b(dstab.api.NoiseSource(0, (8, 2)))
    want = (10 * torch.log10(4.0 / ((a - b) ** 2).mean(dim=1))).mean()
    assert close.score == pytest.approx(float(want), rel=1e-5)
    assert close.score > far.score + 10 and close.names == ["gan_a", "gan_b"]
    with pytest.raises(DstabError, match="returned samples of shape"):
        dstab.consistency([gan_a, lambda noise: torch.zeros(3)], shape=(2,), num=8)


def test_bad_input_is_a_dstab_error(trained, batch):
    with pytest.raises(DstabError, match="needs a torch.nn.Module"):
        dstab.probe(lambda x: x, mse, batch)
    with pytest.raises(DstabError, match="scalar tensor"):
        dstab.probe(trained, lambda model, b: model(b[0]), batch).loss()
    with pytest.raises(DstabError, match="unknown Hessian settings"):
        dstab.hessian(dstab.probe(trained, mse, batch), topk=3)


def test_import_dstab_stays_light():
    code = "import sys, dstab; assert 'torch' not in sys.modules; print(dstab.__version__, callable(dstab.probe))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [dstab.__version__, "True"]


def test_the_key_sees_the_global_functions_a_loss_calls(trained, batch, monkeypatch):
    def via_global(model, b):
        return mse(model, b)

    before = dstab.probe(trained, via_global, batch).describe()["checkpoint_sha256"]
    monkeypatch.setitem(globals(), "mse", lambda model, b: ((model(b[0]) - b[1]) ** 4).mean())
    assert dstab.probe(trained, via_global, batch).describe()["checkpoint_sha256"] not in (before, None)
