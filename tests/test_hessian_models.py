"""Hessians of real architectures against scipy ARPACK on the same products: attention models (a diffusers
UNet2DModel, a guided-diffusion UNet with heads), the error line for an op with no second derivative, the
ARPACK engine's residual norms, and per-block spectra on a network whose block values are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import dstab
from dstab import models
from dstab.analysis import hessian, hessian_arpack, hessian_blocks
from dstab.errors import DstabError
from tests.hessian_fixtures import QuadraticProbe, rotated

torch.set_num_threads(1)
SMALL = {"trace_samples": 2, "slq_runs": 1, "slq_steps": 4}


def unet_loss(model, batch):
    x, t = batch
    out = model(x, t)
    out = out.sample if hasattr(out, "sample") else out
    return ((out - x) ** 2).mean()  # written out: F.mse_loss breaks forward-over-reverse


def diffusers_unet():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
    )


def guided_unet():
    torch.manual_seed(0)
    cfg = {
        "arch": "unet",
        "image_size": 8,
        "in_channels": 1,
        "model_channels": 8,
        "channel_mult": [1, 2],
        "attention_resolutions": [4],
        "norm_groups": 4,
        "num_head_channels": 8,  # guided-diffusion: heads of 8 channels (2 heads at width 16)
        "use_new_attention_order": True,
        "resblock_updown": True,
        "use_scale_shift_norm": True,
    }
    net = models.build(cfg)
    for p in net.parameters():  # zero-initialised output layers would leave most of H empty
        if not p.any():
            nn.init.normal_(p, std=0.05)
    return net


def batch():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 1, 8, 8, generator=gen), torch.tensor([10, 500])


@pytest.mark.parametrize("build", [diffusers_unet, guided_unet], ids=["diffusers-attention", "guided-heads"])
def test_attention_unet_against_eigsh(build):
    probe = dstab.probe(build(), unet_loss, batch(), cache=False)
    ours = hessian.spectrum(probe, top_k=3, tol=1e-5, **SMALL)
    oracle = hessian.spectrum(probe, top_k=3, tol=1e-7, engine="arpack", **SMALL)
    s = ours.summary()
    assert s["lanczos_converged"] and s["verification"] == "verified"
    err = np.abs(ours.top_eigenvalues - oracle.top_eigenvalues)
    # within dstab's own bounds, plus ARPACK's residuals (an eigenvalue lies within each of its value)
    assert np.all(err <= np.array(s["top_error_bounds"]) + np.array(oracle.summary()["top_error_bounds"]))
    assert err.max() <= 1e-4 * oracle.lambda_1


def test_fused_attention_has_no_double_backward_without_the_math_kernel():
    """The reason the operator runs under the math kernel: outside it, the CPU flash kernel is chosen
    and its backward has no derivative."""
    probe = dstab.probe(diffusers_unet(), unet_loss, batch(), cache=False)
    leaves = [p.detach().requires_grad_() for p in probe.params.values()]
    loss = probe.loss(dict(zip(probe.params, leaves)))
    grads = torch.autograd.grad(loss, leaves, create_graph=True)
    with pytest.raises(RuntimeError, match="_scaled_dot_product_flash_attention_for_cpu_backward"):
        torch.autograd.grad(grads, leaves, grad_outputs=[torch.ones_like(g) for g in grads], allow_unused=True)


class FusedAttention(nn.Module):
    """Calls the CPU flash kernel directly, which no kernel choice can route around."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 12)

    def forward(self, x):
        q, k, v = self.proj(x).unsqueeze(1).chunk(3, dim=-1)
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)[0].sum()


