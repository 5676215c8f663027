"""Sweeps: the product of variants x seeds x `--set KEY=V1,V2,...` axes as queued runs of one group.

Every run of a sweep is an ordinary background run (dstab/runs) whose
launch.json also records its variant, seed and axis values, so `compare`
can group them. Layers of one run's config, later ones winning:
preset (the variant) < fixed `--set KEY=V` (one value) < `--paper` (dstab/paper.py)
< the run's axis values < its seed (`seed` and `data_seed` both, so the
variants of one seed see the same batches).

Axis keys are TrainConfig options, dotted for nested ones
(`timesteps.target_iter`), plus four that follow the variant:
- `beta0`: MD / MDLRC's initial beta1 (`beta1`), and lr-matched's `lr_schedule.beta0`;
- `floor`: their beta1 floor (`momentum.floor`, `lr_schedule.floor`);
- `width`: the UNet's `arch.model_channels` or the MLP's `arch.hidden`;
- `dataset`: also picks that dataset's base model (`arch`) unless `arch` is set.
A dotted key inside a schedule (`timesteps.*`, `momentum.*`, `lr_schedule.*`)
applies to the variants whose schedule of that kind is not the default
(uniform / constant); keys that apply to no variant are refused. Runs are
ordered seed-major, so an interrupted sweep still has complete seeds.

Validation happens before anything is written, by the rules the runs
themselves apply: `plan` checks every config's options (`TrainConfig.check_options`,
without PyTorch), `check` the launch options (`runs.check_launch`) and what the
trainer checks when it is built (`runs.check_buildable`: parameter budget,
dataset, schedules, model vs data), once per distinct config. `--dry-run` calls
`dry_check`, the same checks with no download, so it fails on what the runs would fail on (a dataset
not downloaded yet is said in a note, not fetched).
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from itertools import product

from .. import paper, runs
from ..errors import DstabError, is_int, require
from ..training import config as train_config
from .cifar10 import departures

ALIASES = ("beta0", "floor", "width")
SCHEDULES = {"timesteps": "uniform", "momentum": "constant", "lr_schedule": "constant"}
MAX_RUNS = 500


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple


@dataclass
class PlannedRun:
    name: str
    variant: str
    seed: int
    values: dict  # axis key -> value
    config: dict = field(repr=False)

    @property
    def label(self) -> str:
        """The variant and its axis values, e.g. 'mdlrc-clts lr=0.001': what `compare` groups seeds by."""
        return " ".join([self.variant, *(f"{k}={json.dumps(v)}" for k, v in self.values.items())])


def split_values(text: str) -> list[str]:
    """'1e-3,2e-3' -> ['1e-3', '2e-3']; commas inside [...] / {...} (JSON values) do not split."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def parse_axis(text: str) -> Axis:
    key, sep, raw = text.partition("=")
    key = key.strip()
    require(bool(sep) and bool(key), f"--set expects KEY=V1,V2,..., got {text!r}")
    values = []
    for part in split_values(raw):
        require(part.strip() != "", f"--set {key}: empty value in {raw!r}; give V1,V2,...")
        values.append(train_config.parse_value(part))
    return Axis(key, tuple(values))


def split(texts) -> tuple[list[Axis], list[Axis]]:
    """`--set` strings -> (axes: several values, fixed: one value). A later value of a key replaces an
    earlier one (a user's --set over a setup's), and an axis replaces a fixed value of its key."""
    parsed = {}
    for text in texts:
        axis = parse_axis(text)
        parsed.pop(axis.key, None)
        parsed[axis.key] = axis
    return [a for a in parsed.values() if len(a.values) > 1], [a for a in parsed.values() if len(a.values) == 1]


def check_key(key: str) -> None:
    top = key.split(".")[0]
    known = set(train_config.TrainConfig.__dataclass_fields__) | set(ALIASES)
    require(
        top in known and not (top in ALIASES and "." in key),
        f"unknown sweep key {key!r}; use a training option ({', '.join(sorted(known))}), dotted for nested ones",
    )


def _applies(key: str, config: dict) -> bool:
    top = key.split(".")[0]
    if top == "beta0" or top == "floor":
        return paper.decays_momentum(config) or config["lr_schedule"].get("name") == "mdlrc"
    if top in SCHEDULES and "." in key:
        return config[top].get("name", SCHEDULES[top]) != SCHEDULES[top]
    return True


