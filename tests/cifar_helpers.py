"""A tiny CIFAR-10 folder in the real python-pickle batch layout, and a tiny 32x32 setup for it."""

from __future__ import annotations

import json
from pathlib import Path

from dstab.experiments.cifar10 import TINY_ARCH as TINY_CIFAR_UNET
from dstab.image_data import write_random_cifar10


def write_cifar(folder: Path, per_batch: int = 6, seed: int = 0) -> Path:
    """data_batch_1..5 and test_batch of random pixels in a new folder."""
    Path(folder).mkdir(parents=True)
    return write_random_cifar10(folder, per_batch, seed)


def tiny_sets(steps: int = 20, batch: int = 4, eval_samples: int = 6, every: int | None = None) -> list[str]:
    """`--set` options that shrink the CIFAR-10 setup to seconds on a CPU."""
    every = every or steps
    return [
        f"arch={json.dumps(TINY_CIFAR_UNET)}",
        f"steps={steps}",
        f"batch_size={batch}",
        f"eval_every={every}",
        f"checkpoint_every={every}",
        f"eval_samples={eval_samples}",
        "eval_sampler_steps=2",
        "log_every=5",
    ]
