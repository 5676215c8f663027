"""Random directions in parameter space, filter-normalised (Li et al. 2018, "Visualizing
the Loss Landscape of Neural Nets", Sec. 4).

A direction is a dict name -> tensor shaped like the parameter. Each entry is
Gaussian, drawn on the CPU from a generator seeded by (seed, which direction,
parameter name), so a direction is the same on every device and does not
depend on the order parameters are listed in.

Filter normalisation (Li et al. Eq. 2): each filter d_f (a slice along the
first dimension, as in Li et al.'s code: an output channel of a Conv2d, an
output row of a Linear, an input channel of a ConvTranspose2d) is rescaled to
the norm of the same filter of the weights: d_f <- d_f / ||d_f|| * ||w_f||.

Parameters with one dimension (biases, norm-layer scales and shifts) follow
Li et al.'s two options: "ignore" (their `--xignore biasbn`, dstab's default)
gives them a zero direction, so they stay at the checkpoint's values;
"weight" sets the direction to the weight itself, as their code does without
`biasbn`.

Two random Gaussian directions in many dimensions are nearly but not exactly
orthogonal. dstab makes the second exactly orthogonal to the first filter by
filter (Gram-Schmidt within each filter, then the filter norm restored), so
it stays filter-normalised and is orthogonal overall; `cosine` reports the
cosine before and after. One-element filters cannot be orthogonalised
within themselves and are left as drawn (the reported cosine shows any rest).
"""

from __future__ import annotations

import hashlib

import torch

from ..errors import require

BIAS_MODES = ("ignore", "weight")  # Li et al. 2018, net_plotter.normalize_directions_for_weights
EPS = 1e-10  # Li et al.'s guard against a zero filter norm

Direction = dict[str, torch.Tensor]


def gaussian_direction(params: Direction, seed: int, which: int) -> Direction:
    """N(0, 1) entries shaped like `params`, a pure function of (seed, which, name)."""
    out = {}
    for name, p in params.items():
        digest = hashlib.sha256(f"{int(seed)}/{int(which)}/{name}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        out[name] = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.device)
    return out


def _filter_norms(t: torch.Tensor) -> torch.Tensor:
    """Norm of each slice along dim 0, shaped to broadcast against t."""
    return t.reshape(t.shape[0], -1).norm(dim=1).reshape(-1, *[1] * (t.dim() - 1))


def filter_normalised(direction: Direction, params: Direction, bias_mode: str = "ignore") -> Direction:
    require(bias_mode in BIAS_MODES, f"unknown bias mode {bias_mode!r}; choose one of {BIAS_MODES}")
    out = {}
    for name, d in direction.items():
        w = params[name]
        if w.dim() <= 1:
            out[name] = torch.zeros_like(w) if bias_mode == "ignore" else w.clone()
        else:
            out[name] = d * (_filter_norms(w) / (_filter_norms(d) + EPS))
    return out


def dot(a: Direction, b: Direction) -> float:
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))


def cosine(a: Direction, b: Direction) -> float:
    na, nb = dot(a, a) ** 0.5, dot(b, b) ** 0.5
    return dot(a, b) / (na * nb) if na > 0 and nb > 0 else 0.0


def orthogonalised(d2: Direction, d1: Direction, params: Direction) -> Direction:
    """d2 made orthogonal to d1 within every filter, each filter's norm restored to ||w_f||."""
    out = {}
    for name, b in d2.items():
        a, w = d1[name], params[name]
        if w.dim() <= 1 or w[0].numel() < 2:
            out[name] = b.clone()
            continue
        a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        aa = (a2 * a2).sum(dim=1, keepdim=True)
        proj = torch.where(aa > 0, (a2 * b2).sum(dim=1, keepdim=True) / aa.clamp_min(EPS), torch.zeros_like(aa))
        r = (b2 - proj * a2).reshape(b.shape)
        out[name] = r * (_filter_norms(w) / (_filter_norms(r) + EPS))
    return out


def plane_directions(params: Direction, seed: int, bias_mode: str = "ignore") -> tuple[Direction, Direction, dict]:
    """Two filter-normalised directions, the second orthogonalised; plus their cosines."""
    d1 = filter_normalised(gaussian_direction(params, seed, 0), params, bias_mode)
    d2 = filter_normalised(gaussian_direction(params, seed, 1), params, bias_mode)
    before = cosine(d1, d2)
    d2 = orthogonalised(d2, d1, params)
    return d1, d2, {"cosine_before": before, "cosine_after": cosine(d1, d2)}
