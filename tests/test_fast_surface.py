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


@pytest.mark.parametrize("strategy", landscape.STRATEGIES)
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