def _set(config: dict, key: str, value) -> None:
    if key == "beta0":
        if paper.decays_momentum(config):
            config["beta1"] = value
        if config["lr_schedule"].get("name") == "mdlrc":
            config["lr_schedule"]["beta0"] = value
    elif key == "floor":
        if paper.decays_momentum(config):
            config["momentum"]["floor"] = value
        if config["lr_schedule"].get("name") == "mdlrc":
            config["lr_schedule"]["floor"] = value
    elif key == "width":
        config["arch"]["model_channels" if config["arch"].get("arch") == "unet" else "hidden"] = value
    else:
        if key == "dataset":
            from ..runs.runboard import MODEL_SIZES, family

            sizes = MODEL_SIZES.get(family(str(value)))
            if sizes:
                config["arch"] = copy.deepcopy(sizes["base"])
        train_config.apply_override(config, key.split("."), value)


def _name_part(key: str, value, index: int) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    short = re.sub(r"[^A-Za-z0-9._-]", "", text)
    tail = key.split(".")[-1]
    return f"{tail}{short}" if short and len(short) <= 12 and short == text else f"{tail}{index}"


def plan(
    variants: list[str],
    seeds: list[int],
    axes: list[Axis] = (),
    fixed: list[Axis] = (),
    group: str | None = None,
    use_paper: bool = False,
) -> tuple[str, list[PlannedRun]]:
    """(group, the runs of the product), every config resolved and validated; nothing written."""
    require(len(variants) > 0, "a sweep needs at least one variant (preset)")
    require(len(seeds) > 0, "a sweep needs at least one seed")
    require(all(is_int(s) and s >= 0 for s in seeds), f"seeds must be integers >= 0, got {seeds}")
    for v in variants:
        train_config.preset(v)  # names the known presets when v is not one
    for a in [*axes, *fixed]:
        check_key(a.key)
        require(len(a.values) > 0, f"sweep axis {a.key!r} has no values: the product is empty")
    require(all(len(a.values) == 1 for a in fixed), "a fixed --set takes one value")
    keys = [a.key for a in [*axes, *fixed]]
    require(len(set(keys)) == len(keys), f"a sweep key is given twice: {keys}")
    require("seed" not in keys and "data_seed" not in keys, "sweep seeds with --seeds, not --set seed=...")
    group = runs.check_name(group or time.strftime("sweep-%Y%m%d-%H%M%S"))
    base = {v: train_config.resolve(v, networks=False) for v in variants}
    for a in [*fixed, *axes]:
        require(
            any(_applies(a.key, c) for c in base.values()),
            f"sweep key {a.key!r} applies to none of the variants {variants} (their schedules do not use it)",
        )
    for cfg in base.values():
        for a in fixed:
            if _applies(a.key, cfg):
                _set(cfg, a.key, a.values[0])
    if use_paper:
        base = {v: paper.to_paper(c) for v, c in base.items()}
    total = len(variants) * len(seeds) * _product_size(axes)
    require(total <= MAX_RUNS, f"the sweep has {total} runs, more than {MAX_RUNS}; split it")
    out, seen = [], set()
    for seed in seeds:
        for combo in product(*(list(enumerate(a.values)) for a in axes)):
            for v in variants:
                cfg = copy.deepcopy(base[v])
                values = {}
                for a, (_, value) in zip(axes, combo):
                    if _applies(a.key, cfg):
                        _set(cfg, a.key, value)
                        values[a.key] = value
                cfg["seed"] = cfg["data_seed"] = seed
                parts = [_name_part(a.key, values[a.key], i) for a, (i, _) in zip(axes, combo) if a.key in values]
                name = "-".join([group, v, *parts, f"s{seed}"])
                if name in seen:  # an axis that did not apply to this variant repeats its run: keep one
                    continue
                seen.add(name)
                out.append(PlannedRun(runs.check_name(name[:64]), v, seed, values, _validated(cfg, name)))
    require(len({r.name for r in out}) == len(out), "run names of this sweep collide; use a shorter --group")
    return group, out


def _product_size(axes) -> int:
    n = 1
    for a in axes:
        n *= len(a.values)
    return n


def _validated(cfg: dict, name: str) -> dict:
    try:
        return train_config.TrainConfig.from_dict(cfg, networks=False).to_dict()
    except DstabError as exc:
        raise DstabError(f"sweep run {name}: {exc}") from None
    except (TypeError, AttributeError) as exc:  # a value of a type the option cannot take (a list for a dict)
        raise DstabError(f"sweep run {name}: a value has the wrong type ({exc})") from None


SCHEDULE_KEYS = ("timesteps=", "momentum=", "beta1=", "lr_schedule=")  # what makes a preset that preset


