"""The Streamlit side of dstab: sidebar, URL state, background jobs, figures.

Pages in `pages/` stay thin (widgets -> dstab call -> figure) by leaning on
this package. `dstab/` never imports it; only `userfiles` and `figures` are
free of streamlit so that they can be tested and reused without a server.
"""
