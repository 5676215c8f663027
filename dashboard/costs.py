"""Up-front cost estimates: time one unit of work here, multiply by the number of units.

A unit is one model call (sampling) or one probe loss evaluation (landscapes);
timing it on this server and device makes the estimate honest on a laptop, a
shared 2-core box or a GPU alike. Timings are kept per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st
import torch


@st.cache_resource
def _timings() -> dict:
    return {}


def seconds_per_call(key: tuple, fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of fn() after one warm-up call, memoised under `key`."""
    table = _timings()
    if key not in table:
        with torch.no_grad():
            fn()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        table[key] = sorted(times)[len(times) // 2]
    return table[key]
