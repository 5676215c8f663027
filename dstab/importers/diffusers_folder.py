"""diffusers folders: a UNet2DModel (`config.json` + `diffusion_pytorch_model.safetensors`)
with an optional `scheduler_config.json` beside it, or a pipeline folder whose
`model_index.json` names a `unet` and a `scheduler` subfolder (e.g. google/ddpm-cifar10-32).

The network is diffusers' own UNet2DModel (wrapped, see models/wrapped_diffusers);
the DDPMScheduler config becomes a dstab `Diffusion`. A scheduler setting dstab
cannot reproduce is refused rather than approximated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from safetensors.torch import load_file

from .. import stfile
from ..bundle import Bundle, make_header, safe_torch_load
from ..confine import like
from ..diffusion import Diffusion
from ..errors import DstabError
from ..fileio import file_sha256
from .state_dicts import module_from_state

WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
# DDPMScheduler's defaults, used for keys its config leaves out (and when there is no config)
SCHEDULER_DEFAULTS = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "trained_betas": None,
    "variance_type": "fixed_small",
    "clip_sample": True,
    "prediction_type": "epsilon",
    "clip_sample_range": 1.0,
    "thresholding": False,
}
PREDICTIONS = {"epsilon": "eps", "sample": "x0"}
# DDPMScheduler.step: fixed_small_log draws with exp(0.5 log var) = sqrt(var), as fixed_small does
VARIANCES = {"fixed_small": "small", "fixed_small_log": "small", "fixed_large": "large"}
REFUSED_VARIANCES = {
    # step() multiplies the noise by sqrt(log(beta_t)), the square root of a negative number
    "fixed_large_log": "DDPMScheduler.step takes the square root of log(beta_t) for it, which is NaN",
    "learned": "the model predicts the log-variance directly, which dstab's UNets do not output",
}


NO_SCHEDULER = (
    "no scheduler_config.json: DDPMScheduler's defaults are assumed (linear betas 1e-4..0.02, 1000 steps, "
    "fixed_small variance, clip_sample); put the model's scheduler_config.json beside config.json if it differs"
)


def _json(path: Path, folder: Path) -> dict:
    like(folder, path)  # a symlink inside an allowed folder may not lead outside the allowed roots
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DstabError(f"{path}: cannot be read as JSON ({exc})") from None


def _folders(path: Path) -> tuple[Path, Path | None]:
    """(unet folder, scheduler config file or None)."""
    if (path / "model_index.json").is_file():
        index = _json(path / "model_index.json", path)
        unet_class = (index.get("unet") or [None, None])[1]
        if unet_class != "UNet2DModel":
            raise DstabError(f"{path}: the pipeline's unet is {unet_class!r}; dstab imports UNet2DModel pipelines")
        sched = path / "scheduler" / "scheduler_config.json"
        return path / "unet", sched if sched.is_file() else None
    sched = path / "scheduler_config.json"
    return path, sched if sched.is_file() else None


def diffusion_from_scheduler(config: dict, where: str) -> Diffusion:
    c = {**SCHEDULER_DEFAULTS, **config}
    T = int(c["num_train_timesteps"])
    if c["trained_betas"] is not None:
        raise DstabError(
            f"{where}: trained_betas are not supported; dstab needs a linear or squaredcos_cap_v2 schedule"
        )
    if c["beta_schedule"] == "squaredcos_cap_v2":  # Nichol & Dhariwal's cosine, as dstab's "cosine"
        schedule = "cosine"
    elif c["beta_schedule"] == "linear":
        # dstab's linear is Ho et al.'s 1e-4..0.02 scaled by 1000/T
        want = (1e-4 * 1000 / T, 0.02 * 1000 / T)
        if not all(math.isclose(float(c[k]), w, rel_tol=1e-6) for k, w in zip(("beta_start", "beta_end"), want)):
            raise DstabError(
                f"{where}: linear betas {c['beta_start']}..{c['beta_end']} over {T} steps differ from dstab's "
                f"{want[0]:g}..{want[1]:g}; this schedule is not supported"
            )
        schedule = "linear"
    else:
        raise DstabError(f"{where}: beta_schedule {c['beta_schedule']!r} is not supported (linear, squaredcos_cap_v2)")
    if c["prediction_type"] not in PREDICTIONS:
        raise DstabError(f"{where}: prediction_type {c['prediction_type']!r} is not supported (epsilon, sample)")
    learned = c["variance_type"] == "learned_range"  # improved-diffusion's interpolation, as dstab's learn_sigma
    if c["variance_type"] in REFUSED_VARIANCES:
        raise DstabError(
            f"{where}: variance_type {c['variance_type']!r} is refused: {REFUSED_VARIANCES[c['variance_type']]}"
        )
    if not learned and c["variance_type"] not in VARIANCES:
        raise DstabError(
            f"{where}: variance_type {c['variance_type']!r} is not supported "
            f"(fixed_small, fixed_small_log, fixed_large, learned_range)"
        )
    if c["thresholding"]:
        raise DstabError(f"{where}: thresholding=true (dynamic thresholding) is not supported; set it to false")
    clip_range = float(c["clip_sample_range"])
    if not clip_range > 0:
        raise DstabError(f"{where}: clip_sample_range must be positive, got {c['clip_sample_range']!r}")
    return Diffusion(
        schedule=schedule,
        T=T,
        prediction=PREDICTIONS[c["prediction_type"]],
        learn_sigma=learned,
        fixed_variance="small" if learned else VARIANCES[c["variance_type"]],
        clip_denoised=bool(c["clip_sample"]),  # step() clamps pred_original_sample only when it is set
        clip_range=clip_range,
    )


def _state(unet_dir: Path, folder: Path) -> tuple[dict, Path]:
    for name in WEIGHTS:
        f = like(folder, unet_dir / name)
        if f.is_file():
            if name.endswith(".safetensors"):
                stfile.read_table(f)  # its tensor count, before any tensor is read
                return load_file(f), f
            return safe_torch_load(f), f
    raise DstabError(f"{unet_dir}: no {' or '.join(WEIGHTS)} beside config.json")


def detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    if (path / "model_index.json").is_file():
        return True
    config = path / "config.json"
    return config.is_file() and '"UNet2DModel"' in config.read_text(errors="replace")


def load(path: Path, dataset: str | None = None, **_hints) -> Bundle:
    path = Path(path)
    unet_dir, sched_file = _folders(path)
    if not (unet_dir / "config.json").is_file():
        raise DstabError(f"{unet_dir}: no config.json (a UNet2DModel folder has config.json and its weights)")
    unet_config = _json(unet_dir / "config.json", path)
    if unet_config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise DstabError(f"{unet_dir}: a {unet_config['_class_name']}; dstab imports UNet2DModel")
    sched = _json(sched_file, path) if sched_file else {}
    diffusion = diffusion_from_scheduler(sched, str(sched_file or path))
    arch = {"arch": "diffusers_unet2d", "unet2d": unet_config}
    weights, weights_file = _state(unet_dir, path)
    state = {f"unet.{k}": v for k, v in weights.items()}
    model = module_from_state(arch, state, unet_dir)
    out_channels = unet_config.get("out_channels", 3)
    expected = unet_config.get("in_channels", 3) * (2 if diffusion.learn_sigma else 1)
    if out_channels != expected:
        raise DstabError(
            f"{path}: the UNet has {out_channels} output channels but the scheduler's variance_type "
            f"needs {expected}; the scheduler config does not belong to this model"
        )
    header = make_header(
        "dm",
        model.config,
        dataset=dataset or "unknown",
        step=0,
        seed=-1,
        diffusion=diffusion.to_config(),
        name=path.name,
        imported_from={
            "format": "diffusers",
            "folder": path.name,
            "scheduler": sched.get("_class_name", "DDPMScheduler defaults") if sched_file else "DDPMScheduler defaults",
            "clip_sample": bool({**SCHEDULER_DEFAULTS, **sched}["clip_sample"]),
            **({} if sched_file else {"assumed": NO_SCHEDULER}),
        },
    )
    bundle = Bundle(header=header, modules={"model": model}, path=path, diffusion=diffusion)
    bundle.sha256 = file_sha256(weights_file)  # a folder has no hash of its own: the weights identify it
    return bundle
