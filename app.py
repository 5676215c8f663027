"""dstab dashboard entry point: `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="dstab", layout="wide")
pages = [st.Page("pages/home.py", title="Home", default=True)]
st.navigation(pages).run()
