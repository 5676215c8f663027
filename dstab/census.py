"""The stability census: how often does each kind of model fail to train?

The paper's thesis is that DMs train stably and GANs do not; a zoo of three
seeds cannot say how often each fails. `python -m dstab zoo census` trains N
seeds (default 16) of the zoo's toy2d DM and GAN with the zoo's own recipes
(`zoo.specs`: only the init seed differs; data order, steps and optimiser are
the zoo's), draws each final model's fixed collapse samples
(`dstab.collapse`) and counts the seeds that converge: mode coverage >= 7 of
the 8 modes. Seeds 0-2 retrain the zoo's own runs: the DMs land on the
manifest's numbers (final loss to ~1e-8, sliced W2 to ~1e-4), the GANs do not.
Float rounding that differs between builds (the zoo's GANs were trained by an
earlier build of the trainer) is amplified by adversarial training: the final
G/D loss moved by up to 5% and sliced W2 by up to 36% of the manifest's, while each seed's
collapse verdict stayed the same (measured 2026-12-02). The result is a JSON record, a figure (every seed's
samples, its coverage in the corner) and a RESULTS.md section.

Reading a census (`load`, `headline`, `markdown`) needs no PyTorch: the
dashboard's home page shows the headline on a cold server.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from .cache import shipped_dir
from .errors import DstabError, require
from .fileio import atomic_write_bytes, save_with
from .verdicts import mean_sd

DEFAULT_SEEDS = 16
CONVERGED_COVERAGE = 7  # of 8 modes, as dstab.collapse calls a toy2d model healthy
KINDS = {"dm": "dm-eps-s0", "gan": "gan-s0"}  # the zoo recipe each kind is copied from
SECTION = "dstab zoo census"


def census_dir(root: Path | None = None) -> Path:
    return Path(root) if root is not None else shipped_dir() / "census"


def recipe(kind: str, family: str = "toy2d", scale: float = 1.0):
    """The zoo's TrainConfig of a kind's seed-0 run (imports the trainer, hence PyTorch)."""
    from . import zoo

    require(kind in KINDS, f"census kind must be one of {sorted(KINDS)}, got {kind!r}")
    want = f"{family}/{KINDS[kind]}"
    found = [s.config for s in zoo.specs(scale) if s.id == want]
    require(bool(found), f"the zoo has no recipe {want!r}; census families: toy2d")
    return found[0]


def train_seed(kind: str, seed: int, family: str = "toy2d", scale: float = 1.0, device="cpu"):
    """(record, samples) of one seed: trained in a scratch folder that is deleted afterwards."""
    from dataclasses import replace

    from . import checkpoints, collapse
    from .sampling import generate
    from .training.trainer import train

    cfg = replace(recipe(kind, family, scale), seed=seed, save_steps=[])
    with tempfile.TemporaryDirectory(prefix="dstab-census-") as tmp:
        t0 = time.perf_counter()
        result = train(cfg, Path(tmp), device=device)
        bundle = checkpoints.load(result["checkpoints"][cfg.steps])
        s = collapse.settings_for(cfg.dataset)
        samples = generate(bundle, s["num"], s["seed"], s["sampler"], s["steps"], device=device)
        record = collapse.record_of(samples, cfg.dataset, cfg.data_seed)
    for key in ("rule", "settings"):
        record.pop(key)
    record.update(seed=seed, loss_last=result["loss_last"], wall_time_s=round(time.perf_counter() - t0, 1))
    return record, samples


def _spread(xs: list[float]) -> dict:
    mean, sd = mean_sd(xs)
    return {"mean": round(mean, 4), "sd": round(sd or 0.0, 4), "min": min(xs), "max": max(xs)}


def summarise(runs: list[dict]) -> dict:
    """Converged count, coverage histogram and the spread of precision and sliced W2 over seeds."""
    cov = [r["coverage"] for r in runs]
    return {
        "seeds": len(runs),
        "converged": sum(c >= CONVERGED_COVERAGE for c in cov),
        "collapsed": sum(c < CONVERGED_COVERAGE for c in cov),
        "coverage_histogram": {str(k): cov.count(k) for k in sorted(set(cov))},
        "precision": _spread([r["precision"] for r in runs]),
        "sliced_w2": _spread([r["sliced_w2"] for r in runs]),
    }


def _task(task: tuple):
    """One (kind, seed) in a worker process: torch threads as the parent's, then `train_seed`."""
    import torch

    kind, seed, family, scale, device, threads = task
    torch.set_num_threads(threads)
    return train_seed(kind, seed, family, scale, device)


