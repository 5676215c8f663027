"""dstab dashboard entry point: `streamlit run app.py`."""

import streamlit as st

from dashboard import guard, server, sidebar, urlstate

pages = [
    st.Page("pages/home.py", title="Home", default=True),
    st.Page("pages/tour.py", title="Guided tour"),
    st.Page("pages/landscape.py", title="Loss landscape"),
    st.Page("pages/interpolation.py", title="Interpolation"),
    st.Page("pages/hessian.py", title="Hessian"),
    st.Page("pages/consistency.py", title="Consistency"),
    st.Page("pages/diffusion_process.py", title="Diffusion process"),
    st.Page("pages/training.py", title="Training"),
]
# PyTorch loads in the background once the first pages are drawn, never beside a script run
with server.script_run():
    st.set_page_config(page_title="dstab", layout="wide")
    # the sidebar is drawn before st.navigation so that its widgets belong to this entry script and keep
    # their state when the user moves between pages
    selection = None
    with guard.shown_in_place("The sidebar", where=st.sidebar):
        selection = sidebar.render()
    st.session_state["dstab_selection"] = selection = selection or sidebar.empty_selection()
    page = st.navigation(pages)
    urlstate.on_page(page.url_path)  # each page's widgets and URL values are its own
    sidebar.publish(selection)
    with guard.shown_in_place(f"The {page.title} page"):
        page.run()
    urlstate.note_unread()  # a link value no control read is named, not dropped
