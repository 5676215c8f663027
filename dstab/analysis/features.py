"""The small digit classifier whose features give "FD (local features)".

Offline there are no InceptionV3 FID weights, so dstab trains its own feature
network on the dataset (scikit-learn digits, 8x8) and ships its weights in
checkpoints/features/. A Frechet distance on these features is a useful
within-dstab yardstick and is always labelled "FD (local features)", never
FID: its values are not comparable with published FIDs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from .. import data
from ..checkpoints import atomic_write_bytes
from ..errors import DstabError, require
from ..zooindex import zoo_root

FEATURE_DIM = 64


def features_path(dataset: str) -> Path:
    """The zoo's feature network for `dataset` (beside the zoo, which DSTAB_ZOO moves)."""
    return zoo_root() / "features" / f"{dataset.replace(':', '-')}-classifier.safetensors"


class DigitClassifier(nn.Module):
    """conv-conv-pool-conv -> 64-d features (pre-activation) -> 10 logits."""

    def __init__(self, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, feature_dim),
        )
        # features are taken before this ReLU: post-ReLU units that never fire would
        # make the feature covariance singular and its matrix square root unstable
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(feature_dim, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _split(n: int, seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).float().mean())


def train_classifier(epochs: int = 30, seed: int = 0, test_fraction: float = 0.2, log=print) -> tuple[nn.Module, dict]:
    """Train on a seeded split of the digits; returns the net and its record (test accuracy etc.)."""
    x = data.load("digits").data
    y = torch.from_numpy(data.digits_arrays()[1]).long()
    train_idx, test_idx = _split(len(x), seed, test_fraction)
    torch.manual_seed(seed)
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    for epoch in range(epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if (epoch + 1) % 10 == 0:
            log(f"epoch {epoch + 1}: test accuracy {accuracy(net.eval(), x[test_idx], y[test_idx]):.4f}")
            net.train()
    net.eval()
    record = {
        "dataset": "digits",
        "feature_dim": FEATURE_DIM,
        "epochs": epochs,
        "seed": seed,
        "train_size": len(train_idx),
        "test_size": len(test_idx),
        "train_accuracy": accuracy(net, x[train_idx], y[train_idx]),
        "test_accuracy": accuracy(net, x[test_idx], y[test_idx]),
    }
    return net, record


def save_classifier(net: nn.Module, record: dict, path: Path) -> None:
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(path, save(tensors, metadata={"dstab_features": json.dumps(record, sort_keys=True)}))


def load_classifier(path: Path) -> tuple[DigitClassifier, dict]:
    path = Path(path)
    if not path.is_file():
        raise DstabError(
            f"no local feature network at {path}; train it with `python -m dstab features train` "
            "or use eval_metric fid with InceptionV3 weights"
        )
    try:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            record = json.loads((f.metadata() or {}).get("dstab_features", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise DstabError(f"{path}: damaged feature network file ({exc})") from None
    net = DigitClassifier(int(record.get("feature_dim", FEATURE_DIM)))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise DstabError(f"{path}: not a dstab digit feature network ({str(exc).splitlines()[0]})") from None
    require(bool(record), f"{path}: feature network has no dstab_features record")
    return net.eval().requires_grad_(False), record
