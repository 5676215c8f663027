"""1-D interpolation: exact on linear models, buffers blended, endpoints exact, mismatches refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_unchanged, module_state

from dstab import checkpoints
from dstab.analysis.interpolation import barrier, interpolate, interpolation_alphas
from dstab.errors import DstabError
from dstab.probes import dm_probe, gan_probe, module_probe


class LinearWithBuffer(torch.nn.Module):
    def __init__(self, seed):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.lin = torch.nn.Linear(3, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(2, 3, generator=gen))
            self.lin.bias.copy_(torch.randn(2, generator=gen))
        self.register_buffer("shift", torch.randn(2, generator=gen))

    def forward(self, x):
        return self.lin(x) + self.shift


X = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0], [0.0, 1.0, 1.0]])


def _probes(loss):
    return (module_probe(LinearWithBuffer(s), loss, data={"x": X}) for s in (0, 1))


def test_linear_loss_of_linear_models_is_interpolated_exactly():
    a, b = _probes(lambda f, x: f(x).mean())
    curve = interpolate(a, b, -0.5, 1.5, 4)
    la, lb = float(a.loss()), float(b.loss())
    np.testing.assert_allclose(curve.loss, curve.alphas * la + (1 - curve.alphas) * lb, rtol=1e-6, atol=1e-6)
    assert curve.loss[curve.alphas == 1][0] == la and curve.loss[curve.alphas == 0][0] == lb
    assert curve.meta["metrics"]["roughness"] == 0.0  # a straight line is monotone
    assert abs(curve.meta["metrics"]["barrier"]) < 1e-6


def test_squared_loss_of_linear_models_is_the_closed_form_parabola():
    a, b = _probes(lambda f, x: (f(x) ** 2).sum())
    curve = interpolate(a, b, -1.0, 2.0, 2)
    ya, yb = (p._module(X) for p in (a, b))  # outputs (with their buffers) at the two ends
    al = torch.tensor(curve.alphas, dtype=torch.float64)[:, None, None]
    expected = ((al * ya.double() + (1 - al) * yb.double()) ** 2).sum(dim=(1, 2))
    np.testing.assert_allclose(curve.loss, expected.numpy(), rtol=1e-5)
    assert list(curve.alphas) == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]


def test_alphas_include_both_ends_exactly_and_bad_ranges_are_refused():
    al = interpolation_alphas(-0.5, 1.5, 20)
    assert len(al) == 41 and 0.0 in al and 1.0 in al and al[0] == -0.5 and al[-1] == 1.5
    with pytest.raises(DstabError, match="include both"):
        interpolation_alphas(0.2, 1.5, 10)
    with pytest.raises(DstabError, match="whole numbers"):
        interpolation_alphas(-0.33, 1.5, 10)
    with pytest.raises(DstabError, match=">= 2"):
        interpolation_alphas(-0.5, 1.5, 1)


def test_barrier_is_the_bump_above_the_chord():
    al = np.array([0.0, 0.5, 1.0])
    assert barrier(al, np.array([1.0, 3.0, 2.0])) == pytest.approx(1.5)


def test_checkpoints_interpolate_with_buffers_and_leave_models_alone(ckpts):
    a, b = checkpoints.load(ckpts["digits_gan"]), checkpoints.load(ckpts["digits_gan_b"])
    before = module_state(a.discriminator)
    pa, pb = gan_probe(a, "d", batch_size=8), gan_probe(b, "d", batch_size=8)
    curve = interpolate(pa, pb, -0.5, 1.5, 2)
    # alpha = 0 uses b's weights AND b's BatchNorm statistics with a's data and frozen G
    assert curve.meta["loss_b"] == pytest.approx(float(pa.loss(pb.params, pb.buffers)), rel=1e-6)
    assert curve.meta["loss_a"] == pytest.approx(float(pa.loss()), rel=1e-6)
    assert curve.meta["loss_b"] != pytest.approx(float(pa.loss(pb.params)), rel=1e-4)  # buffers matter
    assert curve.meta["finite"]
    assert_unchanged(a.discriminator, before)


def test_mismatched_architectures_and_kinds_are_refused(ckpts):
    toy, digits = checkpoints.load(ckpts["toy_dm"]), checkpoints.load(ckpts["digits_dm"])
    with pytest.raises(DstabError, match="different architectures"):
        interpolate(dm_probe(toy, 10, 4), dm_probe(digits, 10, 4))
    with pytest.raises(DstabError, match="cannot interpolate a dm probe with a gan-g"):
        interpolate(dm_probe(toy, 10, 4), gan_probe(checkpoints.load(ckpts["toy_gan"]), "g", 4))
