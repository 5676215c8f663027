"""Probes: the loss each one defines, checked against the formula written out by hand."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from dstab import checkpoints, data
from dstab.analysis.specs import ProbeSpec
from dstab.diffusion import NoiseSource
from dstab.errors import DstabError
from dstab.probes import dm_probe, gan_probe, module_probe
from tests.conftest import assert_unchanged, module_state


def _hand_dm_loss(bundle, ts, batch, seed):
    model, diff = bundle.model, bundle.diffusion
    x0 = data.load(bundle.header["dataset"]).fixed_batch(batch, seed)
    losses = []
    for t in ts:
        eps = NoiseSource(seed, tuple(x0.shape)).step_noise(t)
        a, s = float(diff.sqrt_abar[t]), float(diff.sqrt_one_minus_abar[t])
        out = model(a * x0 + s * eps, torch.full((batch,), t))
        target = eps if diff.prediction == "eps" else x0
        losses.append(((out - target) ** 2).mean())
    return torch.stack(losses).mean()


@pytest.mark.parametrize("name", ["toy_dm", "toy_dm_x0", "digits_dm"])
def test_dm_probe_is_l_simple_at_fixed_x0_and_noise(ckpts, name):
    bundle = checkpoints.load(ckpts[name])
    probe = dm_probe(bundle, [10, 500, 900], batch_size=8, seed=3)
    with torch.no_grad():
        expected = _hand_dm_loss(bundle, [10, 500, 900], 8, 3)
        assert float(probe.loss()) == pytest.approx(float(expected), rel=1e-5)
        again = dm_probe(checkpoints.load(ckpts[name]), [10, 500, 900], batch_size=8, seed=3)
        assert float(again.loss()) == float(probe.loss())
    assert probe.describe()["checkpoint_sha256"] == bundle.sha256
    assert probe.describe()["timesteps"] == [10, 500, 900]


def test_dm_probe_seed_and_timestep_change_the_loss(ckpts):
    bundle = checkpoints.load(ckpts["toy_dm"])
    with torch.no_grad():
        a = float(dm_probe(bundle, 100, 32, seed=0).loss())
        b = float(dm_probe(bundle, 100, 32, seed=1).loss())
        c = float(dm_probe(bundle, 700, 32, seed=0).loss())
    assert len({a, b, c}) == 3


def test_gan_probes_match_hand_written_losses(ckpts):
    bundle = checkpoints.load(ckpts["digits_gan"])
    G, D = copy.deepcopy(bundle.generator).eval(), copy.deepcopy(bundle.discriminator).eval()
    real = data.load("digits").fixed_batch(12, 5)
    z = NoiseSource(5, (12,)).latent(tuple(G.latent_shape))
    with torch.no_grad():
        fake = G(z)
        g_expected = F.softplus(-D(fake)).mean()
        d_expected = (F.softplus(-D(real)) + F.softplus(D(fake))).mean()
        g = gan_probe(bundle, "g", batch_size=12, seed=5)
        d = gan_probe(bundle, "d", batch_size=12, seed=5)
        assert float(g.loss()) == pytest.approx(float(g_expected), rel=1e-6)
        assert float(d.loss()) == pytest.approx(float(d_expected), rel=1e-6)
    assert set(g.params) == {k for k, _ in bundle.generator.named_parameters()}
    assert set(d.buffers) == {k for k, _ in bundle.discriminator.named_buffers()}
    assert g.kind == "gan-g" and d.kind == "gan-d"


def test_probe_gradient_equals_autograd_on_the_model(ckpts):
    bundle = checkpoints.load(ckpts["toy_gan"])
    probe = gan_probe(bundle, "d", batch_size=8, seed=0)
    params = {k: v.clone().requires_grad_(True) for k, v in probe.params.items()}
    grads = torch.autograd.grad(probe.loss(params), list(params.values()))
    D = copy.deepcopy(bundle.discriminator)
    real = data.load("toy2d:8gaussians").fixed_batch(8, 0)
    with torch.no_grad():
        fake = bundle.generator(NoiseSource(0, (8,)).latent((2,)))
    loss = (F.softplus(-D(real)) + F.softplus(D(fake))).mean()
    ref = torch.autograd.grad(loss, list(D.parameters()))
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_probes_leave_the_callers_model_alone(ckpts):
    bundle = checkpoints.load(ckpts["digits_gan"])
    bundle.generator.train()
    bundle.discriminator.requires_grad_(False)
    before = {r: module_state(m) for r, m in bundle.modules.items()}
    for role in ("g", "d"):
        probe = gan_probe(bundle, role, batch_size=4)
        params = {k: v + 0.1 for k, v in probe.params.items()}
        probe.loss(params)
        probe.to("cpu").loss()
    for r, m in bundle.modules.items():
        assert_unchanged(m, before[r])


def test_override_of_some_parameters_only(ckpts):
    bundle = checkpoints.load(ckpts["toy_dm"])
    probe = dm_probe(bundle, 300, 16)
    name = next(iter(probe.params))
    with torch.no_grad():
        base = float(probe.loss())
        moved = float(probe.loss({name: probe.params[name] + 1.0}))
        assert float(probe.loss({name: probe.params[name]})) == base
    assert moved != base


def test_module_probe_on_a_linear_model_is_exact():
    lin = torch.nn.Linear(3, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        lin.bias.fill_(0.25)
    x = torch.tensor([[1.0, 1.0, 2.0], [0.0, 1.0, -2.0]])
    probe = module_probe(lin, lambda f, x: (f(x) ** 2).mean(), data={"x": x})
    # outputs 1 - 2 + 1 + 0.25 = 0.25 and -2 - 1 + 0.25 = -2.75
    assert float(probe.loss()) == pytest.approx((0.25**2 + 2.75**2) / 2)
    assert float(probe.loss({"bias": torch.tensor([0.0])})) == pytest.approx((0.0 + 3.0**2) / 2)


def test_wrong_kind_bad_options_and_nan_weights_are_refused(ckpts, tmp_path):
    dm, gan = checkpoints.load(ckpts["toy_dm"]), checkpoints.load(ckpts["toy_gan"])
    with pytest.raises(DstabError, match="is a dm checkpoint"):
        gan_probe(dm, "g")
    with pytest.raises(DstabError, match="is a gan checkpoint"):
        dm_probe(gan, 10)
    with pytest.raises(DstabError, match="outside 0..999"):
        dm_probe(dm, 1000)
    with pytest.raises(DstabError, match="role"):
        gan_probe(gan, "x")
    with pytest.raises(DstabError, match="DM"):
        ProbeSpec(role="g").build(dm)
    with pytest.raises(DstabError, match=r"samples shaped \(2,\) but dataset digits has \(1, 8, 8\)"):
        dm_probe(dm, 10, dataset="digits")
    with torch.no_grad():
        next(gan.discriminator.parameters())[0] = float("nan")
    with pytest.raises(DstabError, match="NaN or inf"):
        gan_probe(gan, "g")  # the frozen D is checked too
    with torch.no_grad():
        next(dm.model.parameters())[0] = float("inf")
    with pytest.raises(DstabError, match="NaN or inf"):
        dm_probe(dm, 10)


def test_a_timestep_past_T_is_refused_by_the_spec_before_any_probe_is_built(ckpts, monkeypatch):
    """ProbeSpec.check owns the t < T rule: the CLI, the pages' Plans (a control's marks, the small
    multiples) and a key spelled from a manifest entry refuse t >= T, never list it as 'not stored'."""
    from dstab import probes
    from dstab.analysis.results import Plan
    from dstab.analysis.specs import HessianSpec, SurfaceSpec
    from dstab.zooresults import EntryCheckpoint

    dm = checkpoints.load(ckpts["toy_dm"])
    T = dm.diffusion.T
    monkeypatch.setattr(probes, "dm_probe", lambda *a, **k: pytest.fail("no probe is built to check a spec"))
    for t in (T, T + 7, -1):
        with pytest.raises(DstabError, match=rf"timestep {t} is outside 0..{T - 1}"):
            ProbeSpec(timesteps=(t,)).check(dm)
        with pytest.raises(DstabError, match=rf"timestep {t} is outside 0..{T - 1}"):
            Plan(SurfaceSpec(probe=ProbeSpec(timesteps=(1, t))), [dm])
    entry = {"kind": "dm", "dataset": "toy2d:8gaussians", "train_config": {"diffusion": {"T": T}}}
    entry["checkpoints"] = {"final": {"sha256": dm.sha256}}
    with pytest.raises(DstabError, match=rf"timestep {T} is outside"):
        HessianSpec(probe=ProbeSpec(timesteps=(T,))).params([EntryCheckpoint("toy/dm", entry)])
    last = ProbeSpec(timesteps=(T - 1,))
    assert last.params(dm)["timesteps"] == [T - 1] == last.params(EntryCheckpoint("toy/dm", entry))["timesteps"]


def test_a_generator_probe_loads_no_dataset_and_keeps_its_cache_key(ckpts, monkeypatch):
    bundle = checkpoints.load(ckpts["toy_gan"])
    d = gan_probe(bundle, "d", batch_size=8, seed=3)
    loaded = []
    monkeypatch.setattr(data, "load", lambda *a, **k: loaded.append(a) or pytest.fail("G's loss reads no data"))
    g = gan_probe(bundle, "g", batch_size=8, seed=3)
    assert loaded == [] and g.describe()["dataset"] == d.describe()["dataset"] == "toy2d:8gaussians"
    assert float(g.loss()) > 0


@pytest.mark.parametrize("spec", ["digits", "digits:x", "toy2d", *(f"toy2d:{v}" for v in data.TOY_VARIANTS)])
def test_the_canonical_spec_is_the_loaded_datasets(spec):
    assert data.canonical_spec(spec) == data.load(spec).spec
    with pytest.raises(DstabError, match="unknown dataset 'nope'"):
        data.canonical_spec("nope")
