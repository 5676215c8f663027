"""The field's timestep rules (issue 23): each P(t) against its closed form, golden values on the zoo's
schedule, chi-square of the draws, SD3's rules against diffusers, SpeeD's threshold and dual draw, the
Debias / EDM / P2 weights, state round trips, and the presets that name them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from dstab.diffusion import Diffusion
from dstab.errors import DstabError
from dstab.training import config as train_config
from dstab.training import timestep_rules as rules
from dstab.training.timesteps import make_sampler

T = 1000
D = Diffusion(T=T)  # the zoo's schedule: linear 1e-4..0.02


def lam_np(T: int = T) -> np.ndarray:
    """log-SNR of the linear schedule, written out independently of dstab."""
    s = 1000.0 / T
    abar = np.cumprod(1 - np.linspace(s * 1e-4, s * 0.02, T))
    return np.log(abar / (1 - abar))


def cells(lam: np.ndarray) -> np.ndarray:
    return np.concatenate([[np.inf], (lam[:-1] + lam[1:]) / 2, [-np.inf]])


def mode_inverse(x: float, s: float) -> float:
    f = lambda v: 1 - v - s * (math.cos(math.pi * v / 2) ** 2 - 1 + v)  # noqa: E731
    return 0.0 if x >= 1 else 1.0 if x <= 0 else optimize.brentq(lambda v: f(v) - x, 0.0, 1.0, xtol=1e-15)


# each rule's CDF in log-SNR, from scipy (the module under test is torch)
CLOSED = {
    "lognormal": lambda x: stats.norm.cdf(x, loc=2.4, scale=2.4),  # lambda = -2 ln sigma ~ N(-2 P_mean, (2 P_std)^2)
    "logit-normal": lambda x: stats.norm.cdf(x, loc=0.0, scale=2.0),  # lambda = -2 n, n ~ N(0, 1)
    "laplace": lambda x: stats.laplace.cdf(x, loc=0.0, scale=0.5),
    "mode": lambda x: np.array(
        [mode_inverse(1 / (1 + math.exp(v / 2)) if np.isfinite(v) else float(v < 0), 1.29) for v in x]
    ),
}
RULES = ["lognormal", "logit-normal", "mode", "laplace"]


@pytest.mark.parametrize("name", RULES)
def test_pmf_is_the_closed_form_cdf_integrated_over_each_log_snr_cell(name):
    p = make_sampler({"name": name}, D, 100).pmf(0)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-12)
    b = cells(lam_np())
    for t in (0, 1, 137, 500, 998, 999):
        want = CLOSED[name](np.array([b[t]]))[0] - CLOSED[name](np.array([b[t + 1]]))[0]
        assert p[t].item() == pytest.approx(want, rel=1e-8, abs=1e-15)


# golden values on the zoo's schedule: P(t) at t = 0, 250, 500, 999; P(t < 500); mean t
GOLDEN = {
    "lognormal": ((3.7543281888e-03, 1.1134261876e-03, 2.3227755304e-04, 9.3665935230e-08), 0.978720, 133.2117),
    "logit-normal": ((5.2145389868e-06, 2.1249595532e-03, 1.0194384574e-03, 2.1656878574e-07), 0.891322, 278.7964),
    "mode": ((5.2930892086e-03, 4.7657984963e-03, 6.1313252218e-04, 2.7813217225e-03), 0.882547, 283.9866),
    "laplace": ((1.0998914779e-08, 8.9825137027e-03, 7.8103427554e-05, 8.3108418864e-10), 0.996402, 261.1474),
    "speed": ((8.4080717489e-04, 1.5414798206e-03, 1.4013452915e-03, 1.4013452915e-04), 0.750140, 338.9100),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_pmf_values_mass_below_half_and_mean_t(name):
    values, below, mean = GOLDEN[name]
    p = make_sampler({"name": name}, D, 100).pmf(0)
    assert [p[t].item() for t in (0, 250, 500, 999)] == pytest.approx(values, rel=1e-9)
    assert p[:500].sum().item() == pytest.approx(below, abs=1e-6)
    assert (p * torch.arange(T)).sum().item() == pytest.approx(mean, abs=1e-4)


@pytest.mark.parametrize(
    "name,below,mean",
    # issue 23's table (10^6 draws, rounded to the nearest t through log-SNR)
    [("lognormal", 0.979, 133), ("logit-normal", 0.891, 279), ("laplace", 0.996, 261), ("speed", 0.750, None)],
)
def test_the_issue_table_on_the_zoo_schedule(name, below, mean):
    p = make_sampler({"name": name}, D, 100).pmf(0)
    assert round(p[:500].sum().item(), 3) == below
    if mean is not None:
        assert round((p * torch.arange(T)).sum().item()) == mean


def pooled_chisquare(t: np.ndarray, pmf: np.ndarray, min_expected: float = 20.0) -> float:
    """p-value of the draws against pmf, neighbouring t pooled until each bin expects >= min_expected draws."""
    observed, expected = np.bincount(t, minlength=len(pmf)).astype(float), pmf * len(t)
    obs, exp, o, e = [], [], 0.0, 0.0
    for oi, ei in zip(observed, expected):
        o, e = o + oi, e + ei
        if e >= min_expected:
            obs, exp, o, e = [*obs, o], [*exp, e], 0.0, 0.0
    obs[-1], exp[-1] = obs[-1] + o, exp[-1] + e
    exp = np.array(exp) * sum(obs) / sum(exp)
    return stats.chisquare(obs, exp).pvalue


@pytest.mark.parametrize(
    "opts", [{"name": n} for n in [*RULES, "debias"]] + [{"name": "speed", "dual": False}, {"name": "speed"}]
)
def test_draws_follow_the_pmf_chi_square(opts):
    s = make_sampler(opts, D, 100)
    gen = torch.Generator().manual_seed(1)
    t = torch.cat([s.sample(64, 0, gen)[0] for _ in range(1500)]).numpy()  # even batches: SpeeD's dual is exact
    assert pooled_chisquare(t, s.pmf(0).numpy()) > 1e-3
    if opts["name"] != "debias":
        assert pooled_chisquare(t, np.full(T, 1 / T)) < 1e-12  # and it is not uniform


@pytest.mark.parametrize(
    "scheme,kwargs,name",
    [
        ("logit_normal", {"logit_mean": 0.0, "logit_std": 1.0}, "logit-normal"),
        ("logit_normal", {"logit_mean": 0.5, "logit_std": 0.7}, "logit-normal"),
        ("mode", {"mode_scale": 1.29}, "mode"),
        ("mode", {"mode_scale": -0.5}, "mode"),
    ],
)
def test_sd3_rules_agree_with_diffusers_compute_density_for_timestep_sampling(scheme, kwargs, name):
    from diffusers.training_utils import compute_density_for_timestep_sampling

    gen = torch.Generator().manual_seed(0)
    u = compute_density_for_timestep_sampling(scheme, 200_000, generator=gen, **kwargs).double()
    opts = (
        {"m": kwargs["logit_mean"], "s": kwargs["logit_std"]}
        if name == "logit-normal"
        else {"scale": kwargs["mode_scale"]}
    )
    cdf = rules.CDFS[name]({**opts})
    # diffusers' u is the flow time; u <= x exactly when lambda = 2 log((1 - u) / u) >= 2 log((1 - x) / x)
    u_cdf = lambda x: 1 - cdf(torch.as_tensor(2 * np.log((1 - x) / x), dtype=torch.float64)).numpy()  # noqa: E731
    assert stats.kstest(u.numpy(), u_cdf).pvalue > 1e-3
    # and the same draws, rounded to the nearest t in log-SNR, follow dstab's P(t)
    lam = 2 * torch.log((1 - u) / u)
    t = np.searchsorted(-cells(lam_np())[1:-1], -lam.numpy())  # cells fall in lambda: t = cells above
    p = make_sampler({"name": name, **opts}, D, 100).pmf(0).numpy()
    assert pooled_chisquare(t, p) > 1e-3


def test_speed_threshold_base_pmf_and_dual_follow_the_authors_definitions():
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    grad = np.gradient(np.sqrt(1 - abar))
    tau = int(np.argmax(grad < 1e-4)) + 1  # the authors' `meaningful_steps`
    assert rules.speed_threshold("linear", T, 1e-4) == tau == 642
    s = make_sampler({"name": "speed", "dual": False, "p2": False}, D, 100)
    p = s.pmf(0)
    assert p[0].item() == pytest.approx(5 / (5 * 642 + 358), rel=1e-12)
    assert p[641].item() / p[642].item() == pytest.approx(5.0)
    assert torch.equal(s.weights(torch.arange(T), 0), torch.ones(T))
    dual = make_sampler({"name": "speed"}, D, 100)
    t, w = dual.sample(10, 0, torch.Generator().manual_seed(0))
    first, second = t[:5], t[5:]
    assert torch.equal(second, torch.where(first < tau, tau - first, first - tau))
    snr = D.snr(t).double()
    assert torch.allclose(w.double(), 1 / (1 + snr), rtol=1e-5)  # P2, k = 1, gamma = 1
    # P_dual(d) collects P(tau - d) (below tau) and P(tau + d) (from tau on)
    d = 100
    want = (p[d] + (p[tau - d] + p[tau + d])) / 2
    assert dual.pmf(0)[d].item() == pytest.approx(want.item(), rel=1e-12)


def test_speed_refuses_a_threshold_the_schedule_never_reaches():
    with pytest.raises(DstabError, match="give a larger eps"):
        make_sampler({"name": "speed", "eps": 1e-12}, D, 100)


def test_debias_weight_is_inverse_sqrt_snr_normalised_to_mean_one():
    s = make_sampler({"name": "debias"}, D, 100)
    t = torch.arange(T)
    w = s.weights(t, 0).double()
    raw = 1 / np.sqrt(np.exp(lam_np()))
    assert w.mean().item() == pytest.approx(1.0, rel=1e-6)
    assert w.numpy() == pytest.approx(raw / raw.mean(), rel=1e-6)
    assert raw.mean() == pytest.approx(17.817, abs=1e-3)  # the normalising constant stated in the docstring
    assert torch.equal(s.pmf(0), torch.full((T,), 1 / T, dtype=torch.float64))
    eff = s.effective_pmf(0)  # the P(t)-equivalent: pmf proportional to the weight
    assert eff.numpy() == pytest.approx(raw / raw.sum(), rel=1e-6)
    assert eff[:500].sum().item() == pytest.approx(0.03328, abs=1e-5)
    x0 = make_sampler({"name": "debias"}, Diffusion(T=T, prediction="x0"), 100).weights(t, 0).double().numpy()
    assert x0 == pytest.approx(np.sqrt(np.exp(lam_np())) / np.sqrt(np.exp(lam_np())).mean(), rel=1e-5)


def test_edm_weight_is_edm_lambda_times_sigma_squared_normalised_under_its_pmf():
    s = make_sampler({"name": "lognormal", "edm_weight": True}, D, 100)
    sigma2 = np.exp(-lam_np())
    edm_lambda = (sigma2 + 0.25) / (sigma2 * 0.25)  # Karras et al. Table 1, on the x0 error
    raw = edm_lambda * sigma2  # on the eps error (x0 error = sigma eps error)
    p = s.pmf(0).numpy()
    assert (p * raw).sum() == pytest.approx(7.4577, abs=1e-4)
    assert s.weights(torch.arange(T), 0).double().numpy() == pytest.approx(raw / (p * raw).sum(), rel=1e-5)
    assert (p * s.weights(torch.arange(T), 0).double().numpy()).sum() == pytest.approx(1.0, rel=1e-6)
    assert torch.equal(s.pmf(0), make_sampler({"name": "lognormal"}, D, 100).pmf(0))  # same P(t)
    assert s.effective_pmf(0)[:500].sum().item() == pytest.approx(0.438902, abs=1e-6)


ROUND_TRIP = [{"name": n} for n in [*RULES, "debias", "speed"]] + [{"name": "lognormal", "edm_weight": True}]


@pytest.mark.parametrize("opts", ROUND_TRIP)
def test_state_dict_round_trips_and_the_stream_continues(opts):
    a, b = make_sampler(opts, D, 100), make_sampler(opts, D, 100)
    b.load_state_dict(a.state_dict())
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for it in (0, 50):
        ta, wa = a.sample(32, it, ga)
        tb, wb = b.sample(32, it, gb)
        assert torch.equal(ta, tb) and torch.equal(wa, wb)
    assert torch.equal(a.pmf(7), b.pmf(7))


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"name": "mode", "scale": 2.0}, "mode scale must lie in"),
        ({"name": "mode", "scale": -1.0}, "mode scale must lie in"),
        ({"name": "speed", "k": 0.5}, "speed k"),
        ({"name": "lognormal", "p_std": 0}, "lognormal p_std must be > 0"),
        ({"name": "lognormal", "edm_weight": "yes"}, "edm_weight must be true or false"),
        ({"name": "laplace", "b": -1}, "laplace b must be > 0"),
        ({"name": "logit-normal", "s": "wide"}, "logit-normal s must be a number"),
        ({"name": "debias", "gamma": 5}, "unknown options"),
    ],
)
def test_bad_rule_options_are_refused_with_the_option_named(opts, match):
    with pytest.raises(DstabError, match=match):
        make_sampler(opts, D, 100)


NEW_PRESETS = ["debias", "lognormal", "edm", "logit-normal", "sd3-mode", "laplace", "speed", "immiscible"]


@pytest.mark.parametrize("name", NEW_PRESETS)
def test_each_new_preset_resolves_without_torch_checks_and_builds_its_sampler(name):
    cfg = train_config.resolve(name, networks=False)
    sampler = make_sampler(cfg["timesteps"], Diffusion.from_config(cfg["diffusion"]), cfg["steps"])
    assert sampler.effective_pmf(cfg["steps"]).sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (cfg["noise_pairing"] == "immiscible") == (name == "immiscible")


def test_the_sweep_plans_the_new_presets_by_name():
    from dstab.experiments import speedup

    group, planned = speedup.plan("digits", ["baseline", "clts", *NEW_PRESETS], [0], group="roster-test")
    assert [r.variant for r in planned] == ["baseline", "clts", *NEW_PRESETS]
    by = {r.variant: r.config for r in planned}
    assert by["edm"]["timesteps"] == {"name": "lognormal", "edm_weight": True}
    assert by["immiscible"]["noise_pairing"] == "immiscible" and by["immiscible"]["timesteps"] == {"name": "uniform"}
