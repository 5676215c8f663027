"""Surfaces at a chosen precision: fp32 equals the existing engine, FLOPs are counted exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dstab.analysis import fast_surface, landscape
from dstab.errors import DstabError
from dstab.probes import module_probe

torch.set_num_threads(1)


def mlp_probe(batch: int = 8):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 20), nn.Tanh(), nn.Linear(20, 3))
    gen = torch.Generator().manual_seed(1)
    data = {"x": torch.randn(batch, 10, generator=gen), "y": torch.randn(batch, 3, generator=gen)}
    return module_probe(net, lambda f, x, y: ((f(x) - y) ** 2).mean(), name="mlp", data=data)


@pytest.mark.parametrize("strategy", ["sequential", "vmap"])
def test_fp32_equals_the_existing_engine(strategy):
    probe = mlp_probe()
    ours, speed = fast_surface.surface(probe, 5, 0.5, 3, "fp32", strategy=strategy)
    ref = landscape.surface(probe, 5, 0.5, 3, strategy=strategy)
    np.testing.assert_array_equal(ours.loss, ref.loss)
    assert speed.points == 25 and speed.peak is None and speed.share is None
    assert "TFLOP/s achieved (peak unknown)" in speed.line()


def test_bf16_autocast_is_close_and_leaves_switches_alone():
    probe = mlp_probe()
    before = torch.backends.cuda.matmul.allow_tf32
    bf, _ = fast_surface.surface(probe, 3, 0.5, 0, "bf16")
    ref = landscape.surface(probe, 3, 0.5, 0)
    np.testing.assert_allclose(bf.loss, ref.loss, rtol=3e-2)
    assert not np.array_equal(bf.loss, ref.loss)  # autocast did change the arithmetic
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_flops_counted_per_loss():
    # two Linear layers, batch 8: 2 * 8 * (10 * 20 + 20 * 3) multiply-adds counted twice
    assert fast_surface.flops_per_loss(mlp_probe(8)) == 2 * 8 * (10 * 20 + 20 * 3)
    speed = fast_surface.Throughput(points=100, seconds=2.0, flops_per_point=10**12, peak=1e14)
    assert speed.achieved == pytest.approx(5e13) and speed.share == pytest.approx(0.5)


def test_peaks_and_bad_input():
    assert fast_surface.peak_for("NVIDIA H100 PCIe", "bf16") == pytest.approx(756e12)
    assert fast_surface.peak_for("NVIDIA H100 80GB HBM3", "fp32") == pytest.approx(67e12)
    assert fast_surface.peak_for("NVIDIA H200", "tf32") == pytest.approx(494.7e12)
    assert fast_surface.peak_for("Some GPU", "fp32") is None
    with pytest.raises(DstabError, match="unknown precision"):
        fast_surface.check_precision("fp8", "cpu")
    with pytest.raises(DstabError, match="tf32 needs a CUDA device"):
        fast_surface.surface(mlp_probe(), 3, 0.5, 0, "tf32")


def test_the_precisions_are_the_specs():
    from dstab.analysis.specs import SURFACE_PRECISIONS

    assert fast_surface.PRECISIONS == SURFACE_PRECISIONS == ("fp32", "tf32", "bf16")


def conv_probe(batch: int = 4):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.SiLU(), nn.Conv2d(8, 3, 3, padding=1))
    nn.init.zeros_(net[3].weight)  # a zero weight gets a zero direction: it stays fixed, as a UNet's proj_out
    gen = torch.Generator().manual_seed(1)
    data = {"x": torch.randn(batch, 3, 8, 8, generator=gen)}
    return module_probe(net, lambda f, x: ((f(x) - x) ** 2).mean(), name="conv", data=data)


def test_bf16_casts_no_weight_per_point():
    """Under bf16 the engine stores the matmul/conv weights in bf16 once per point (one vector copy);
    plain autocast over float32 weights casts each of them at every call."""
    probe = conv_probe()
    ours = fast_surface.ops_per_point(probe, "bf16")
    assert ours["weight_casts"] == 0
    plain = fast_surface._op_counter({tuple(p.shape) for p in probe.params.values() if p.dim() >= 2})
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), plain:
        probe.loss()
    assert plain.casts == 2  # both conv weights, every call
    assert fast_surface.ops_per_point(probe, "fp32") == {"ops": pytest.approx(ours["ops"], abs=40), "weight_casts": 0}
    # and the values are the autocast ones, to bf16 rounding
    bf, _ = fast_surface.surface(probe, 3, 0.5, 0, "bf16")
    np.testing.assert_allclose(bf.loss, landscape.surface(probe, 3, 0.5, 0).loss, rtol=3e-2)


def test_weights_from_a_device_tensor_equal_the_host_floats():
    """The CUDA graph strategy reads (a, b) from a device tensor; the weights it writes are the same."""
    from dstab.analysis.directions import plane_directions

    probe = conv_probe()
    d1, d2, _ = plane_directions(probe.params, 0, "ignore")
    host, device = landscape.PointLoss(probe, d1, d2), landscape.PointLoss(probe, d1, d2)
    host.plane.move_to(0.3, -0.7)
    device.plane.move_to_tensor(torch.tensor([0.3, -0.7]))
    for (_, a), (_, b) in zip(host.module.named_parameters(), device.module.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_graph_needs_cuda_and_vmap_refuses_bf16():
    probe = conv_probe()
    with pytest.raises(DstabError, match="strategy 'graph' needs a CUDA device"):
        landscape.surface(probe, 3, 0.5, 0, strategy="graph")
    with pytest.raises(DstabError, match="vmap strategy cannot run under bf16 autocast"):
        fast_surface.surface(probe, 3, 0.5, 0, "bf16", strategy="vmap")
