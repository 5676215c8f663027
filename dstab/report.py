"""`dstab report`: the paper's comparisons run on the zoo, written as RESULTS.md.

Everything in the file is generated from results (through the cache, so a
precomputed zoo reports in seconds); nothing is typed in by hand. Each claim
of the paper gets a line saying whether it holds on the zoo, with the numbers.

Paper facts quoted (DESIGN.md): Table 1 consistency (M = 32) DM 20.14 / 17.23
/ 14.37 dB vs GAN 10.48 / 8.58 / 6.40 dB; Fig. 9 / Eq. 6 x0-prediction DMs
lose consistency; Sec. 3.2 Hessian DM lambda_1 13.3, sigma^2 37.9 vs GAN
lambda_1 40.9, sigma^2 93.9; loss surfaces of DMs smoother than GANs'.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from pathlib import Path

from . import __version__, cache, checkpoints, probes, resultsmd, zoo
from .analysis import consistency as cons
from .analysis import hessian_engines, precompute
from .checkpoints import git_commit
from .defaults import CONSISTENCY_SETTINGS, HESSIAN_PROBE, HESSIAN_SETTINGS, SAMPLERS, hessian_timesteps  # noqa: F401
from .errors import DstabError

# consistency groups in the shape of the paper's Table 1: (zoo group, label)
TABLE1 = [
    ("dm-init", "DM, inits"),
    ("gan-init", "GAN, inits"),
    ("dm-structure", "DM, structures"),
    ("gan-structure", "GAN, structures"),
]
PAPER_TABLE1 = (
    "CIFAR10: Improved Diffusion 20.14 vs DCGAN 10.48; ImageNet128: 17.23 vs BigGAN 8.58; ImageNet512: 14.37 vs 6.40"
)
PAPER_HESSIAN = {"dm": (13.3, 37.9), "gan": (40.9, 93.9)}

QUICK = {
    "num": 4,
    "samplers": (("ddim", 5),),
    "hessian": {"top_k": 1, "trace_samples": 2, "slq_runs": 1, "slq_steps": 5},
}


def families(root: Path | None = None) -> list[str]:
    return sorted({eid.split("/")[0] for eid in zoo.read_manifest(root)["entries"]})


def consistency_rows(root, num: int, samplers, device, store, log, only: list[str] | None = None) -> list[dict]:
    rows = []
    for family in only or families(root):
        for sampler, steps in samplers:
            row = {"family": family, "sampler": sampler, "values": {}}
            for group, _ in TABLE1:
                row["values"][group] = _group_score(root, family, group, num, sampler, steps, device, store, log)
            row["x0"] = x0_counterexample(root, family, num, sampler, steps, device, store, log)
            rows.append(row)
    return rows


def _group_score(root, family, group, num, sampler, steps, device, store, log) -> float | None:
    try:
        ids = cons.group_ids(family, group, root)
    except DstabError:
        return None
    if len(ids) < 2:
        return None
    return _score(root, ids, num, sampler, steps, device, store, log)


def _score(root, ids, num, sampler, steps, device, store, log) -> float:
    bundles = [checkpoints.load(zoo.checkpoint_path(i, root=root)) for i in ids]
    kind_sampler = sampler if bundles[0].kind == "dm" else "ddpm"  # GANs ignore the sampler: one cache key
    kind_steps = steps if bundles[0].kind == "dm" else None
    settings = {"num": num, "seed": CONSISTENCY_SETTINGS["seed"], "sampler": kind_sampler, "steps": kind_steps}
    result, source = cons.cached(bundles, ids, root=store, device=device, **settings)
    log(f"consistency {', '.join(ids)} [{kind_sampler}]: {result.score:.2f} dB ({source})")
    return result.score


def x0_counterexample(root, family, num, sampler, steps, device, store, log) -> dict | None:
    """C of the x0-prediction group when it has >= 2 models (the paper's test); with one x0 model,
    the pair (eps model, x0 model) of the same init seed, labelled as the weaker stand-in it is."""
    try:
        x0_ids = cons.group_ids(family, "dm-x0", root)
        eps_ids = cons.group_ids(family, "dm-init", root)
    except DstabError:
        return None
    if len(x0_ids) >= 2:
        return {"kind": "x0 group", "ids": x0_ids, "C": _score(root, x0_ids, num, sampler, steps, device, store, log)}
    pair = [eps_ids[0], x0_ids[0]]
    return {"kind": "eps vs x0 pair", "ids": pair, "C": _score(root, pair, num, sampler, steps, device, store, log)}


def hessian_rows(root, settings: dict, device, store, log) -> list[dict]:
    rows = []
    entries = zoo.read_manifest(root)["entries"]
    for family in families(root):
        for eid, role in ((f"{family}/dm-eps-s0", None), (f"{family}/gan-s0", "g"), (f"{family}/gan-s0", "d")):
            if eid in entries:
                rows.append(hessian_row(root, eid, role, settings, device, store, log))
    return rows


def hessian_row(root, eid: str, role: str | None, settings: dict, device, store, log) -> dict:
    bundle = checkpoints.load(zoo.checkpoint_path(eid, root=root))
    probe = default_probe(bundle, role).to(device)
    result, source = hessian_engines.cached(probe, "dstab", root=store, **settings)
    s = result.summary()
    log(f"hessian {eid} {probe.kind}: lambda_1 {s['lambda_1']:.4g}, sigma2 {s['sigma2']:.4g} ({source})")
    return {"id": eid, "probe": probe.kind, **s}


def default_probe(bundle, role: str | None):
    """The report's probe: DMs at the quartile midpoints of [0, T), GANs by role; a small fixed batch."""
    if bundle.kind == "dm":
        ts = hessian_timesteps(bundle.diffusion.T)
        return probes.probe_for(bundle, ts, None, HESSIAN_PROBE["batch_size"], HESSIAN_PROBE["seed"])
    return probes.probe_for(bundle, None, role, HESSIAN_PROBE["batch_size"], HESSIAN_PROBE["seed"])


def roughness_rows(root) -> list[dict]:
    """Smoothness numbers of every cached surface / interpolation result of a zoo checkpoint
    (computed by `dstab surface|interpolate|precompute`); read, never computed here."""
    by_sha = {}
    for eid, e in zoo.read_manifest(root)["entries"].items():
        for stage, f in e["checkpoints"].items():
            by_sha[f["sha256"]] = f"{eid}@{stage}"
    rows = []
    for base in (cache.shipped_dir(), cache.user_dir()):
        for path in sorted(base.glob("*/*.json")) if base.exists() else []:
            rows.extend(_roughness_of(path, by_sha))
    return rows


def _roughness_of(path: Path, by_sha: dict) -> list[dict]:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    meta = record.get("meta", {})
    if meta.get("analysis") not in ("surface", "interpolate") or "metrics" not in meta:
        return []
    names = [by_sha.get(s) for s in record.get("checkpoints", [])]
    if not names or None in names:
        return []
    probe = meta.get("probe") or meta.get("probe_a") or {}
    where = probe.get("timesteps") or probe.get("role") or ""
    return [
        {
            "analysis": meta["analysis"],
            "checkpoints": names,
            "probe": f"{probe.get('kind', '?')} {where}".strip(),
            "metrics": meta["metrics"],
        }
    ]


def _verdict(holds: bool | None) -> str:
    return "n/a" if holds is None else ("holds" if holds else "**does not hold on the zoo**")


def _fmt(x, spec=".2f") -> str:
    return "–" if x is None else format(x, spec)


def render(consistency: list[dict], hessians: list[dict], roughness: list[dict], header: dict) -> str:
    out = ["## The paper's comparisons on the zoo (`python -m dstab report`)", ""]
    out.append(
        f"Generated by `python -m dstab report` on {header['date']} (dstab {__version__}, commit "
        f"{header['commit']}, zoo scale {header['scale']}). Do not edit: rerun the command."
    )
    out += ["", "### Consistency (paper Eq. 1, Table 1)", ""]
    out.append(
        f"C(q) in dB: N models of a group, {header['num']} samples each from one sampling seed (same x_T "
        "and per-step noise for DMs, same z for GANs); PSNR against the first model (seed 0), peak 2 for "
        "images in [-1, 1], the data range for 2-D points, capped at 100 dB. GANs have no sampler: their "
        "value repeats across sampler rows."
    )
    out += [
        "",
        "| dataset | sampler | " + " | ".join(label for _, label in TABLE1) + " |",
        "|---|---|" + "---:|" * len(TABLE1),
    ]
    for row in consistency:
        vals = " | ".join(_fmt(row["values"][g]) for g, _ in TABLE1)
        out.append(f"| {row['family']} | {row['sampler']} | {vals} |")
    out += ["", f"Paper (M = 32): {PAPER_TABLE1}.", ""]
    for row in consistency:
        v = row["values"]
        for kind in ("init", "structure"):
            dm, gan = v.get(f"dm-{kind}"), v.get(f"gan-{kind}")
            holds = None if dm is None or gan is None else dm > gan
            out.append(
                f"- DMs more consistent than GANs ({kind}s, {row['family']}, {row['sampler']}): "
                f"{_verdict(holds)} ({_fmt(dm)} vs {_fmt(gan)} dB)"
            )
    out += ["", "#### x0-prediction counterexample (paper Fig. 9, Eq. 6)", ""]
    for row in consistency:
        x0, dm = row.get("x0"), row["values"].get("dm-init")
        if not x0:
            out.append(f"- {row['family']}, {row['sampler']}: no x0-prediction model in the zoo")
            continue
        holds = None if dm is None else x0["C"] < dm
        what = (
            "C of the x0-prediction group"
            if x0["kind"] == "x0 group"
            else "PSNR between an eps- and an x0-prediction DM of the same init (the zoo has one x0 model, so "
            "the paper's test, x0 models of different inits, cannot be run; this pair is a weaker stand-in)"
        )
        out.append(
            f"- {row['family']}, {row['sampler']}: {what} {', '.join(x0['ids'])}: {x0['C']:.2f} dB vs eps "
            f"DMs {_fmt(dm)} dB; x0 less consistent: {_verdict(holds)}"
        )
    out += _render_hessian(hessians, header)
    out += _render_roughness(roughness)
    return "\n".join(out) + "\n"


def _render_hessian(rows: list[dict], header: dict) -> list[str]:
    out = ["", "### Hessian spectra (paper Sec. 3.2)", ""]
    s = header["hessian"]
    out.append(
        f"dstab engine: Lanczos top-{s['top_k']} (full reorthogonalisation), Hutchinson trace with "
        f"{s['trace_samples']} Rademacher probes, SLQ {s['slq_runs']} runs x {s['slq_steps']} steps; probes "
        f"on a fixed batch of {HESSIAN_PROBE['batch_size']} (DMs: L_simple at t = 0.125, 0.375, 0.625, "
        "0.875 T; GANs: generator loss with D frozen, discriminator loss with G frozen). sigma2 = "
        "tr(H^2)/n - (tr(H)/n)^2 from the SLQ moments; Ritz var = unweighted variance of the SLQ nodes "
        "(numpy.var of PyHessian's density output), the likelier reading of the paper's sigma^2."
    )
    out += [
        "",
        "| model | probe | n | lambda_1 | lambda_min | trace | mean | sigma2 | Ritz var |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['id']} | {r['probe']} | {r['n_params']} | {r['lambda_1']:.4g} | {_fmt(r['lambda_min'], '.4g')}"
            f" | {r['trace']:.4g} | {r['mean']:.3g} | {r['sigma2']:.3g} | {r['ritz_variance']:.4g} |"
        )
    (dl, dv), (gl, gv) = PAPER_HESSIAN["dm"], PAPER_HESSIAN["gan"]
    out += ["", f"Paper: DM lambda_1 {dl}, sigma^2 {dv}; GAN lambda_1 {gl}, sigma^2 {gv}.", ""]
    for family in sorted({r["id"].split("/")[0] for r in rows}):
        dm = next((r for r in rows if r["id"] == f"{family}/dm-eps-s0"), None)
        for role in ("gan-g", "gan-d"):
            gan = next((r for r in rows if r["id"] == f"{family}/gan-s0" and r["probe"] == role), None)
            if dm is None or gan is None:
                continue
            for key, label in (("lambda_1", "lambda_1"), ("sigma2", "sigma2"), ("ritz_variance", "Ritz variance")):
                out.append(
                    f"- {family}: DM {label} below GAN's ({role}): {_verdict(dm[key] < gan[key])} "
                    f"({dm[key]:.4g} vs {gan[key]:.4g})"
                )
    return out


def _render_roughness(rows: list[dict]) -> list[str]:
    out = ["", "### Loss-landscape roughness (paper Sec. 3.2; cached surface and interpolation results)", ""]
    if not rows:
        return out + [
            "No cached surface or interpolation results for zoo checkpoints yet: run "
            "`python -m dstab precompute` (or `dstab surface` / `dstab interpolate`), then this report."
        ]
    out += _roughness_verdicts(rows) + [""]
    keys = sorted({k for r in rows for k in r["metrics"]})
    out += ["| analysis | checkpoints | probe | " + " | ".join(keys) + " |", "|---|---|---|" + "---:|" * len(keys)]
    for r in sorted(rows, key=lambda r: (r["analysis"], r["checkpoints"], r["probe"])):
        vals = " | ".join(_fmt(r["metrics"].get(k), ".4g") for k in keys)
        out.append(f"| {r['analysis']} | {' -> '.join(r['checkpoints'])} | {r['probe']} | {vals} |")
    return out


# (analysis, metric, True when lower means smoother): Li et al. 2018's visual claim made into numbers
SMOOTHNESS = [("surface", "curvature_roughness", True), ("surface", "convex_fraction", False),
              ("interpolate", "roughness", True)]  # fmt: skip


def _roughness_verdicts(rows: list[dict]) -> list[str]:
    """Mean smoothness numbers of DM vs GAN probes per dataset, and whether DMs come out smoother."""
    out = ["Means over the zoo's cached results (every stage, timestep and role):", ""]
    for family in sorted({r["checkpoints"][0].split("/")[0] for r in rows}):
        for analysis, metric, lower_smoother in SMOOTHNESS:

            def mean_of(kind, analysis=analysis, metric=metric, family=family):
                vals = [r["metrics"][metric] for r in rows if r["analysis"] == analysis
                        and r["checkpoints"][0].startswith(f"{family}/") and r["probe"].startswith(kind)
                        and r["metrics"].get(metric) is not None]  # fmt: skip
                return sum(vals) / len(vals) if vals else None

            dm, gan = mean_of("dm"), mean_of("gan")
            holds = None if dm is None or gan is None else (dm < gan if lower_smoother else dm > gan)
            out.append(f"- {family}: DM {analysis} smoother than GAN's by {metric} "
                       f"({'lower' if lower_smoother else 'higher'} is smoother): {_verdict(holds)} "
                       f"({_fmt(dm, '.4g')} vs {_fmt(gan, '.4g')})")  # fmt: skip
    return out


def build(
    output: Path,
    root: Path | None = None,
    device="cpu",
    quick: bool = False,
    store: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Compute (or read from the cache) every comparison and write the Markdown report to `output`.
    `store` is where new results go (the shipped cache for `precompute`, else the user cache)."""
    root = Path(root or zoo.zoo_root())
    num = QUICK["num"] if quick else CONSISTENCY_SETTINGS["num"]
    samplers = QUICK["samplers"] if quick else SAMPLERS
    settings = {**HESSIAN_SETTINGS, **QUICK["hessian"]} if quick else HESSIAN_SETTINGS
    consistency = consistency_rows(root, num, samplers, device, store, log)
    hessians = hessian_rows(root, settings, device, store, log)
    manifest = zoo.read_manifest(root)
    header = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit() or "unknown",
        "scale": manifest.get("scale", "?"),
        "num": num,
        "hessian": settings,
    }
    text = render(consistency, hessians, roughness_rows(root), header)
    resultsmd.write_section(Path(output), "dstab report", text)
    return Path(output)


def _precompute_hessian(entry_id: str, entry: dict, root: Path, device, log) -> int:
    """`dstab precompute` task: the report's Hessian of every zoo entry (DMs; GANs for both roles)."""
    roles = [None] if entry["kind"] == "dm" else ["g", "d"]
    for role in roles:
        hessian_row(None, entry_id, role, HESSIAN_SETTINGS, device, root, log)
    return len(roles)


def _precompute_consistency(entry_id: str, entry: dict, root: Path, device, log) -> int:
    """`dstab precompute` task: every consistency group of a dataset, run once, at its first entry."""
    family = entry_id.split("/")[0]
    if entry_id != min(e for e in zoo.read_manifest()["entries"] if e.startswith(f"{family}/")):
        return 0
    rows = consistency_rows(None, CONSISTENCY_SETTINGS["num"], SAMPLERS, device, root, log, only=[family])
    return sum(v is not None for r in rows for v in r["values"].values())


precompute.register("hessian", _precompute_hessian)
precompute.register("consistency", _precompute_consistency)
