"""Does a claim of the paper hold on the zoo? One verdict function for the report, RESULTS.md and pages.

A claim compares one number of two groups of models, e.g. "the DMs' lambda_1
is below the GANs'" over every init seed of dm-init and gan-init. The
verdict uses all models of both groups:

- each group's mean +- sd (sample sd, n - 1) and every seed's own verdict
  (model i of one group against model i of the other: the same init seed);
- models recorded as collapsed (`dstab.collapse`) are excluded, the
  excluded ids are named, and the verdict with them included is given too;
- "holds" when the means and every seed's comparison agree with the claim,
  "does not hold" when the means and every seed contradict it, "weak test"
  when the seeds disagree, a group keeps fewer than 2 models, or the caller
  marks the test as a stand-in (e.g. the eps/x0 pair instead of x0 models of
  several inits).

Torch-free: it takes numbers in and hands words out, so pages can call it on
a cold server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HOLDS, FAILS, WEAK, NA = "holds", "does not hold", "weak test", "n/a"
MIN_MODELS = 2


@dataclass(frozen=True)
class Value:
    """One model's number; `collapsed` models are excluded from the main verdict."""

    id: str
    value: float
    collapsed: bool = False


@dataclass(frozen=True)
class Stat:
    mean: float | None
    sd: float | None
    ids: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.ids)

    def text(self, spec: str = ".4g") -> str:
        """'mean +- sd (n = k)': the mean to `spec`, the sd to two significant digits (its own precision)."""
        if self.mean is None:
            return "none"
        sd = f" +- {float(format(self.sd, '.2g')):g}" if self.sd is not None else ""
        return f"{format(self.mean, spec)}{sd} (n = {self.n})"


def mean_sd(xs: list[float]) -> tuple[float, float | None]:
    """Mean and sample sd (n - 1; None for one value) of a non-empty list."""
    mean = sum(xs) / len(xs)
    return mean, (math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None)


def stat(values: list[Value]) -> Stat:
    if not values:
        return Stat(None, None, ())
    return Stat(*mean_sd([v.value for v in values]), tuple(v.id for v in values))


@dataclass(frozen=True)
class Verdict:
    claim: str  # "DM lambda_1 below GAN's (toy2d, gan-g)"
    verdict: str  # over the models kept
    a: Stat
    b: Stat
    per_seed: tuple[tuple[str, str, str], ...]  # (id of a, id of b, that seed's verdict or "excluded")
    excluded: tuple[str, ...] = ()
    verdict_all: str | None = None  # with the excluded models included; None when nothing was excluded
    a_all: Stat | None = None
    b_all: Stat | None = None
    caveats: tuple[str, ...] = field(default_factory=tuple)

    def text(self, names: tuple[str, str] = ("DM", "GAN"), spec: str = ".4g") -> str:
        """One Markdown line: the claim, the verdict and every number behind it."""
        shown = f"**{self.verdict}**" if self.verdict != HOLDS else self.verdict
        out = f"{self.claim}: {shown} ({names[0]} {self.a.text(spec)} vs {names[1]} {self.b.text(spec)}"
        if self.per_seed:
            out += "; per seed: " + ", ".join(f"{_short(x)} vs {_short(y)} {v}" for x, y, v in self.per_seed)
        out += ")"
        if self.excluded:
            out += (
                f"; excluded as collapsed: {', '.join(self.excluded)}; with them included: {self.verdict_all} "
                f"({names[0]} {self.a_all.text(spec)} vs {names[1]} {self.b_all.text(spec)})"
            )
        if self.caveats:
            out += "; " + "; ".join(self.caveats)
        return out


def _short(eid: str) -> str:
    return eid.split("/", 1)[-1]


def _agrees(x: Value, y: Value, a_below_b: bool) -> bool:
    return x.value < y.value if a_below_b else x.value > y.value


def _decide(a: list[Value], b: list[Value], pairs: list, a_below_b: bool, weak: bool) -> tuple[str, list[str]]:
    """The verdict on these models, with the per-seed comparisons of `pairs`, and what made it weak."""
    if not a or not b:
        return NA, ["a group has no model left"]
    sa, sb = stat(a), stat(b)
    mean_ok = (sa.mean < sb.mean) if a_below_b else (sa.mean > sb.mean)
    seeds = [_agrees(x, y, a_below_b) for x, y in pairs]
    why = []
    if min(len(a), len(b)) < MIN_MODELS:
        why.append(f"fewer than {MIN_MODELS} models in a group")
    if seeds and len(set(seeds)) > 1:
        why.append(f"seeds disagree ({sum(seeds)} of {len(seeds)} agree with the claim)")
    if weak or why:
        return WEAK, why
    return (HOLDS if mean_ok else FAILS), why


