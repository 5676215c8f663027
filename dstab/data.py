"""Datasets, each deterministic given a seed.

A dataset is named by a spec string: `digits`, `toy2d` (= `toy2d:8gaussians`),
`toy2d:checkerboard`, `toy2d:swissroll`, `cifar10` (downloaded) or
`cifar10:/path/to/cifar-10-batches-py[?split=test]`, `folder:/path/to/images[?size=32&channels=3]`.
`register()` is the seam through which sources plug in. Images are float32 in
[-1, 1], shaped (N, C, H, W); toy points are (N, 2). CIFAR-10 and folders
stream: their `data` is an `image_data.ImageArray` that decodes only the rows
indexed.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import confine, image_data
from .errors import DstabError


@dataclass
class Dataset:
    spec: str
    data: torch.Tensor | image_data.ImageArray  # float32 tensor, or a lazy view for large sets
    image: bool  # images (N, C, H, W) or points (N, d)
    meta: dict = field(default_factory=dict)  # source, split, labels, skipped files

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    def __len__(self) -> int:
        return self.data.shape[0]

    def fixed_batch(self, n: int, seed: int) -> torch.Tensor:
        """n examples chosen without replacement (with, if n > len) by `seed`."""
        gen = torch.Generator().manual_seed(int(seed))
        if n <= len(self):
            idx = torch.randperm(len(self), generator=gen)[:n]
        else:
            idx = torch.randint(len(self), (n,), generator=gen)
        return self.data[idx]

    def batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[torch.Tensor]:
        """Endless shuffled epochs; batch k depends only on (seed, k), so resuming at
        `start_step` yields exactly the batches an uninterrupted run would have seen."""
        n = len(self)
        step = start_step
        while True:
            epoch, offset = divmod(step * batch_size, n)
            idx = []
            while len(idx) < batch_size:
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) * 100003 + epoch))
                idx.extend(perm[offset : offset + batch_size - len(idx)].tolist())
                epoch, offset = epoch + 1, 0
            yield self.data[idx]
            step += 1


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as `load_digits()` gives them: images (1797, 8, 8) float64 in 0..16 and their
    int labels, read from the digits.csv.gz scikit-learn ships (64 pixels then the label per row), found
    without importing scikit-learn: its import was ~1 s of every CLI call that checks a digits run
    (bench/RESULTS.md, sweeps). `load_digits` itself where that file is not where it has always been."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = next((Path(f) / "datasets" / "data" / "digits.csv.gz" for f in folders), None)
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def _digits(seed: int) -> torch.Tensor:
    images = digits_arrays()[0].astype(np.float32)  # (1797, 8, 8), values 0..16
    return torch.from_numpy(images / 8.0 - 1.0)[:, None]


# toy2d:8gaussians: 8 modes on a circle of radius 2, each an isotropic Gaussian of std 0.1
EIGHT_GAUSSIANS_CENTRES = np.array([(math.cos(a), math.sin(a)) for a in np.arange(8) * math.pi / 4]) * 2.0
EIGHT_GAUSSIANS_STD = 0.1


def _toy(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "8gaussians":
        centres = EIGHT_GAUSSIANS_CENTRES
        pts = centres[rng.integers(0, 8, n)] + 0.05 * rng.standard_normal((n, 2)) * 2.0
    elif kind == "checkerboard":
        x1 = rng.uniform(-2, 2, n)
        x2 = rng.uniform(0, 1, n) + rng.integers(0, 2, n) - 2 + (np.floor(x1) % 2)
        pts = np.stack([x1, x2 * 2.0 + 1.0], axis=1) * 0.75
    elif kind == "swissroll":
        t = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
        pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0 + 0.1 * rng.standard_normal((n, 2))
    else:
        raise DstabError(f"unknown toy2d variant {kind!r}; choose one of {TOY_VARIANTS}")
    return pts.astype(np.float32)


TOY_VARIANTS = ["8gaussians", "checkerboard", "swissroll"]
TOY_SIZE = 8192

_LOADERS: dict[str, Callable[[str, int], Dataset]] = {}


def register(family: str, loader: Callable[[str, int], Dataset]) -> None:
    """Add a dataset family; `loader(option, seed)` gets the text after ':'."""
    _LOADERS[family] = loader


register("digits", lambda opt, seed: Dataset("digits", _digits(seed), image=True))
register(
    "toy2d",
    lambda opt, seed: Dataset(
        f"toy2d:{opt or '8gaussians'}", torch.from_numpy(_toy(opt or "8gaussians", TOY_SIZE, seed)), image=False
    ),
)


def _streamed(family: str, read) -> Callable[[str, int], Dataset]:
    def loader(option: str, seed: int) -> Dataset:
        array, meta = read(option)
        return Dataset(f"{family}:{option}" if option else family, array, image=True, meta=meta)

    return loader


register("cifar10", _streamed("cifar10", image_data.load_cifar10))
register("folder", _streamed("folder", image_data.load_folder))


def canonical_spec(spec: str) -> str:
    """The spec `load(spec).spec` has, without loading anything: what a probe that reads no data
    (a GAN generator's) records, so that its cache key equals the one a loaded dataset gives."""
    family, _, option = str(spec).partition(":")
    if family not in _LOADERS:
        raise DstabError(f"unknown dataset {spec!r}; choose one of {dataset_names()}")
    option = {"digits": "", "toy2d": option or TOY_VARIANTS[0]}.get(family, option)
    return f"{family}:{option}" if option else family


def load(spec: str, seed: int = 0) -> Dataset:
    family, _, option = canonical_spec(spec).partition(":")
    return _LOADERS[family](option, seed)


def dataset_names() -> list[str]:
    return sorted(
        ["digits", *[f"toy2d:{v}" for v in TOY_VARIANTS], *(f for f in _LOADERS if f not in ("digits", "toy2d"))]
    )


def for_checkpoint(header: dict, what: str, override: str | None = None, seed: int | None = None) -> Dataset:
    """The dataset a checkpoint is evaluated on: `override` if the user picked one, else its header's spec
    once `confine.header_dataset` allows it (a header names no file outside the allowed roots); loaded
    with `seed`, by default the training run's data seed."""
    spec = override or confine.header_dataset(header.get("dataset"), what)
    train_config = header.get("train_config")
    if seed is None:
        seed = train_config.get("data_seed", 0) if isinstance(train_config, dict) else 0
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise DstabError(f"{what}: its header's train_config.data_seed {seed!r} is not an integer") from None
    return load(spec, seed=seed)


def explicit_choices() -> list[str]:
    """Datasets a user can pick without naming a path (the page's Dataset control)."""
    return [n for n in dataset_names() if n != "folder"]
