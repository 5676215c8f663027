"""The guided tour's eight steps: "Why diffusion models train stably, and does it make them faster?"

One idea per step: the paper's claim, the zoo's figure for it from the shipped results (instant: no
step computes), the verdict with its numbers, written by the functions the full pages and the report
use (`dstab.verdicts`, `dstab.report`, `dstab.experiments.verdict`, the landscape's sentence, the P(t)
picture's), and the full page's link with the exact state the step shows (dataset, models, timestep,
toggles). A step whose result is not shipped says so and links to the page that computes it.

Steps: the consistency phenomenon (DMs), the same picture for GANs, the x0-prediction counterexample,
2-D landscapes, 1-D interpolation, Hessian spectra, CLTS's P(t) next to today's timestep rules (every
preset `dstab.training.timesteps` builds, read from the samplers' own pmf), and the speed-up verdict as
it stands (results/speedup-<dataset>.json, through the verdict module's own sentences).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlencode

from dstab import paper, zooindex, zooresults
from dstab.analysis.specs import ProbeSpec

from . import compute, sidebar, verdictpanel

TOUR_T = zooresults.DM_TIMESTEPS[1]  # the landscape and interpolation steps' DM timestep (t = 500)
# where `dstab reproduce speedup` writes its summaries: the checkout's results/ (dstab/commands/reproduce.py)
RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass
class Step:
    title: str
    claim: str
    page: str  # the full page: its url path
    params: dict  # the exact state the step shows, as that page reads it from its URL
    figure: object | None = None  # a plotly figure
    verdict: list[str] = field(default_factory=list)  # Markdown lines, written from the numbers
    missing: str = ""  # what is not shipped, when the figure is absent

    def link(self, selection) -> str:
        """The full page's URL with the step's state and the sidebar's dataset and models."""
        shared = {"data": selection.family}
        shared.update({k: c.ref for k, c in (("dm", selection.dm), ("gan", selection.gan)) if c is not None})
        return f"/{self.page}?{urlencode({**shared, **self.params})}"


def _short(eid: str) -> str:
    return eid.split("/", 1)[-1]


def _samples_figure(res, ids: list[str], entries: dict, title: str):
    from dstab.plots import consistency as consistency_plots

    names = [
        _short(i) + (f" ({zooindex.collapse_label(entries[i])})" if zooindex.is_collapsed(entries[i]) else "")
        for i in ids
    ]
    samples = res.arrays["samples"]
    if samples.ndim == 5:
        return consistency_plots.image_grid(samples, names, title)
    return consistency_plots.linked_points(samples, names, title)


def _group(selection, kind: str, group: str | None = None):
    entries = selection.manifest["entries"]
    ids = zooindex.group_ids(entries, selection.family, group or f"{kind}-init")
    return ids, zooresults.shipped_consistency(selection.family, kind, entries, group)


def _consistency_claims(selection):
    return verdictpanel.consistency_lines(
        zooresults.shipped_consistency_claims(selection.family, selection.manifest["entries"])
    )


def dm_consistency(selection) -> Step:
    entries = selection.manifest["entries"]
    ids, res = _group(selection, "dm")
    step = Step(
        "1. Same noise, same picture: diffusion models are consistent",
        f"Paper, Sec. 3.1: DMs trained from different initialisations draw nearly the same sample from the same "
        f"noise (the same x_T and the same noise at every step). {paper.table1_text()}.",
        "consistency",
        {"group": "different inits"},
    )
    if res is None:
        step.missing = "The DM init group's consistency is not shipped for this dataset."
        return step
    step.figure = _samples_figure(res, ids, entries, "DMs of three inits: a row per model, one noise per column")
    step.verdict = [
        f"- C(q) = {res.meta['C_db']:.2f} dB: the mean PSNR of {', '.join(_short(i) for i in ids[1:])} against "
        f"{_short(ids[0])} over all M = {res.arrays['samples'].shape[1]} shared noises (DDPM)."
    ]
    return step


