"""Hessian engines side by side: dstab vs PyHessian 0.1, time and peak memory per task at equal error.

What is timed is the task, not the process: one process per model loads the checkpoint and builds
the probe once (imports and loading untimed), runs every engine once untimed (warm-up: lazy
initialisation, first allocations), then `--repeats` rounds in which each task runs once per
engine, interleaved (the order alternates between rounds), each run timed from the probe to the
numbers: its own set-up included (dstab's operator builds the gradient graph; PyHessian's
constructor does the same). A row shows the best of the rounds (the least disturbed by other
jobs on the machine), the median beside it, and the load average at the time.

- lambda_max and top-3: dstab's checked block Lanczos at the target tolerance against PyHessian's
  power iteration at the loosest tolerance of a scan (1e-3 .. 1e-7) whose result reaches the
  target error (against a tight reference: dstab, tol --ref-tol, block 3); where none does, its
  most accurate one;
- trace (Hutchinson) and density (SLQ): both engines draw the same Rademacher vectors from the same
  seeds, so the estimates agree to rounding: equal work and equal error by construction;
- peak = growth of the peak resident set (VmHWM, reset before each run) over the run, the largest
  over the rounds;
- the 35.7M-parameter DDPM CIFAR UNet (random weights, batch 2): a few products only, one process
  per engine, to see how peak memory scales with the model (dstab's SLQ with the local
  recurrence, PyHessian's density keeping every Lanczos vector).

    python bench/bench_hessian.py [--models digits-dm,toy-mlp] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
TARGETS = {"lambda_max": 1e-5, "lambda_max_unverified": 1e-5, "top3": 1e-4}
POWER_TOLS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
PYH_MAX_ITER = 300  # power iterations per eigenvalue at most (PyHessian's default: 100)
HV = {"pyhessian": 0}


def probe_of(model: str):
    if model == "cifar-unet":
        sys.path.insert(0, str(ROOT / "bench"))
        from gpu_bench import DDPM_CIFAR, unet_probe

        return unet_probe(DDPM_CIFAR, 2, "cpu")
    from dstab import zoo, zooresults

    return zooresults.HESSIAN.probe.build(zoo.load_checkpoint(ZOO[model]))  # the report's probe


def _count_pyhessian_products() -> None:
    """PyHessian's module calls `hessian_vector_product` by its global name: count its calls."""
    import pyhessian.hessian  # noqa: F401

    mod = sys.modules["pyhessian.hessian"]
    inner = mod.hessian_vector_product

    def counted(*args, **kwargs):
        HV["pyhessian"] += 1
        return inner(*args, **kwargs)

    mod.hessian_vector_product = counted


def run(probe, what: str, engine: str, setting: float, runs: int, steps: int) -> dict:
    """One timed run: {seconds, peak_mib, values (with hv: products used)}; a line on stderr."""
    base = lanczos.resident_bytes()
    lanczos.peak_resident_bytes(reset=True)
    HV["pyhessian"] = 0
    t0 = time.perf_counter()
    with torch.enable_grad():
        values = (_dstab if engine == "dstab" else _pyhessian)(probe, what, setting, runs, steps)
    seconds = time.perf_counter() - t0
    peak = lanczos.peak_resident_bytes()
    if engine == "pyhessian":
        values["hv"] = HV["pyhessian"]
    print(f"{what} {engine} {setting:g}: {seconds:.3f} s, {values.get('hv')} Hv, load {load()}", file=sys.stderr)
    return {"seconds": seconds, "peak_mib": max(peak - base, 0) / 2**20, "values": values, "n": probe.num_params}


def _dstab(probe, what, setting, runs, steps):
    op = hessian.HessianOperator(probe)
    if what in ("lambda_max", "lambda_max_unverified", "top3", "reference"):
        k = 3 if what in ("top3", "reference") else 1
        block = 3 if what == "reference" else hessian.SPEC.block
        verify = what != "lambda_max_unverified"
        ext = hessian.extreme_eigenvalues(op, k, tol=setting, max_steps=800, block=block, verify=verify)
        return {"top": [float(v) for v in ext.top], "hv": op.calls, "converged": ext.converged}
    if what == "trace":
        return {"trace": hessian.hutchinson_trace(op, int(setting), seed=1)[0], "hv": op.calls}
    full = None if probe.num_params < 10**7 else False  # the 35.7M case: the local recurrence, as at 90 steps
    nodes, weights = hessian.slq(op, runs, steps, seed=2, full=full)
    return {"nodes": nodes.tolist(), "weights": weights.tolist(), "hv": op.calls}


