"""Guided tour: "Why diffusion models train stably, in 8 steps", one idea per screen (dashboard.tour).

Each step shows the paper's claim, the zoo's figure for it from the shipped results, the verdict with
its numbers, and a link that opens the full page in a new tab with the exact state shown. The Left and
Right arrow keys (or the buttons) move between steps; the step is in the URL (`/tour?step=4`).
"""

import streamlit as st

from dashboard import figures, sidebar, tour, urlstate

sel = sidebar.current()
st.markdown("#### Guided tour: why diffusion models train stably, and does it make them faster?")
st.caption(
    f"On this zoo's {sel.family} models (the sidebar picks the dataset, and the DM and GAN of steps 4-6). "
    "Keys: Left / Right arrow for the previous / next step."
)
STEPS = tour.STEPS
count = len(STEPS)
KEY = urlstate.key("step")


def move(by: int) -> None:
    st.session_state[KEY] = min(count, max(1, st.session_state.get(KEY, 1) + by))


back, where, ahead = st.columns([1.3, 6, 1.3], vertical_alignment="center")
back.button("Back", on_click=move, args=(-1,), shortcut="Left", use_container_width=True, key="tour-back")
ahead.button(
    "Next", on_click=move, args=(1,), shortcut="Right", type="primary", use_container_width=True, key="tour-next"
)
k = urlstate.select_slider("Step", list(range(1, count + 1)), "step", 1, where=where, label_visibility="collapsed")

step = STEPS[k - 1](sel)
st.header(step.title)
st.markdown(f"**The claim.** {step.claim}")
if step.figure is not None:
    figures.show(step.figure, f"tour-step-{k}")
else:
    st.info(step.missing)
box = st.container(border=True)
box.markdown("**On this zoo**")
box.markdown("\n\n".join(step.verdict) or "No stored result yet.")
st.link_button("Open this in the full page", step.link(sel).lstrip("/"), icon=":material/open_in_new:")
