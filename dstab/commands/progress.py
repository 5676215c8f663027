"""Progress of a CLI command on stderr: a tqdm bar on a terminal, plain lines in a log.

tqdm redraws its bar with carriage returns and cursor-up escape codes, which
turn a log file (a background run, a cluster job's output) into noise. When
stderr is not a terminal, each stage instead prints a plain line when it
starts, at every further tenth of its work, and when it ends.
"""

from __future__ import annotations

import sys


class Progress:
    """`progress(stage, done, total)`: the callback analyses take; `close()` ends every bar."""

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

    def counter(self, stage: str, total: int):
        """An increment callback `tick(n=1)` for analyses that report how many points they finished."""
        done = 0

        def tick(n: int = 1) -> None:
            nonlocal done
            done += n
            self(stage, done, total)

        self(stage, 0, total)
        return tick

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
