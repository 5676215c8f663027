"""Mode collapse of a generative model, measured on its samples.

A GAN that covers one wedge of the 8 Gaussians can still have a small Hessian
or a high consistency; every comparison of the paper's claims has to know
which models collapsed. Two measurements, each on a fixed number of samples
from a fixed seed (the same noise for every model):

- toy2d:8gaussians: mode coverage and precision (`distmetrics.mode_stats`:
  modes holding >= 1% of the samples within 3 std; share of samples within
  3 std of some mode) and the sliced W2 distance to the data. Collapsed when
  fewer than 7 of the 8 modes are covered (the census's rule for "converged").
- digits: the shipped digit classifier's verdict on each sample: the share it
  assigns with confidence > 0.9, and the entropy (nats) of the histogram of
  its predicted classes (ln 10 = 2.303 when all ten digits are equally
  frequent). Collapsed when fewer than 7 of the 10 classes hold >= 1% of the
  samples, the toy rule's analogue, or the entropy is below ln 5 (as if only
  five digits were drawn).

DMs sample with DDIM (eta 0): 2,000 points in 50 steps on toy2d, 256 digits in
25 steps. All 1000 ancestral steps would cost minutes per model on a shared
CPU, and the census draws these samples for 16 seeds of each kind; a
collapsed DM would show under either sampler.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import cache, data
from .analysis import distmetrics
from .analysis.features import features_path, load_classifier
from .checkpoints import Bundle
from .errors import require
from .sampling import generate

TOY_SETTINGS = {"num": 2000, "seed": 0, "sampler": "ddim", "steps": 50}
DIGITS_SETTINGS = {"num": 256, "seed": 0, "sampler": "ddim", "steps": 25}
MIN_COVERAGE = {"toy2d:8gaussians": 7, "digits": 7}
CONFIDENT = 0.9
MIN_ENTROPY_NATS = math.log(5)
RULES = {
    "toy2d:8gaussians": "collapsed if fewer than 7 of 8 modes hold >= 1% of the samples within 3 std",
    "digits": "collapsed if fewer than 7 of 10 classes hold >= 1% of the samples, or the class entropy < ln 5 nats",
}


def measurable(dataset: str) -> bool:
    return dataset in RULES


def settings_for(dataset: str) -> dict:
    require(measurable(dataset), f"no collapse measurement for dataset {dataset!r}; known: {sorted(RULES)}")
    return dict(TOY_SETTINGS if dataset.startswith("toy2d") else DIGITS_SETTINGS)


def toy_record(samples, reference) -> dict:
    """Coverage, precision, per-mode shares and sliced W2 of 8-Gaussians samples; `reference` are data points."""
    stats = distmetrics.mode_stats(samples, data.EIGHT_GAUSSIANS_CENTRES, data.EIGHT_GAUSSIANS_STD)
    return {
        "coverage": stats["coverage"],
        "modes": stats["modes"],
        "precision": round(stats["precision"], 4),
        "shares": [round(s, 4) for s in stats["shares"]],
        "sliced_w2": round(distmetrics.sliced_w2(samples, reference), 4),
        "collapsed": stats["coverage"] < MIN_COVERAGE["toy2d:8gaussians"],
    }


def class_record(probs: np.ndarray) -> dict:
    """Confident share, class histogram, its entropy and the classes covered, from (n, 10) class probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    require(p.ndim == 2 and len(p) >= 1, f"class probabilities must be (n, classes), got shape {p.shape}")
    hist = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / len(p)
    nz = hist[hist > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    coverage = int((hist >= distmetrics.MODE_MIN_SHARE).sum())
    return {
        "confident_share": round(float((p.max(axis=1) > CONFIDENT).mean()), 4),
        "class_shares": [round(float(h), 4) for h in hist],
        "class_entropy": round(entropy, 4),
        "coverage": coverage,
        "modes": p.shape[1],
        "collapsed": coverage < MIN_COVERAGE["digits"] or entropy < MIN_ENTROPY_NATS,
    }


def digit_probabilities(images: torch.Tensor) -> np.ndarray:
    net, _ = load_classifier(features_path("digits"))
    with torch.no_grad():
        return torch.softmax(net(images.float().clamp(-1, 1)), dim=1).numpy()


def record_of(samples: torch.Tensor, dataset: str, data_seed: int = 0) -> dict:
    """The collapse record of samples already drawn from a model of `dataset`."""
    settings = settings_for(dataset)
    if dataset == "digits":
        out = class_record(digit_probabilities(samples))
    else:
        reference = data.load(dataset, data_seed).fixed_batch(settings["num"], settings["seed"])
        out = toy_record(samples, reference)
    return {**out, "rule": RULES[dataset], "settings": settings}


def measure(bundle: Bundle, device="cpu") -> dict:
    """Draw the fixed samples of `bundle` (GANs: the same z for every model) and measure them; through the
    results cache (keyed by the checkpoint's sha256 and the settings), so measuring again is free."""
    dataset = bundle.header["dataset"]
    s = settings_for(dataset)

    def compute():
        samples = generate(bundle, s["num"], s["seed"], s["sampler"], s["steps"], device=device)
        return record_of(samples, dataset, int(bundle.header.get("train_config", {}).get("data_seed", 0))), {}

    params = {**s, "dataset": dataset, "rule": RULES[dataset]}
    return cache.get_or_compute("collapse", params, [bundle.sha256] if bundle.sha256 else [], compute).meta
