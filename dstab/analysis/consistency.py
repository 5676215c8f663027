"""Consistency of a group of generative models (the paper's Sec. 3.1, Eq. 1).

N models of one group (different inits, or different structures) each draw M
samples from ONE sampling seed: DMs get the same x_T and the same per-step
noise of the sampler (`NoiseSource`), GANs the same latents z. With q[i, j]
the i-th sample of model j,

    C(q) = 1/M sum_i 1/(N-1) sum_{j=2..N} PSNR(q[i, 1], q[i, j]).

PSNR(a, b) = 10 log10(peak^2 / MSE(a, b)), the MSE over all pixels of one
image. Images live in [-1, 1], so peak = 2 (the data range, as skimage's
peak_signal_noise_ratio with data_range=2). For point data (toy2d) peak is
the range max - min of the training set's coordinates. Identical samples
have MSE 0 and infinite PSNR: every PSNR is capped at PSNR_CAP_DB = 100 dB,
so a group of N copies of one model scores exactly 100 and means stay finite
(float32 round-off between different models sits far below 100 dB anyway).

The paper's Table 1 (M = 32): DMs 14-20 dB, GANs 6-10 dB. Its counterexample
(Fig. 9, Eq. 6): x0-prediction DMs lose most of that consistency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import cache, checkpoints, data, zooindex
from ..checkpoints import Bundle
from ..errors import DstabError, require
from ..sampling import generate, sample_shape

PSNR_CAP_DB = 100.0
IMAGE_PEAK = 2.0  # images in [-1, 1]


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = IMAGE_PEAK, cap: float = PSNR_CAP_DB) -> torch.Tensor:
    """Per-sample PSNR in dB between batches a and b of equal shape (B, ...), capped at `cap`."""
    require(a.shape == b.shape, f"PSNR needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = ((a.double() - b.double()) ** 2).reshape(a.shape[0], -1).mean(dim=1)
    return (10.0 * torch.log10(peak**2 / mse)).clamp(max=cap)  # mse = 0 gives +inf, then the cap


def psnr_matrix(samples: torch.Tensor, peak: float = IMAGE_PEAK, cap: float = PSNR_CAP_DB) -> torch.Tensor:
    """(N, N, M): PSNR between model j's and model k's i-th sample, for samples shaped (N, M, ...)."""
    n = samples.shape[0]
    out = torch.empty(n, n, samples.shape[1], dtype=torch.float64)
    for j in range(n):
        for k in range(n):
            out[j, k] = psnr(samples[j], samples[k], peak, cap)
    return out


def consistency_score(matrix: torch.Tensor) -> float:
    """Eq. 1 from the (N, N, M) PSNR matrix: mean over images of the mean over models 2..N
    of PSNR against model 1."""
    require(matrix.shape[0] >= 2, f"consistency needs at least 2 models, got {matrix.shape[0]}")
    return float(matrix[0, 1:].mean(dim=0).mean())


def peak_for(bundle: Bundle, dataset: str | None = None) -> float:
    """Images: 2 (range of [-1, 1]); points: the coordinate range of the model's training set (or of
    `dataset`, the user's pick)."""
    if len(sample_shape(bundle)) == 3:
        return IMAGE_PEAK
    points = data.for_checkpoint(bundle.header, bundle.name, dataset, seed=0).data
    return float(points.max() - points.min())


def draw(bundle: Bundle, num: int, seed: int, sampler: str, steps, eta: float, device) -> torch.Tensor:
    """One model's samples: `sampling.generate`, which shares noise by seed and clips x0 estimates
    only for images (clipped toy points would collapse onto a square and look falsely consistent)."""
    return generate(bundle, num, seed, sampler, steps, eta, device)


def sample_params(kind: str, num: int, seed: int, sampler: str, steps, eta: float) -> dict:
    """The key of one model's cached samples: a GAN's depend on its latents alone (M and the seed)."""
    if kind == "gan":
        return {"num": num, "seed": seed}
    return {"num": num, "seed": seed, "sampler": sampler, "steps": steps, "eta": eta}


def samples_of(
    bundle: Bundle, num: int, seed: int, sampler: str, steps, eta: float, device, root: Path | None = None
) -> torch.Tensor:
    """`draw` through the results cache, keyed by the model's sha256 and the sampling settings: a model
    that belongs to several groups (the seed-0 reference of inits, structures and the x0 pair) is
    sampled once, which is most of the cost of a DDPM consistency run."""
    shas = [bundle.sha256] if bundle.sha256 else []
    found = cache.get_or_compute(
        "samples",
        sample_params(bundle.kind, num, seed, sampler, steps, eta),
        shas,
        lambda: ({}, {"samples": draw(bundle, num, seed, sampler, steps, eta, device)}),
        False,
        root,
    )
    return torch.as_tensor(found.arrays["samples"])


