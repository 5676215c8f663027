"""Process-wide settings of the dashboard server.

- Torch CPU threads: `dstab.device.default_threads()` (DSTAB_THREADS, default
  half the cores, at most 4; the CLI uses the same rule). The server runs a
  page script and a background job at once, often beside other work. Set by
  `torch_ready()`, which whatever first needs PyTorch calls.
- PyTorch is imported lazily: the home page reads the manifest and the shipped
  results without it, so a cold server shows Home in well under the ~1.5 s
  `import torch` costs; after that first run `warm_up()` imports torch (and
  scikit-learn, for the digits data) in a background thread, so the first
  analysis page does not wait for them.
- Streamlit's multipage "v1" mode: with a `pages/` folder, the first script
  run of a server process runs a visited page file directly, without app.py,
  and keeps doing so until app.py's st.navigation runs once. `configure()`
  switches it off for every later run; `sidebar.current()` covers the one run
  it still affects.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import logging
import os
import re
import sys
import threading
from pathlib import Path

from dstab.device import default_threads, set_threads

_configured = False
_torch_lock = threading.Lock()
_torch_threads_set = False
_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None
_preloaded = threading.Event()
_active_runs = 0


def configure() -> None:
    global _configured
    if _configured:
        return
    _log_to_stderr()
    try:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
    except ImportError:  # a Streamlit without the v1 mode has nothing to switch off
        pass
    _configured = True


def _log_to_stderr() -> None:
    """The dashboard's own lines (each background job's end: finished, cancelled, failed) in the server's
    log at INFO, as Streamlit's own are; Python's default would keep only warnings."""
    logger = logging.getLogger("dstab.dashboard")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def torch_ready():
    """PyTorch, imported and set to this server's thread count (once per process)."""
    global _torch_threads_set
    import torch

    with _torch_lock:
        if not _torch_threads_set:
            set_threads()
            _torch_threads_set = True
    return torch


def torch_imported() -> bool:
    return "torch" in sys.modules and _torch_threads_set


WARM_UP_DELAY_S = 2.0


def preload() -> None:
    """What the analysis pages need and Home does not: PyTorch (with this server's threads) and
    scikit-learn, which holds the default dataset (digits). Third-party packages only: they import
    nothing of ours, so a page importing our modules meanwhile cannot meet them in a lock cycle; a
    page that needs one of them first simply waits for the same import."""
    torch_ready()
    import sklearn.datasets  # noqa: F401


def warm_up(delay_s: float | None = None) -> None:
    """`preload()` in a background thread `delay_s` from now, if no script runs then and no page has
    imported PyTorch yet (only Home was served: it has no fragments, whose reruns skip app.py).

    The delay lets the browser fetch what the page just drawn refers to (images, served by this process)
    first: an import holds the GIL for long stretches. No script runs while it imports: see `script_run`."""
    global _warm_thread
    with _warm_lock:
        if _preloaded.is_set() or (_warm_thread is not None and _warm_thread.is_alive()):
            return
        cancel = threading.Event()
        delay_s = WARM_UP_DELAY_S if delay_s is None else delay_s

        def run():
            if cancel.wait(delay_s):  # a script run began: it imports what it needs; its end re-arms us
                return
            with _warm_lock:
                if _active_runs:
                    return
                if "torch" in sys.modules:  # a page has loaded what it needs; its fragments may be running
                    _preloaded.set()
                    return
            preload()
            _preloaded.set()

        _warm_thread = threading.Thread(target=run, name="dstab-torch-warm-up", daemon=True)
        _warm_thread.cancel = cancel
        _warm_thread.start()


@contextlib.contextmanager
def script_run():
    """Wraps every script run (app.py). A module being imported is already in sys.modules, half
    initialised, and libraries probe sys.modules for optional packages (plotly looks for pandas, which
    scikit-learn imports), so scripts and the warm-up's imports never overlap: a run calls off a
    warm-up still waiting or waits for one importing, and the warm-up starts only when no run is
    left, after the first pages are drawn."""
    global _active_runs
    with _warm_lock:
        _active_runs += 1
        thread = _warm_thread
    if thread is not None and thread.is_alive():
        thread.cancel.set()
        thread.join()
    try:
        yield
    finally:
        with _warm_lock:
            _active_runs -= 1
            idle = _active_runs == 0
        if idle:
            warm_up()


def torch_cuda_build() -> bool:
    """Whether the installed PyTorch was built with CUDA, read from its version file without importing it."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return False
    found = re.search(r"^cuda\b[^=\n]*=\s*(.+)$", text, re.MULTILINE)
    return bool(found) and found.group(1).strip() not in ("None", "")


def nvml_gpu_name(nvml: str = "libnvidia-ml.so.1") -> str | None:
    """Name of the first GPU CUDA would see, asked of the NVIDIA driver (NVML) without PyTorch; None if none.

    CUDA_VISIBLE_DEVICES is honoured as far as NVML can: empty or "-1" hides every GPU, a list of
    indices picks the first listed."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    index = 0
    if visible is not None:
        first = visible.split(",")[0].strip()
        if not first or first.startswith("-"):
            return None
        index = int(first) if first.isdigit() else 0
    try:
        lib = ctypes.CDLL(nvml)
    except OSError:
        return None
    if lib.nvmlInit_v2() != 0:
        return None
    try:
        count = ctypes.c_uint(0)
        if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0 or index >= count.value:
            return None
        handle = ctypes.c_void_p()
        if lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)) != 0:
            return None
        name = ctypes.create_string_buffer(96)
        if lib.nvmlDeviceGetName(handle, name, ctypes.c_uint(96)) != 0:
            return None
        return name.value.decode(errors="replace")
    finally:
        lib.nvmlShutdown()


@functools.cache
def driver_gpu_name() -> str | None:
    """The GPU a CUDA build of torch would use, as the driver names it; asked once per process (the
    sidebar is drawn on every run, and the hardware does not change under a server)."""
    return nvml_gpu_name() if torch_cuda_build() else None


def device_label() -> str:
    """The device analyses run on ('auto': CUDA when present), for the sidebar.

    Once PyTorch is imported it decides; before, the driver is asked directly (a CUDA build of torch
    plus a GPU NVML can see), which is what torch.cuda.is_available() finds on a working install."""
    n = default_threads()
    if torch_imported():
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(0)})"
        n = torch.get_num_threads()
    elif (name := driver_gpu_name()) is not None:
        return f"cuda ({name})"
    return f"cpu ({n} thread{'s' if n != 1 else ''}; DSTAB_THREADS)"
