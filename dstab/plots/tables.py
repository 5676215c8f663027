"""The rows of numbers shown beside the figures (and offered as CSV / JSON): labels, no computation."""

from __future__ import annotations

import numpy as np

from ..analysis.hessian_settings import lambda_min_text, verification_text


def probe_text(params: dict) -> str:
    """'DM, t = 500' / 'GAN, G loss' from a result's parameters or metadata (its "probe" entry)."""
    probe = params.get("probe", {})
    if probe.get("kind") == "dm":
        return f"DM, t = {', '.join(str(t) for t in probe.get('timesteps', []))}"
    kind = probe.get("kind")
    if kind == "gan":
        kind = f"gan-{probe.get('role', 'g')}"
    return {"gan-g": "GAN, G loss", "gan-d": "GAN, D loss"}.get(kind, kind or "")


def smoothness_rows(label: str, meta: dict) -> list[dict]:
    m = meta.get("metrics", {})
    return [
        {
            "model": label,
            "probe": probe_text(meta),
            "centre loss": meta.get("centre_loss"),
            f"relative rise at r = {meta.get('radius')}": m.get("relative_rise"),
            "curvature roughness": m.get("curvature_roughness"),
            "convex fraction": m.get("convex_fraction"),
            "cos(d1, d2) before/after": f"{meta.get('cosine_before', float('nan')):.3f} / "
            f"{meta.get('cosine_after', float('nan')):.1e}",
        }
    ]


def grid_rows(a: np.ndarray, b: np.ndarray, loss: np.ndarray) -> list[dict]:
    return [
        {"alpha": float(a[i]), "beta": float(b[j]), "loss": float(loss[i, j])}
        for i in range(len(a))
        for j in range(len(b))
    ]


def hessian_row(label: str, kind: str, res) -> dict:
    """One model's line of the Figure 4 table; the probe comes from the result's cache parameters (a
    Hessian's stored numbers do not repeat it)."""
    meta = res.meta
    return {
        "model": label,
        "kind": kind.upper(),
        "probe": probe_text(res.params),
        "parameters n": meta.get("n_params"),
        "lambda_1": meta.get("lambda_1"),
        "lambda_min": lambda_min_text(meta),
        "top-k converged": verification_text(meta),
        "trace": meta.get("trace"),
        "mean (tr/n)": meta.get("mean"),
        "sigma^2 (spectrum variance)": meta.get("sigma2"),
        "Ritz-value variance": meta.get("ritz_variance"),
    }


def consistency_row(kind: str, names: list[str], meta: dict) -> dict:
    s = meta.get("settings", {})
    return {
        "group": kind.upper(),
        "models N": len(names),
        "reference": names[0],
        "samples M": s.get("num"),
        "sampler": s.get("sampler"),
        "seed": s.get("seed"),
        "C(q) dB": meta.get("C_db"),
    }


def curve_probe_text(meta: dict) -> str:
    return probe_text({"probe": meta.get("probe_a", {})})


def roughness_row(label: str, kind: str, meta: dict) -> dict:
    m = meta.get("metrics", {})
    return {
        "model": label,
        "kind": kind.upper(),
        "probe": curve_probe_text(meta),
        "loss early (alpha 0)": meta.get("loss_b"),
        "loss final (alpha 1)": meta.get("loss_a"),
        "total variation": m.get("total_variation"),
        "monotone envelope": m.get("monotone_envelope"),
        "roughness": m.get("roughness"),
        "barrier": m.get("barrier"),
    }
