"""2-D surfaces: closed form on a quadratic, the loss-landscapes cross-check, directions, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dstab import cache, checkpoints
from dstab.analysis import cost, landscape, reference
from dstab.analysis.directions import _filter_norms, cosine, plane_directions
from dstab.errors import DstabError
from dstab.probes import dm_probe, gan_probe, module_probe
from tests.conftest import assert_unchanged, module_state


class Quadratic(torch.nn.Module):
    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(4, 3, generator=gen))
        self.bias = torch.nn.Parameter(torch.randn(4, generator=gen))

    def forward(self, A, g):
        v = torch.cat([self.w.reshape(-1), self.bias])
        return 0.5 * v @ A @ v + g @ v


def _quadratic_probe():
    gen = torch.Generator().manual_seed(1)
    M = torch.randn(16, 16, generator=gen)
    A, g = M @ M.T / 16 + torch.eye(16), torch.randn(16, generator=gen)
    return module_probe(Quadratic(), lambda f, A, g: f(A, g), data={"A": A, "g": g}), A.double(), g.double()


@pytest.mark.parametrize("strategy", ["sequential", "vmap"])
def test_surface_of_a_quadratic_is_its_closed_form(strategy):
    probe, A, g = _quadratic_probe()
    s = landscape.surface(probe, grid=7, radius=0.8, seed=3, strategy=strategy)
    d1, d2, _ = plane_directions(probe.params, 3)
    theta = torch.cat([probe.params["w"].reshape(-1), probe.params["bias"]]).double()
    u = torch.cat([d1["w"].reshape(-1), d1["bias"]]).double()
    v = torch.cat([d2["w"].reshape(-1), d2["bias"]]).double()
    a, b = np.meshgrid(s.alphas, s.betas, indexing="ij")
    grad = A @ theta + g
    L0 = float(0.5 * theta @ A @ theta + g @ theta)
    expected = (
        L0
        + a * float(grad @ u)
        + b * float(grad @ v)
        + 0.5 * (a * a * float(u @ A @ u) + 2 * a * b * float(u @ A @ v) + b * b * float(v @ A @ v))
    )
    np.testing.assert_allclose(s.loss, expected, rtol=2e-5)
    assert s.alphas[3] == 0.0 and s.alphas[0] == -0.8 and s.alphas[-1] == 0.8
    # sequential evaluates the centre with the probe's own weights; vmap's batched kernels round differently
    assert s.centre_loss == pytest.approx(float(probe.loss()), rel=0 if strategy == "sequential" else 1e-6)
    assert s.meta["metrics"]["convex_fraction"] == 1.0  # A is positive definite
    assert s.meta["metrics"]["curvature_roughness"] < 1e-3  # constant Laplacian up to float32 rounding


def test_directions_are_filter_normalised_orthogonal_and_seeded():
    probe, _, _ = _quadratic_probe()
    d1, d2, cos = plane_directions(probe.params, 3)
    w = probe.params["w"]
    torch.testing.assert_close(_filter_norms(d1["w"]), _filter_norms(w))
    torch.testing.assert_close(_filter_norms(d2["w"]), _filter_norms(w))
    assert torch.equal(d1["bias"], torch.zeros(4))  # Li et al.'s "biasbn" ignore
    assert abs(cos["cosine_after"]) < 1e-6 and cos["cosine_after"] == pytest.approx(cosine(d1, d2))
    assert abs(cos["cosine_before"]) > 1e-3
    per_filter = (d1["w"] * d2["w"]).sum(dim=1)
    assert float(per_filter.abs().max()) < 1e-5
    e1, _, _ = plane_directions(probe.params, 3)
    f1, _, _ = plane_directions(probe.params, 4)
    assert torch.equal(e1["w"], d1["w"]) and not torch.equal(f1["w"], d1["w"])
    g1, _, _ = plane_directions(probe.params, 3, bias_mode="weight")
    assert torch.equal(g1["bias"], probe.params["bias"])


class SmallConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 8 * 8, 3)
        torch.nn.init.zeros_(self.fc.bias)  # the all-zero bias that makes loss-landscapes divide 0 by 0

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def _conv_probe():
    torch.manual_seed(0)
    net = SmallConvNet()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.1, 0.1)
        net.bn.running_var.uniform_(0.5, 1.5)
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(16, 1, 8, 8, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    return net, module_probe(net, lambda f, x, y: F.cross_entropy(f(x), y), name="conv", data={"x": x, "y": y})


@pytest.mark.parametrize("bias_mode", ["ignore", "weight"])
def test_dstab_equals_loss_landscapes_at_the_same_true_coordinates(bias_mode):
    net, probe = _conv_probe()
    net.train()
    before = module_state(net)
    ours = landscape.surface(probe, grid=5, radius=0.5, seed=1, bias_mode=bias_mode)
    ref = reference.surface_ll(probe, grid=5, radius=0.5, seed=1, bias_mode=bias_mode)
    np.testing.assert_allclose(ref.loss, ours.loss, rtol=1e-5)
    assert ref.meta["cosine_after"] == ours.meta["cosine_after"]
    # the full zig-zag output, every point at its mapped true coordinate
    d1, d2, _ = plane_directions(probe.params, 1, bias_mode)
    raw = reference.planar_with_directions(probe, d1, d2, 4, (-0.3, -0.3), 0.2)
    where = reference.true_coordinates(4, (-0.3, -0.3), 0.2)
    np.testing.assert_allclose(
        raw, landscape.plane_losses(probe, d1, d2, where.reshape(-1, 2)).reshape(4, 4), rtol=1e-5
    )
    # the shift is real: without the mapping, odd rows would not match
    naive = np.stack(np.meshgrid(-0.3 + 0.2 * np.arange(4), -0.3 + 0.2 * np.arange(1, 5), indexing="ij"), -1)
    wrong = landscape.plane_losses(probe, d1, d2, naive.reshape(-1, 2)).reshape(4, 4)
    assert not np.allclose(raw[1], wrong[1], rtol=1e-3)
    np.testing.assert_allclose(raw[0], wrong[0], rtol=1e-5)
    assert_unchanged(net, before)


def test_surfaces_leave_the_callers_model_alone(ckpts):
    bundle = checkpoints.load(ckpts["toy_gan"])
    bundle.generator.train()
    before = {r: module_state(m) for r, m in bundle.modules.items()}
    probe = gan_probe(bundle, "g", batch_size=8)
    landscape.surface(probe, grid=3, radius=0.1, strategy="vmap")
    reference.surface_ll(probe, grid=3, radius=0.1)
    for r, m in bundle.modules.items():
        assert_unchanged(m, before[r])


def test_dm_surface_centre_rows_and_cache_round_trip(ckpts, tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path))
    probe = dm_probe(checkpoints.load(ckpts["toy_dm"]), [50, 500], batch_size=16)
    full = landscape.surface(probe, grid=5, radius=0.5)
    assert full.centre_loss == pytest.approx(float(probe.loss()), rel=1e-6)
    part = landscape.surface(probe, grid=5, radius=0.5, rows=[1, 3])
    np.testing.assert_array_equal(part.loss[[1, 3]], full.loss[[1, 3]])
    assert np.isnan(part.loss[[0, 2, 4]]).all() and "metrics" not in part.meta
    with pytest.raises(DstabError, match="lacks rows"):
        landscape.with_metrics(part)
    stored = cache.store("surface", {"g": 5}, [probe.describe()["checkpoint_sha256"]], *full.to_record())
    found = cache.lookup("surface", {"g": 5}, [probe.describe()["checkpoint_sha256"]])
    back = landscape.Surface.from_record(found.meta, found.arrays)
    np.testing.assert_array_equal(back.loss, full.loss)
    assert back.meta["metrics"] == full.meta["metrics"]
    assert stored.key == found.key


def test_bad_grids_are_refused_and_costly_ones_warned():
    probe, _, _ = _quadratic_probe()
    for grid, match in [(2, ">= 3"), (6, "odd"), (1001, "absurd")]:
        with pytest.raises(DstabError, match=match):
            landscape.surface(probe, grid=grid)
    with pytest.raises(DstabError, match="radius"):
        landscape.surface(probe, grid=5, radius=0.0)
    # LayerNorm has only 1-D parameters: with Li et al.'s "ignore" nothing moves
    only_biases = module_probe(torch.nn.LayerNorm(4), lambda f: (f(torch.arange(8.0).reshape(2, 4)) ** 2).sum())
    with pytest.raises(DstabError, match="move no parameter"):
        landscape.surface(only_biases, grid=3)
    assert landscape.surface(only_biases, grid=3, bias_mode="weight").meta["finite"]
    with pytest.warns(landscape.CostWarning, match=r"roughly 2\.5 min"):
        assert cost.warn_if_slow(150, 1.0, "test") == 150.0


@pytest.mark.parametrize("name,role", [("digits_dm", None), ("digits_gan", "g"), ("digits_gan", "d")])
def test_vmap_and_sequential_agree_on_unet_and_batchnorm_probes(ckpts, name, role):
    bundle = checkpoints.load(ckpts[name])
    probe = dm_probe(bundle, 700, 2) if role is None else gan_probe(bundle, role, 4)
    coords = np.array([[0.0, 0.0], [0.5, -0.25]])
    d1, d2, _ = plane_directions(probe.params, 0)
    seq = landscape.plane_losses(probe, d1, d2, coords, "sequential")
    vm = landscape.plane_losses(probe, d1, d2, coords, "vmap", memory_budget=1)  # chunks of one point
    np.testing.assert_allclose(vm, seq, rtol=1e-5)
    with torch.no_grad():
        moved = {k: probe.params[k] + 0.5 * d1[k] - 0.25 * d2[k] for k in probe.params}
        assert seq[1] == pytest.approx(float(probe.loss(moved)), rel=1e-6)


def test_the_documented_loss_landscapes_defects_are_real():
    """Why dstab passes its own directions and copies (reference.py, defects 2, 3 and 5)."""
    from loss_landscapes import random_plane
    from loss_landscapes.metrics import Loss
    from loss_landscapes.model_interface.model_parameters import ModelParameters, orthogonal_to, rand_u_like

    net, probe = _conv_probe()
    metric = Loss(F.cross_entropy, probe.data["x"], probe.data["y"])
    with pytest.raises(ZeroDivisionError):  # the all-zero fc.bias
        random_plane(net, metric, distance=1, steps=4, normalization="filter")
    net, _ = _conv_probe()  # a fresh one: the failed call already switched requires_grad off
    with torch.no_grad():
        net.fc.bias.fill_(0.1)
        net.bn.bias.fill_(0.1)  # BatchNorm's shift starts at zero too
    before = module_state(net)
    torch.manual_seed(0)
    random_plane(net, metric, distance=1, steps=4, normalization="filter")
    after = module_state(net)
    assert not any(after["requires_grad"].values()) and all(before["requires_grad"].values())
    assert not torch.equal(after["tensors"]["conv.weight"], before["tensors"]["conv.weight"])  # moved in place
    start = ModelParameters([p.detach().clone() for p in net.parameters()])
    d1 = rand_u_like(start)
    d2 = orthogonal_to(d1)
    flat = lambda d: torch.cat([p.reshape(-1) for p in d.parameters])
    cos = lambda: float(F.cosine_similarity(flat(d1), flat(d2), dim=0))
    assert abs(cos()) < 1e-4
    d1.filter_normalize_(start)
    d2.filter_normalize_(start)
    assert cos() > 0.3  # orthogonal before normalisation, far from it after


def test_vmap_halves_its_chunk_when_the_device_runs_out_of_memory(monkeypatch):
    probe, _, _ = _quadratic_probe()
    d1, d2, _ = plane_directions(probe.params, 0)
    coords = np.stack(np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3), indexing="ij"), -1).reshape(-1, 2)
    real_vmap, sizes = landscape.vmap, []

    def fake_vmap(fn, limit):
        def call(stacked):
            n = next(iter(stacked.values())).shape[0]
            sizes.append(n)
            if n > limit:
                raise torch.OutOfMemoryError("fake: too many points at once")
            return real_vmap(fn)(stacked)

        return call

    monkeypatch.setattr(landscape, "vmap", lambda fn: fake_vmap(fn, 2))
    got = landscape.plane_losses(probe, d1, d2, coords, "vmap")  # budget allows all 9 points at once
    np.testing.assert_allclose(got, landscape.plane_losses(probe, d1, d2, coords, "sequential"), rtol=1e-6)
    assert sizes[:4] == [9, 4, 2, 2] and sum(s for s in sizes if s <= 2) == 9
    monkeypatch.setattr(landscape, "vmap", lambda fn: fake_vmap(fn, 0))
    with pytest.raises(DstabError, match="does not fit"):
        landscape.plane_losses(probe, d1, d2, coords, "vmap")


@pytest.mark.parametrize(
    "engine",
    ["sequential", "vmap", "vmap-chunks", "loss-landscapes", "interpolate", "hessian"],
)
def test_every_engine_reports_done_so_far_up_to_the_total(engine):
    """One progress protocol, progress(stage, done, total), with `done` counted the same way everywhere:
    the units done so far (never 'n more'), rising to the total."""
    from dstab.analysis import hessian, interpolation

    probe, _, _ = _quadratic_probe()
    seen = []

    def progress(stage, done, total):
        seen.append((stage, done, total))

    if engine in ("sequential", "vmap"):
        landscape.surface(probe, 5, 0.5, 0, strategy=engine, progress=progress)
    elif engine == "vmap-chunks":  # the engine's own callback, one point per batched call
        d1, d2, _ = plane_directions(probe.params, 0)
        coords = np.array([(a, b) for a in (-0.5, 0.0, 0.5) for b in (-0.5, 0.5)])
        tick = landscape.reporting(progress, "surface", len(coords))
        landscape.plane_losses(probe, d1, d2, coords, "vmap", tick, memory_budget=1)
    elif engine == "loss-landscapes":
        reference.surface_ll(probe, 5, 0.5, 0, progress=progress)
    elif engine == "interpolate":
        other, _, _ = _quadratic_probe()
        interpolation.interpolate(probe, other, -0.5, 1.5, 4, progress)
    else:
        hessian.spectrum(probe, top_k=1, trace_samples=3, slq_runs=1, slq_steps=4, progress=progress)
    for stage in {s for s, _, _ in seen}:
        counts = [(d, t) for s, d, t in seen if s == stage]
        done = [d for d, _ in counts]
        assert done == sorted(done) and done[0] >= 1 and len(set(t for _, t in counts)) == 1, (stage, counts)
        if stage != "lanczos":  # Lanczos may stop early, below its budget of products
            assert done[-1] == counts[0][1], (stage, counts)