def gan_consistency(selection) -> Step:
    entries = selection.manifest["entries"]
    ids, res = _group(selection, "gan")
    dm_range, gan_range = paper.consistency_ranges().split(" vs ")
    step = Step(
        "2. The same picture for GANs: each init draws its own sample",
        f"Paper, Table 1: GANs given the same latent z reach {gan_range}, against {dm_range} for DMs.",
        "consistency",
        {"group": "different inits"},
    )
    if res is None:
        step.missing = "The GAN init group's consistency is not shipped for this dataset."
        return step
    step.figure = _samples_figure(res, ids, entries, "GANs of three inits: a row per model, one z per column")
    gone, without = verdictpanel.without_collapsed(ids, res.meta["psnr_matrix_db"], entries)
    line = f"- C(q) = {res.meta['C_db']:.2f} dB over all {len(ids)} GANs"
    if gone:
        shown = "no pair left" if without is None else f"{without:.2f} dB"
        line += f", collapsed {', '.join(_short(g) for g in gone)} included; without it: {shown}"
    step.verdict = [line + "."] + [ln for ln in _consistency_claims(selection) if "than GANs (inits" in ln]
    return step


def x0_counterexample(selection) -> Step:
    entries = selection.manifest["entries"]
    ids, res = _group(selection, "dm", "x0-init")
    step = Step(
        "3. The counterexample: x0-prediction DMs lose it",
        "Paper, Fig. 9 and Eq. 6: a DM that predicts x0 instead of the noise is no longer consistent: the "
        "consistency comes from the eps-prediction objective, not from diffusion as such.",
        "consistency",
        {"group": "different inits", "x0": "true"},
    )
    if res is None:
        step.missing = "The x0-prediction group's consistency is not shipped for this dataset."
        return step
    step.figure = _samples_figure(res, ids, entries, "x0-prediction DMs of three inits: a row per model")
    step.verdict = [f"- C(q) = {res.meta['C_db']:.2f} dB over the {len(ids)} x0-prediction DMs."] + [
        ln for ln in _consistency_claims(selection) if "x0-prediction DMs less consistent" in ln and "x0 group" in ln
    ]
    return step


def _found(spec, choice, device):
    try:
        return compute.found(spec, [sidebar.load_bundle(choice.path)], device)
    except Exception:  # noqa: BLE001 - a model the step cannot probe (no dataset, another T): not shipped
        return None


def landscapes(selection) -> Step:
    from dstab.plots import surface as surface_plots
    from dstab.plots.smoothness_text import smoother_sentence

    spec = zooresults.SURFACE
    step = Step(
        "4. Loss landscapes in 2-D: smoother for the DM",
        "Paper, Sec. 3.2 (after Li et al. 2018): along two filter-normalised random directions, a DM's loss "
        "surface is smoother than a GAN's.",
        "landscape",
        {"t": TOUR_T},
    )
    found = {}
    for kind, choice in (("dm", selection.dm), ("gan", selection.gan)):
        if choice is not None:
            probe = ProbeSpec.of(kind, TOUR_T, "g", batch_size=spec.probe.batch_size, seed=spec.probe.seed)
            if (res := _found(replace(spec, probe=probe), choice, selection.device)) is not None:
                found[kind] = (choice, res)
    if set(found) != {"dm", "gan"}:
        step.missing = f"The picked models' surfaces at t = {TOUR_T} are not stored: open the page to compute them."
        return step
    panels = [
        (
            f"{c.label} ({'DM, t = ' + str(TOUR_T) if k == 'dm' else 'GAN, G loss'})",
            *(r.arrays[a] for a in ("alphas", "betas", "loss")),
        )
        for k, (c, r) in found.items()
    ]
    step.figure = surface_plots.small_multiples(panels, columns=2)
    step.verdict = [smoother_sentence(*((c.label, r.meta) for c, r in found.values()))]
    step.verdict += verdictpanel.roughness_lines(selection.family, "surface")
    return step


