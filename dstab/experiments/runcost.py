"""What a set of training runs will cost, before any of them starts: per run and in total the
images, iterations, evaluations, FLOPs, device-hours on the device at hand and the disk written.

Counts are exact (from the configs). FLOPs are counted on PyTorch's meta device
(`torch.utils.flop_counter`, matmuls and convolutions, 2 per multiply-add): one forward per image,
three for a training step (forward + backward measured at 3.00x on improved-diffusion's CIFAR-10
UNet). Times are measured here: a few timed training steps and one timed evaluation batch on the
device the runs would use. On CUDA the steps run at the per-process batch; on a CPU at a small batch
scaled linearly (a CPU's time grows with the batch) and the hours are CPU-hours, said so. The
evaluation is timed as one sampler step of one batch times the sampler's steps, plus the feature
network on that batch; an FID evaluation without the Inception weights at hand is timed with
randomly initialised ones (the cost does not depend on the weights). FD, KID and precision/recall
run on the CPU in float64 and grow with n^2 + n m (n samples, m reference rows): timed at a small
size and scaled.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from dataclasses import dataclass

CPU_PROBE_BATCH = 4  # a CPU measures a few steps at this batch and scales: the real batch could take minutes
TIMED_STEPS = 3
FEATURE_PROBE = 256  # rows of the timed FD / KID / PRDC computation
FID_FEATURES = 2048
METRICS_ROW_BYTES = 120  # one row of metrics.sqlite (step, name, value, wall and its index), measured
LOGGED_NAMES = 12  # loss, loss_q0..3, grad_norm, lr, beta1, samples_per_s, cpu_s, wall and slack
EVAL_NAMES = 8  # FD, KID, its SE, precision, recall, density, coverage and slack


@dataclass
class Timing:
    device: str  # what was measured, e.g. "cuda (NVIDIA H100 80GB HBM3)"
    unit: str  # "GPU" or "CPU": what the hours are hours of
    step_s: float  # one training step of one process at the run's batch (its share under torchrun)
    sample_s: float  # one evaluation sample: every sampler step and its feature pass
    metrics_s: float  # FD / KID / PRDC of one evaluation (CPU, scales with its sample count)
    how: str  # how it was measured, in words


def evaluations(config: dict) -> int:
    """Evaluation passes of a run: every eval_every steps, at the end, and the repeats."""
    every, steps = config.get("eval_every"), config["steps"]
    if not every:
        return 0
    n = steps // every + (steps % every != 0)
    repeat = config.get("eval_repeat_every")
    if repeat:
        n += sum(1 for k in range(1, n + 1) if min(k * every, steps) % repeat == 0)
    return n


def sampler_calls(config: dict) -> int:
    """Network evaluations per DM sample (1 for a GAN)."""
    if config["kind"] != "dm":
        return 1
    return config["diffusion"]["T"] if config["eval_sampler"] == "ddpm" else config["eval_sampler_steps"]


@functools.lru_cache(maxsize=32)
def _forward_flops(arch_json: str, shape: tuple[int, ...]) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .. import sizing

    net = sizing.meta_module(json.loads(arch_json), "network")
    x, t = torch.zeros((1, *shape), device="meta"), torch.zeros(1, dtype=torch.long, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, t)
    return int(counter.get_total_flops())


def forward_flops(config: dict) -> int | None:
    """FLOPs of one denoiser forward of one example (DMs; None for GANs)."""
    from ..sampling import arch_sample_shape

    if config["kind"] != "dm":
        return None
    return _forward_flops(json.dumps(config["arch"], sort_keys=True), tuple(arch_sample_shape(config["arch"])))


def _params(config: dict) -> tuple[int, int]:
    """(parameters trained, parameters in a checkpoint)."""
    from .. import sizing

    if config["kind"] == "dm":
        n = sizing.checked_params(config["arch"], "arch")
        return n, n
    g = sizing.checked_params(config["arch"]["generator"], "arch.generator")
    d = sizing.checked_params(config["arch"]["discriminator"], "arch.discriminator")
    return g + d, g + d


def disk_bytes(config: dict) -> int:
    """What a run writes: its checkpoints (kept), the resume state and the one before (raw weights,
    EMA and Adam's two moments), and the metrics table."""
    trained, saved = _params(config)
    steps = config["steps"]
    every = config.get("checkpoint_every")
    kept = {s for s in config.get("save_steps", [])} | {steps}
    if every:
        kept |= set(range(every, steps + 1, every))
    per_checkpoint = saved * (2 if config["storage_dtype"] == "float16" else 4)
    ema = trained if config.get("ema_rate") else 0
    resume = 2 * (3 * trained + ema) * 4 if every else 0
    rows = (steps // config["log_every"] + 1) * LOGGED_NAMES + evaluations(config) * EVAL_NAMES
    return len(kept) * per_checkpoint + resume + rows * METRICS_ROW_BYTES


def counts(config: dict, networks: bool = True) -> dict:
    """The exact sizes of one run: iterations, images, evaluation samples and network calls; with
    `networks` (a meta-device build: PyTorch) also its FLOPs and the disk it writes."""
    n_eval = evaluations(config)
    samples = n_eval * config["eval_samples"] * config["eval_seeds"]
    calls = samples * sampler_calls(config)
    fwd = forward_flops(config) if networks else None
    images = config["steps"] * config["batch_size"]
    return {
        "iterations": config["steps"],
        "images": images,
        "evaluations": n_eval,
        "eval_samples": samples,
        "eval_calls": calls,
        "train_flop": None if fwd is None else 3 * fwd * images,
        "eval_flop": None if fwd is None else fwd * calls,
        "disk": disk_bytes(config) if networks else None,
    }


# --- measured times -------------------------------------------------------------------------------
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats: int) -> float:
    fn()  # warm-up: allocator, cuDNN autotuning, lazy imports
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def _feature_net(config: dict, dataset, device):
    """The evaluation's feature network, or for FID without weights a random-weight Inception."""
    from ..analysis import fid

    metric = fid.auto_metric(dataset) if config["eval_metric"] == "auto" else config["eval_metric"]
    if metric != "fid":
        return fid.extractor(metric, dataset, device), metric, ""
    weights = fid.inception_weights()
    if weights is not None:
        return fid.extractor("fid", dataset, device, weights), metric, ""
    net = fid.random_inception(device)
    fn = lambda x: net((x.to(device) + 1.0) / 2.0)[0].flatten(1)  # noqa: E731
    return fid.Extractor("fid", fn, "random"), metric, " (Inception with random weights: no weights here)"


def _metrics_seconds(n: int, m: int, image: bool) -> float:
    """CPU seconds of FD, KID and PRDC of n samples against m reference rows of Inception's 2048
    features: timed at FEATURE_PROBE rows of a quarter of the dimension and scaled, the covariance by
    n d^2, the Frechet distance's eigendecompositions by d^3, KID and PRDC (on at most
    REFERENCE_FEATURES samples) by (n^2 + n m) d."""
    import numpy as np

    from ..analysis import featmetrics, fid

    if not image:
        return 0.0
    p, k, d, scale = FEATURE_PROBE, min(n, fid.REFERENCE_FEATURES), FID_FEATURES // 4, 4
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((p, d)), rng.standard_normal((p, d))
    t0 = time.process_time()
    stats = fid.gaussian_stats(x)
    t1 = time.process_time()
    fid.frechet_distance(*stats, *stats)
    t2 = time.process_time()
    featmetrics.kid(x, y)
    featmetrics.prdc(x, y)
    t3 = time.process_time()
    covariance, eigh, pairs = (t1 - t0) * n / p * scale**2, (t2 - t1) * scale**3, (t3 - t2) * scale
    return covariance + eigh + pairs * (k * k + k * m) / (2 * p * p)


def measure(config: dict, device="auto", nproc: int = 1) -> Timing:
    """Time a few training steps and one evaluation batch of `config` on `device`."""
    import torch

    from ..analysis import fid
    from ..device import resolve_device
    from ..training.config import TrainConfig
    from ..training.trainer import Trainer

    dev = resolve_device(device)
    per_process = config["batch_size"] // max(1, nproc)
    batch = per_process if dev.type == "cuda" else min(per_process, CPU_PROBE_BATCH)
    probe = {**config, "batch_size": batch, "eval_every": None, "checkpoint_every": None, "save_steps": []}
    with tempfile.TemporaryDirectory(prefix="dstab-size-") as tmp:
        trainer = Trainer(TrainConfig.from_dict(probe), tmp, dev)
        feed = trainer.dataset.batches(batch, 0)
        step_fn = trainer.dm_step if config["kind"] == "dm" else trainer.gan_step
        counter = iter(range(1, 10_000))
        step_s = _timed(lambda: step_fn(next(feed).to(trainer.device), next(counter)), dev, TIMED_STEPS)
        step_s *= per_process / batch
        sample_s, metrics_s, note = 0.0, 0.0, ""
        if config.get("eval_every"):
            sample_s, note = _eval_seconds(trainer, config, dev)
            n = config["eval_samples"] * config["eval_seeds"]
            m = min(len(trainer.dataset), fid.REFERENCE_FEATURES)
            metrics_s = _metrics_seconds(n, m, trainer.dataset.image)
    if dev.type == "cuda":
        name, unit = f"cuda ({torch.cuda.get_device_name(dev)})", "GPU"
        how = f"{TIMED_STEPS} timed steps at batch {batch}"
    else:
        name, unit = "cpu (no GPU here: these are CPU-hours of this machine)", "CPU"
        how = f"{TIMED_STEPS} timed steps at batch {batch}, scaled to {per_process}"
    return Timing(name, unit, step_s, sample_s, metrics_s, how + note)


def _eval_seconds(trainer, config: dict, dev) -> tuple[float, str]:
    """Seconds per evaluation sample: one sampler step of one batch (x the sampler's steps) and the
    feature network on that batch."""
    import torch

    from ..analysis import fid

    b = min(config["eval_samples"], fid.EVAL_CHUNK if dev.type == "cuda" else 2)
    ext, _, note = _feature_net(config, trainer.dataset, trainer.device)
    images = trainer.dataset.fixed_batch(b, 0).to(trainer.device)
    features_s = _timed(lambda: ext(images), dev, 1) if trainer.dataset.image else 0.0
    modules = trainer.eval_modules()
    shape = trainer.dataset.sample_shape
    diffusion = trainer.diffusion if config["kind"] == "dm" else None

    def one_call():
        with torch.no_grad():
            fid.generate(modules, diffusion, b, 0, 1, shape, trainer.device, "ddim", trainer.amp)

    call_s = _timed(one_call, dev, 1)
    return (call_s * sampler_calls(config) + features_s) / b, f"; evaluation timed on a batch of {b}{note}"


# --- the estimate ---------------------------------------------------------------------------------
def run_hours(c: dict, timing: Timing, nproc: int, config: dict) -> tuple[float, float]:
    """(training, evaluation) device-hours of one run: wall-clock x the processes (devices) it holds."""
    train = c["iterations"] * timing.step_s * nproc / 3600
    per_eval = config["eval_samples"] * config["eval_seeds"] * timing.sample_s + timing.metrics_s
    return train, c["evaluations"] * per_eval * nproc / 3600


def _setup_key(config: dict) -> str:
    keys = ("kind", "dataset", "arch", "batch_size", "diffusion", "eval_metric", "eval_sampler", "amp")
    return json.dumps({k: config.get(k) for k in keys}, sort_keys=True)


def estimate(runs: list[tuple[str, dict]], device="auto", nproc: int = 1, measure_time: bool = True) -> dict:
    """Per run (name, config) and in total: the counts, and with `measure_time` the FLOPs, the disk
    and the device-hours, measured once per distinct setup (model, data, batch, evaluation); without
    it nothing imports PyTorch."""
    timings: dict[str, Timing] = {}
    rows = []
    for name, config in runs:
        c = counts(config, measure_time)
        timing = None
        if measure_time:
            key = _setup_key(config)
            if key not in timings:
                timings[key] = measure(config, device, nproc)
            timing = timings[key]
            c["train_h"], c["eval_h"] = run_hours(c, timing, nproc, config)
        rows.append({"name": name, **c, "timing": timing})
    total = {k: sum(r[k] for r in rows) for k in ("iterations", "images", "eval_samples")}
    for k in ("train_flop", "eval_flop", "train_h", "eval_h", "disk"):
        total[k] = sum(r[k] for r in rows) if rows and all(r.get(k) is not None for r in rows) else None
    return {"runs": rows, "total": total, "nproc": nproc, "timings": list(timings.values())}


def _size(n: float) -> str:
    """Bytes in decimal units: 2.1 GB."""
    power = min(4, max(0, int(math.log10(max(n, 1)) // 3)))
    return f"{n / 1000**power:.1f} {('B', 'KB', 'MB', 'GB', 'TB')[power]}"


def _disk(n: int | None) -> str:
    return "" if n is None else f"; disk {_size(n)}"


def flop_text(n: float) -> str:
    """FLOPs in decimal units from GFLOP to EFLOP, 4 significant digits: 644 PFLOP."""
    power = min(6, max(3, int(math.log10(max(n, 1)) // 3)))
    return f"{n / 1000**power:.4g} {'GTPE'[power - 3]}FLOP"


def _flop(n: int | None) -> str:
    return "" if n is None else f", {flop_text(n)}"


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'s' * (count != 1)}"


def lines(est: dict) -> list[str]:
    """The estimate as text, for --dry-run and the Training page."""
    out = []
    unit = est["timings"][0].unit if est["timings"] else None
    devices = f" x {est['nproc']} processes" if est["nproc"] > 1 else ""
    for r in est["runs"]:
        hours = ""
        if r.get("train_h") is not None:
            h = r["train_h"] + r["eval_h"]
            hours = f"; {h:,.2f} {unit}-hours{devices} (training {r['train_h']:,.2f} + evaluation {r['eval_h']:,.2f})"
        out.append(
            f"{r['name']}: {r['iterations']:,} iterations, {r['images']:,} images{_flop(r['train_flop'])}; "
            f"{_n(r['evaluations'], 'evaluation')}, {r['eval_samples']:,} samples, {r['eval_calls']:,} network calls"
            f"{_flop(r['eval_flop'])}{hours}{_disk(r['disk'])}"
        )
    t = est["total"]
    total = (
        f"total ({_n(len(est['runs']), 'run')}): {t['iterations']:,} iterations, {t['images']:,} images"
        f"{_flop(t['train_flop'])} training, {t['eval_samples']:,} evaluation samples{_flop(t['eval_flop'])}"
    )
    if t.get("train_h") is not None:
        h = t["train_h"] + t["eval_h"]
        total += f"; {h:,.1f} {unit}-hours (training {t['train_h']:,.1f} + evaluation {t['eval_h']:,.1f})"
    out.append(total + _disk(t["disk"]))
    for timing in est["timings"]:
        out.append(
            f"measured on {timing.device}: {timing.step_s:.4g} s per training step, {timing.sample_s:.4g} s per "
            f"evaluation sample, {timing.metrics_s:.3g} s of FD/KID/PRDC per evaluation ({timing.how})"
        )
    return out
