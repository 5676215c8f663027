"""What the Training page launches, without Streamlit: the paper's starting values for a preset's
options, and a sweep (several runs that differ in one option, named and grouped).

CLTS mu = 0.3 T, sigma = T (Sec. 4.2) and target_iter at about 20% of the run (the ablation's
optimum, ~100k of 500k iterations); MD's beta1 floor 0.4 (Sec. 4.3); the ablation of Fig. 6.
"""

from __future__ import annotations

from .momentum import BETA1_FLOOR
from .timesteps import CLTS_MU_FRACTION, CLTS_SIGMA_FRACTION

# the option a sweep varies, by its label on the page
SWEEP_KEYS = {"CLTS mu": "timesteps.mu", "CLTS target_iter": "timesteps.target_iter", "ablation presets": "preset"}
ABLATION = ("baseline", "md", "md-lrc", "mdlrc-clts")  # paper Fig. 6
TARGET_FRACTION = 0.2  # CLTS target_iter as a share of the run's steps
EVAL_EVERY = 500  # steps between evaluations when the preset names none
# what a preset's own timestep / momentum settings bring with them; a preset sweep drops them
PRESET_OWNED = ("timesteps=", "momentum=", "beta1=")


def launch_defaults(base: dict, steps: int) -> dict:
    """The values a launch form starts from, for the resolved preset config `base` and a run of `steps`."""
    T = base["diffusion"]["T"]
    return {
        "eval_every": base["eval_every"] or EVAL_EVERY,
        "mu": CLTS_MU_FRACTION * T,
        "sigma": CLTS_SIGMA_FRACTION * T,
        "target_iter": int(TARGET_FRACTION * steps),
        "floor": BETA1_FLOOR,
    }


def sweep_default(key: str) -> str:
    """The values a sweep over `key` starts from (comma-separated), '' when there is no natural set."""
    return ", ".join(ABLATION) if key == "preset" else ""


def sweep_requests(name: str, preset: str, overrides: list[str], key: str, values: list[str]) -> list:
    """(run name, preset, overrides) for each value of the swept option `key` (a dotted option or
    "preset"); the names are `name-<value>` (dots as 'p', so they stay valid run names)."""
    if key == "preset":
        kept = [o for o in overrides if not o.startswith(PRESET_OWNED)]
        return [(f"{name}-{v}", v, kept) for v in values]
    return [(f"{name}-{v.replace('.', 'p')}", preset, [*overrides, f"{key}={v}"]) for v in values]
