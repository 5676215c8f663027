"""The values the Training page's launch form starts from, without Streamlit: the paper's.

CLTS mu = 0.3 T and sigma = T (Sec. 4.2) with target_iter at about 20% of the run (the ablation's
optimum, ~100k of 500k iterations); MD's beta1 floor 0.4 (Sec. 4.3). The schedules themselves use
the same constants (sampler_options.CLTS_*, momentum.BETA1_FLOOR).
"""

from __future__ import annotations

from .momentum import BETA1_FLOOR
from .sampler_options import CLTS_MU_FRACTION, CLTS_SIGMA_FRACTION

TARGET_FRACTION = 0.2  # CLTS target_iter as a share of the run's steps
EVAL_EVERY = 500  # steps between evaluations when the preset names none


def launch_defaults(base: dict, steps: int) -> dict:
    """The form's starting values for the resolved preset config `base` and a run of `steps`."""
    T = base["diffusion"]["T"]
    return {
        "eval_every": base["eval_every"] or EVAL_EVERY,
        "mu": CLTS_MU_FRACTION * T,
        "sigma": CLTS_SIGMA_FRACTION * T,
        "target_iter": int(TARGET_FRACTION * steps),
        "floor": BETA1_FLOOR,
    }
