"""Plotly figures and the rows of numbers behind them. No streamlit here.

DM and GAN share every axis they are compared on; colours are fixed by kind
(DM blue, GAN orange) across pages so a glance tells which is which.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from dstab.analysis.consistency import ConsistencyResult, grid

KIND_COLOURS = {"dm": "#1f77b4", "gan": "#ff7f0e", "x0": "#2ca02c"}


def points(pts: torch.Tensor, title: str, reference: torch.Tensor | None = None, extent: float = 3.5) -> go.Figure:
    fig = go.Figure()
    if reference is not None:
        ref = reference.detach().cpu().numpy()
        fig.add_scatter(x=ref[:, 0], y=ref[:, 1], mode="markers", name="data", marker={"size": 3, "color": "#cccccc"})
    p = pts.detach().cpu().numpy()
    fig.add_scatter(
        x=p[:, 0], y=p[:, 1], mode="markers", name="points", marker={"size": 4, "color": KIND_COLOURS["dm"]}
    )
    fig.update_layout(title=title, height=420, xaxis_range=[-extent, extent], yaxis_range=[-extent, extent])
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def schedule_rows(diffusion) -> list[dict]:
    abar = diffusion.alphas_cumprod.numpy().astype(float)
    return [
        {"t": t, "sqrt_abar": a**0.5, "sqrt_one_minus_abar": (1 - a) ** 0.5, "snr": a / (1 - a)}
        for t, a in enumerate(abar)
    ]


def schedule(diffusion, t: int) -> go.Figure:
    abar = diffusion.alphas_cumprod.numpy()
    ts = np.arange(len(abar))
    fig = go.Figure()
    fig.add_scatter(x=ts, y=np.sqrt(abar), name="signal sqrt(abar_t)")
    fig.add_scatter(x=ts, y=np.sqrt(1 - abar), name="noise sqrt(1 - abar_t)")
    fig.add_vline(x=t, line_dash="dash", line_color="grey")
    fig.update_layout(title="Forward process weights", xaxis_title="t", yaxis_title="weight", height=360)
    return fig


def trajectory_rows(ts: np.ndarray, x0_hat: torch.Tensor) -> list[dict]:
    """Per sampler step: RMS distance of the x0 estimate to the final sample, and its change from the step before."""
    flat = x0_hat.reshape(x0_hat.shape[0], x0_hat.shape[1], -1).double()
    to_final = ((flat - flat[-1]) ** 2).mean(dim=2).sqrt().mean(dim=1)
    step_change = torch.cat(
        [torch.zeros(1, dtype=flat.dtype), ((flat[1:] - flat[:-1]) ** 2).mean(dim=2).sqrt().mean(dim=1)]
    )
    return [
        {"step": i, "t": int(t), "rms_to_final": float(d), "rms_change": float(c)}
        for i, (t, d, c) in enumerate(zip(ts, to_final, step_change))
    ]


def trajectory_distance(rows: list[dict], t_mark: int) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=[r["t"] for r in rows], y=[r["rms_to_final"] for r in rows], name="RMS(x0 estimate - final)")
    fig.add_scatter(x=[r["t"] for r in rows], y=[r["rms_change"] for r in rows], name="RMS change per step")
    fig.add_vline(x=t_mark, line_dash="dash", line_color="grey")
    fig.update_layout(
        title="How the x0 estimate settles",
        xaxis_title="t (sampling runs right to left)",
        height=360,
        xaxis_autorange="reversed",
    )
    return fig


def probe_text(meta: dict) -> str:
    probe = meta.get("probe", {})
    if probe.get("kind") == "dm":
        return f"DM, t = {', '.join(str(t) for t in probe.get('timesteps', []))}"
    return {"gan-g": "GAN, G loss", "gan-d": "GAN, D loss"}.get(probe.get("kind"), probe.get("kind", ""))


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


def spectral_density(results: dict, decades: float = 8.0) -> go.Figure:
    """Overlaid SLQ densities on a log scale showing `decades` below the highest peak (the Gaussian
    tails of the broadened density fall to 1e-80 and would squash the picture otherwise);
    `results` maps kind -> (label, cache.Result)."""
    fig = go.Figure()
    top = max(float(np.max(res.arrays["density"])) for _, res in results.values())
    for kind, (label, res) in results.items():
        fig.add_scatter(
            x=res.arrays["density_grid"], y=res.arrays["density"], name=f"{label} ({probe_text(res.params)})",
            line={"color": KIND_COLOURS[kind]},
        )  # fmt: skip
    fig.update_layout(
        title="Eigenvalue spectral density (SLQ)", xaxis_title="eigenvalue", yaxis_title="density", yaxis_type="log",
        yaxis_range=[np.log10(top) - decades, np.log10(top) + 0.3], height=420,
    )  # fmt: skip
    return fig


def top_eigenvalues(results: dict) -> go.Figure:
    fig = go.Figure()
    for kind, (label, res) in results.items():
        vals = res.arrays["top_eigenvalues"]
        fig.add_bar(
            x=[f"lambda_{i + 1}" for i in range(len(vals))], y=vals, name=label, marker_color=KIND_COLOURS[kind]
        )
    fig.update_layout(title="Top eigenvalues (Lanczos)", barmode="group", yaxis_title="eigenvalue", height=420)
    return fig


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
        "lambda_min": meta.get("lambda_min"),
        "trace": meta.get("trace"),
        "mean (tr/n)": meta.get("mean"),
        "sigma^2 (spectrum variance)": meta.get("sigma2"),
        "Ritz-value variance": meta.get("ritz_variance"),
    }


def consistency_grid(samples: np.ndarray, columns: int = 16):
    """N rows (models) x up to `columns` samples as one PIL image; points: one scatter panel per model."""
    s = torch.from_numpy(samples)
    return grid(ConsistencyResult([], s, torch.empty(0), 0.0), scale=6, columns=columns)


def psnr_heatmap(psnr: np.ndarray, names: list[str], kind: str) -> go.Figure:
    """The (N, N) mean-over-samples PSNR matrix; the cap on the diagonal is hidden so the colours show pairs."""
    mean = psnr.mean(axis=2)
    shown = mean.copy()
    np.fill_diagonal(shown, np.nan)
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=names,
            y=names,
            colorscale="Viridis",
            zmin=0,
            zmax=40,
            colorbar={"title": "PSNR dB"},
            text=np.round(mean, 2),
            texttemplate="%{text}",
        )  # fmt: skip
    )
    fig.update_layout(title=f"{kind.upper()} PSNR matrix (mean over samples)", height=380, yaxis_autorange="reversed")
    return fig


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


def interpolation_curves(results: dict) -> go.Figure:
    """Each curve relative to its own final checkpoint's loss L(1): (L(alpha) - L(1)) / |L(1)|."""
    fig = go.Figure()
    for kind, (label, res) in results.items():
        a, loss = res.arrays["alphas"], res.arrays["loss"]
        ref = float(loss[a == 1][0])
        fig.add_scatter(x=a, y=(loss - ref) / abs(ref) if ref else loss - ref, name=f"{label} ({probe_text_a(res)})",
                        mode="lines+markers", line={"color": KIND_COLOURS[kind]})  # fmt: skip
    for x, text in ((0, "early"), (1, "final")):
        fig.add_vline(x=x, line_dash="dot", line_color="grey", annotation_text=text)
    fig.update_layout(title="Loss from the early (alpha = 0) to the final (alpha = 1) checkpoint", height=460,
                      xaxis_title="alpha", yaxis_title="(L - L_final) / |L_final|")  # fmt: skip
    return fig


def probe_text_a(res) -> str:
    return probe_text({"probe": res.meta.get("probe_a", {})})


def roughness_row(label: str, kind: str, meta: dict) -> dict:
    m = meta.get("metrics", {})
    return {
        "model": label,
        "kind": kind.upper(),
        "probe": probe_text({"probe": meta.get("probe_a", {})}),
        "loss early (alpha 0)": meta.get("loss_b"),
        "loss final (alpha 1)": meta.get("loss_a"),
        "total variation": m.get("total_variation"),
        "monotone envelope": m.get("monotone_envelope"),
        "roughness": m.get("roughness"),
        "barrier": m.get("barrier"),
    }
