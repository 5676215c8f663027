"""Hessian engines side by side: dstab vs PyHessian 0.1, time and peak memory per task at equal error.

Every measurement runs in its own process (peak RSS is per process), set-up included (dstab's
operator builds the gradient graph; PyHessian's constructor does the same), both engines on the
same probe and thread count:

- lambda_max and top-3: dstab's checked block Lanczos at a tolerance against PyHessian's power
  iteration at each tolerance of a scan; the rows that reach the target error (against a tight
  reference: dstab, tol 1e-9, block 3) are compared, the fastest of each engine;
- trace (Hutchinson) and density (SLQ): both engines draw the same Rademacher vectors from the same
  seeds, so the estimates agree to rounding: equal work and equal error by construction;
- the 35.7M-parameter DDPM CIFAR UNet (random weights, batch 2): a few products only, to see how
  peak memory scales with the model (dstab's SLQ with the local recurrence, PyHessian's density
  keeping every Lanczos vector).

    python bench/bench_hessian.py [--models digits-dm,toy-mlp,cifar-unet] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)
import numpy as np
import torch

from dstab.analysis import hessian, lanczos

ROOT = Path(__file__).resolve().parents[1]

ZOO = {"digits-dm": "digits/dm-eps-s0", "toy-mlp": "toy2d/dm-eps-s0"}
TARGETS = {"lambda_max": 1e-5, "top3": 1e-4}
POWER_TOLS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)


def probe_of(model: str):
    if model == "cifar-unet":
        sys.path.insert(0, str(ROOT / "bench"))
        from gpu_bench import DDPM_CIFAR, unet_probe

        return unet_probe(DDPM_CIFAR, 2, "cpu")
    from dstab import zoo, zooresults

    return zooresults.HESSIAN.probe.build(zoo.load_checkpoint(ZOO[model]))  # the report's probe


def task(model: str, what: str, engine: str, setting: float, runs: int, steps: int) -> dict:
    """One measurement in this process: {seconds, peak_mib, values}."""
    probe = probe_of(model)
    base = lanczos.resident_bytes()
    lanczos.peak_resident_bytes(reset=True)
    t0 = time.perf_counter()
    with torch.enable_grad():
        values = (_dstab if engine == "dstab" else _pyhessian)(probe, what, setting, runs, steps)
    seconds = time.perf_counter() - t0
    peak = lanczos.peak_resident_bytes()
    return {"seconds": seconds, "peak_mib": (peak - base) / 2**20, "values": values, "n": probe.num_params}


def _dstab(probe, what, setting, runs, steps):
    op = hessian.HessianOperator(probe)
    if what in ("lambda_max", "top3", "reference"):
        k = {"lambda_max": 1, "top3": 3, "reference": 3}[what]
        block = 3 if what == "reference" else hessian.SPEC.block
        ext = hessian.extreme_eigenvalues(op, k, tol=setting, max_steps=800, block=block)
        return {"top": [float(v) for v in ext.top], "hv": op.calls, "converged": ext.converged}
    if what == "trace":
        return {"trace": hessian.hutchinson_trace(op, int(setting), seed=1)[0], "hv": op.calls}
    full = None if probe.num_params < 10**7 else False  # the 35.7M case: the local recurrence, as at 90 steps
    nodes, weights = hessian.slq(op, runs, steps, seed=2, full=full)
    return {"nodes": nodes.tolist(), "weights": weights.tolist(), "hv": op.calls}


def _pyhessian(probe, what, setting, runs, steps):
    from dstab.analysis import hessian_ref

    if what in ("lambda_max", "top3"):
        with hessian_ref._seeded(0, probe.device):
            eng = hessian_ref._pyhessian(probe, probe.device)
            top, _ = eng.eigenvalues(maxIter=10000, tol=setting, top_n=1 if what == "lambda_max" else 3)
        return {"top": sorted((float(v) for v in top), reverse=True)}
    if what == "trace":
        with hessian_ref._seeded(1, probe.device):
            eng = hessian_ref._pyhessian(probe, probe.device)
            return {"trace": float(np.mean(eng.trace(maxIter=int(setting), tol=float("-inf"))))}
    with hessian_ref._seeded(2, probe.device), hessian_ref._torch_eig_restored():
        eng = hessian_ref._pyhessian(probe, probe.device)
        nodes, weights = eng.density(iter=steps, n_v=runs)
    return {"nodes": np.array(nodes).tolist(), "weights": np.array(weights).tolist()}


def measure(model, what, engine, setting, threads, runs=3, steps=90) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "MALLOC_MMAP_THRESHOLD_": "131072"}  # fmt: skip
    args = [sys.executable, __file__, "--one", model, what, engine, repr(setting), str(runs), str(steps)]
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def eig_rows(model, what, ref, threads) -> list[tuple]:
    k = 1 if what == "lambda_max" else 3
    rows = []
    for engine, settings in (("dstab", (TARGETS[what],)), ("pyhessian", POWER_TOLS)):
        for tol in settings:
            m = measure(model, what, engine, tol, threads)
            err = float(np.max(np.abs(np.array(m["values"]["top"][:k]) - ref[:k])) / abs(ref[0]))
            rows.append((engine, f"tol {tol:g}", m, err))
            if engine == "pyhessian" and err <= TARGETS[what]:
                break  # looser tolerances are faster: the first one to reach the target is its best
    return rows


def row(*cells) -> None:
    """One table line; the last cell is the measurement, shown as its Hessian-vector products."""
    *shown, m = cells
    print("| " + " | ".join(str(c) for c in shown) + f" | {m['values'].get('hv', '')} | {load()} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="digits-dm,toy-mlp,cifar-unet")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", default="lambda_max,top3,trace,density")
    ap.add_argument("--ref-tol", type=float, default=1e-9, help="tolerance of the reference run (dstab, block 3)")
    ap.add_argument("--trace-samples", type=int, default=20, help="Hutchinson probes (the report's 20)")
    ap.add_argument("--slq-runs", type=int, default=2, help="SLQ runs (the report's 2)")
    ap.add_argument("--slq-steps", type=int, default=40, help="SLQ steps per run (the report's 40)")
    ap.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        model, what, engine, setting, runs, steps = args.one
        print(json.dumps(task(model, what, engine, float(setting), int(runs), int(steps))))
        return
    sys.stdout.reconfigure(line_buffering=True)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {time.strftime('%Y-%m-%d %H:%M')}, load {load()}")
    print("| model | task | engine | setting | seconds | peak MiB | rel. error | Hv | load |")
    print("|---|---|---|---|---:|---:|---:|---:|---|")
    for model in args.models.split(","):
        if model == "cifar-unet":
            for engine in ("dstab", "pyhessian"):
                m = measure(model, "density", engine, 0, args.threads, runs=1, steps=3)
                mib = m["n"] * 4 / 2**20
                mode = "local recurrence" if engine == "dstab" else "keeps all vectors"
                copies = f"{m['peak_mib']:.0f} ({m['peak_mib'] / mib:.1f} copies)"
                name = f"{model} (n={m['n']:,}, one copy {mib:.0f} MiB)"
                row(name, "density 1 x 3 steps", engine, mode, f"{m['seconds']:.1f}", copies, "-", m)
            continue
        tasks = args.tasks.split(",")
        ref = np.array(measure(model, "reference", "dstab", args.ref_tol, args.threads)["values"]["top"])
        for what in [t for t in ("lambda_max", "top3") if t in tasks]:
            for engine, setting, m, err in eig_rows(model, what, ref, args.threads):
                row(model, what, engine, setting, f"{m['seconds']:.2f}", f"{m['peak_mib']:.0f}", f"{err:.1e}", m)
        for what, setting in [(t, s) for t, s in (("trace", args.trace_samples), ("density", 0)) if t in tasks]:
            ms = {e: measure(model, what, e, setting, args.threads, args.slq_runs, args.slq_steps)
                  for e in ("dstab", "pyhessian")}  # fmt: skip
            if what == "trace":
                diff = abs(ms["dstab"]["values"]["trace"] - ms["pyhessian"]["values"]["trace"])
                diff /= abs(ms["pyhessian"]["values"]["trace"])
            else:
                a, b = (np.array(ms[e]["values"]["nodes"]) for e in ("dstab", "pyhessian"))
                diff = float(np.abs(a - b).max() / np.abs(b).max())
            for e, m in ms.items():
                label = f"{setting} probes" if what == "trace" else f"{args.slq_runs} runs x {args.slq_steps} steps"
                shown = f"{diff if e == 'dstab' else 0:.1e} (vs the other)"
                row(model, what, e, label, f"{m['seconds']:.2f}", f"{m['peak_mib']:.0f}", shown, m)


if __name__ == "__main__":
    main()
