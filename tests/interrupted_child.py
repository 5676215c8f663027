"""Run only by tests/test_processes.py, as the test session it interrupts (the name keeps pytest from
collecting it otherwise): starts a background run that holds until stopped, says so, and waits."""

import os
import sys
import time
from pathlib import Path

from dstab import runs

FAKE = Path(__file__).with_name("fake_trainer.py")


def test_starts_a_run_and_waits_to_be_interrupted(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_HOLD", "held=1")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    root = tmp_path / "runs"
    runs.start("held", preset="baseline", overrides=['arch={"arch": "mlp_denoiser"}', "dataset=toy2d"], root=root)
    while runs.status("held", root).step < 1:
        time.sleep(0.01)
    Path(os.environ["INTERRUPTED_CHILD_PGID"]).write_text(str(runs.status("held", root).pgid))
    while True:  # until the session is interrupted
        time.sleep(0.05)
