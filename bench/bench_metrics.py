"""The Fréchet distance's trace term: pytorch-fid's `scipy.linalg.sqrtm` route against dstab's
symmetric eigendecompositions (`featmetrics.frechet`), on the same covariances, interleaved in one
process, CPU seconds (process time), best of --repeats each; the two values and their relative
difference printed beside the ratio, with the load average. Also the cost of KID and PRDC at the
training evaluator's sizes.

    python bench/bench_metrics.py [--dims 64,2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import _repo  # noqa: F401 (puts the repository root on sys.path)
import numpy as np

from dstab.analysis import featmetrics


def _cpu(fn) -> tuple[float, float]:
    start = time.process_time()
    value = fn()
    return time.process_time() - start, value


def _covariances(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2 * d, d))
    b = rng.standard_normal((2 * d, d)) @ rng.standard_normal((d, d)) * 0.3 + 0.1
    return a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", default="64,2048")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from pytorch_fid.fid_score import calculate_frechet_distance

    print(f"load average before: {os.getloadavg()}")
    for d in (int(x) for x in args.dims.split(",")):
        stats = _covariances(d)
        scipy_t, eigh_t = [], []
        for _ in range(args.repeats):  # interleaved: both share the machine's load
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                t, ref = _cpu(lambda: float(calculate_frechet_distance(*stats)))
            scipy_t.append(t)
            t, ours = _cpu(lambda: featmetrics.frechet(*stats))
            eigh_t.append(t)
        print(
            f"d={d}: sqrtm {min(scipy_t):.3f} CPU s, eigh {min(eigh_t):.3f} CPU s, "
            f"ratio {min(scipy_t) / min(eigh_t):.2f}x; FD {ref:.10g} vs {ours:.10g} "
            f"(relative difference {abs(ref - ours) / abs(ref):.1e})"
        )
    rng = np.random.default_rng(1)
    gen, ref = rng.standard_normal((1000, 64)), rng.standard_normal((1797, 64))
    t_kid, _ = _cpu(lambda: featmetrics.kid(gen, ref))
    t_prdc, _ = _cpu(lambda: featmetrics.prdc(gen, ref))
    print(
        f"digits evaluator sizes (1,000 generated vs 1,797 reference, 64-d): KID {t_kid:.3f} CPU s, PRDC {t_prdc:.3f}"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
