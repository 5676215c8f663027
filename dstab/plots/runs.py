"""Training runs: loss and FD / FID curves, loss per quartile of t, the CLTS pmf and the MDLRC schedules."""

from __future__ import annotations

import numpy as np

QUARTILE_DASH = ["solid", "dot", "dash", "dashdot"]


# one colour per run, the same on every chart: Plotly's Dark24, distinct enough for a sweep's many runs
RUN_COLOURS = [
    "#2E91E5",
    "#E15F99",
    "#1CA71C",
    "#FB0D0D",
    "#DA16FF",
    "#222A2A",
    "#B68100",
    "#750D86",
    "#EB663B",
    "#511CFB",
    "#00A08B",
    "#FB00D1",
    "#FC0080",
    "#B2828D",
    "#6C7C32",
    "#778AAE",
    "#862A16",
    "#A777F1",
    "#620042",
    "#1616A7",
    "#DA60CA",
    "#6C4516",
    "#0D2A63",
    "#AF0038",
]


def run_colours(names: list[str]) -> dict[str, str]:
    """A colour per run name, by its place among all runs (sorted): the same run keeps its colour on
    every chart and when others are shown or hidden."""
    return {n: RUN_COLOURS[i % len(RUN_COLOURS)] for i, n in enumerate(sorted(names))}


def _layout(fig, title: str, x_title: str, y_title: str, log_x: bool, height: int = 400) -> None:
    # short legends below the plot, so that they never squeeze it however many runs are shown
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=height,
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0},
        margin={"b": 10, "t": 40},
    )
    if log_x:
        fig.update_xaxes(type="log", dtick=1)  # one label per decade: no overlapping tick labels


def _hover(s: dict):
    """Hover: run, value, step and wall time since the run's first logged point."""
    wall = s.get("wall")
    if wall is None or len(wall) == 0:
        return {"hovertemplate": f"{s['label']}<br>step %{{x}}<br>value %{{y:.5g}}<extra></extra>"}
    since = np.asarray(wall, dtype=float) - float(wall[0])
    return {
        "customdata": np.stack([np.asarray(s.get("step", s["x"])), since], axis=1),
        "hovertemplate": f"{s['label']}<br>value %{{y:.5g}}<br>step %{{customdata[0]}}<br>"
        "wall %{customdata[1]:.0f} s<extra></extra>",
    }


def curves(
    series: list[dict], title: str, y_title: str, x_title: str, log_x: bool, colours: dict[str, str] | None = None
):
    """Overlaid curves; each series is {"label", "x", "y"}, optionally "step" and "wall" (for the hover)
    and "smooth" (`runs.curves.smoothed`): the raw curve then stays faintly visible beneath it so
    the smoothing can be judged. `colours`: label -> colour (`run_colours`)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colours = colours or run_colours([s["label"] for s in series])
    for s in series:
        line = {"color": colours.get(s["label"])}
        hover = _hover(s)
        if s.get("smooth") is not None:
            fig.add_scatter(
                x=s["x"],
                y=s["y"],
                name=s["label"],
                line=line,
                opacity=0.25,
                showlegend=False,
                legendgroup=s["label"],
                **hover,
            )
            fig.add_scatter(x=s["x"], y=s["smooth"], name=s["label"], line=line, legendgroup=s["label"], **hover)
        else:
            fig.add_scatter(
                x=s["x"],
                y=s["y"],
                name=s["label"],
                line=line,
                legendgroup=s["label"],
                mode="lines+markers" if len(s["y"]) < 30 else "lines",
                **hover,
            )
    _layout(fig, title, x_title, y_title, log_x)
    return fig


def quartile_curves(series: list[dict], x_title: str, log_x: bool, colours: dict[str, str] | None = None):
    """Loss per quartile of t (q0: smallest t); each series is {"label", "quartile", "x", "y"} (and "smooth",
    "step", "wall"). A run keeps its colour; the quartile is the dash style, explained once in the legend."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colours = colours or run_colours([s["label"] for s in series])
    for s in series:
        y = s["smooth"] if s.get("smooth") is not None else s["y"]
        fig.add_scatter(
            x=s["x"],
            y=y,
            name=s["label"],
            legendgroup=s["label"],
            showlegend=s["quartile"] == 0,
            line={"dash": QUARTILE_DASH[s["quartile"]], "color": colours.get(s["label"])},
            **_hover({**s, "label": f"{s['label']} q{s['quartile']}"}),
        )
    for q, dash in enumerate(QUARTILE_DASH):  # the dash legend: one grey line per quartile
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="lines",
            name=f"q{q}",
            line={"dash": dash, "color": "grey"},
            legendgroup="quartiles",
        )
    _layout(fig, "Loss per quartile of t (q0: t < T/4, the hardest to denoise precisely)", x_title, "loss", log_x)
    # every tick of a log axis spelled out: plotly's short minor labels read "5, 2, 0.1, 5, 2"
    fig.update_yaxes(type="log", minorloglabels="complete")
    return fig


def pmf(t: np.ndarray, pmfs: dict[int, np.ndarray], T: int):
    import plotly.graph_objects as go

    fig = go.Figure()
    for it, p in sorted(pmfs.items()):
        fig.add_scatter(x=t, y=p, name=f"iteration {it}")
    fig.add_hline(y=1.0 / T, line_dash="dot", line_color="grey", annotation_text="uniform 1/T")
    fig.update_layout(
        title="Timestep distribution P(t) (CLTS, Eq. 7-8)", xaxis_title="t", yaxis_title="P(t)", height=340
    )
    fig.update_yaxes(rangemode="tozero")  # a flat (uniform) P(t) would otherwise get an axis from -0.5
    return fig


def schedules(iterations: np.ndarray, beta1: np.ndarray, lr: np.ndarray):
    """beta1 above, the learning rate below, on one iteration axis: two panels, since on twin axes a
    constant lr sat on top of its own axis and hid beta1's line."""
    import plotly.graph_objects as go

    from .subplots import grid

    layout, ((x1, y1), (x2, y2)) = grid(2, 1, 0.0, 0.18, ["Adam beta1 (MD, Eq. 9)", "learning rate (LRC, Eq. 10)"])
    fig = go.Figure(layout=layout)
    fig.add_scatter(x=iterations, y=beta1, name="beta1", xaxis=x1, yaxis=y1, showlegend=False)
    fig.add_scatter(x=iterations, y=lr, name="learning rate", xaxis=x2, yaxis=y2, showlegend=False)
    fig.update_layout(
        title="beta1 and learning rate over the run",
        height=380,
        yaxis={"title": "beta1", "range": [0, 1.05]},
        yaxis2={"title": "lr", "exponentformat": "e", "range": [0, 1.1 * float(np.max(lr)) or 1.0]},
        xaxis={"matches": "x2", "showticklabels": False},
        xaxis2={"title": "iteration"},
    )
    return fig
