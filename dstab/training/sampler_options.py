"""The options of a timestep sampler, checked without PyTorch.

`timesteps.make_sampler` builds a sampler from the options this module
accepts; the run manager checks a queued run's `timesteps` config with the
same function (`sampler_options`) without importing PyTorch. The rules
researchers compare with today (`timestep_rules`) take their defaults from
`RULE_DEFAULTS`, each from its paper.
"""

from __future__ import annotations

import math

from ..errors import DstabError, require
from ..paper import CLTS_MU_FRACTION, CLTS_SIGMA_FRACTION  # CLTS (paper Sec. 4.2): mu = 0.3 T, sigma = T

# the field's rules (timestep_rules.py) and their papers' defaults
RULE_DEFAULTS = {
    "debias": {},  # eps weight 1 / sqrt(SNR_t), Yu et al., arXiv 2310.08442
    # ln sigma ~ N(p_mean, p_std^2); edm_weight: (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (Karras et al. 2022)
    "lognormal": {"p_mean": -1.2, "p_std": 1.2, "edm_weight": False, "sigma_data": 0.5},
    "logit-normal": {"m": 0.0, "s": 1.0},  # t/T = sigmoid(n), n ~ N(m, s^2) (Esser et al. 2024, SD3)
    "mode": {"scale": 1.29},  # SD3's mode sampling; 1.29 is the paper's and diffusers' example value
    "laplace": {"mu": 0.0, "b": 0.5},  # p(log-SNR) ~ exp(-|lambda - mu| / b) (Hang et al., arXiv 2407.03297)
    # SpeeD (Wang et al., arXiv 2405.17403): k times more draws below the threshold tau, where
    # d sqrt(1 - abar_t) / dt first falls below eps; dual: half the batch mirrored about tau; p2: 1 / (1 + SNR)
    "speed": {"k": 5.0, "eps": 1e-4, "dual": True, "p2": True},
}
# SD3's mode sampling is monotone (a density) only for -1 < scale < 2 / (pi - 2) (Esser et al. 2024, mode sampling)
MODE_SCALE_MAX = 2.0 / (math.pi - 2.0)
ALLOWED = {  # sampler name -> its options
    "uniform": set(),
    "clts": {"target_iter", "target_frac", "mu", "sigma"},
    "min-snr": {"gamma"},
    "p2": {"k", "gamma"},
    "loss-second-moment": {"history", "uniform_prob"},
    **{name: set(defaults) for name, defaults in RULE_DEFAULTS.items()},
}
SAMPLERS = tuple(ALLOWED)


def _number(value, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DstabError(f"{what} must be a number, got {value!r}") from None
    require(math.isfinite(out), f"{what} must be finite, got {value!r}")
    return out


def clts_settings(T: int, target_iter, mu=None, sigma=None) -> tuple[float, float, float]:
    """(mu, sigma, target_iter) of CLTS, paper defaults mu = 0.3 T and sigma = T; DstabError if invalid."""
    mu = CLTS_MU_FRACTION * T if mu is None else _number(mu, "CLTS mu")
    sigma = CLTS_SIGMA_FRACTION * T if sigma is None else _number(sigma, "CLTS sigma")
    target_iter = _number(target_iter, "CLTS target_iter")
    require(0 <= mu < T, f"CLTS mu must lie in [0, T={T}), got {mu}")
    require(sigma > 0, f"CLTS sigma must be > 0, got {sigma}")
    require(target_iter > 0, f"CLTS target_iter must be > 0, got {target_iter}")
    return mu, sigma, target_iter


def second_moment_settings(history=10, uniform_prob=0.001) -> tuple[int, float]:
    """(history, uniform_prob) of the loss-second-moment sampler; DstabError if invalid."""
    history, uniform_prob = _number(history, "loss-second-moment history"), _number(uniform_prob, "uniform_prob")
    require(history >= 1, "loss-second-moment history must be >= 1")
    require(0 <= uniform_prob <= 1, "loss-second-moment uniform_prob must lie in [0, 1]")
    return int(history), uniform_prob


def rule_settings(name: str, opts: dict) -> dict:
    """The options of one of the field's rules (RULE_DEFAULTS) with its defaults filled in; DstabError if invalid."""
    out = {**RULE_DEFAULTS[name], **opts}
    for key, default in RULE_DEFAULTS[name].items():
        if isinstance(default, bool):
            require(isinstance(out[key], bool), f"{name} {key} must be true or false, got {out[key]!r}")
        else:
            out[key] = _number(out[key], f"{name} {key}")
    positive = {"lognormal": ("p_std", "sigma_data"), "logit-normal": ("s",), "laplace": ("b",), "speed": ("eps",)}
    for key in positive.get(name, ()):
        require(out[key] > 0, f"{name} {key} must be > 0, got {out[key]}")
    if name == "mode":
        require(
            -1 < out["scale"] < MODE_SCALE_MAX,
            f"mode scale must lie in (-1, {MODE_SCALE_MAX:.4f}) so that the sampled t is monotone in the "
            f"uniform draw (SD3), got {out['scale']}",
        )
    if name == "speed":
        require(out["k"] >= 1, f"speed k (how much likelier t is below the threshold) must be >= 1, got {out['k']}")
    return out


def sampler_options(options, T: int, total_steps: int) -> tuple[str, dict]:
    """(name, keyword arguments of its sampler class) from a config such as {"name": "clts",
    "target_frac": 0.2}; CLTS may give its target as a fraction of the run instead of target_iter.
    Every option is checked here: DstabError naming the bad one."""
    require(isinstance(options, dict), f"the timestep sampler config must be a mapping, got {options!r}")
    opts = dict(options)
    name = opts.pop("name", "uniform")
    if name not in ALLOWED:
        raise DstabError(f"unknown timestep sampler {name!r}; choose one of {list(SAMPLERS)}")
    unknown = set(opts) - ALLOWED[name]
    require(not unknown, f"unknown options {sorted(unknown)} for timestep sampler {name!r}")
    if name == "clts":
        require(
            ("target_iter" in opts) != ("target_frac" in opts),
            "the clts sampler needs exactly one of target_iter (iterations until P(t) is fully Gaussian) "
            "or target_frac (the same as a fraction of the run)",
        )
        if "target_frac" in opts:
            frac = opts.pop("target_frac")
            require(isinstance(frac, (int, float)) and frac > 0, f"CLTS target_frac must be > 0, got {frac!r}")
            opts["target_iter"] = frac * total_steps
        clts_settings(T, **opts)
    elif name == "min-snr":
        opts["gamma"] = _number(opts.get("gamma", 5.0), "min-snr gamma")  # Hang et al. 2023 default
        require(opts["gamma"] > 0, f"min-snr gamma must be > 0, got {opts['gamma']}")
    elif name == "p2":
        k, gamma = _number(opts.get("k", 1.0), "p2 k"), _number(opts.get("gamma", 1.0), "p2 gamma")  # Choi et al.
        require(k > 0 and gamma >= 0, f"p2 needs k > 0 and gamma >= 0, got k={k}, gamma={gamma}")
        opts.update(k=k, gamma=gamma)
    elif name == "loss-second-moment":
        second_moment_settings(**opts)
    elif name in RULE_DEFAULTS:
        opts = rule_settings(name, opts)
    return name, opts
