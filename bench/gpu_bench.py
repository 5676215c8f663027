"""The GPU checks of bench/gpu.sh in one process, printed as one table for bench/RESULTS.md, within a time
budget (a GPU lease is short: the whole table in `--budget` seconds, a smaller grid before the full one).

1. Eager ops per grid point of the 35.7M-parameter DDPM CIFAR-10 UNet (google/ddpm-cifar10-32 shapes,
   random weights) at batch 64, per precision and strategy, and how many of them cast a weight
   (`fast_surface.ops_per_point`; goal: none per point);
2. its loss surface per precision (fp32 / tf32 / bf16) and strategy (sequential; graph: the point
   loop as one captured CUDA graph; vmap, fp32/tf32 only) on an 11 x 11 grid, with counted FLOPs,
   achieved TFLOP/s and the share of the card's dense peak; then the 51 x 51 grid per precision with
   its fastest strategy, where the time left allows it (else the projected time is printed);
3. its top-3 Hessian eigenvalues (dstab's checked Lanczos), time, products and peak memory, if the
   products fit the time left;
4. training steps of a CIFAR-size UNet, the full method (mdlrc-clts) against the baseline, interleaved
   in blocks: the step-time ratio, as many steps as the time left allows (at most `--train-steps`).

Needs only torch (no streamlit, no pytorch-fid, no loss-landscapes). `--smoke` runs the same code at tiny
sizes on a CPU (the test suite does, and `bash bench/gpu.sh --smoke`).

    python3 bench/gpu_bench.py [--smoke] [--device cuda] [--budget 270] [--precisions fp32,tf32,bf16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)
import numpy as np
import torch

from dstab import models
from dstab.analysis import fast_surface, hessian, hessian_memory
from dstab.diffusion import Diffusion
from dstab.probes import module_probe
from dstab.training import config as train_config
from dstab.training.config import TrainConfig
from dstab.training.trainer import Trainer

# google/ddpm-cifar10-32: 128 channels, multipliers 1,2,2,2, two res blocks, attention at 16x16
DDPM_CIFAR = {
    "arch": "unet",
    "image_size": 32,
    "in_channels": 3,
    "model_channels": 128,
    "channel_mult": [1, 2, 2, 2],
    "num_res_blocks": 2,
    "attention_resolutions": [16],
    "use_scale_shift_norm": False,
}
TINY = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 3,
    "model_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [4],
    "norm_groups": 4,
}


class Clock:
    """Seconds left of the budget, and whether a job of a given estimate still fits."""

    def __init__(self, budget: float):
        self.end = time.perf_counter() + budget

    def left(self) -> float:
        return self.end - time.perf_counter()

    def fits(self, seconds: float) -> bool:
        return seconds <= self.left()


def unet_probe(arch: dict, batch: int, device: str):
    """A DM probe of a random-weight UNet on a fixed random batch at t = 500 (timings need no training)."""
    torch.manual_seed(0)
    size, ch = arch["image_size"], arch["in_channels"]
    x0, noise = torch.randn(2, batch, ch, size, size, generator=torch.Generator().manual_seed(0))
    data = {"diffusion": Diffusion(), "x0": x0.clamp(-1, 1), "t": torch.full((batch,), 500), "noise": noise}
    loss = lambda f, diffusion, x0, t, noise: diffusion.loss_terms(f, x0, t, noise).mean()  # noqa: E731
    return module_probe(models.build(arch), loss, name="ddpm-cifar-unet", data=data).to(device)


def strategies(device: str, precision: str) -> list[str]:
    """What runs at this precision on this device: graph needs CUDA, vmap refuses bf16 autocast."""
    out = ["sequential"]
    if torch.device(device).type == "cuda":
        out.append("graph")
    if precision != "bf16":
        out.append("vmap")
    return out


def ops_rows(probe, precisions: list[str], device: str) -> list[list[str]]:
    rows = []
    for name in precisions:
        for strategy in strategies(device, name):
            if strategy == "graph":  # one replay per point: the eager count is the sequential one's
                continue
            ops = fast_surface.ops_per_point(probe, name, strategy, chunk=2)
            note = f"{ops['ops']:.0f} aten ops per point, {ops['weight_casts']:.0f} weight casts per point"
            rows.append([f"ops per point, {strategy}", name, "", "", "", note])
    return rows


def surface_row(probe, grid: int, name: str, strategy: str) -> tuple[list[str], float]:
    """(table row, seconds per point)."""
    try:
        result, speed = fast_surface.surface(probe, grid, 1.0, 0, name, strategy=strategy)
    except Exception as exc:  # noqa: BLE001 - a strategy that fails on this card is a result, not a crash
        return [f"surface {grid}x{grid}, {strategy}", name, "failed", "", "", str(exc)[:120]], float("inf")
    share = "n/a" if speed.share is None else f"{100 * speed.share:.1f}%"
    note = f"{speed.flops_per_point / 1e9:.1f} GFLOP/point, centre loss {result.centre_loss:.4f}"
    row = [f"surface {grid}x{grid}, {strategy}", name, f"{speed.seconds:.2f} s", f"{speed.achieved / 1e12:.3g}"]
    return row + [share, note], speed.seconds / speed.points


def surface_rows(probe, small: int, full: int, precisions: list[str], device: str, clock: Clock):
    rows = []
    for name in precisions:
        per = {}
        for strategy in strategies(device, name):
            row, per[strategy] = surface_row(probe, small, name, strategy)
            rows.append(row)
        best = min(per, key=per.get)
        projected = per[best] * full * full
        if full > small and clock.fits(1.2 * projected):
            rows.append(surface_row(probe, full, name, best)[0])
        elif full > small:
            note = f"skipped: {projected:.0f} s projected ({best}), {clock.left():.0f} s of the budget left"
            rows.append([f"surface {full}x{full}, {best}", name, "skipped", "", "", note])
    return rows


def peak_memory(device: str) -> str:
    if torch.device(device).type == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB peak allocated"
    import resource

    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB peak RSS (process)"


def hessian_row(probe, device: str, top_k: int, max_steps: int, tol: float, clock: Clock) -> list[str]:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    with torch.enable_grad():
        op = hessian.HessianOperator(probe)
        sync()
        one = time.perf_counter()
        op(torch.ones(op.n, device=op.device))
        sync()
        per = time.perf_counter() - one
        if not clock.fits(per * max_steps):
            note = f"skipped: {max_steps} products at {per:.2f} s = {per * max_steps:.0f} s projected"
            return [f"Hessian top-{top_k}", "fp32", "skipped", "", "", note]
        block, cap = hessian_memory.cap_of(op.n, top_k, max_steps, hessian.SPEC.block)  # the default plan's
        ext = hessian.extreme_eigenvalues(op, top_k, tol=tol, max_steps=max_steps, block=block, cap=cap)
    sync()
    seconds = time.perf_counter() - t0
    vals = ", ".join(f"{v:.5g}" for v in ext.top)
    state = ("converged, verified" if ext.verified else "converged") if ext.converged else "NOT converged"
    note = f"top-{top_k} [{vals}], {state} (bound {ext.top_error:.2g}), {op.calls} Hv at {per:.3f} s, cap {cap}"
    return [f"Hessian top-{top_k}", "fp32", f"{seconds:.1f} s", "", "", f"{note}, {peak_memory(device)}"]


def random_image_folder(n: int, size: int) -> str:
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="dstab-gpu-bench-"))
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return f"folder:{folder}?size={size}&channels=3"


def trainer(preset: str, arch: dict, dataset: str, batch: int, steps: int, device: str) -> Trainer:
    cfg = train_config.preset(preset)
    cfg.update(arch=arch, dataset=dataset, batch_size=batch, steps=steps, eval_every=None, checkpoint_every=None)
    return Trainer(TrainConfig.from_dict(cfg), tempfile.mkdtemp(prefix="dstab-gpu-bench-run-"), device)


def training_row(arch: dict, batch: int, steps: int, blocks: int, device: str, clock: Clock) -> list[str]:
    dataset = random_image_folder(max(2 * batch, 64), arch["image_size"])
    trs = {p: trainer(p, arch, dataset, batch, steps, device) for p in ("baseline", "mdlrc-clts")}
    feeds = {p: (b.to(tr.device) for b in tr.dataset.batches(batch, 0)) for p, tr in trs.items()}
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for p, tr in trs.items():  # warm-up (cuDNN autotune, allocator), timed to size the run
        for _ in range(3):
            tr.dm_step(next(feeds[p]), 1)
    sync()
    per_step = (time.perf_counter() - t0) / 6
    steps = max(2 * blocks, min(steps, int(0.8 * clock.left() / max(per_step, 1e-6))))
    per_block, times, done = steps // blocks, {p: [] for p in trs}, {p: 0 for p in trs}
    for b in range(blocks):
        for p in list(trs) if b % 2 == 0 else list(reversed(trs)):
            sync()
            t0 = time.perf_counter()
            for _ in range(per_block):
                done[p] += 1
                trs[p].dm_step(next(feeds[p]), done[p])
            sync()
            times[p].append((time.perf_counter() - t0) / per_block)
    base, full = statistics.median(times["baseline"]), statistics.median(times["mdlrc-clts"])
    amp = "bf16" if trs["baseline"].amp else "fp32"
    return [
        f"train {blocks * per_block} steps x2",
        amp,
        f"{full / base:.3f} ratio",
        "",
        "",
        f"median step: baseline {base * 1e3:.1f} ms, mdlrc-clts {full * 1e3:.1f} ms, batch {batch}",
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on a CPU, for a test of this script")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--grid", type=int, default=51, help="the full grid, run when the time left allows")
    ap.add_argument("--small-grid", type=int, default=11, help="every strategy and precision on this grid first")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=1000, help="at most; fewer when the budget is short")
    ap.add_argument("--budget", type=float, default=270.0, help="seconds for the whole table")
    args = ap.parse_args(argv)
    if args.smoke:
        args.device, args.grid, args.small_grid, args.batch, args.train_steps = "cpu", 5, 3, 2, 4
        args.precisions = ",".join(p for p in args.precisions.split(",") if p != "tf32")
    clock = Clock(args.budget)
    arch = TINY if args.smoke else DDPM_CIFAR
    dev = torch.device(args.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {card}, threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d %H:%M')}")
    probe = unet_probe(arch, args.batch, args.device)
    print(f"model: {probe.num_params:,} parameters, batch {args.batch}, budget {args.budget:.0f} s", flush=True)
    precisions = args.precisions.split(",")
    rows = ops_rows(probe, precisions, args.device)
    rows += surface_rows(probe, args.small_grid, args.grid, precisions, args.device, clock)
    rows.append(hessian_row(probe, args.device, 3, 12 if args.smoke else 240, 1e-3, clock))
    rows.append(training_row(arch, args.batch, args.train_steps, 2 if args.smoke else 10, args.device, clock))
    head = ["check", "precision", "time", "TFLOP/s", "share of peak", "notes"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\ntable done with {clock.left():.0f} s of the {args.budget:.0f} s budget left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
