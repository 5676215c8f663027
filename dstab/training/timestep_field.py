"""Every preset's distribution over t on one schedule: where CLTS and the field put their training signal.

For each preset with a timestep rule of its own (the presets that change only `timesteps`; `baseline`
stands for uniform t), the trainer's own sampler is built on the chosen schedule and read at the end of
CLTS's curriculum (iteration = the run's steps, so g = 1). Two views of each:
- "draws": the P(t) the sampler draws t from (uniform for a pure weighting);
- "effective": P(t) times the loss weight of t, normalised: each t's share of the training loss's
  weight (a weighting's P(t)-equivalent; equal to "draws" for unit weights).
Each comes with its mass below T/2 and its mean t, and a one-line formula written from the rule's
resolved options. Left out: `loss-second-moment`, whose P(t) follows the run's losses (uniform until
every t has a history), and `immiscible`, which draws t uniformly and pairs the noise instead.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..diffusion import Diffusion
from ..errors import require
from . import config as train_config
from .sampler_options import sampler_options
from .timesteps import make_sampler

VIEWS = ("effective", "draws")
LEFT_OUT = ("loss-second-moment",)


def field_presets() -> list[str]:
    """The presets whose only change from `baseline` is their timestep rule, `baseline` first."""
    return [name for name, over in train_config.PRESETS.items() if set(over) <= {"timesteps"} and name not in LEFT_OUT]


def rule_text(name: str, opts: dict, sampler, T: int) -> str:
    """The rule as a formula with its values, e.g. 'ln sigma ~ N(-1.2, 1.2^2), sigma_t = ...'."""
    texts = {
        "uniform": lambda: f"P(t) = 1/T, T = {T}",
        "clts": lambda: (
            f"P(t) ∝ exp(-(t - {sampler.mu:g})^2 / (2 · {sampler.sigma:g}^2)) once g = 1 "
            "(Eq. 7-8: mixed with uniform until target_iter)"
        ),
        "min-snr": lambda: f"uniform t; eps weight min(SNR_t, {opts['gamma']:g}) / SNR_t",
        "p2": lambda: f"uniform t; weight 1 / ({opts['k']:g} + SNR_t)^{opts['gamma']:g}",
        "debias": lambda: "uniform t; eps weight 1 / sqrt(SNR_t), divided by its mean over t",
        "lognormal": lambda: (
            f"ln sigma ~ N({opts['p_mean']:g}, {opts['p_std']:g}^2), "
            "sigma_t = sqrt((1 - abar_t) / abar_t)"
            + (
                f"; x0 weight (sigma^2 + {opts['sigma_data']:g}^2) / (sigma · {opts['sigma_data']:g})^2, "
                "mean 1 under P(t)"
                if opts["edm_weight"]
                else ""
            )
        ),
        "logit-normal": lambda: (
            f"flow time u = sigmoid(n), n ~ N({opts['m']:g}, {opts['s']:g}^2); t where log SNR_t = 2 log((1 - u) / u)"
        ),
        "mode": lambda: (
            f"u = 1 - v - {opts['scale']:g} (cos^2(pi v / 2) - 1 + v), v ~ U(0, 1); "
            "t where log SNR_t = 2 log((1 - u) / u)"
        ),
        "laplace": lambda: f"p(lambda) ∝ exp(-|lambda - {opts['mu']:g}| / {opts['b']:g}), lambda = log SNR_t",
        "speed": lambda: (
            f"P(t) ∝ {opts['k']:g} for t < tau = {sampler.tau}, 1 from tau on "
            f"(tau: d sqrt(1 - abar_t) / dt < {opts['eps']:g})"
            + ("; half of each batch mirrored about tau" if opts["dual"] else "")
            + ("; weight 1 / (1 + SNR_t)" if opts["p2"] else "")
        ),
    }
    return texts[name]()


def _share(p: np.ndarray, T: int) -> tuple[float, float]:
    t = np.arange(T)
    return float(p[t < T / 2].sum()), float((p * t).sum())


def field(
    diffusion: dict, presets: list[str] | None = None, steps: int | None = None, timesteps: dict | None = None
) -> dict:
    """{"schedule", "T", "t", "rows"}: per preset its rule, formula, both views and their mass below T/2
    and mean t, on the schedule `diffusion` (a Diffusion config; its prediction decides how eps weights
    apply). `steps`: the run length CLTS's target is a fraction of (default: the preset's own).
    `timesteps`: per preset, the timestep options to draw instead of the preset's (e.g. a run's own
    stored config, so a report pictures what its runs trained with)."""
    d = Diffusion.from_config(copy.deepcopy(diffusion))
    T, rows = d.T, []
    for name in presets or field_presets():
        cfg = train_config.resolve(name, networks=False)
        options = (timesteps or {}).get(name, cfg["timesteps"])
        run_steps = steps or cfg["steps"]
        rule, opts = sampler_options(options, T, run_steps)
        require(rule != "loss-second-moment", f"preset {name!r}: its P(t) follows the run's losses; not drawn here")
        sampler = make_sampler(options, d, run_steps)
        views = {"draws": sampler.pmf(run_steps).numpy(), "effective": sampler.effective_pmf(run_steps).numpy()}
        weighted = not torch.equal(sampler.weights(torch.arange(T), run_steps), torch.ones(T))
        uniform = bool(np.allclose(views["draws"], 1.0 / T, rtol=1e-12, atol=0))
        kind = {(False, True): "uniform", (False, False): "sampler", (True, True): "weighting"}.get(
            (weighted, uniform), "sampler and weighting"
        )
        row = {"preset": name, "rule": rule, "formula": rule_text(rule, opts, sampler, T), "kind": kind}
        for view, p in views.items():
            row[view] = p
            row[f"{view}_below_half"], row[f"{view}_mean_t"] = _share(p, T)
        rows.append(row)
    return {"schedule": d.to_config(), "T": T, "t": np.arange(T), "rows": rows}


def summary_rows(result: dict) -> list[dict]:
    """One table row per preset: its mass below T/2 and mean t in both views, and its formula."""
    half = result["T"] / 2
    return [
        {
            "preset": r["preset"],
            f"P(t < {half:g}) effective": round(r["effective_below_half"], 4),
            "mean t effective": round(r["effective_mean_t"], 1),
            f"P(t < {half:g}) draws": round(r["draws_below_half"], 4),
            "mean t draws": round(r["draws_mean_t"], 1),
            "kind": r["kind"],
            "rule": r["formula"],
        }
        for r in result["rows"]
    ]


def curve_rows(result: dict, view: str) -> list[dict]:
    """The curves as CSV rows: t and each preset's probability in `view`."""
    require(view in VIEWS, f"view must be one of {VIEWS}, got {view!r}")
    return [{"t": int(t), **{r["preset"]: float(r[view][t]) for r in result["rows"]}} for t in result["t"]]