class Once(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g


class OnceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return Once.apply(self.lin(x)).sum()


@pytest.mark.parametrize(
    ("net", "named"), [(FusedAttention, "_scaled_dot_product_flash_attention_for_cpu_backward"), (OnceNet, "Once")]
)
def test_no_second_derivative_is_one_error_naming_the_op(net, named):
    torch.manual_seed(0)
    probe = dstab.probe(net(), lambda m, x: m(x), torch.randn(3, 5, 4), cache=False)
    with pytest.raises(DstabError, match=f"PyTorch has none for .*{named}") as info:
        hessian.spectrum(probe, top_k=1, **SMALL)
    assert "\n" not in str(info.value)


def test_arpack_engine_carries_its_residuals_and_matches_dense():
    A = rotated(np.concatenate([[6.0, 5.0, 4.0], np.linspace(-1, 2, 37)]), seed=3)
    probe = QuadraticProbe(A)
    res = hessian.spectrum(probe, top_k=3, tol=1e-8, engine="arpack", **SMALL)
    s = res.summary()
    assert s["verification"] == "residuals (arpack)" and s["settings"]["engine"] == "arpack"
    np.testing.assert_allclose(res.top_eigenvalues, [6.0, 5.0, 4.0], atol=1e-5)
    # the residuals are measured ||H y - theta y||: small, positive, and bound the true errors
    bounds = np.array(s["top_error_bounds"])
    assert np.all(bounds > 0) and np.all(bounds < 1e-4)
    assert np.all(np.abs(res.top_eigenvalues - [6.0, 5.0, 4.0]) <= bounds + 1e-6)
    op = hessian.HessianOperator(probe)
    vals, resid, used, ok = hessian_arpack.end_pairs(op, 1, "SA", 0, 1e-8, 300)
    assert ok and vals[0] == pytest.approx(-1.0, abs=1e-5) and used == op.calls


class TwoBlocks:
    """f = 0.5 a^T A a + 0.5 b^T B b with A, B diagonal: H is block diagonal, each block's lambda_1 is
    its largest diagonal entry and, with Rademacher probes, each z_b^T H_bb z_b is exactly tr(H_bb)."""

    name, kind, device = "two-blocks", "custom", torch.device("cpu")

    def __init__(self, a: np.ndarray, b: np.ndarray, coupling: float = 0.0):
        self.A, self.B = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
        self.c = coupling
        self.params = {"a": torch.ones(len(a)), "b": torch.ones(len(b))}
        self.buffers = {}

    def loss(self, params=None, buffers=None):
        p = {**self.params, **(params or {})}
        a, b = p["a"], p["b"]
        return 0.5 * (a * self.A * a).sum() + 0.5 * (b * self.B * b).sum() + self.c * a[-1] * b[-1]


def test_per_block_values_on_a_block_diagonal_quadratic():
    a, b = np.linspace(0.5, 3.0, 20), np.linspace(-2.0, 7.0, 30)
    res = hessian.spectrum(TwoBlocks(a, b), top_k=2, per_block=True, tol=1e-6, trace_samples=8, slq_runs=1, slq_steps=4)
    blocks = {row["block"]: row for row in res.blocks}
    assert list(blocks) == ["a", "b"]
    assert blocks["a"]["n_params"] == 20 and blocks["b"]["n_params"] == 30
    assert blocks["a"]["lambda_1"] == pytest.approx(3.0, abs=1e-5) and blocks["a"]["lambda_1_converged"]
    assert blocks["b"]["lambda_1"] == pytest.approx(7.0, abs=1e-5)
    assert blocks["a"]["trace"] == pytest.approx(a.sum(), rel=1e-5) and blocks["a"]["trace_stderr"] < 1e-4
    assert blocks["b"]["trace"] == pytest.approx(b.sum(), rel=1e-5)
    assert res.trace == pytest.approx(a.sum() + b.sum(), rel=1e-5)
    # coupling the blocks' top coordinates moves the whole lambda_1 (of [[3, 3], [3, 7]]: 5 + sqrt(13)),
    # not the diagonal blocks' own
    coupled = hessian.spectrum(TwoBlocks(a, b, 3.0), top_k=1, per_block=True, tol=1e-6, **SMALL)
    assert coupled.lambda_1 == pytest.approx(5 + np.sqrt(13), abs=1e-5)
    assert [row["lambda_1"] for row in coupled.blocks] == pytest.approx([3.0, 7.0], abs=1e-5)


def test_block_traces_sum_to_the_whole_trace_sample_by_sample():
    probe = QuadraticProbe(rotated(np.linspace(-1, 4, 12), seed=5))
    op = hessian.HessianOperator(probe)
    halves = [hessian_blocks.Block("first", ((0, 5),)), hessian_blocks.Block("rest", ((5, 7),))]
    whole, parts = hessian_blocks.hutchinson_parts(op, 6, 0, halves)
    assert whole[0] == pytest.approx(parts[0][0] + parts[1][0], rel=1e-6)
    assert whole == pytest.approx(hessian.hutchinson_trace(op, 6, 0))


def test_partition_by_stage_and_attention():
    unet = dstab.probe(guided_unet(), unet_loss, batch(), cache=False)
    names = [b.name for b in hessian_blocks.partition(unet)]
    assert names == ["8x8 conv", "4x4 conv", "4x4 attention", "other"]
    assert sum(b.n for b in hessian_blocks.partition(unet)) == unet.num_params
    gen = models.build({"arch": "dcgan_g", "nz": 4, "ngf": 4, "image_size": 8})
    g = dstab.probe(gen, lambda m, z: (m(z) ** 2).mean(), torch.randn(2, 4, 1, 1), cache=False)
    assert [b.name for b in hessian_blocks.partition(g)] == ["8x8 conv", "4x4 conv"]
