"""The paper's speed-up experiment (Sec. 5, Fig. 6, Tables 2-3) at CPU scale: a preset of
`sweep` + `compare`.

Variants: the baseline, the full method (MD + LRC + CLTS), the ablation (md,
md-lrc) and the two controls that separate momentum decay from learning-rate
decay: `lrc-only` (MDLRC's lr with beta1 held at 0.8) and `lr-matched`
(Adam's beta1 0.9 held, lr exactly MDLRC's curve). Any subset, any dataset,
any `--set` option; `--paper` gives the paper's lr, batch, EMA, beta0, floor.

Scale per dataset (SETUPS; the paper trains 500k-4M iterations); the length
is a starting one, then decided by the reference's plateau test (runlength.py):
- digits: the zoo's UNet at 16 base channels, batch 32, lr 1e-3, 3,000
  iterations to start with (the reference is then extended until its
  plateau test fires: runlength.py; the pilots' fired at 3,600), EMA 0.98
  (horizon ~50 iterations, 1.7% of 3,000: the paper's 0.9999 is 2% of
  500k), FD (local features) on 1,000 samples by 10 DDIM steps every 100,
  KID and precision / recall / density / coverage beside it, and a repeat
  evaluation with other noise seeds every 1,000 (the metric's own noise).
  At 1,000 samples real digits score 4.5 +- 2.1 against the reference (the
  floor), under 5% of the baseline's ~95-150; at 250 they scored 30 +- 9;
- toy2d: the zoo's MLP denoiser, batch 256, lr 1e-3, 8,000 iterations,
  EMA 0.995 (2.5%), MMD^2 and the other 2-D metrics on 500 samples by 50
  DDIM steps every 200 (FD on raw points sees only means and covariances).
CLTS targets 20% of the run (the paper's ablation optimum ~100k of 500k).

CIFAR-10 (`--dataset cifar10:PATH`) is the paper's own setup: improved-diffusion's CIFAR-10 UNet
(52,546,438 parameters, learned sigma trained by L_hybrid; experiments/cifar10.py), cosine schedule,
T = 4000, lr 1e-4, batch 128, Adam beta2 0.999, CLTS mu = 0.3 T = 1200, sigma = T and its target at
10% of the run (the paper's 5e4 of 500k), FID of the EMA model against the training set's
statistics, 10 evaluations per run. `--paper` runs the paper's 500,000 iterations (EMA 0.9999);
`--paper-eval` evaluates as improved-diffusion did (FID-50k, ancestral sampling over all T steps, at
Table 3's iterations). Without `--paper`, a default that one GPU finishes in a day:
- 100,000 iterations (Table 3's first column: ID 5.40 vs ID+ours 4.24), 12.8M images, the
  schedules compressed to that length (EMA 0.9995: the paper's 2% horizon), FID-10k by 100 DDIM
  steps every 10,000 iterations, baseline and mdlrc-clts, 3 seeds each;
- its cost, counted: the UNet costs 16.77 GFLOP per image forward (32 x 32, torch's FLOP counter),
  50.31 forward + backward; an arm trains on 0.644 EFLOP and
  evaluates on 10 x 10k samples x 100 steps = 0.168 EFLOP; 6 arms are 4.87 EFLOP, which one day
  (86,400 s) covers at 56 TFLOP/s sustained: 5.7% of an H100's dense bf16 peak (989 TFLOP/s), 18%
  of an A100's (312). `--dry-run` measures it on the device at hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import paper, resultsmd
from ..errors import require
from ..fileio import write_json
from ..modelconfig import DDIM_STEPS
from ..training.config import DIGITS_UNET, preset
from . import cifar10, sweep, verdict

REFERENCE = "baseline"  # what every variant's speed-up is measured against
VARIANTS = ("baseline", "md", "md-lrc", "mdlrc-clts", "lrc-only", "lr-matched")
DEFAULT_VARIANTS = ("baseline", "mdlrc-clts", "lrc-only", "lr-matched")
DATASET_VARIANTS = {"cifar10": ("baseline", "mdlrc-clts")}  # a GPU-day (module docstring)
SETUPS = {
    "digits": {
        "arch": {**DIGITS_UNET, "model_channels": 16},
        "steps": 3000,
        "batch_size": 32,
        "lr": 1e-3,
        "ema_rate": 0.98,
        "eval_every": 100,
        "eval_samples": 1000,
        "eval_sampler_steps": 10,
        "eval_repeat_every": 1000,
        "eval_metric": "fd_local",
        "checkpoint_every": 1000,
        "log_every": 50,
    },
    "toy2d": {
        "dataset": "toy2d:8gaussians",
        "arch": {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 128, "depth": 3},
        "steps": 8000,
        "batch_size": 256,
        "lr": 1e-3,
        "ema_rate": 0.995,
        "eval_every": 200,
        "eval_samples": 500,
        "eval_sampler_steps": DDIM_STEPS,
        "checkpoint_every": 2000,
        "log_every": 100,
    },
}


def fixed_length(dataset: str) -> bool:
    """Whether the experiment runs at its setup's length rather than extending the reference until its
    plateau test fires (runlength.py): CIFAR-10 runs the paper's length (or the GPU-day default), whose
    4x extension would cost days; the CPU-scale setups decide their length from the data."""
    return dataset.split(":")[0] == "cifar10"


def default_variants(dataset: str) -> tuple[str, ...]:
    return DATASET_VARIANTS.get(dataset.split(":")[0], DEFAULT_VARIANTS)


def eval_every_for_images(images: int, batch_size: int) -> int:
    """eval_every in iterations for an evaluation every `images` images seen."""
    require(
        images >= batch_size and images % batch_size == 0,
        f"--eval-every-images {images} must be a positive multiple of the batch size {batch_size}",
    )
    return images // batch_size


def setup_sets(dataset: str, use_paper: bool = False, variants=(), paper_eval: bool = False) -> list[str]:
    """The dataset's setup as `--set KEY=V` strings (digits' for datasets without their own); a key
    inside the timestep sampler only when some of `variants` uses CLTS."""
    family = dataset.split(":")[0]
    if family == "cifar10":
        setup = {"dataset": dataset, **cifar10.setup(use_paper, paper_eval)}
        if not any(preset(v).get("timesteps", {}).get("name") == "clts" for v in variants):
            setup = {k: v for k, v in setup.items() if not k.startswith("timesteps.")}
        return [f"{k}={json.dumps(v)}" for k, v in setup.items()]
    require(not paper_eval, "--paper-eval applies to CIFAR-10 (the paper's FID protocol)")
    setup = dict(SETUPS.get(family, SETUPS["digits"]))
    if family not in SETUPS or ":" in dataset:
        setup["dataset"] = dataset
        if family not in SETUPS:
            setup.pop("arch")  # the sweep's dataset key picks that family's base model, if dstab has one
            setup.pop("eval_metric")
    return [f"{k}={json.dumps(v)}" for k, v in setup.items()]


def default_group(dataset: str) -> str:
    return f"speedup-{dataset.split(':')[0]}"


def plan(dataset: str, variants, seeds, sets=(), group=None, use_paper=False, paper_eval=False, eval_images=None):
    """The experiment's runs: the setup's values, then the user's `--set` (one value: fixed; several:
    axes); `eval_images`: evaluate every that many images seen. The report measures every variant
    against the baseline, so the baseline must be one of them."""
    variants = list(variants)
    require(
        REFERENCE in variants,
        f"--variants {','.join(variants)} has no {REFERENCE}: the report measures each variant's speed-up "
        f"against it; add {REFERENCE} to --variants",
    )
    texts = [*setup_sets(dataset, use_paper, variants, paper_eval), *sets]
    if eval_images:
        axes, fixed = sweep.split(texts)
        require(all(a.key != "batch_size" for a in axes), "--eval-every-images needs one batch size, not an axis")
        batch = paper.BATCH if use_paper else next(a.values[0] for a in fixed if a.key == "batch_size")
        texts.append(f"eval_every={eval_every_for_images(eval_images, batch)}")
    axes, fixed = sweep.split(texts)
    return sweep.plan(variants, list(seeds), axes, fixed, group or default_group(dataset), use_paper)


def section_name(dataset: str) -> str:
    return f"dstab reproduce speedup --dataset {dataset.split(':')[0]}"


def confirm_group(dataset: str) -> str:
    return default_group(dataset) + "-confirm"


def _intro(command: str) -> list[str]:
    return [
        f"Generated by `{command} --report-only` from the runs' own config.json and metrics (live workspace "
        "and run summaries in results/speedup-runs); do not edit, rerun the command.",
        "",
    ]


def section(result: dict, command: str, figures: dict[str, str] | None = None) -> str:
    """The RESULTS.md section of one group, all generated: setup labels, tables and the verdicts."""
    title = f"## Speed-up experiment (paper Sec. 5) on {result['setup']['dataset']}: `{command}`"
    return "\n".join([title, "", *_intro(command), verdict.markdown(result, figures)])


def confirm_section(
    confirmation: dict | None,
    exploration: dict | None,
    command: str,
    figures: dict[str, dict[str, str]] | None = None,
    waiting: str | None = None,
    planned: list[int] | None = None,
    arms: list[str] | None = None,
) -> str:
    """Exploration and confirmation side by side, the confirmation's verdicts the headline; while the
    confirmation has no complete pair of seeds, `waiting` says how far its runs are. `figures`: per
    group, {caption: path}; `planned`: the confirmation's seeds, each arm's (`arms`, default those
    with finished runs) finished ones counted against them."""
    figures = figures or {}
    some = confirmation or exploration
    lines = [f"## Speed-up experiment (paper Sec. 5) on {some['setup']['dataset']}: `{command}`", "", *_intro(command)]
    if confirmation:
        lines += ["**Confirmation (fresh seeds, readouts fixed before the runs):**", ""]
        if planned:
            per_arm, short = verdict.seeds_line(confirmation, arms or list(confirmation["variants"]), planned)
            lines += [f"Seeds finished per arm: {per_arm}." + (" **Partial.**" if short else ""), ""]
        lines += [
            f"- {c['variant']} vs {c['reference']}: **{verdict.verdict_text(c)}**" for c in confirmation["comparisons"]
        ]
        if confirmation["partial"]:
            lines.append(f"- Partial: {verdict.partial_note(confirmation)}")
        lines.append("")
    else:
        lines += [f"**Confirmation:** {waiting or 'no complete runs yet'}; no verdict yet.", ""]
    if confirmation and exploration:
        lines += ["Exploration and confirmation side by side (ratio > 1: the variant is better):", ""]
        lines += _side_by_side(exploration, confirmation)
    if confirmation:
        lines += ["", f"### Confirmation: group `{confirmation['group']}`", ""]
        lines.append(verdict.markdown(confirmation, figures.get(confirmation["group"])))
    if exploration:
        lines += [
            "",
            f"### Exploration: group `{exploration['group']}` (the same protocol, its own metric)",
            "",
            verdict.markdown(exploration, figures.get(exploration["group"])),
        ]
    return "\n".join(lines)


def _side_by_side(exploration: dict, confirmation: dict) -> list[str]:
    from .readouts import NAMES, READOUTS

    found = {(c["variant"], c["reference"]): c for c in exploration["comparisons"]}
    rows = [
        "| comparison | readout | exploration | confirmation |",
        "|---|---|---|---|",
    ]
    for c in confirmation["comparisons"]:
        e = found.get((c["variant"], c["reference"]))
        for k in READOUTS:
            cells = [verdict.cell(x["readouts"][k]) if x else "-" for x in (e, c)]
            rows.append(f"| {c['variant']} vs {c['reference']} | {NAMES[k]} | {cells[0]} | {cells[1]} |")
        rows.append(
            f"| {c['variant']} vs {c['reference']} | **verdict** | {e['verdict']['word'] if e else '-'} | "
            f"**{c['verdict']['word']}** |"
        )
    metrics = f"exploration: {exploration['metric_label']}; confirmation: {confirmation['metric_label']}"
    return [*rows, "", f"Metrics: {metrics}."]


def write_section(results_md: Path, dataset: str, body: str) -> None:
    """Replace this dataset's marked section of RESULTS.md, or append it; other sections stay."""
    resultsmd.write_section(results_md, section_name(dataset), body)


def save_summary(path: Path, result: dict) -> None:
    write_json(path, result)


def save_run_summaries(group: str, folder: Path, root=None) -> int:
    """Each finished run of `group` (in `root`, or in each of several roots) as one JSON in `folder` (name,
    launch, status, config and every metric row as [step, value, wall]), so the experiment's curves
    outlive the workspace; returns how many."""
    from .. import runs
    from ..runs import rundir
    from ..runs.runmetrics import RunMetrics
    from .groupruns import _config, _read_json, roots, statuses

    n = 0
    for st, path in ((st, runs.workspace_root(one) / st.name) for one in roots(root) for st in statuses(group, one)):
        if st.state != "finished":
            continue
        metrics: dict[str, list] = {}
        for step, name, value, wall in RunMetrics.read(path / runs.RUN / rundir.METRICS).rows():
            metrics.setdefault(name, []).append([step, value, wall])
        status = {"error": st.reason or None, "state": st.state, "step": st.step}
        launch = _read_json(path / "launch.json") or {}
        write_json(
            Path(folder) / f"{st.name}.json",
            {"name": st.name, "launch": launch, "status": status, "config": _config(path), "metrics": metrics},
        )
        n += 1
    return n