def compare(
    claim: str, a: list[Value], b: list[Value], a_below_b: bool, stand_in: str | None = None, caveats=()
) -> Verdict:
    """The verdict on "group a's value is below (a_below_b) / above group b's", over all models given;
    models are paired by position for the per-seed verdicts (pass both groups sorted by seed).
    `stand_in` names why the test is weaker than the paper's; it makes the verdict a weak test."""
    notes = list(caveats) + ([stand_in] if stand_in else [])
    kept_a, kept_b = [v for v in a if not v.collapsed], [v for v in b if not v.collapsed]
    pairs = list(zip(a, b))
    healthy = [(x, y) for x, y in pairs if not (x.collapsed or y.collapsed)]
    verdict, why = _decide(kept_a, kept_b, healthy, a_below_b, stand_in is not None)
    per_seed = [
        (x.id, y.id, "excluded" if x.collapsed or y.collapsed else (HOLDS if _agrees(x, y, a_below_b) else FAILS))
        for x, y in pairs
    ]
    excluded = tuple(v.id for v in a + b if v.collapsed)
    extra = {}
    if excluded:
        verdict_all, _ = _decide(list(a), list(b), pairs, a_below_b, stand_in is not None)
        extra = {"verdict_all": verdict_all, "a_all": stat(list(a)), "b_all": stat(list(b))}
    return Verdict(
        claim, verdict, stat(kept_a), stat(kept_b), tuple(per_seed), excluded, caveats=tuple(notes + why), **extra
    )


def group_psnr_values(ids: list[str], matrix_db: list[list[float]], collapsed: set[str]) -> tuple[list, list]:
    """Per-model values of a consistency group from its (N, N) mean-PSNR matrix: PSNR of models 2..N
    against model 1 with every model kept (all), and against the first non-collapsed model with the
    collapsed ones left out (kept). C(q) is the mean of either list (Eq. 1)."""
    every = [Value(ids[j], matrix_db[0][j]) for j in range(1, len(ids))]
    keep = [j for j, i in enumerate(ids) if i not in collapsed]
    kept = [Value(ids[j], matrix_db[keep[0]][j]) for j in keep[1:]] if keep else []
    return every, kept


def consistency_verdict(claim: str, a: dict, b: dict, collapsed: set[str], a_below_b: bool = False, **kw) -> Verdict:
    """Claim on C(q) of two groups, each {'ids': [...], 'matrix': (N, N) mean PSNR dB}. A group with a
    collapsed model is re-scored without it (reference = its first model that did not collapse)."""
    a_all, a_kept = group_psnr_values(a["ids"], a["matrix"], collapsed)
    b_all, b_kept = group_psnr_values(b["ids"], b["matrix"], collapsed)
    v = compare(claim, a_kept, b_kept, a_below_b, **kw)
    excluded = tuple(i for i in a["ids"] + b["ids"] if i in collapsed)
    if not excluded:
        return v
    verdict_all, _ = _decide(a_all, b_all, list(zip(a_all, b_all)), a_below_b, kw.get("stand_in") is not None)
    return Verdict(v.claim, v.verdict, v.a, v.b, v.per_seed, excluded, verdict_all, stat(a_all), stat(b_all), v.caveats)


X0_STAND_IN = (
    "stand-in: PSNR between an eps- and an x0-prediction DM of one init, a weaker test than the paper's "
    "(x0 models of different inits)"
)


def consistency_claims(row: dict, collapsed: set[str]) -> list[Verdict]:
    """The consistency claims of one dataset x sampler row of `report.consistency_rows`: DMs above GANs
    (inits, structures), and x0-prediction DMs below eps DMs (the x0 group; the eps/x0 pair as a stand-in)."""
    where, groups, out = f"{row['family']}, {row['sampler']}", row["groups"], []
    for kind in ("init", "structure"):
        dm, gan = groups.get(f"dm-{kind}"), groups.get(f"gan-{kind}")
        if dm and gan:
            out.append(consistency_verdict(f"DMs more consistent than GANs ({kind}s, {where})", dm, gan, collapsed))
    eps = groups.get("dm-init")
    for x0 in row.get("x0", []) if eps else []:
        group = x0["kind"] == "x0 group"
        claim = f"x0-prediction DMs less consistent than eps DMs ({where}; {x0['kind']} {', '.join(x0['ids'])})"
        out.append(consistency_verdict(claim, x0, eps, collapsed, True, stand_in=None if group else X0_STAND_IN))
    return out


