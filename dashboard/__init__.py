"""The Streamlit side of dstab: sidebar, URL state, background jobs, downloads.

Pages in `pages/` stay thin (widgets -> a dstab spec -> `compute.cached` ->
a `dstab.plots` figure) by leaning on this package. `dstab/` never imports it;
`userfiles` and `server` import no streamlit at module level, so that they can
be tested and reused without a server (bench/gpu.sh uses `server` on a GPU machine).
"""