def _check_group(bundles: list[Bundle]) -> None:
    require(len(bundles) >= 2, f"consistency compares at least 2 models, got {len(bundles)}")
    kinds = {b.kind for b in bundles}
    require(len(kinds) == 1, f"a consistency group must be all DMs or all GANs, got {sorted(kinds)}")
    shapes = {sample_shape(b) for b in bundles}
    require(len(shapes) == 1, f"the models make samples of different shapes {sorted(shapes)}; compare like with like")
    if kinds == {"gan"}:
        latents = {tuple(b.generator.latent_shape) for b in bundles}
        require(len(latents) == 1, f"the generators take latents of different shapes {sorted(latents)}: no shared z")


@dataclass
class ConsistencyResult:
    names: list[str]
    samples: torch.Tensor  # (N, M, ...) in data space
    matrix: torch.Tensor  # (N, N, M) PSNR dB
    peak: float
    settings: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return consistency_score(self.matrix)

    def summary(self) -> dict:
        return {
            "models": self.names,
            "C_db": self.score,
            "psnr_vs_first_db": [float(x) for x in self.matrix[0, 1:].mean(dim=1)],
            "psnr_matrix_db": self.matrix.mean(dim=2).tolist(),
            "peak": self.peak,
            "cap_db": PSNR_CAP_DB,
            "settings": self.settings,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {"samples": self.samples.numpy(), "psnr": self.matrix.numpy()}

    def to_record(self) -> tuple[dict, dict]:
        return self.summary(), self.arrays()

    @classmethod
    def from_record(cls, meta: dict, arrays: dict) -> ConsistencyResult:
        samples, matrix = torch.from_numpy(arrays["samples"]), torch.from_numpy(arrays["psnr"])
        return cls(meta["models"], samples, matrix, meta["peak"], meta["settings"])


def consistency(
    bundles: list[Bundle],
    names: list[str] | None = None,
    num: int = 32,
    seed: int = 0,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    device="cpu",
    root: Path | None = None,
    dataset: str | None = None,
) -> ConsistencyResult:
    """Eq. 1 for a group of models sampled from one seed; the first model is the reference q[:, 1].
    num = 32 as in the paper's Table 1; sampler ddpm (ancestral, the paper's) or ddim. Each model's
    samples go through the results cache (new ones to `root`, default the user cache). `dataset`: the
    data whose range is 2-D points' PSNR peak (default each header's)."""
    _check_group(bundles)
    require(isinstance(num, int) and num >= 1, f"the number of samples per model must be >= 1, got {num!r}")
    names = names or [b.name for b in bundles]
    peaks = {peak_for(b, dataset) for b in bundles}
    require(len(peaks) == 1, "the models were trained on data of different ranges; compare models of one dataset")
    with torch.inference_mode():
        samples = torch.stack([samples_of(b, num, seed, sampler, steps, eta, device, root) for b in bundles])
    require(bool(torch.isfinite(samples).all()), "a model produced NaN/inf samples; check its checkpoint")
    peak = peaks.pop()
    settings = {
        "num": num,
        "seed": seed,
        "sampler": sampler if bundles[0].kind == "dm" else "gan",
        "steps": steps,
        "eta": eta,
    }
    return ConsistencyResult(names, samples, psnr_matrix(samples, peak), peak, settings)


def group_ids(family: str, group: str, root: Path | None = None) -> list[str]:
    """Zoo ids of a group (e.g. 'digits', 'dm-init'), sorted so that the seed-0 run is the reference."""
    entries = zooindex.read_manifest(root)["entries"]
    ids = zooindex.group_ids(entries, family, group)
    if not ids:
        known = sorted({g for e in entries.values() for g in e.get("groups", [])})
        raise DstabError(f"no zoo entries of {family!r} in group {group!r}; groups: {known}")
    return ids


def load_models(specs: list[str], root: Path | None = None, stage: str = "final") -> tuple[list[Bundle], list[str]]:
    """Bundles for checkpoint paths, zoo ids ('digits/gan-s1') or zoo groups ('digits/gan-init')."""
    names: list[str] = []
    for spec in specs:
        if Path(spec).exists():
            names.append(spec)
            continue
        family, _, rest = spec.partition("/")
        entries = zooindex.read_manifest(root)["entries"]
        names.extend([spec] if spec in entries else group_ids(family, rest, root))
    bundles = [
        checkpoints.load(n if Path(n).exists() else zooindex.checkpoint_path(n, stage, root=root)) for n in names
    ]
    return bundles, names
