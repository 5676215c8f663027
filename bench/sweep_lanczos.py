"""The Lanczos stopping rule's honesty beyond the tests: the clustered spectra of tests/test_lanczos.py,
rotated, blocks 1 and 2, many seeds each: how often a run claims convergence, how often a claimed value
lies outside its bound plus float32 rounding (4 eps x radius), and the products used.

    python bench/sweep_lanczos.py [--seeds 30]
"""

from __future__ import annotations

import argparse

import _repo  # noqa: F401 (puts the repository root on sys.path)
import numpy as np
import torch

from dstab.analysis import locking
from tests.test_lanczos import SPECTRA, matrix


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| spectrum | block | converged | outside bound | worst error / (bound + rounding) | products (mean) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (eigs, which, tol) in SPECTRA.items():
        A = matrix(eigs, True)
        true = np.sort(eigs)[::-1][:3] if which == "top" else np.sort(eigs)[:3]
        for block in (1, 2):
            claimed = outside = 0
            worst, used_all = 0.0, []
            for seed in range(args.seeds):
                start = torch.randn(block, len(eigs), generator=torch.Generator().manual_seed(seed))
                ends, used = locking.verified_end(lambda Q: Q @ A, start, 3, which, tol, 600, seed=seed)
                used_all.append(used)
                if ends.converged:
                    claimed += 1
                    slack = ends.bounds + 4 * np.finfo(np.float32).eps * ends.radius
                    ratio = float(np.max(np.abs(ends.values - true) / slack))
                    outside += ratio > 1
                    worst = max(worst, ratio)
            print(f"| {name} | {block} | {claimed}/{args.seeds} | {outside} | {worst:.2f} | {np.mean(used_all):.1f} |")


if __name__ == "__main__":
    main()
