"""Process-wide settings of the dashboard server, applied once when the first page imports us.

- Torch CPU threads: DSTAB_THREADS, default half the cores (at most 4). The
  server runs a page script and a background job at once, often beside other
  work; measured on a loaded 2-core machine (2026-11-26), a probe loss took
  3.6 s with 2 threads against 0.056 s with 1 (OpenMP threads spinning for
  cores they do not get).
- Streamlit's multipage "v1" mode: with a `pages/` folder, the first script
  run of a server process runs a visited page file directly, without app.py,
  and keeps doing so until app.py's st.navigation runs once. We switch it off
  for every later run; `sidebar.current()` covers the one run it still affects.
"""

from __future__ import annotations

import os

import torch

_configured = False


def threads() -> int:
    return int(os.environ.get("DSTAB_THREADS", min(4, max(1, (os.cpu_count() or 2) // 2))))


def configure() -> None:
    global _configured
    if _configured:
        return
    torch.set_num_threads(threads())
    try:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
    except ImportError:  # a Streamlit without the v1 mode has nothing to switch off
        pass
    _configured = True