def from_form(group: str, variants: list[str], seeds: int, axes_text: str, overrides: list[str]):
    """The Training page's sweep, planned as `dstab sweep` plans it: the form's `--set` values fixed
    for every run (those that define a schedule only when a single variant is chosen, so each preset
    keeps its own), one `KEY=V1,V2,...` axis per line of `axes_text`, seeds 0..seeds-1."""
    fixed = overrides if len(variants) == 1 else [o for o in overrides if not o.startswith(SCHEDULE_KEYS)]
    axes, one = split([*fixed, *(line for line in axes_text.splitlines() if line.strip())])
    return plan(variants, list(range(seeds)), axes, one, group=group)


def check(
    planned: list[PlannedRun],
    device: str = "auto",
    threads: int | None = 1,
    root=None,
    nproc: int = 1,
    slurm: dict | None = None,
    names: bool = True,
    notes: list[str] | None = None,
) -> tuple[str, int]:
    """Everything launching `planned` would refuse, nothing written: names already taken in the workspace
    (`names`), the launch options (`runs.check_launch`, on this machine; a Slurm job's device is the
    cluster's), the processes per run (`runs.check_processes`) and `check_configs`. Returns where the
    runs go (the concrete device, or slurm:PARTITION) and their processes."""
    if names:
        root = runs.workspace_root(root)
        taken = [r.name for r in planned if (root / r.name).exists()]
        require(not taken, f"runs {taken[:3]} already exist in {root}; pick another --group")
    if slurm:
        from ..runs import slurm as slurm_launcher

        require(threads is None or (is_int(threads) and threads >= 1), f"--threads must be >= 1, got {threads!r}")
        dev, nproc = f"slurm:{slurm['partition'] or 'default'}", slurm_launcher.processes(slurm)
    else:
        dev = runs.check_launch(device, threads)
    for r in planned:
        runs.check_processes(r.config, nproc)
    check_configs(planned, notes)
    return dev, nproc


def dry_check(planned: list[PlannedRun], device: str = "auto", threads: int | None = 1, root=None, **where) -> list:
    """`check` for `--dry-run` and the Training page's form (`names=False`: its own launch checks the
    names), which downloads nothing: a config whose dataset is not downloaded yet is checked as far as
    the options go, and the returned notes say what was left to its runs. `where`: nproc, slurm, names."""
    from .. import image_data  # PyTorch: planning stays without it

    notes: list[str] = []
    with image_data.no_download():
        check(planned, device, threads, root, notes=notes, **where)
    return notes


def check_configs(planned: list[PlannedRun], notes: list[str] | None = None) -> None:
    """Each distinct config (seeds aside) built once as its run will build it (`runs.check_buildable`).
    Under `image_data.no_download` a config whose dataset is not downloaded yet adds a line to `notes`
    instead (the model against the data is then left to its runs)."""
    from .. import image_data  # imported by the build below anyway

    checked = set()
    for r in planned:
        setup = json.dumps({k: v for k, v in r.config.items() if k not in ("seed", "data_seed")}, sort_keys=True)
        if setup not in checked:
            try:
                runs.check_buildable(r.config)
            except image_data.NotDownloaded as exc:
                if notes is None:
                    raise
                note = f"{exc}; the model against its images is checked when the run starts"
                if note not in notes:
                    notes.append(note)
            except DstabError as exc:
                raise DstabError(f"sweep run {r.name}: {exc}") from None
            checked.add(setup)


def launch(
    group: str,
    planned: list[PlannedRun],
    device: str = "auto",
    threads: int | None = 1,
    root=None,
    nproc: int = 1,
    slurm: dict | None = None,
    then=None,
) -> list:
    """`check` every planned run, call `then()` (a caller's own last check, e.g. FID's weights), queue
    them, then schedule once. `nproc` > 1: each run under torchrun with that many processes. `slurm` (a
    `runs.slurm.launcher` record): the runs go to Slurm as one job array instead of this machine's
    queue, in the same run folders."""
    dev, nproc = check(planned, device, threads, root, nproc, slurm)
    if then is not None:
        then()
    root = runs.workspace_root(root)
    paths = []
    for r in planned:
        request = {"preset": r.variant, "variant": r.variant, "seed": r.seed, "sweep": r.values, "label": r.label}
        q = dict(device=dev, group=group, threads=threads, root=root, nproc=nproc, launcher=slurm)
        paths.append(runs.queue(r.name, r.config, request, **q))
    if slurm:
        from ..runs import slurm as slurm_launcher

        slurm_launcher.submit(paths, slurm)
    runs.schedule(root)
    return [runs.status(r.name, root) for r in planned]


def describe(planned: list[PlannedRun]) -> list[str]:
    """One line per run for --dry-run: name, variant and values, and where it departs from the paper."""
    out = []
    for r in planned:
        diffs = departures(r.config)
        out.append(
            f"{r.name}  [{r.label}, seed {r.seed}, {r.config['steps']} its]  vs paper: {'; '.join(diffs) or '-'}"
        )
    return out