def _pyhessian(probe, what, setting, runs, steps):
    from dstab.analysis import hessian_ref

    if what in ("lambda_max", "lambda_max_unverified", "top3"):
        with hessian_ref._seeded(0, probe.device):
            eng = hessian_ref._pyhessian(probe, probe.device)
            top, _ = eng.eigenvalues(maxIter=PYH_MAX_ITER, tol=setting, top_n=3 if what == "top3" else 1)
        return {"top": sorted((float(v) for v in top), reverse=True)}
    if what == "trace":
        with hessian_ref._seeded(1, probe.device):
            eng = hessian_ref._pyhessian(probe, probe.device)
            return {"trace": float(np.mean(eng.trace(maxIter=int(setting), tol=float("-inf"))))}
    with hessian_ref._seeded(2, probe.device), hessian_ref._torch_eig_restored():
        eng = hessian_ref._pyhessian(probe, probe.device)
        nodes, weights = eng.density(iter=steps, n_v=runs)
    return {"nodes": np.array(nodes).tolist(), "weights": np.array(weights).tolist()}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def error(what: str, values: dict, ref: np.ndarray, other: dict | None) -> float:
    """Relative error: of the top values against the reference; trace and density against the other engine."""
    if what in TARGETS:
        k = 3 if what == "top3" else 1
        return float(np.max(np.abs(np.array(values["top"][:k]) - ref[:k])) / abs(ref[0]))
    if other is None:
        return 0.0
    if what == "trace":
        return abs(values["trace"] - other["trace"]) / abs(other["trace"])
    a, b = np.array(values["nodes"]), np.array(other["nodes"])
    return float(np.abs(a - b).max() / np.abs(b).max())


def model_rows(model: str, args) -> list[dict]:
    """Every row of one model, measured in this process (see the module docstring)."""
    _count_pyhessian_products()
    probe = probe_of(model)
    ref = np.array(run(probe, "reference", "dstab", args.ref_tol, 0, 0)["values"]["top"])
    tasks = args.tasks.split(",")
    plan = []  # (task, engine, setting)
    for what in [t for t in TARGETS if t in tasks]:
        plan.append((what, "dstab", TARGETS[what]))
        best = None
        for tol in args.power_tols:  # untimed scan: the loosest tolerance that reaches the target error
            err = error(what, run(probe, what, "pyhessian", tol, 0, 0)["values"], ref, None)
            if best is None or err < best[1] or err <= TARGETS[what]:
                best = (tol, err)
            if err <= TARGETS[what]:
                break
        plan.append((what, "pyhessian", best[0]))
    for what, setting in (("trace", args.trace_samples), ("density", 0)):
        if what in tasks:
            plan += [(what, "dstab", setting), (what, "pyhessian", setting)]
    for what, engine, setting in plan:  # warm-up, untimed
        run(probe, what, engine, setting, args.slq_runs, args.slq_steps)
    timed: dict[tuple, list[dict]] = {p: [] for p in plan}
    loads: dict[tuple, str] = {}
    for r in range(args.repeats):
        pairs = [plan[i : i + 2] for i in range(0, len(plan), 2)]
        for pair in pairs:
            for p in pair if r % 2 == 0 else pair[::-1]:
                timed[p].append(run(probe, p[0], p[1], p[2], args.slq_runs, args.slq_steps))
                loads[p] = load()
    rows = []
    for what, engine, setting in plan:
        ms = timed[(what, engine, setting)]
        other_engine = "pyhessian" if engine == "dstab" else "dstab"
        other = next((timed[p][0]["values"] for p in plan if p[0] == what and p[1] == other_engine), None)
        secs = [m["seconds"] for m in ms]
        label = {"trace": f"{setting} probes", "density": f"{args.slq_runs} runs x {args.slq_steps} steps"}.get(
            what, f"tol {setting:g}"
        )
        rows.append(
            {
                "model": model,
                "task": what,
                "engine": engine,
                "setting": label,
                "best": min(secs),
                "median": statistics.median(secs),
                "peak": max(m["peak_mib"] for m in ms),
                "error": error(what, ms[0]["values"], ref, None if engine == "pyhessian" else other),
                "hv": ms[0]["values"].get("hv", ""),
                "load": loads[(what, engine, setting)],
                "n": probe.num_params,
            }
        )
    return rows


