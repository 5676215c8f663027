"""Surface engine vs loss-landscapes on the same model, data, directions and grid, in one run.

Prints, per model: seconds of dstab's engine (sequential, the CPU default, and
vmap, the CUDA default), of loss-landscapes (its planar_interpolation needs
(N+1)^2 points for dstab's N x N grid, see dstab/analysis/reference.py), their
ratio overall and per grid point, and dstab's best time over N^2 forward passes
of the probe's loss at fixed weights (the floor of one-point-at-a-time
evaluation). Whole calls are timed, directions and set-up included.

    python bench/bench_surface.py [--grid 11] [--models toy-dm,toy-gan-d,digits-gan-g,digits-dm]
    python bench/bench_surface.py --device cuda --models cifar-unet --grid 51 --engines dstab,vmap --repeats 1
"""

from __future__ import annotations

import argparse
import math
import time

import _repo  # noqa: F401 (puts the repository root on sys.path)
import numpy as np
import torch

from dstab import checkpoints, models, zoo
from dstab.analysis import landscape, reference
from dstab.diffusion import Diffusion
from dstab.probes import dm_probe, gan_probe

NAN = float("nan")


def _bundle(kind: str, arch: dict, dataset: str, name: str):
    """Zoo-size random-weight checkpoint: timings do not depend on training."""
    torch.manual_seed(0)
    path = f"/tmp/bench_surface_{name}.safetensors"
    if kind == "dm":
        header = checkpoints.make_header("dm", arch, dataset, 0, 0, diffusion=Diffusion().to_config())
        checkpoints.save(path, header, {"model": models.build(arch)})
    else:
        g, d = models.build(arch["generator"]), models.build(arch["discriminator"])
        header = checkpoints.make_header("gan", arch, dataset, 0, 0, gan={"loss": "non-saturating"})
        checkpoints.save(path, header, {"generator": g, "discriminator": d})
    return checkpoints.load(path)


def cifar_unet_probe(batch: int):
    """DDPM's CIFAR-10 UNet (35.7M parameters) on a fixed random batch at t = 500: the issue's GPU target
    model, the same probe bench/gpu_bench.py times on CUDA."""
    from gpu_bench import DDPM_CIFAR, unet_probe

    return unet_probe(DDPM_CIFAR, batch, "cpu")


def make_probe(name: str, batch: int):
    toy_dm = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 128, "depth": 3}
    if name == "toy-dm":
        return dm_probe(_bundle("dm", toy_dm, "toy2d:8gaussians", name), 500, batch)
    if name == "digits-dm":
        return dm_probe(_bundle("dm", zoo._digits_unet(), "digits", name), 500, batch)
    if name == "digits-gan-g":
        return gan_probe(_bundle("gan", zoo._digits_gan(), "digits", name), "g", batch)
    if name == "toy-gan-d":
        return gan_probe(_bundle("gan", zoo._toy_gan(), "toy2d", name), "d", batch)
    if name == "cifar-unet":
        return cifar_unet_probe(batch)
    raise SystemExit(f"unknown model {name}")


def floor_seconds(probe, n_points: int) -> float:
    """n_points forward passes of the probe's loss at fixed weights: the floor of any engine."""
    module = probe.module_at()
    with torch.no_grad():
        probe.loss_of(module)
        t0 = time.perf_counter()
        torch.stack([probe.loss_of(module) for _ in range(n_points)]).sum().item()
        return time.perf_counter() - t0


def interleaved(fns: dict, repeats: int, sync) -> dict:
    """{name: (min seconds, first result)}, the functions run in turn `repeats` times so that a
    busy spell of the shared machine falls on all of them rather than on one."""
    times, results = {k: [] for k in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            sync()
            times[name].append(time.perf_counter() - t0)
            results.setdefault(name, out)
    return {k: (min(times[k]), results[k]) for k in fns}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=11)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="toy-dm,toy-gan-d,digits-gan-g,digits-dm")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engines", default="dstab,vmap,ll", help="subset of dstab (sequential), vmap, graph (CUDA), ll")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, r, engines = args.grid, args.repeats, args.engines.split(",")
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"torch {torch.__version__}, {args.device}, {args.threads} thread(s), grid {n}x{n}, batch {args.batch}")
    print(
        f"{'model':13} {'params':>9} {'fwd ms':>7} {'dstab s':>8} {'vmap s':>7} {'graph s':>7} {'ll s':>7} "
        f"{'ll/dstab':>8} {'per point':>9} {'dstab/N2fwd':>11} {'max rel diff':>12}"
    )
    for name in args.models.split(","):
        probe = make_probe(name, args.batch).to(args.device)
        fns = {
            "floor": lambda: floor_seconds(probe, n * n),
            "dstab": lambda: landscape.surface(probe, n, 1.0, 0, strategy="sequential"),
            "vmap": lambda: landscape.surface(probe, n, 1.0, 0, strategy="vmap"),
            "graph": lambda: landscape.surface(probe, n, 1.0, 0, strategy="graph"),
            "ll": lambda: reference.surface_ll(probe, n, 1.0, 0),
        }
        timed = interleaved({k: f for k, f in fns.items() if k == "floor" or k in engines}, r, sync)
        timed = {k: timed.get(k, (NAN, None)) for k in fns}
        floor = timed["floor"][0]
        # dstab as it runs by default on this device (sequential on CPU, graph on CUDA), else whichever ran
        default = {"sequential": "dstab"}.get(landscape.default_strategy(probe.device), "graph")
        ours = timed[default] if timed[default][1] is not None else timed["dstab"]
        t_ll, ref = timed["ll"]
        rel = float(np.max(np.abs(ref.loss - ours[1].loss) / np.abs(ours[1].loss))) if ref else NAN
        per_pt = (t_ll / (n + 1) ** 2) / (ours[0] / n**2) if not math.isnan(t_ll) else NAN
        print(
            f"{name:13} {probe.num_params:9d} {floor / n**2 * 1e3:7.2f} {timed['dstab'][0]:8.2f} "
            f"{timed['vmap'][0]:7.2f} {timed['graph'][0]:7.2f} {t_ll:7.2f} {t_ll / ours[0]:8.2f} "
            f"{per_pt:9.2f} {ours[0] / floor:11.3f} "
            f"{rel:12.1e}"
        )


if __name__ == "__main__":
    main()
