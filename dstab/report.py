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
from dataclasses import replace
from pathlib import Path

from . import __version__, cache, checkpoints, paper, resultsmd, verdicts, zoo, zooindex
from .analysis import results
from .analysis.hessian_settings import lambda_min_text
from .analysis.specs import HessianSpec, probe_kind
from .checkpoints import git_commit
from .zooresults import CONSISTENCY, CURVE, HESSIAN, REPORT_SAMPLERS, SURFACE, TABLE1, consistency_rows, families  # noqa: F401

QUICK = {
    "num": 4,
    "samplers": (("ddim", 5),),
    "hessian": replace(HESSIAN, top_k=1, trace_samples=2, slq_runs=1, slq_steps=5),
}


def hessian_rows(root, spec: HessianSpec, device, store, log) -> list[dict]:
    """The report's Hessian of every init seed of dm-init (DM probe) and gan-init (G and D)."""
    rows = []
    entries = zoo.read_manifest(root)["entries"]
    for family in families(root):
        for group, roles in (("dm-init", (None,)), ("gan-init", ("g", "d"))):
            ids = zooindex.group_ids(entries, family, group)
            rows += [hessian_row(root, eid, role, spec, device, store, log) for eid in ids for role in roles]
    return rows


def hessian_row(root, eid: str, role: str | None, spec: HessianSpec, device, store, log) -> dict:
    """The report's Hessian of a zoo entry: DMs at the quartile midpoints of [0, T), GANs by role."""
    bundle = checkpoints.load(zoo.checkpoint_path(eid, root=root))
    spec = replace(spec, probe=replace(spec.probe, role=role))
    found = results.get(spec, [bundle], device=device, root=store)
    s = spec.read(found).summary()
    kind = probe_kind(found.params["probe"])
    log(f"hessian {eid} {kind}: lambda_1 {s['lambda_1']:.4g}, sigma2 {s['sigma2']:.4g} ({found.source})")
    return {**s, "id": eid, "probe": kind}  # the row's probe: its kind (the meta's is the built probe's)


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
    entries = zoo.read_manifest(root)["entries"]
    for r in rows:
        r["prediction"] = entries.get(r["id"], {}).get("prediction")
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
    params = record.get("params", {})
    return [
        {
            "analysis": meta["analysis"],
            "checkpoints": names,
            "probe": f"{probe.get('kind', '?')} {where}".strip(),
            "metrics": meta["metrics"],
            "id": names[0].split("@")[0],
            "kind": "gan" if str(probe.get("kind", "")).startswith("gan") else "dm",
            "t": tuple(probe.get("timesteps") or ()),
            "role": probe.get("role"),
            "report_settings": _at_report_settings(meta["analysis"], params),
        }
    ]


