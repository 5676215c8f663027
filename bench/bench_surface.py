"""Surface engine vs loss-landscapes on the same model, data, directions and grid, in one run.

Prints, per model: seconds of dstab's engine (sequential, the CPU default, and
vmap), of loss-landscapes (its planar_interpolation needs (N+1)^2 points for
dstab's N x N grid, see dstab/analysis/reference.py), their ratio overall and
per grid point, and dstab's time over N^2 forward passes of the probe's loss
at fixed weights (the floor of one-point-at-a-time evaluation). Whole calls
are timed, directions and set-up included.

    python bench/bench_surface.py [--grid 11] [--threads 1] [--models toy-dm,digits-dm,digits-gan-g]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dstab import checkpoints, models, zoo
from dstab.analysis import landscape, reference
from dstab.diffusion import Diffusion
from dstab.probes import dm_probe, gan_probe


def _bundle(kind: str, arch: dict, dataset: str, path: str):
    """Zoo-size random-weight checkpoint: timings do not depend on training."""
    torch.manual_seed(0)
    if kind == "dm":
        header = checkpoints.make_header("dm", arch, dataset, 0, 0, diffusion=Diffusion().to_config())
        checkpoints.save(path, header, {"model": models.build(arch)})
    else:
        g, d = models.build(arch["generator"]), models.build(arch["discriminator"])
        header = checkpoints.make_header("gan", arch, dataset, 0, 0, gan={"loss": "non-saturating"})
        checkpoints.save(path, header, {"generator": g, "discriminator": d})
    return checkpoints.load(path)


def probes(names: list[str], batch: int):
    toy_dm = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 128, "depth": 3}
    made = {
        "toy-dm": lambda: dm_probe(
            _bundle("dm", toy_dm, "toy2d:8gaussians", "/tmp/bench_toy_dm.safetensors"), 500, batch
        ),
        "digits-dm": lambda: dm_probe(
            _bundle("dm", zoo._digits_unet(), "digits", "/tmp/bench_dig_dm.safetensors"), 500, batch
        ),
        "digits-gan-g": lambda: gan_probe(
            _bundle("gan", zoo._digits_gan(), "digits", "/tmp/bench_gan.safetensors"), "g", batch
        ),
        "toy-gan-d": lambda: gan_probe(
            _bundle("gan", zoo._toy_gan(), "toy2d", "/tmp/bench_toy_gan.safetensors"), "d", batch
        ),
    }
    return [(n, made[n]()) for n in names]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def floor_seconds(probe, n_points: int) -> float:
    """n_points forward passes of the probe's loss at fixed weights: the floor of any engine."""
    module = probe.module_at()
    with torch.no_grad():
        probe.loss_of(module)
        return timed(lambda: torch.stack([probe.loss_of(module) for _ in range(n_points)]).sum().item())[0]


def best(fn, repeats: int):
    """(min seconds, result) over `repeats` runs: the machine is shared, the minimum is the least disturbed."""
    runs = [timed(fn) for _ in range(repeats)]
    return min(t for t, _ in runs), runs[0][1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=11)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="toy-dm,toy-gan-d,digits-gan-g,digits-dm")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, r = args.grid, args.repeats
    print(f"torch {torch.__version__}, {args.threads} thread(s), grid {n}x{n}, batch {args.batch}, best of {r}")
    print(
        f"{'model':13} {'params':>7} {'fwd ms':>7} {'dstab s':>8} {'vmap s':>7} {'ll s':>7} {'ll/dstab':>8} "
        f"{'per point':>9} {'dstab/N2fwd':>11} {'max rel diff':>12}"
    )
    for name, probe in probes(args.models.split(","), args.batch):
        floor, _ = best(lambda: floor_seconds(probe, n * n), r)
        t_seq, s = best(lambda: landscape.surface(probe, n, 1.0, 0, strategy="sequential"), r)
        t_vmap, _ = best(lambda: landscape.surface(probe, n, 1.0, 0, strategy="vmap"), r)
        t_ll, ref = best(lambda: reference.surface_ll(probe, n, 1.0, 0), r)
        rel = float(np.max(np.abs(ref.loss - s.loss) / np.abs(s.loss)))
        per_pt = (t_ll / (n + 1) ** 2) / (t_seq / n**2)
        print(
            f"{name:13} {probe.num_params:7d} {floor / n**2 * 1e3:7.2f} {t_seq:8.2f} {t_vmap:7.2f} {t_ll:7.2f} "
            f"{t_ll / t_seq:8.2f} {per_pt:9.2f} {t_seq / floor:11.3f} {rel:12.1e}"
        )


if __name__ == "__main__":
    main()
