"""A DM's reverse process, step by step: the numbers behind the Diffusion-process page and `dstab trajectory`.

`trajectory` samples as `sampling.generate` does (x_T, per-step noise and
class labels from NoiseSource(seed); x0 estimates clipped as the model's source clips them)
and keeps, at every sampler step, the model's input x_t, its x0 estimate and
the noise that estimate implies, eps_hat = (x_t - sqrt(abar_t) x0_hat) /
sqrt(1 - abar_t) (an eps-DM's own output, up to the clipping of x0). `trajectory_rows`
says how that estimate settles: its RMS distance to the final sample and its
change from the step before. `schedule_rows` are the forward process's
weights sqrt(abar_t), sqrt(1 - abar_t) and SNR per t (Ho et al. 2020, Eq. 4).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..diffusion import NoiseSource
from ..errors import DstabError
from ..sampling import sample_shape


@torch.no_grad()
def trajectory(
    bundle,
    sampler: str,
    steps: int,
    seed: int,
    n: int,
    device="cpu",
    progress: Callable[[str, int, int], object] | None = None,
) -> tuple[dict, dict]:
    """(meta, arrays): arrays t (model timestep per step), x_t, x0_hat, eps_hat (steps, n, ...) and final
    (n, ...); `progress("sampling", done, steps)` after every model call."""
    shape = sample_shape(bundle)
    clip = bundle.diffusion.clip_for(1 + len(shape))  # the range the model's source clips x0 to, or None
    model = bundle.model.to(device).eval()
    calls = iter(range(1, steps + 1))
    inputs = []

    def reporting(x, t, *y):  # one model call per sampler step
        if progress is not None:
            progress("sampling", next(calls), steps)
        inputs.append(x.cpu())
        return model(x, t, *y)

    source = NoiseSource(seed, (n, *shape))
    classes = bundle.header["arch"].get("num_classes")
    y = {"y": source.labels(classes).to(device)} if classes else {}
    final, frames = bundle.diffusion.sample(
        reporting,
        source,
        sampler=sampler,
        steps=steps if sampler == "ddim" else None,
        device=device,
        trajectory=True,
        clip=clip,
        **y,
    )
    ts = np.array([f[0] for f in frames])
    x0_hat, x_t = torch.stack([f[1] for f in frames]).cpu().numpy(), torch.stack(inputs).numpy()
    bad = np.flatnonzero(~np.isfinite(x0_hat.reshape(len(ts), -1)).all(axis=1))
    if bad.size:  # finite weights, yet the estimate overflows: say where, rather than draw NaN
        raise DstabError(
            f"{bundle.name}: the x0 estimate is NaN or inf at {bad.size} of {len(ts)} sampler steps, first at "
            f"step {bad[0]} (t = {ts[bad[0]]}); the model's outputs overflow there"
        )
    abar = bundle.diffusion.alphas_cumprod.numpy()[ts]
    arrays = {
        "t": ts,
        "x_t": x_t,
        "x0_hat": x0_hat,
        "eps_hat": predicted_noise(x_t, x0_hat, abar),
        "final": final.cpu().numpy(),
    }
    meta = {"sampler": sampler, "steps": int(steps), "seed": int(seed), "n": int(n), "clip": clip is not None}
    return meta, arrays


def predicted_noise(xt: np.ndarray, x0: np.ndarray, abar: np.ndarray) -> np.ndarray:
    """eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) per step (abar: one value per step)."""
    a = abar.reshape((len(abar),) + (1,) * (xt.ndim - 1))
    return ((xt - np.sqrt(a) * x0) / np.sqrt(1 - a)).astype(np.float32)


def trajectory_rows(ts: np.ndarray, x0_hat) -> list[dict]:
    """Per sampler step: RMS distance of the x0 estimate to the final sample, and its change from the step before."""
    x0_hat = torch.as_tensor(x0_hat)
    flat = x0_hat.reshape(x0_hat.shape[0], x0_hat.shape[1], -1).double()
    to_final = ((flat - flat[-1]) ** 2).mean(dim=2).sqrt().mean(dim=1)
    step_change = torch.cat(
        [torch.zeros(1, dtype=flat.dtype), ((flat[1:] - flat[:-1]) ** 2).mean(dim=2).sqrt().mean(dim=1)]
    )
    return [
        {"step": i, "t": int(t), "rms_to_final": float(d), "rms_change": float(c)}
        for i, (t, d, c) in enumerate(zip(ts, to_final, step_change))
    ]


def schedule_rows(diffusion) -> list[dict]:
    abar = diffusion.alphas_cumprod.numpy().astype(float)
    return [
        {"t": t, "sqrt_abar": a**0.5, "sqrt_one_minus_abar": (1 - a) ** 0.5, "snr": a / (1 - a)}
        for t, a in enumerate(abar)
    ]


def forward_noised(diffusion, x0: torch.Tensor, ts: list[int], noise_seed: int) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps at each t of `ts` (Ho et al. 2020, Eq. 4), one row per
    t, with ONE noise draw eps (NoiseSource(noise_seed)) for every t: the rows fade the same data into the
    same noise, so x_t of one t is one picture wherever it is shown. `x0`: one example (or batch of points)."""
    noise = NoiseSource(noise_seed, (1, *x0.shape)).x_T()
    rows = len(ts)
    flat = x0.reshape(1, -1).expand(rows, -1)
    return diffusion.q_sample(flat, torch.tensor(ts), noise.reshape(1, -1).expand(rows, -1)).reshape(rows, *x0.shape)
