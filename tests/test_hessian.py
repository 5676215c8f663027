"""Hessian engine: analytic quadratics, a dense-Hessian check, PyHessian cross-check, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dstab.analysis import hessian, hessian_ref
from dstab.analysis.landscape import CostWarning
from dstab.errors import DstabError
from tests.hessian_fixtures import ModuleProbe, QuadraticProbe, TinyConvNet, dense_hessian, rotated

EIGS = np.array([-2.0, -0.5, 0.25, 1.0, 1.5, 3.0, 4.0, 6.0, 8.0, 12.0] * 3) + np.repeat([0.0, 0.01, 0.02], 10)


@pytest.fixture(scope="module")
def conv_probe():
    torch.manual_seed(0)
    return ModuleProbe(TinyConvNet())


@pytest.mark.parametrize("hvp", hessian.HVP_MODES)
def test_quadratic_extreme_eigenvalues(hvp):
    probe = QuadraticProbe(rotated(EIGS))
    ext = hessian.extreme_eigenvalues(hessian.HessianOperator(probe, hvp), 4, tol=1e-6, lambda_min=True)
    np.testing.assert_allclose(ext.top, np.sort(EIGS)[::-1][:4], rtol=1e-5)
    assert ext.lambda_min == pytest.approx(-2.0, rel=1e-5)
    assert ext.converged and ext.min_converged


def test_diagonal_quadratic_moments_are_exact():
    # normalised Rademacher v on a diagonal A has v_i^2 = 1/n: the SLQ weights and the
    # Hutchinson samples are exact, so mean, sigma2 and trace equal the analytic values
    eigs = np.linspace(-1.0, 5.0, 24)
    probe = QuadraticProbe(torch.diag(torch.tensor(eigs, dtype=torch.float32)))
    res = hessian.spectrum(probe, top_k=3, trace_samples=3, slq_runs=2, slq_steps=30)
    s = res.summary()
    assert s["n_params"] == 24
    assert s["trace"] == pytest.approx(eigs.sum(), rel=1e-5) and s["trace_stderr"] == pytest.approx(0, abs=1e-5)
    assert s["mean"] == pytest.approx(eigs.mean(), abs=1e-5)
    assert s["sigma2"] == pytest.approx(eigs.var(), rel=1e-5)
    assert s["ritz_variance"] == pytest.approx(eigs.var(), rel=1e-5)  # every eigenvalue found once
    np.testing.assert_allclose(np.sort(res.nodes[0]), eigs, atol=1e-5)
    np.testing.assert_allclose(res.weights.sum(axis=1), 1.0, atol=1e-6)
    # default tol 1e-4: the top eigenvalues lie within 1e-4 * spectral radius, and within their bound
    assert s["top_eigenvalues"] == pytest.approx([5.0, eigs[-2], eigs[-3]], abs=1e-4 * 5.0)
    assert np.max(np.abs(res.top_eigenvalues - eigs[::-1][:3])) <= s["top_error_bound"] + 1e-6
    assert np.trapezoid(res.curve, res.grid) == pytest.approx(1.0)
    assert res.grid[np.argmax(res.curve)] == pytest.approx(
        eigs[np.argmin(np.abs(eigs - res.grid[np.argmax(res.curve)]))], abs=0.1
    )


def test_rotated_quadratic_slq_estimates_within_their_standard_error():
    A = rotated(EIGS, seed=1)
    probe = QuadraticProbe(A)
    res = hessian.spectrum(probe, top_k=1, trace_samples=200, slq_runs=40, slq_steps=30)
    s = res.summary()
    # Var(z^T A z) = 2 sum_{i != j} A_ij^2 for Rademacher z: the estimators' standard errors
    a = A.double().numpy()
    sd = np.sqrt(2 * ((a**2).sum() - (np.diag(a) ** 2).sum()))
    assert abs(s["mean"] - EIGS.mean()) < 4 * sd / len(EIGS) / np.sqrt(40)
    assert abs(s["trace"] - EIGS.sum()) < 4 * sd / np.sqrt(200)
    assert s["sigma2"] == pytest.approx(EIGS.var(), rel=0.2)  # 12% off at this seed, the worst of seeds 0-2
    # with slq_steps >= n every eigenvalue is a node exactly once: the unweighted variance is exact
    assert s["ritz_variance"] == pytest.approx(EIGS.var(), rel=1e-4)


def test_seeded_and_deterministic():
    probe = QuadraticProbe(rotated(EIGS))
    a = hessian.spectrum(probe, top_k=2, trace_samples=5, slq_runs=2, slq_steps=10, seed=3)
    b = hessian.spectrum(probe, top_k=2, trace_samples=5, slq_runs=2, slq_steps=10, seed=3)
    c = hessian.spectrum(probe, top_k=2, trace_samples=5, slq_runs=2, slq_steps=10, seed=4)
    assert a.summary() == b.summary()
    assert a.trace != c.trace


def test_conv_net_against_dense_hessian(conv_probe):
    eigs = np.linalg.eigvalsh(dense_hessian(conv_probe))
    op = hessian.HessianOperator(conv_probe)
    ext = hessian.extreme_eigenvalues(op, 3, tol=1e-6, max_steps=op.n, lambda_min=True)
    assert ext.converged and ext.min_converged
    np.testing.assert_allclose(ext.top, eigs[::-1][:3], rtol=1e-4)
    # the error bounds hold: each top value lies within its bound of a true eigenvalue
    assert np.all(np.abs(ext.top - eigs[::-1][:3]) <= ext.top_error + 1e-5 * eigs[-1])
    assert abs(ext.lambda_min - eigs[0]) <= ext.min_error + 1e-5 * eigs[-1]
    # forward-over-reverse and double backward give the same products
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(0))
    fwd = hessian.HessianOperator(conv_probe, "forward")(v)
    torch.testing.assert_close(fwd, op(v), rtol=1e-4, atol=1e-6)
    # batched products (a loop on the CPU; one vmapped backward as on a GPU; the unused layer's rows
    # are zero) equal single ones
    V = torch.randn(3, op.n, generator=torch.Generator().manual_seed(1))
    single = torch.stack([op(v) for v in V])
    assert not op.vmap
    torch.testing.assert_close(op.batched(V), single, rtol=1e-5, atol=1e-6)
    op.vmap, calls = True, op.calls
    torch.testing.assert_close(op.batched(V), single, rtol=1e-5, atol=1e-6)
    assert op.calls == calls + 3


def test_pyhessian_cross_check(conv_probe):
    kw = dict(top_k=1, trace_samples=10, slq_runs=2, slq_steps=30, seed=0)
    ours = hessian.spectrum(conv_probe, **kw)
    ref = hessian_ref.spectrum(conv_probe, **kw)
    # power iteration converges slowly when lambda_2/lambda_1 is near 1: 1e-3 is its accuracy here
    np.testing.assert_allclose(ref.top_eigenvalues, ours.top_eigenvalues, rtol=1e-3)
    # same seeds draw the same Rademacher vectors in both engines: the same numbers
    assert ref.trace == pytest.approx(ours.trace, rel=1e-5)
    np.testing.assert_allclose(ref.nodes, ours.nodes, atol=1e-4 * ours.lambda_1)
    np.testing.assert_allclose(ref.weights, ours.weights, atol=1e-4)
    np.testing.assert_allclose(ref.curve, ours.curve, atol=1e-3 * ours.curve.max())
    assert ref.summary()["sigma2"] == pytest.approx(ours.summary()["sigma2"], rel=1e-4)
    assert ref.loss == pytest.approx(ours.loss) and ref.n == ours.n


def test_pyhessian_engine_leaves_torch_and_rng_alone(conv_probe):
    eig = torch.eig  # torch 2.x keeps a stub that raises; PyHessian's density needs the shim
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    hessian_ref.spectrum(conv_probe, top_k=1, trace_samples=2, slq_runs=1, slq_steps=5)
    assert torch.equal(torch.rand(3), expected)
    assert torch.eig is eig


def test_callers_model_unchanged():
    net = TinyConvNet().train()
    net.conv.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    probe = ModuleProbe(net)
    for engine in (hessian.spectrum, hessian_ref.spectrum):
        engine(probe, top_k=1, trace_samples=2, slq_runs=1, slq_steps=5)
    assert net.training and not net.conv.weight.requires_grad and net.head.weight.requires_grad
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert all(p.grad is None for p in probe.params.values())


def test_bad_input():
    probe = QuadraticProbe(torch.eye(4))
    with pytest.raises(DstabError, match="exceeds the number of analysed parameters"):
        hessian.spectrum(probe, top_k=5)
    with pytest.raises(DstabError, match="top-k"):
        hessian_ref.spectrum(probe, top_k=5)
    with pytest.raises(DstabError, match="trace samples"):
        hessian.spectrum(probe, top_k=1, trace_samples=0)
    with pytest.raises(DstabError, match="unknown hvp"):
        hessian.HessianOperator(probe, "sideways")
    probe.params["x"][0, 0] = float("nan")
    with pytest.raises(DstabError, match="NaN or inf"):
        hessian.spectrum(probe)
    with pytest.raises(DstabError, match="NaN or inf"):
        hessian_ref.spectrum(probe)
    huge = QuadraticProbe(torch.eye(4) * 3e38)
    huge.params["x"].fill_(10.0)
    with pytest.raises(DstabError, match="loss is inf"):
        hessian.spectrum(huge)
    with pytest.raises(DstabError, match="unknown Hessian engine"):
        hessian.check_engine("scipy")


def test_cost_warning_before_a_long_run():
    probe = QuadraticProbe(rotated(EIGS))
    op = hessian.HessianOperator(probe)
    timed = hessian.hvp_seconds(op, 10, "quadratic")  # one product timed here, not counted as a call
    assert math.isfinite(timed) and timed >= 0 and op.calls == 0
    assert hessian.hvp_seconds(op, 10, "quadratic", per=0.5) == 5.0  # a known time per product: no clock
    with pytest.warns(CostWarning, match="roughly"):
        hessian.hvp_seconds(op, 10**12, "quadratic")
    with pytest.warns(CostWarning, match="roughly"):  # the spectrum warns before its Lanczos starts
        hessian.spectrum(probe, top_k=1, trace_samples=2, slq_runs=1, slq_steps=4, seconds_per_hvp=1e6)


def test_the_stopping_rule_revision_is_in_every_dstab_key():
    """A result computed by an older Lanczos stopping rule (one that could claim a false convergence) is
    never served as current: the rule's revision is part of the key, for the engine that has the rule."""
    from dstab.analysis.hessian_settings import LANCZOS_RULE
    from dstab.analysis.specs import HessianSpec
    from dstab.zooresults import EntryCheckpoint

    assert HessianSpec().own_params()["lanczos_rule"] == LANCZOS_RULE
    assert "lanczos_rule" not in HessianSpec(engine="pyhessian").own_params()
    entry = {
        "kind": "dm",
        "dataset": "toy2d:8gaussians",
        "train_config": {"diffusion": {"T": 1000}},
        "checkpoints": {"final": {"sha256": "ab" * 32}},
    }
    assert HessianSpec().params([EntryCheckpoint("toy2d/x", entry)])["lanczos_rule"] == LANCZOS_RULE