HESSIAN_KEYS = (("lambda_1", "lambda_1"), ("sigma2", "sigma2"), ("ritz_variance", "Ritz variance"))


def hessian_claims(rows: list[dict], collapsed: set[str]) -> list[Verdict]:
    """'DM <number> below GAN's' per dataset, GAN role and number, over every seed of dm-init and
    gan-init. `rows`: {'id', 'probe' ('dm' | 'gan-g' | 'gan-d'), 'lambda_1', 'sigma2', 'ritz_variance'}."""
    out = []
    for family in sorted({r["id"].split("/")[0] for r in rows}):
        mine = sorted((r for r in rows if r["id"].startswith(f"{family}/")), key=lambda r: r["id"])
        dm = [r for r in mine if r["probe"] == "dm"]
        for role in ("gan-g", "gan-d"):
            gan = [r for r in mine if r["probe"] == role]
            if not dm or not gan:
                continue
            for key, label in HESSIAN_KEYS:
                a = [Value(r["id"], r[key], r["id"] in collapsed) for r in dm]
                b = [Value(r["id"], r[key], r["id"] in collapsed) for r in gan]
                out.append(compare(f"{family}: DM {label} below GAN's ({role})", a, b, a_below_b=True))
    return out


# (analysis, metric, lower is smoother)
SMOOTHNESS = (
    ("surface", "curvature_roughness", True),
    ("surface", "convex_fraction", False),
    ("interpolate", "roughness", True),
)
GAN_LOSS = {"g": "G loss", "d": "D loss"}


def _t_text(t: tuple) -> str:
    return "/".join(str(x) for x in t) or "?"


def smoothness_lines(rows: list[dict], collapsed: set[str]) -> list[str]:
    """'DM <analysis> smoother than the GAN's G (D) loss by <metric>' per dataset: the DMs' mean at each of
    their timesteps against the mean of the GANs' (collapsed ones excluded and named). A mean over
    timesteps hides what the paper's Fig. 2 and 10 show: a DM's surface changes with t, and a GAN's G and
    D losses differ. x0-prediction DMs (the Fig. 9 counterexample) are left out. `rows`: {'id', 'analysis',
    'kind' ('dm' | 'gan'), 't' (tuple), 'role', 'prediction', 'metrics'}."""
    out = []
    for family in sorted({r["id"].split("/")[0] for r in rows}):
        for analysis, metric, lower in SMOOTHNESS:
            mine = [
                r
                for r in rows
                if r["id"].startswith(f"{family}/")
                and r["analysis"] == analysis
                and r["metrics"].get(metric) is not None
            ]
            by_t: dict[tuple, list[float]] = {}
            for r in mine:
                if r["kind"] == "dm" and r.get("prediction") != "x0":
                    by_t.setdefault(tuple(r["t"]), []).append(r["metrics"][metric])
            for role, loss in GAN_LOSS.items():
                gan = [r for r in mine if r["kind"] == "gan" and r["role"] == role]
                kept = [r["metrics"][metric] for r in gan if r["id"] not in collapsed]
                head = (
                    f"- {family}: DM {analysis} smoother than GAN's {loss} by {metric} "
                    f"({'lower' if lower else 'higher'} is smoother): "
                )
                if not by_t or not kept:
                    out.append(head + NA)
                    continue
                g = sum(kept) / len(kept)
                means = {t: sum(v) / len(v) for t, v in sorted(by_t.items())}
                fails = [t for t, m in means.items() if not (m < g if lower else m > g)]
                if not fails:
                    word = HOLDS
                elif len(fails) == len(means):
                    word = f"**{FAILS} on the zoo**"
                else:
                    word = f"**holds at {len(means) - len(fails)} of {len(means)} DM timesteps**, not at t = " + (
                        ", ".join(_t_text(t) for t in fails)
                    )
                dms = ", ".join(f"{_t_text(t)}: {m:.3g}" for t, m in means.items())
                n_dm = sorted({len(v) for v in by_t.values()})
                gone = sorted({r["id"] for r in gan if r["id"] in collapsed})
                note = f"; excluded as collapsed: {', '.join(gone)}" if gone else ""
                out.append(
                    head + f"{word} (GAN {g:.3g}, n = {len(kept)}; DM at t = {dms}, n = "
                    f"{'/'.join(map(str, n_dm))}){note}"
                )
    return out