def _at_report_settings(analysis: str, params: dict) -> bool:
    """Whether a cached result was computed at the zoo's shipped settings (the verdicts compare only
    those: a surface's roughness depends on its radius and grid)."""
    spec = SURFACE if analysis == "surface" else CURVE
    fields = ("grid", "radius", "seed", "bias_mode") if analysis == "surface" else ("lo", "hi", "steps")
    probe = params.get("probe", {})
    return all(params.get(f) == getattr(spec, f) for f in fields) and (probe.get("batch_size"), probe.get("seed")) == (
        spec.probe.batch_size,
        spec.probe.seed,
    )


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
    out += ["", f"Paper, {paper.table1_text()}.", ""]
    collapsed = set(header.get("collapsed", ()))
    claims = [v for row in consistency for v in verdicts.consistency_claims(row, collapsed)]
    out += [f"- {v.text(spec='.2f')}" for v in claims if not v.claim.startswith("x0")]
    out += ["", "#### x0-prediction counterexample (paper Fig. 9, Eq. 6)", ""]
    out.append(
        "The paper's test: C(q) of x0-prediction DMs of different inits (group x0-init, same architecture and "
        "data order as dm-init) against the eps DMs and the GANs, same sampler noise. The older stand-in, the "
        "PSNR between the eps and the x0 DM of init seed 0, stays as an extra column."
    )
    out += [
        "",
        "| dataset | sampler | eps DMs (dm-init) | x0 DMs (x0-init) | GANs (gan-init) | eps/x0 pair |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in consistency:
        x0 = {t["kind"]: t for t in row.get("x0", [])}
        cells = [
            row["values"].get("dm-init"),
            x0.get("x0 group", {}).get("C"),
            row["values"].get("gan-init"),
            x0.get("eps vs x0 pair", {}).get("C"),
        ]
        out.append(f"| {row['family']} | {row['sampler']} | " + " | ".join(_fmt(c) for c in cells) + " |")
    out.append("")
    out += [f"- {v.text(('x0', 'eps'), '.2f')}" for v in claims if v.claim.startswith("x0")]
    if not any(row.get("x0") for row in consistency):
        out.append("- no x0-prediction model in the zoo")
    out += _render_hessian(hessians, header)
    out += _render_collapse(header.get("entries", {}))
    out += _render_roughness(roughness, collapsed)
    return "\n".join(out) + "\n"


def _render_hessian(rows: list[dict], header: dict) -> list[str]:
    out = ["", "### Hessian spectra (paper Sec. 3.2)", ""]
    s = header["hessian"]
    batch = header["hessian_batch"]
    out.append(
        f"dstab engine: Lanczos top-{s['top_k']} (full reorthogonalisation), Hutchinson trace with "
        f"{s['trace_samples']} Rademacher probes, SLQ {s['slq_runs']} runs x {s['slq_steps']} steps; probes "
        f"on a fixed batch of {batch} (DMs: L_simple at t = 0.125, 0.375, 0.625, "
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
            f"| {r['id']} | {r['probe']} | {r['n_params']} | {r['lambda_1']:.4g} | {lambda_min_text(r)}"
            f" | {r['trace']:.4g} | {r['mean']:.3g} | {r['sigma2']:.3g} | {r['ritz_variance']:.4g} |"
        )
    out += ["", f"Paper: {paper.hessian_text()}.", ""]
    out += [f"- {v.text()}" for v in verdicts.hessian_claims(rows, set(header.get("collapsed", ())))]
    return out


def _render_collapse(entries: dict) -> list[str]:
    """Every entry's collapse record from the manifest (`python -m dstab zoo measure`)."""
    rows = zooindex.collapse_rows(entries)
    if not rows:
        return []
    out = ["", "### Mode collapse of the zoo's models (manifest; `python -m dstab zoo measure`)", ""]
    out += [
        "| model | modes covered | precision | confident share | class entropy (nats) | collapsed |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['id']} | {r['coverage']} of {r['modes']} | {_fmt(r['precision'], '.3f')} | "
            f"{_fmt(r['confident_share'], '.3f')} | {_fmt(r['class_entropy'], '.3f')} | "
            f"{'**collapsed**' if r['collapsed'] else 'no'} |"
        )
    out += [""] + [f"Rule ({d}): {rule}." for d, rule in sorted({(r["dataset"], r["rule"]) for r in rows})]
    return out


def _render_roughness(rows: list[dict], collapsed: set[str]) -> list[str]:
    out = ["", "### Loss-landscape roughness (paper Sec. 3.2; cached surface and interpolation results)", ""]
    if not rows:
        return out + [
            "No cached surface or interpolation results for zoo checkpoints yet: run "
            "`python -m dstab precompute` (or `dstab surface` / `dstab interpolate`), then this report."
        ]
    out += _roughness_verdicts(rows, collapsed) + [""]
    keys = sorted({k for r in rows for k in r["metrics"]})
    out += ["| analysis | checkpoints | probe | " + " | ".join(keys) + " |", "|---|---|---|" + "---:|" * len(keys)]
    for r in sorted(rows, key=lambda r: (r["analysis"], r["checkpoints"], r["probe"])):
        vals = " | ".join(_fmt(r["metrics"].get(k), ".4g") for k in keys)
        out.append(f"| {r['analysis']} | {' -> '.join(r['checkpoints'])} | {r['probe']} | {vals} |")
    return out


# (analysis, metric, True when lower means smoother): Li et al. 2018's visual claim made into numbers
def roughness_lines(root: Path | None = None) -> list[str]:
    """The smoothness verdicts of the report's landscape section, over the cached results of the zoo at
    `root` (the landscape pages show the lines of their dataset)."""
    root = Path(root or zoo.zoo_root())
    return _roughness_verdicts(roughness_rows(root), _collapsed(root))


def _collapsed(root: Path) -> set[str]:
    return {e for e, v in zoo.read_manifest(root)["entries"].items() if zooindex.is_collapsed(v)}


ROUGHNESS_BASIS = (
    f"Results at the zoo's settings (surfaces: grid {SURFACE.grid}, r = {SURFACE.radius:g}, direction seed "
    f"{SURFACE.seed}; interpolations over [{CURVE.lo:g}, {CURVE.hi:g}]; probe batch {SURFACE.probe.batch_size}, "
    "seed 0): the DMs' mean at each timestep against the GANs' mean for the G loss (D frozen) and for the D loss "
    "(G frozen), mode-collapsed GANs and x0-prediction DMs (the paper's Fig. 9 counterexample) left out."
)


def _roughness_verdicts(rows: list[dict], collapsed: set[str] = frozenset()) -> list[str]:
    """Whether DM surfaces and interpolations come out smoother than GANs', per dataset, GAN loss and DM
    timestep (`dstab.verdicts.smoothness_lines`), over the results at the zoo's settings."""
    kept = [r for r in rows if r.get("report_settings", True)]
    return [ROUGHNESS_BASIS, ""] + verdicts.smoothness_lines(kept, set(collapsed))


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
    num = QUICK["num"] if quick else CONSISTENCY.num
    samplers = QUICK["samplers"] if quick else REPORT_SAMPLERS
    spec = QUICK["hessian"] if quick else HESSIAN
    consistency = consistency_rows(root, num, samplers, device, store, log)
    hessians = hessian_rows(root, spec, device, store, log)
    manifest = zoo.read_manifest(root)
    header = {
        "entries": manifest["entries"],
        "collapsed": sorted(e for e, v in manifest["entries"].items() if zooindex.is_collapsed(v)),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit() or "unknown",
        "scale": manifest.get("scale", "?"),
        "num": num,
        "hessian": spec.settings(),
        "hessian_batch": spec.probe.batch_size,
    }
    text = render(consistency, hessians, roughness_rows(root), header)
    resultsmd.write_section(Path(output), "dstab report", text)
    return Path(output)
