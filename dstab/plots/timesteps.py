"""Every preset's distribution over t on one axis (training.timestep_field): the plotly figure (and its PNG).

Each preset keeps one colour (its place in the list); its legend entry carries its mass below T/2 and
its mean t. In the "effective" view a weighting (P(t) times its loss weight) is dashed: it draws t
uniformly and moves the signal by weight instead.
"""

from __future__ import annotations

from pathlib import Path

from . import figpng
from .runs import RUN_COLOURS

TITLES = {
    "effective": "Where each preset puts its training signal: P(t) x loss weight, normalised",
    "draws": "Where each preset draws its timesteps: P(t)",
}


def legend(row: dict, view: str, T: int) -> str:
    return f"{row['preset']}: {100 * row[f'{view}_below_half']:.1f}% below T/2, mean t {row[f'{view}_mean_t']:.1f}"


def figure(result: dict, view: str = "effective", log_y: bool = False):
    import plotly.graph_objects as go

    T, fig = result["T"], go.Figure()
    for i, row in enumerate(result["rows"]):
        dashed = view == "effective" and row["kind"] == "weighting"
        fig.add_scatter(
            x=result["t"],
            y=row[view],
            name=legend(row, view, T),
            line={"color": RUN_COLOURS[i % len(RUN_COLOURS)], "dash": "dash" if dashed else "solid"},
            hovertemplate=f"{row['preset']}<br>t %{{x}}<br>P %{{y:.3g}}<extra></extra>",
        )
    fig.add_vline(x=T / 2, line_dash="dot", line_color="grey", annotation_text="T/2")
    s = result["schedule"]
    fig.update_layout(
        # two lines: on one, the title ran past a 1800-pixel PNG's edge
        title=f"{TITLES[view]}<br>{s['schedule']} schedule, T = {T}, {s['prediction']}-prediction",
        xaxis_title="t",
        yaxis_title="probability",
        height=520,
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "xanchor": "left", "x": 0},
        margin={"t": 80, "b": 10},
    )
    fig.update_yaxes(type="log") if log_y else fig.update_yaxes(rangemode="tozero")
    return fig


def save_png(result: dict, path: str | Path, view: str = "effective", log_y: bool = False) -> Path:
    """The page's figure as PNG (figpng: kaleido, else its PIL drawing of the same figure)."""
    return figpng.write_png(figure(result, view, log_y), path)
