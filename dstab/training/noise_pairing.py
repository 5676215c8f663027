"""Immiscible diffusion (Li et al. 2024, arXiv 2406.12303): within each batch, the drawn noise is assigned to
the images by a minimum-cost assignment before x_t is formed, so each image is diffused towards nearby noise.

The cost here is the squared L2 distance ||x0_i - eps_j||^2 over the flattened sample, in float64 on the
batch's device; the B x B matrix goes to the CPU for scipy.optimize.linear_sum_assignment (exact and
deterministic, so every torchrun rank, which holds the same global batch and noise, finds the same pairing).
Minimising the squared distances is the batch's W2 coupling; the authors' code minimises the unsquared
torch.cdist distances in float16, which can pair differently.
The noise itself is unchanged as a set: each draw is still N(0, I), only its partner image changes.
"""

from __future__ import annotations

import torch


def squared_distances(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """cost[i, j] = ||x0_i - noise_j||^2 = ||x0_i||^2 + ||noise_j||^2 - 2 <x0_i, noise_j> over the flattened
    samples: one float64 matrix product on the batch's device (the pairwise differences would hold
    B x B x pixels numbers), returned on the CPU."""
    x, n = x0.detach().flatten(1).double(), noise.detach().flatten(1).double()
    return ((x * x).sum(1)[:, None] + (n * n).sum(1)[None, :] - 2.0 * x @ n.T).cpu()


def immiscible_order(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The permutation `perm` (a CPU long tensor) for which sum_i ||x0_i - noise[perm[i]]||^2 is minimal."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(squared_distances(x0, noise).numpy())
    return torch.from_numpy(cols[rows.argsort()]).long()


def immiscible(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`noise` reordered so that noise[i] is image i's partner under the minimum-cost assignment."""
    return noise[immiscible_order(x0, noise).to(noise.device)]