def _results(tasks: list[tuple], jobs: int):
    """`_task` over tasks in order; `jobs` > 1 trains that many seeds at once in spawned processes
    (each single-threaded like the parent: seeds are independent, the results are the same)."""
    if jobs == 1:
        yield from map(_task, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_task, tasks)


def run(
    seeds: int = DEFAULT_SEEDS,
    family: str = "toy2d",
    scale: float = 1.0,
    out: Path | None = None,
    device="cpu",
    log=print,
    jobs: int = 1,
) -> dict:
    """Train `seeds` seeds of each kind, write <out>/<family>.json and .png, return the record."""
    require(isinstance(seeds, int) and seeds >= 1, f"--seeds must be a positive integer, got {seeds!r}")
    require(isinstance(jobs, int) and jobs >= 1, f"--jobs must be a positive integer, got {jobs!r}")
    require(family == "toy2d", f"the census runs on toy2d (mode coverage needs known modes), got {family!r}")
    import torch

    from .collapse import RULES

    runs, samples = {k: [] for k in KINDS}, {k: [] for k in KINDS}
    tasks = [(kind, seed, family, scale, device, torch.get_num_threads()) for kind in KINDS for seed in range(seeds)]
    for (kind, seed, *_), (rec, pts) in zip(tasks, _results(tasks, jobs)):
        runs[kind].append(rec)
        samples[kind].append(pts)
        log(
            f"census {family} {kind} seed {seed}: coverage {rec['coverage']}/{rec['modes']}, precision "
            f"{rec['precision']:.3f}, sliced W2 {rec['sliced_w2']:.3f} ({rec['wall_time_s']} s)"
        )
    cfg = {k: recipe(k, family, scale) for k in KINDS}
    record = {
        "family": family,
        "scale": scale,
        "recipes": {k: f"{family}/{v} (seed varied)" for k, v in KINDS.items()},
        "steps": {k: c.steps for k, c in cfg.items()},
        "rule": f"converged if mode coverage >= {CONVERGED_COVERAGE} of 8; {RULES[cfg['dm'].dataset]}",
        "summary": {k: summarise(v) for k, v in runs.items()},
        "runs": runs,
    }
    folder = census_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / f"{family}.json", (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    save_with(folder / f"{family}.png", figure(samples, runs).save)
    return record


def figure(samples: dict, runs: dict, panel: int = 96):
    """One row per kind, one scatter per seed over the data's modes, 'sK c/8' in its corner (red: collapsed)."""
    from PIL import Image, ImageDraw

    from . import data
    from .plots.png import scatter_image

    reference = data.load("toy2d:8gaussians").fixed_batch(400, 0)
    n = max(len(v) for v in samples.values())
    img = Image.new("RGB", (40 + n * panel, len(samples) * panel), "white")
    draw = ImageDraw.Draw(img)
    for row, kind in enumerate(samples):
        draw.text((4, row * panel + panel // 2 - 6), kind.upper(), fill=(0, 0, 0))
        for col, (pts, rec) in enumerate(zip(samples[kind], runs[kind])):
            x, y = 40 + col * panel, row * panel
            img.paste(scatter_image(pts, size=panel, reference=reference), (x, y))
            bad = rec["coverage"] < CONVERGED_COVERAGE
            draw.rectangle((x, y, x + panel - 1, y + panel - 1), outline=(214, 39, 40) if bad else (200, 200, 200))
            draw.text((x + 3, y + 2), f"s{rec['seed']} {rec['coverage']}/8", fill=(214, 39, 40) if bad else (0, 0, 0))
    return img


def load(family: str = "toy2d", root: Path | None = None) -> dict | None:
    """The stored census record, or None when `zoo census` has not run."""
    path = census_dir(root) / f"{family}.json"
    return json.loads(path.read_text()) if path.exists() else None


def headline(record: dict) -> str:
    """'k of N GAN seeds collapsed, j of N DM seeds' for the home page and RESULTS.md."""
    s = record["summary"]
    return (
        f"{s['gan']['collapsed']} of {s['gan']['seeds']} GAN seeds collapsed, "
        f"{s['dm']['collapsed']} of {s['dm']['seeds']} DM seeds "
        f"({record['family']}, zoo recipes, only the seed differs)"
    )


def _manifest() -> dict:
    from . import zooindex

    try:
        return zooindex.read_manifest()
    except DstabError:
        return {"entries": {}}


def _zoo_lines(record: dict, manifest: dict) -> list[str]:
    """How the census's seeds that are zoo runs compare with the manifest's records of them, and what a
    digits census would cost at the zoo's own recorded wall times (both read from the manifest)."""
    entries, out = manifest.get("entries", {}), []
    if record["scale"] != manifest.get("scale"):
        out.append(f"- Not compared with the zoo: census scale {record['scale']}, zoo scale {manifest.get('scale')}.")
    else:
        for kind, runs in record["runs"].items():
            prefix = f"{record['family']}/{KINDS[kind][:-1]}"  # dm-eps-s0 -> dm-eps-s<seed>
            pairs = [
                (r, entries[f"{prefix}{r['seed']}"]["collapse"])
                for r in runs
                if (entries.get(f"{prefix}{r['seed']}") or {}).get("collapse")
            ]
            if pairs:
                same = sum(r["collapsed"] == z["collapsed"] for r, z in pairs)
                moved = max(abs(r["sliced_w2"] - z["sliced_w2"]) / z["sliced_w2"] for r, z in pairs)
                out.append(
                    f"- {kind.upper()} seeds {', '.join(str(r['seed']) for r, _ in pairs)} retrain the zoo's own "
                    f"runs: the same collapse verdict in {same} of {len(pairs)}, sliced W2 up to {100 * moved:.2g}% "
                    "from the manifest's"
                    + (" (not bit-identical to the zoo's build: see dstab/census.py)." if moved > 0.01 else ".")
                )
    walls = [entries.get(f"digits/{KINDS[k]}", {}).get("wall_time_s") for k in KINDS]
    if all(walls):
        hours = record["summary"]["dm"]["seeds"] * sum(walls) / 3600
        out.append(
            f"- No digits census: the zoo's digits DM and GAN trained in {walls[0] / 60:.1f} and {walls[1] / 60:.1f}"
            f" min (manifest), so {record['summary']['dm']['seeds']} seeds of each are ~{hours:.1f} core-hours, "
            "beyond this session's CPU budget; the zoo's own 3 seeds of each are in the report's mode-collapse table."
        )
    return out


def markdown(record: dict, manifest: dict | None = None) -> str:
    """The RESULTS.md section: headline, rule, per-kind table and per-seed coverage, and how the seeds
    that are zoo runs compare with the manifest (default: the zoo's)."""
    out = ["## Stability census (`python -m dstab zoo census`)", "", headline(record) + ".", ""]
    out.append(
        f"Each kind's recipe is the zoo's ({', '.join(record['recipes'].values())}; {record['steps']['dm']} DM / "
        f"{record['steps']['gan']} GAN steps, zoo scale {record['scale']}); {record['rule']}. Sliced W2 to "
        "the data, on the same fixed samples. Figure: checkpoints/results/census/"
        f"{record['family']}.png."
    )
    out += [
        "",
        "| kind | seeds | converged | collapsed | coverage histogram | precision mean +- sd | "
        "sliced W2 mean +- sd [min, max] |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for kind, s in record["summary"].items():
        hist = ", ".join(f"{k}/8: {v}" for k, v in s["coverage_histogram"].items())
        p, w = s["precision"], s["sliced_w2"]
        out.append(
            f"| {kind.upper()} | {s['seeds']} | {s['converged']} | {s['collapsed']} | {hist} | "
            f"{p['mean']:.3f} +- {p['sd']:.3f} | {w['mean']:.3f} +- {w['sd']:.3f} [{w['min']:.3f}, {w['max']:.3f}] |"
        )
    out.append("")
    for kind, runs in record["runs"].items():
        out.append(f"- {kind.upper()} coverage by seed: " + ", ".join(f"s{r['seed']} {r['coverage']}" for r in runs))
    cost = sum(r["wall_time_s"] for runs in record["runs"].values() for r in runs)
    out += [
        f"- Budget: {cost / 60:.0f} min of wall time for all {sum(map(len, record['runs'].values()))} trainings, "
        "one torch thread each.",
        *_zoo_lines(record, manifest if manifest is not None else _manifest()),
    ]
    out += [
        "",
        "![every seed's samples (data grey), coverage in the corner]"
        f"(checkpoints/results/census/{record['family']}.png)",
    ]
    return "\n".join(out) + "\n"
