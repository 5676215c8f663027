import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dstab import data
from dstab.errors import DstabError

REPO = Path(__file__).resolve().parents[1]


def test_digits_shape_range_and_determinism():
    d = data.load("digits")
    assert d.data.shape == (1797, 1, 8, 8) and d.image and d.sample_shape == (1, 8, 8)
    assert d.data.min() == -1 and d.data.max() == 1
    # sklearn's first digit is a zero: a dark centre column
    assert d.data[0, 0, 3:5, 3:5].mean() < -0.5
    assert torch.equal(d.fixed_batch(16, seed=3), data.load("digits").fixed_batch(16, seed=3))


@pytest.mark.parametrize("variant", data.TOY_VARIANTS)
def test_toy2d_is_seeded(variant):
    a, b, c = data.load(f"toy2d:{variant}", 0), data.load(f"toy2d:{variant}", 0), data.load(f"toy2d:{variant}", 1)
    assert a.data.shape == (data.TOY_SIZE, 2) and not a.image
    assert torch.equal(a.data, b.data) and not torch.equal(a.data, c.data)
    assert a.data.abs().max() < 6


def test_eight_gaussians_have_eight_modes_on_a_circle():
    pts = data.load("toy2d").data
    radius = pts.norm(dim=1)
    assert radius.mean().item() == pytest.approx(2.0, abs=0.05)
    angles = torch.atan2(pts[:, 1], pts[:, 0])
    modes = torch.round(angles / (torch.pi / 4)).remainder(8)
    counts = torch.bincount(modes.long(), minlength=8)
    assert (counts > data.TOY_SIZE / 8 * 0.85).all()


def test_batches_resume_exactly():
    d = data.load("digits")
    full = d.batches(100, seed=4)
    first = [next(full) for _ in range(40)]
    resumed = d.batches(100, seed=4, start_step=25)
    assert all(torch.equal(first[25 + i], next(resumed)) for i in range(15))
    # 40 batches of 100 cover each epoch's permutation of 1797 images without repeats
    epoch = torch.cat(first)[:1797]
    assert torch.unique(epoch, dim=0).shape[0] == torch.unique(d.data, dim=0).shape[0]


def test_unknown_dataset():
    with pytest.raises(DstabError, match="unknown dataset 'mnist'"):
        data.load("mnist")
    with pytest.raises(DstabError, match="unknown toy2d variant 'moons'"):
        data.load("toy2d:moons")


def test_digits_are_scikit_learns_read_without_importing_it(monkeypatch):
    """The digits are read from the csv scikit-learn ships, not through its (slow) import: equal to
    load_digits() bit for bit, and load_digits() itself where the file is not found."""
    import importlib.util

    from sklearn.datasets import load_digits

    reference = load_digits()
    images, labels = data.digits_arrays()
    assert images.dtype == reference.images.dtype and np.array_equal(images, reference.images)
    assert np.array_equal(labels, reference.target) and images.shape == (1797, 8, 8)
    # in a fresh interpreter, loading the dataset imports no scikit-learn
    code = "import sys; from dstab import data; data.load('digits'); "
    code += "print(any(m.startswith('sklearn') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"
    # a scikit-learn whose csv is elsewhere: its own loader
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    images, labels = data.digits_arrays()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
