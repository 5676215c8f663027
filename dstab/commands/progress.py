"""CLI progress for dstab's one progress protocol `progress(stage, done, total)`, and cost warnings.

On a terminal each stage is a tqdm bar. tqdm redraws its bar with carriage
returns and cursor-up escape codes, which turn a log file (a background run,
a cluster job's output) into noise, so when stderr is not a terminal each
stage instead prints a plain line when it starts, at every further tenth of
its work, and when it ends.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

from ..analysis.cost import CostWarning
from ..errors import DstabWarning


class Progress:
    """`progress(stage, done, total)` drawn on `stream` (default stderr); `close()` ends every bar."""

    def __init__(self, what: str, unit: str = "it", enabled: bool = True, stream=None):
        self.what, self.unit, self.enabled = what, unit, enabled
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self._bars: dict = {}
        self._shown: dict[str, int] = {}  # tenths already printed, per stage

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.terminal:
            self._draw(stage, done, total)
            return
        tenth = 10 * done // max(total, 1)
        if self._shown.get(stage, -1) < tenth:
            self._shown[stage] = tenth
            label = f"{self.what} {stage}".strip()
            print(f"{label}: {done}/{total} {self.unit} ({100 * done // max(total, 1)}%)", file=self.stream)

    def _draw(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage not in self._bars:
            desc = f"{self.what} {stage}".strip()
            self._bars[stage] = tqdm(total=total, desc=desc, unit=self.unit, leave=False, file=self.stream)
        self._bars[stage].update(done - self._bars[stage].n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


@contextlib.contextmanager
def bars(what: str, unit: str = "it", enabled: bool = True, stream=None):
    """Yields a `Progress` (call it as `tick(stage, done, total)`); its bars close on exit."""
    progress = Progress(what, unit, enabled, stream)
    try:
        yield progress
    finally:
        progress.close()


@contextlib.contextmanager
def cost_warnings_on_one_line():
    """A CostWarning (before the work starts) or a DstabWarning reaches the terminal as one 'warning: ...'
    line."""
    original = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, (CostWarning, DstabWarning)):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original
