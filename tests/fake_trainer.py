"""A stand-in for `python -m dstab train` that follows its run-directory contract, for runs.py tests
that only need the process behaviour (queueing) and must not pay for real training steps.

Steps take $FAKE_STEP_S seconds; a checkpoint every 5 steps; SIGTERM finishes the step, checkpoints
and writes status "stopped"; --resume continues after the last checkpoint. $FAKE_FAIL_AT=N: the run
fails (status "failed", exit code 1) after step N, as a real one does on an error. $FAKE_HOLD=name=N[,...]:
the run of that name holds after step N (its heartbeat says so) until it is stopped, so a test can act on
a run that is surely still running, at a known step, whatever the machine's load.
"""

import argparse
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

from dstab.runs.rundir import METRICS_TABLE  # the trainer's table, spelled once

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def main():
    signal.signal(signal.SIGTERM, on_term)
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--resume")
    p.add_argument("--config")
    p.add_argument("--preset")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    out = Path(a.resume or a.out)
    if a.resume:
        cfg = json.loads((out / "config.json").read_text())
        resume = out / "checkpoints" / "resume.json"
        start = json.loads(resume.read_text())["step"] if resume.exists() else 0
    else:
        cfg = json.loads(Path(a.config).read_text())
        (out / "checkpoints").mkdir(parents=True)
        (out / "config.json").write_text(json.dumps(cfg))
        start = 0
    con = sqlite3.connect(out / "metrics.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(METRICS_TABLE)
    step, dt = start, float(os.environ.get("FAKE_STEP_S", "0.05"))
    holds = dict(h.split("=") for h in os.environ.get("FAKE_HOLD", "").split(",") if h)
    hold_at = int(holds.get(out.parent.name, 0))  # out is <workspace>/<name>/run
    while step < cfg["steps"] and not stop:
        time.sleep(dt)
        step += 1
        con.execute("INSERT OR REPLACE INTO metrics VALUES (?, 'loss', ?, ?)", (step, 1.0 / step, time.time()))
        con.commit()
        (out / "heartbeat").write_text(json.dumps({"step": step, "time": time.time(), "pid": os.getpid()}))
        while step == hold_at and not stop:  # held: a stop (SIGTERM) ends it at this step, checkpointed
            time.sleep(0.01)
        if step % 5 == 0 or stop or step == cfg["steps"]:
            (out / "checkpoints" / f"step{step:07d}.safetensors").write_bytes(b"fake")
            (out / "checkpoints" / "resume.json").write_text(json.dumps({"step": step}))
            (out / "checkpoints" / "resume.pt").write_bytes(b"fake")  # what runs.py looks for
        if step == int(os.environ.get("FAKE_FAIL_AT", "0")):
            (out / "status.json").write_text(json.dumps({"state": "failed", "step": step, "error": "boom"}))
            print("error: boom", file=sys.stderr)
            return 1
    state = "finished" if step >= cfg["steps"] else "stopped"
    (out / "status.json").write_text(json.dumps({"state": state, "step": step, "error": None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
