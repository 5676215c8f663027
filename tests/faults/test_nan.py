"""NaN is named wherever it enters (issue 27): a checkpoint of NaN weights added to the dashboard, a
trajectory drawn from it, a surface whose loss is NaN or overflows, a loss that does not depend on the
weights; and the API applies the CLI's size budgets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import dstab
from dstab import checkpoints
from dstab.analysis.specs import TrajectorySpec
from dstab.cli import main
from dstab.errors import DstabError, DstabWarning

from . import crafted as c
from .test_app_faults import PAGE, still_usable, workspace  # noqa: F401 (fixture)


def test_trajectory_of_nan_weights_is_refused_on_one_line(tmp_path, capsys):
    path = c.nan_weights(tmp_path / "nan.safetensors")
    assert main(["trajectory", str(path), "-o", str(tmp_path / "out"), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "hold NaN or inf weights, so every x0 estimate of its trajectory would be NaN" in err
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(DstabError, match="model.net.0.weight hold NaN or inf weights"):
        TrajectorySpec().check([checkpoints.load(path)])


def test_adding_a_nan_checkpoint_in_the_dashboard_names_it(app, workspace):  # noqa: F811
    path = c.nan_weights(workspace / "nan.safetensors")
    at = app(PAGE, data="toy2d")
    at.text_input(key="own_path").input(str(path))
    at.button(key="own_path_load").click().run()
    still_usable(at)
    assert any("nan.safetensors: model." in w.value and "hold NaN or inf weights" in w.value for w in at.warning)
    assert "yours: nan.safetensors (NaN/inf weights)" in at.selectbox(key="dm").options  # named in the picker too
    # picked, the Diffusion process page refuses it in place instead of drawing NaN
    at.selectbox(key="dm").set_value(f"path:{path}").run()
    still_usable(at)
    assert any("hold NaN or inf weights" in e.value for e in at.error)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return self.lin(x)


X = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))


def test_a_nan_loss_at_the_weights_is_refused_and_an_overflowing_surface_warns(caches):
    def nan_loss(model, x):
        return model(x).mean() * float("nan")

    with pytest.raises(DstabError, match="the loss at the analysed weights is nan, so the surface is undefined"):
        dstab.surface(dstab.probe(Tiny(), nan_loss, X), grid=3)

    def overflowing(model, x):  # finite at the weights, inf once the weights grow past ~1e12
        return torch.exp(model(x).abs().mean() * 100)

    with pytest.warns(DstabWarning, match=r"surface of Tiny: 8 of 9 points are NaN or inf"):
        surf = dstab.surface(dstab.probe(Tiny(), overflowing, X), grid=3, radius=1e12)
    assert math.isfinite(surf.centre_loss) and int((~np.isfinite(surf.loss)).sum()) == 8
    with pytest.warns(DstabWarning, match="8 of 9 points"):  # read back from the cache: still said
        dstab.surface(dstab.probe(Tiny(), overflowing, X), grid=3, radius=1e12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DstabWarning)  # a finite surface says nothing
        dstab.surface(dstab.probe(Tiny(), overflowing, X), grid=3, radius=0.1)


def test_a_loss_that_ignores_the_weights_has_no_hessian(caches):
    def constant(model, x):
        return (x**2).mean()

    with pytest.raises(DstabError, match="the loss does not depend on the parameters being analysed"):
        dstab.hessian(dstab.probe(Tiny(), constant, X), top_k=1, trace_samples=1, slq_runs=1, slq_steps=2)


def test_the_api_applies_the_cli_budgets(caches, monkeypatch):
    def gen(noise):
        return noise.latent((2,))

    with pytest.raises(DstabError, match=r"num \(samples per model\) is 1,000,000,000, above the DSTAB_MAX_SAMPLES"):
        dstab.consistency([gen, gen], shape=(2,), num=10**9)
    with pytest.raises(DstabError, match=r"shape \(3, 10000, 10000\) \(values per sample\) is 300,000,000, above"):
        dstab.consistency([gen, gen], shape=(3, 10_000, 10_000), num=1)
    p = dstab.probe(Tiny(), lambda m, x: m(x).pow(2).mean(), X)
    with pytest.raises(DstabError, match=r"grid 301 \(grid points\) is 90,601, above the DSTAB_MAX_GRID_POINTS"):
        dstab.surface(p, grid=301)
    monkeypatch.setenv("DSTAB_MAX_GRID_POINTS", "100")
    with pytest.raises(DstabError, match="interpolation points is 201, above the DSTAB_MAX_GRID_POINTS"):
        dstab.interpolate(p, p, lo=-10, hi=10, steps=10)
    with pytest.raises(DstabError, match="top_k is 5,000, above the DSTAB_MAX_TOP_K limit"):
        dstab.hessian(p, top_k=5000)
