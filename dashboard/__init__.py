"""The Streamlit side of dstab: sidebar, URL state, background jobs, figures.

Pages in `pages/` stay thin (widgets -> dstab call -> figure) by leaning on
this package. `dstab/` never imports it; `userfiles`, `figures`, `shipped`
and `server` import no streamlit at module level, so that they can be tested
and reused without a server (bench/gpu.sh uses `server` on a GPU machine).
"""
