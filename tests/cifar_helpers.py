"""A tiny CIFAR-10 folder in the real python-pickle batch layout, and a tiny 32x32 setup for it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

# a 32 x 32 RGB UNet with learned sigma (the paper's model has it), small enough for a CPU test
TINY_CIFAR_UNET = {
    "arch": "unet",
    "image_size": 32,
    "in_channels": 3,
    "model_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [16],
    "norm_groups": 4,
    "learn_sigma": True,
}


def write_cifar(folder: Path, per_batch: int = 6, seed: int = 0) -> Path:
    """data_batch_1..5 and test_batch: pickled dicts with bytes keys, rows of 1024 red, 1024 green,
    1024 blue bytes, random pixels."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"labels": [(b * per_batch + i) % 10 for i in range(per_batch)],
            b"data": rows,
            b"filenames": [f"img{b}_{i}.png".encode() for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return folder


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
