"""Figures of a `compare` result (every number comes from dstab.experiments.compare): per
variant the mean over seeds with its bootstrap 90% band and the raw per-seed curves faint, against
iterations, images seen or wall-clock seconds: one plotly figure for the page, the HTML and (figpng) the PNG."""

from __future__ import annotations

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75)]


def _x(v: dict, axis: str) -> list:
    return v["steps"] if axis == "iterations" else v[axis]


def _rgba(c, a: float) -> str:
    return f"rgba({c[0]},{c[1]},{c[2]},{a})"


def curves_figure(result: dict, axis: str = "iterations", log_y: bool = True):
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (lab, v) in enumerate(result["variants"].items()):
        c, x = PALETTE[i % len(PALETTE)], _x(v, axis)
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=v["high"] + v["low"][::-1],
                fill="toself",
                line={"width": 0},
                fillcolor=_rgba(c, 0.18),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=lab,
            )
        )
        for seed, ys in v["per_seed"].items():
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=ys,
                    mode="lines",
                    line={"color": _rgba(c, 0.3), "width": 1},
                    name=f"{lab} seed {seed}",
                    showlegend=False,
                    legendgroup=lab,
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=v["mean"],
                mode="lines",
                line={"color": _rgba(c, 1), "width": 2.5},
                name=f"{lab} (mean of {len(v['seeds'])})",
                legendgroup=lab,
            )
        )
    fig.add_hline(y=result["plateau"], line_dash="dot", annotation_text=f"{result['reference']} plateau")
    fig.update_layout(
        title=f"{result['group']}: {result['metric_label']}",
        xaxis_title=result["axes"][axis],
        yaxis_title=result["metric"].split("@")[0],
        yaxis_type="log" if log_y and _positive(result) else None,
    )
    return fig


def _positive(result: dict) -> bool:
    return all(min(v["low"]) > 0 for v in result["variants"].values())
