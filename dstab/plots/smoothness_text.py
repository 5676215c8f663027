"""The sentence under two loss surfaces: which model each smoothness number picks, and why they disagree.

Every clause is generated from the numbers it explains (`smoother_sentence`), never a fixed explanation:
- each number's pick: convex fraction (higher is smoother), curvature roughness (lower), relative rise
  (lower; ranked only when both rises are above 0: a loss no higher on the ring at r than at the centre
  sits at no minimum of that loss, as a GAN's G loss at an equilibrium need not);
- when they disagree, the numbers that explain it: the relative rise divides by the centre loss, so the
  absolute rise (relative rise x |centre loss|) is compared too, and the scale of the loss is blamed only
  when the absolute rise picks the other model; two shape numbers that disagree are each restated.
"""

from __future__ import annotations

import math

CONVEX, ROUGH, RISE = "convex fraction", "curvature roughness", "relative rise"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _finite(*xs) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def picks(dm: tuple[str, dict], gan: tuple[str, dict]) -> dict[str, str | None]:
    """{number: label of the smoother model, or None when it ranks nothing} for the numbers both have."""
    (dl, d), (gl, g) = dm, gan
    dmet, gmet = d.get("metrics", {}), g.get("metrics", {})
    out = {}
    for name, key, higher_is_smoother in ((CONVEX, "convex_fraction", True), (ROUGH, "curvature_roughness", False)):
        a, b = dmet.get(key), gmet.get(key)
        if _finite(a, b):
            out[name] = None if a == b else (dl if (a > b) == higher_is_smoother else gl)
    a, b = dmet.get("relative_rise"), gmet.get("relative_rise")
    if _finite(a, b):
        out[RISE] = None if a == b or min(a, b) <= 0 else (dl if a < b else gl)
    return out


def _values(meta: dict) -> dict[str, float]:
    m = meta.get("metrics", {})
    return {CONVEX: m.get("convex_fraction"), ROUGH: m.get("curvature_roughness"), RISE: m.get("relative_rise")}


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _why_rise_differs(dm: tuple[str, dict], gan: tuple[str, dict], rise_pick: str, against: list[str]) -> str:
    """The relative rise against the shape numbers: is it the centre loss (absolute rises rank the other
    way) or does the surface climb more while being more regular (absolute rises rank the same way)?"""
    (dl, d), (gl, g) = dm, gan
    cd, cg = d.get("centre_loss"), g.get("centre_loss")
    rd, rg = _values(d)[RISE], _values(g)[RISE]
    if not _finite(cd, cg):
        return ""
    ad, ag = rd * abs(cd), rg * abs(cg)
    absolute = dl if ad < ag else gl
    other = gl if rise_pick == dl else dl
    shapes = f"{_listed(against)} find{'s' * (len(against) == 1)} {other}'s surface the more regular one"
    radius = d.get("radius")
    at = f" by r = {radius:g}" if isinstance(radius, int | float) else ""
    if absolute != rise_pick:
        return (
            f" The relative rise divides by the centre loss, {_fmt(cd)} for the DM against {_fmt(cg)} for the "
            f"GAN: in absolute terms {absolute} rises less{at} ({_fmt(ad)} vs {_fmt(ag)}), so the relative rise "
            "picks the other model because of the size of the loss, not its shape."
        )
    return (
        f" The absolute rise picks {rise_pick} too ({_fmt(ad)} vs {_fmt(ag)}{at}; centre losses {_fmt(cd)} vs "
        f"{_fmt(cg)}), so the centre loss does not explain it: {rise_pick}'s loss climbs less on the ring, while "
        f"{shapes}."
    )


def _why_shapes_differ(dm: tuple[str, dict], gan: tuple[str, dict], chosen: dict) -> str:
    vd, vg = _values(dm[1]), _values(gan[1])
    return (
        f" The two shape numbers disagree: {chosen[CONVEX]} has more of its grid curving upward (convex fraction "
        f"{_fmt(vd[CONVEX])} vs {_fmt(vg[CONVEX])}), {chosen[ROUGH]} the more even curvature (curvature roughness "
        f"{_fmt(vd[ROUGH])} vs {_fmt(vg[ROUGH])})."
    )


def smoother_sentence(dm: tuple[str, dict], gan: tuple[str, dict]) -> str:
    """Which of the two surfaces is the smoother, by each number, and what explains a disagreement.
    `dm`, `gan`: (label, surface meta with `metrics`, `centre_loss`, `radius`)."""
    (dl, d), (gl, g) = dm, gan
    chosen = picks(dm, gan)
    if not chosen:
        return "The two surfaces' smoothness numbers are not available."
    vd, vg = _values(d), _values(g)
    parts = [f"{n} {_fmt(vd[n])} vs {_fmt(vg[n])}: {chosen[n] or 'no ranking'}" for n in chosen]
    text = f"Smoother surface by each number (DM {dl} vs GAN {gl}): " + "; ".join(parts) + "."
    ranked = {n: w for n, w in chosen.items() if w is not None}
    winners = set(ranked.values())
    if len(winners) == 1:
        (w,) = winners
        text += (
            f" Only the {next(iter(ranked))} ranks them: {w}."
            if len(ranked) == 1
            else (f" {'All three' if len(ranked) == 3 else 'Both'} ranking numbers pick {w}.")
        )
    elif len(winners) == 2:
        by = {w: [n for n, x in ranked.items() if x == w] for w in (dl, gl)}
        text += (
            " The numbers disagree: "
            + ", ".join(f"{_listed(names)} pick{'s' * (len(names) == 1)} {w}" for w, names in by.items())
            + "."
        )
        shapes = {n: w for n, w in ranked.items() if n != RISE}
        against = [n for n, w in shapes.items() if RISE in ranked and w != ranked[RISE]]
        if against:
            text += _why_rise_differs(dm, gan, ranked[RISE], against)
        if len(set(shapes.values())) == 2:
            text += _why_shapes_differ(dm, gan, shapes)
    if RISE in chosen and chosen[RISE] is None and min(vd[RISE], vg[RISE]) <= 0:
        flat = [label for label, x in ((dl, vd[RISE]), (gl, vg[RISE])) if x <= 0]
        text += (
            f" {' and '.join(flat)}'s loss is on average no higher at r than at the centre (relative rise "
            f"{' and '.join(_fmt(x) for x in (vd[RISE], vg[RISE]) if x <= 0)}): its weights sit at no minimum of this "
            "loss, so the rise ranks nothing; the shape numbers (convex fraction, curvature roughness) still compare."
        )
    return text