def interpolation(selection) -> Step:
    from dstab.analysis.interpolation import rise_over_end
    from dstab.plots import curve as curve_plots

    spec = zooresults.CURVE
    step = Step(
        "5. The line from an early to a late checkpoint",
        "Paper, Sec. 3.2: the loss along the straight line from an early to a late checkpoint of one run is "
        "smooth and falls to one minimum for a DM, bumpy for a GAN.",
        "interpolation",
        {"t": TOUR_T},
    )
    rows = {}
    for kind, choice in (("dm", selection.dm), ("gan", selection.gan)):
        if choice is None or choice.early is None:
            continue
        probe = ProbeSpec.of(kind, TOUR_T, "g", batch_size=spec.probe.batch_size, seed=spec.probe.seed)
        try:
            pair = [sidebar.load_bundle(choice.path), sidebar.load_bundle(choice.early)]
            res = compute.found(replace(spec, probe=probe), pair, selection.device)
        except Exception:  # noqa: BLE001 - as `_found`
            res = None
        if res is not None:
            a = res.arrays["alphas"]
            rows[kind] = (choice.label, res.meta, a, rise_over_end(a, res.arrays["loss"]))
    if not rows:
        step.missing = (
            f"The picked models' interpolations at t = {TOUR_T} are not stored: open the page to compute them."
        )
        return step
    step.figure = curve_plots.curves(rows)
    step.verdict = [
        f"- {label}: roughness {meta['metrics']['roughness']:.3g}, barrier {meta['metrics']['barrier']:.3g} "
        "(roughness 0: one minimum, no bumps)"
        for label, meta, _, _ in rows.values()
    ] + verdictpanel.roughness_lines(selection.family, "interpolate")
    return step


def hessian(selection) -> Step:
    from dstab.plots import hessian as hessian_plots

    entries = selection.manifest["entries"]
    step = Step(
        "6. Curvature: the Hessian's top eigenvalue",
        f"Paper, Sec. 3.2: {paper.hessian_text()}: a DM sits in a flatter minimum.",
        "hessian",
        {"xaxes": hessian_plots.DENSITY_AXES[1]},
    )
    found = {}
    for kind, choice in (("dm", selection.dm), ("gan", selection.gan)):
        if choice is not None and (hit := verdictpanel.report_hessian_of(choice, entries)) is not None:
            found[kind] = (choice.label, hit)
    if not found:
        step.missing = "The picked models' Hessians are not shipped: open the page to compute them."
    else:
        step.figure = hessian_plots.spectral_density(found, axes=hessian_plots.DENSITY_AXES[1])
    claims = zooresults.shipped_hessian_claims(selection.family, entries)
    pair = [(label, res.meta["lambda_1"]) for label, res in found.values()]
    step.verdict = [verdictpanel.pair_sentence("lambda_1", *pair, claim_below=True)] if len(pair) == 2 else []
    step.verdict += verdictpanel.hessian_lines(claims)
    return step


def timestep_rules(selection) -> Step:
    from dashboard import timestepfield
    from dstab.plots import timesteps as timestep_plots
    from dstab.training import config as train_config

    result = timestepfield.cached_field(json.dumps(train_config.BASE["diffusion"], sort_keys=True))
    step = Step(
        "7. CLTS's P(t) next to today's timestep rules",
        "Paper, Sec. 4.2 (Eq. 7-8): CLTS draws t from P(t) = (1 - g) U(t) + g N(t; 0.3 T, T), moving the "
        "training signal towards smaller t as training goes on.",
        "training",
        {"tf_view": "effective"},
    )
    step.figure = timestep_plots.figure(result, "effective")
    step.verdict = [timestepfield.sentence(result, "effective")]  # each rule's own numbers are in its legend
    return step


def speedup(selection) -> Step:
    from dstab.experiments import verdict
    from dstab.plots import compare as compare_plots

    step = Step(
        "8. Faster? The speed-up verdict as it stands",
        f"Paper, Tables 2-3: the full method (CLTS + MDLRC) reaches the baseline's FID {paper.speedup_range()} "
        "sooner. On this zoo's scale the same experiment is `dstab reproduce speedup`.",
        "training",
        {},
    )
    path = RESULTS / f"speedup-{selection.family}.json"
    if not path.exists():
        step.missing = f"No speed-up experiment is shipped for {selection.family} ({path.name})."
        return step
    result = json.loads(Path(path).read_text())
    step.figure = compare_plots.curves_figure(result, "iterations")
    step.verdict = [f"- {line}" for line in verdict.sentences(result)]
    return step


STEPS = (
    dm_consistency,
    gan_consistency,
    x0_counterexample,
    landscapes,
    interpolation,
    hessian,
    timestep_rules,
    speedup,
)