def env(threads: int) -> dict:
    """The children's environment: threads, and no allocator tuning (a user sets none: peaks are
    measured as they will see them, glibc's heap retention included)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")},
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }


def child(flag: str, *values, threads: int) -> list:
    args = [sys.executable, __file__, flag, *map(str, values), "--threads", str(threads)]
    out = subprocess.run(args, capture_output=True, text=True, env=env(threads), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


CIFAR_TASKS = {
    "baseline": "model + one forward/backward (a plain script: the yardstick)",
    "operator-whole": "dstab operator + one product, the whole batch's graph kept (micro_batch=0)",
    "operator": "dstab operator + one product, the plan's choice (micro-batches of 1)",
    "slq": "dstab SLQ, the plan's choice, 1 run x 6 steps",
    "top3-whole": "dstab top-3, the plan's choice but the whole batch's graph kept, 16 products",
    "top3": "dstab top-3, the plan's choice (block, cap, spill, micro-batch), 16 products",
}


def cifar_task(task: str) -> dict:
    """One CIFAR-UNet memory task in this (fresh) process: growth of the peak resident set over the
    process after its imports, the plan's estimate beside it."""
    from gpu_bench import DDPM_CIFAR

    from dstab import models
    from dstab.diffusion import Diffusion

    base = lanczos.resident_bytes()
    lanczos.peak_resident_bytes(reset=True)
    t0, c0 = time.perf_counter(), time.process_time()
    plan = None
    if task == "baseline":
        torch.manual_seed(0)
        model = models.build(DDPM_CIFAR)
        x0, noise = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        Diffusion().loss_terms(model, x0.clamp(-1, 1), torch.full((2,), 500), noise).mean().backward()
        n = sum(p.numel() for p in model.parameters())
    else:
        probe = probe_of("cifar-unet")
        n = probe.num_params
        micro = 0 if task.endswith("-whole") else None
        with torch.enable_grad():
            op, plan, _ = hessian.operator_with_plan(
                probe, "reverse", 3, hessian.SPEC.max_steps, 2, 40, micro_batch=micro
            )
            task = task.removesuffix("-whole")
            if task == "slq":
                hessian.slq(op, 1, 6, seed=2, full=plan.slq_full, scratch=plan.scratch)
            elif task == "top3":
                hessian.extreme_eigenvalues(op, 3, 0, 1e-4, 16, None, plan.block, False, True, plan.cap, plan.scratch)
    peak = max(lanczos.peak_resident_bytes() - base, 0)
    out = {
        "task": task,
        "micro_batch": None if plan is None else plan.micro_batch,
        "peak_mib": peak / 2**20,
        "seconds": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "n": n,
    }
    if plan is not None:
        out.update(plan_mib=plan.total / 2**20, cap=plan.cap, block=plan.block, slq=plan.derived())
    return out


def cifar_rows(threads: int) -> None:
    """The 35.7M CIFAR UNet at batch 2, each task in a fresh process, without allocator tuning."""
    rows = {task: child("--memory", task, threads=threads) for task in CIFAR_TASKS}
    yard = rows["baseline"]["peak_mib"]
    print(f"\n35.7M DDPM CIFAR UNet, batch 2, peak RSS growth over the process after imports, load {load()}")
    print("| task | peak MiB | x (model + fwd/bwd) | plan's estimate MiB | wall s | CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for task, m in rows.items():
        est = f"{m['plan_mib']:.0f} (cap {m['cap']}, block {m['block']})" if "plan_mib" in m else ""
        print(
            f"| {CIFAR_TASKS[task]} | {m['peak_mib']:.0f} | {m['peak_mib'] / yard:.2f} | {est} | {m['seconds']:.0f} "
            f"| {m['cpu_s']:.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="digits-dm,toy-mlp", help="also: cifar-unet (memory only, minutes)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per task and engine (best of them shown)")
    ap.add_argument("--tasks", default="lambda_max,lambda_max_unverified,top3,trace,density")
    ap.add_argument(
        "--power-tols",
        type=lambda s: [float(x) for x in s.split(",")],
        default=list(POWER_TOLS),
        help="PyHessian tolerances scanned, loosest first",
    )
    ap.add_argument("--ref-tol", type=float, default=1e-9, help="tolerance of the reference run (dstab, block 3)")
    ap.add_argument("--trace-samples", type=int, default=20, help="Hutchinson probes (the report's 20)")
    ap.add_argument("--slq-runs", type=int, default=2, help="SLQ runs (the report's 2)")
    ap.add_argument("--slq-steps", type=int, default=40, help="SLQ steps per run (the report's 40)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--memory", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(model_rows(args.one, args)))
        return
    if args.memory:
        print(json.dumps(cifar_task(args.memory)))
        return
    sys.stdout.reconfigure(line_buffering=True)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats} interleaved rounds, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, load {load()}"
    )
    print(
        "| model | task | engine | setting | best s | median s | peak MiB | rel. error | Hv | pyhessian / dstab "
        "| load |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    shown = {**vars(args), "power_tols": ",".join(map(str, args.power_tols))}
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in shown.items() if k not in ("models", "one", "memory")]
    for model in args.models.split(","):
        if model == "cifar-unet":
            cifar_rows(args.threads)
            continue
        rows = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--one", model, *passed],
                stdout=subprocess.PIPE,
                text=True,
                env=env(args.threads),
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for r in rows:
            dstab_row = next(x for x in rows if x["task"] == r["task"] and x["engine"] == "dstab")
            ratio = f"{r['best'] / dstab_row['best']:.2f}x" if r["engine"] == "pyhessian" else ""
            print(
                f"| {r['model']} | {r['task']} | {r['engine']} | {r['setting']} | {r['best']:.3f} | "
                f"{r['median']:.3f} | {r['peak']:.0f} | {r['error']:.1e} | {r['hv']} | {ratio} "
                f"| {r['load']} |"
            )


if __name__ == "__main__":
    main()
