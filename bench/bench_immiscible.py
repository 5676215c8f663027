"""Immiscible diffusion's cost per training step, and the field's timestep samplers', as ratios in one run.

1. whole training steps of the digits UNet (preset model), `baseline` and `immiscible` interleaved in
   alternating blocks so that load changes on a shared machine hit both alike; median per-step times;
2. the assignment alone (`noise_pairing.immiscible`: a float64 squared-distance matrix and scipy's
   linear_sum_assignment) timed in isolation per batch size and sample shape, as a share of a baseline step;
3. drawing t and its weights with each preset's sampler, against the baseline's randint.
The load average is printed beside the numbers.

    python bench/bench_immiscible.py [--blocks 6] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import _repo  # noqa: F401 (puts the repository root on sys.path)
import torch
from bench_trainer import time_steps, trainer

from dstab.training.noise_pairing import immiscible

FIELD = ("baseline", "clts", "debias", "lognormal", "edm", "logit-normal", "sd3-mode", "laplace", "speed")


def interleaved(device: str, blocks: int, steps: int, batch: int) -> dict[str, float]:
    trs = {p: trainer(p, device, batch=batch) for p in ("baseline", "immiscible")}
    moved = {p: (b.to(tr.device) for b in tr.dataset.batches(batch, 0)) for p, tr in trs.items()}
    times = {p: [] for p in trs}
    for p, tr in trs.items():  # warm-up
        time_steps(tr, moved[p], 1, 3)
    for b in range(blocks):
        for p in list(trs) if b % 2 == 0 else list(reversed(trs)):
            times[p].append(time_steps(trs[p], moved[p], 4 + b * steps, steps))
    return {p: statistics.median(v) for p, v in times.items()}


def assignment_time(batch: int, shape: tuple[int, ...], calls: int) -> float:
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(batch, *shape, generator=gen) * 2 - 1, torch.randn(batch, *shape, generator=gen)
    immiscible(x0, noise)
    t0 = time.perf_counter()
    for _ in range(calls):
        immiscible(x0, noise)
    return (time.perf_counter() - t0) / calls


def sampler_times(device: str, batch: int, calls: int) -> dict[str, float]:
    out, gen = {}, torch.Generator().manual_seed(0)
    for p in FIELD:
        tr = trainer(p, device, batch=batch)
        t0 = time.perf_counter()
        for it in range(calls):
            tr.sampler.sample(batch, it, gen, tr.device)
        out[p] = (time.perf_counter() - t0) / calls
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average at start {os.getloadavg()}")
    med = interleaved(args.device, args.blocks, args.steps, args.batch)
    b, m = med["baseline"], med["immiscible"]
    print(f"device {args.device}, threads {args.threads}, digits UNet (preset), batch {args.batch}")
    print(f"median step: baseline {b * 1e3:.2f} ms, immiscible {m * 1e3:.2f} ms, ratio {m / b:.3f}")
    for batch, shape in ((32, (1, 8, 8)), (64, (1, 8, 8)), (128, (1, 8, 8)), (128, (3, 32, 32)), (256, (3, 32, 32))):
        a = assignment_time(batch, shape, 50)
        print(
            f"assignment alone, batch {batch} of {'x'.join(map(str, shape))}: {a * 1e3:.3f} ms"
            + (f" = {100 * a / b:.2f}% of a baseline digits step" if shape == (1, 8, 8) else "")
        )
    samp = sampler_times(args.device, args.batch, 2000)
    base = samp["baseline"]
    print(
        "sampler draw per step (us, ratio to baseline randint): "
        + ", ".join(f"{p} {v * 1e6:.1f} ({v / base:.1f}x)" for p, v in samp.items())
    )
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
