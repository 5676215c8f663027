"""Terminal progress for dstab's one progress protocol `progress(stage, done, total)`: one tqdm bar per stage."""

from __future__ import annotations

import contextlib
import sys
import warnings

from ..analysis.cost import CostWarning


@contextlib.contextmanager
def bars(what: str, unit: str = "it", enabled: bool = True):
    """Yields `tick(stage, done, total)`; the bars (on stderr) close on exit."""
    from tqdm import tqdm

    open_bars: dict[str, tqdm] = {}

    def tick(stage: str, done: int, total: int) -> None:
        if stage not in open_bars:
            open_bars[stage] = tqdm(total=total, desc=f"{what} {stage}".strip(), unit=unit, file=sys.stderr,
                                    leave=False, disable=not enabled)  # fmt: skip
        open_bars[stage].update(done - open_bars[stage].n)

    try:
        yield tick
    finally:
        for bar in open_bars.values():
            bar.close()


@contextlib.contextmanager
def cost_warnings_on_one_line():
    """A CostWarning reaches the terminal as one 'warning: ...' line before the work starts."""
    original = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, CostWarning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original
