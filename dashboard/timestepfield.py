"""The Training page's "where each preset puts its timesteps" section: `dstab timesteps` on the page.

Every preset's distribution over t (dstab.training.timestep_field) on one axis, for the presets'
own schedule or the sidebar's DM's, with each one's mass below T/2, mean t and formula in a table;
the sentence under the chart is written from those numbers.
"""

from __future__ import annotations

import json

import streamlit as st

from dstab.errors import DstabError
from dstab.experiments import headtohead
from dstab.experiments.protocol import REPO
from dstab.plots import timesteps as figures
from dstab.training import config as train_config
from dstab.training import timestep_field

from . import downloads, sidebar, urlstate

PRESETS_SCHEDULE = "the presets' schedule"


@st.cache_data(max_entries=16, show_spinner=False)
def cached_field(diffusion_json: str) -> dict:
    """`timestep_field.field` of a diffusion config (as sorted JSON), kept for the server's sessions."""
    return timestep_field.field(json.loads(diffusion_json))


def schedule_choice(dm) -> dict:
    """The diffusion config the picture is drawn on: the presets' own, or the sidebar DM's."""
    base = train_config.BASE["diffusion"]
    own = f"{PRESETS_SCHEDULE} ({base['schedule']}, T = {base['T']}, {base['prediction']})"
    options = [own] + ([f"the sidebar's DM: {dm.label}"] if dm is not None else [])
    picked = urlstate.radio("Schedule", options, "tf_schedule", own, horizontal=True)
    if picked == own:
        return dict(base)
    return sidebar.load_bundle(dm.path).diffusion.to_config()


def sentence(result: dict, view: str) -> str:
    """CLTS's mass below T/2 beside the field's range, from the rows shown."""
    rows = {r["preset"]: r[f"{view}_below_half"] for r in result["rows"]}
    others = {k: v for k, v in rows.items() if k not in ("baseline", "clts")}
    if "clts" not in rows or not others:
        return ""
    lo, hi = min(others, key=others.get), max(others, key=others.get)
    return (
        f"CLTS puts {100 * rows['clts']:.1f}% of its {view} mass below T/2, "
        f"{100 * (rows['clts'] - 0.5):+.1f} points from uniform; the other presets range from "
        f"{100 * others[lo]:.1f}% ({lo}) to {100 * others[hi]:.1f}% ({hi})."
    )


def section(dm) -> None:
    st.subheader("Where each preset puts its timesteps")
    st.caption(
        "Each preset's sampler as the trainer builds it, at the end of CLTS's curriculum. 'effective': P(t) "
        "times the loss weight, normalised (a weighting's P(t)-equivalent; dashed); 'draws': the P(t) t is "
        "drawn from. Continuous rules are integrated over each t's cell in log-SNR. Not drawn: "
        "loss-second-moment (its P(t) follows the run's losses) and immiscible (uniform t, paired noise)."
    )
    c1, c2 = st.columns([3, 1])
    with c1:
        diffusion = schedule_choice(dm)
    view = urlstate.radio("View", list(timestep_field.VIEWS), "tf_view", "effective", where=c2, horizontal=True)
    log_y = urlstate.toggle("Log y", "tf_logy", False, where=c2)
    try:
        result = cached_field(json.dumps(diffusion, sort_keys=True))
    except DstabError as exc:
        st.error(f"error: {exc}")
        return
    fig = figures.figure(result, view, log_y)
    st.plotly_chart(fig, key="timestep-field")
    downloads.figure(fig, "timestep-field")
    st.markdown(sentence(result, view))
    rows = timestep_field.summary_rows(result)
    st.dataframe(rows, hide_index=True, key="timestep-field-table")
    downloads.numbers(timestep_field.curve_rows(result, view), f"timestep-field-{view}", extra={"presets": rows})
    head_to_head()


def head_to_head(path=REPO / headtohead.SAVED) -> None:
    """How these rules trained against CLTS on digits: the committed head-to-head report's headline,
    the same lines as RESULTS.md's section (nothing when the report has not been generated)."""
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
        lines = headtohead.page_lines(saved)
    except (OSError, ValueError, KeyError) as exc:
        st.error(f"error: the head-to-head report {path} cannot be read ({exc!r}); regenerate it (README: "
                 "`reproduce speedup --head-to-head --report-only`)")  # fmt: skip
        return
    st.markdown(f"**{headtohead.TITLE} on digits** (group `{saved['group']}`, {saved['metric_label']})")
    st.markdown("\n".join(lines))
    st.caption(f"From {headtohead.SAVED}, written by `{saved['head_to_head']['command']} --report-only`.")
