"""Training inside a run directory (see rundir.py for the contract): config,
atomic checkpoints with resume state, SQLite metrics as they happen, a
heartbeat, status.json at exit, SIGTERM = stop cleanly."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path

from .. import checkpoints, distributed
from ..errors import DstabError
from ..training import resume_state
from ..training.config import TrainConfig, stored
from ..training.trainer import Trainer
from . import rundir


class StopFlag:
    """Set by SIGTERM/SIGINT; the trainer checks it after each step."""

    def __init__(self):
        self.set = False
        self._previous = {}

    def __call__(self) -> bool:
        return self.set

    def _handle(self, signum, frame) -> None:
        self.set = True

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _logger(run_dir: Path, echo: bool):
    log_path = run_dir / rundir.LOG

    def log(row: dict) -> None:
        text = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        with open(log_path, "a") as f:
            f.write(text + "\n")
        if echo:
            print(text, flush=True)

    return log


def _evaluator(trainer: Trainer):
    """FD/FID of EMA samples, built on first use (reference statistics are cached per dataset); every
    eval_repeat_every steps also the repeat evaluation with other noise seeds."""
    if not trainer.cfg.eval_every or not trainer.ctx.main:
        return None  # rank 0 evaluates; under torchrun the others wait for it at their next step
    from ..analysis import fid

    ev = fid.TrainingEvaluator(trainer.cfg, trainer.dataset, trainer.device, amp=trainer.amp)
    every = trainer.cfg.eval_repeat_every

    def evaluate(tr: Trainer) -> dict:
        modules, diffusion = tr.eval_modules(), tr.diffusion if tr.cfg.kind == "dm" else None
        values = ev(modules, diffusion)
        if every and tr.step % every == 0:
            values.update(ev.repeat(modules, diffusion))
        return values

    return evaluate


def start(run_dir: Path, config: dict, device="cpu", echo: bool = True) -> dict:
    """A new run: everything is validated before RUN_DIR is created."""
    run_dir = Path(run_dir)
    rundir.check_new(run_dir)
    cfg = TrainConfig.from_dict(stored(config))  # config.json and the trainer: one spelling (training/config.py)
    ctx = distributed.from_env()
    trainer = Trainer(cfg, run_dir / rundir.CHECKPOINTS, device, ctx=ctx)
    if ctx.main:
        rundir.create(run_dir, cfg.to_dict())
    return _drive(run_dir, trainer, echo)


def resume(run_dir: Path, device="cpu", echo: bool = True) -> dict:
    """Continue from the last resume state (or from scratch if the run died before its first checkpoint)."""
    run_dir = Path(run_dir)
    cfg = TrainConfig.from_dict(rundir.read_config(run_dir))
    status = rundir.read_status(run_dir)
    if status and status["state"] == "finished":
        raise DstabError(f"{run_dir} already finished at step {status['step']}; start a new run to train further")
    trainer = Trainer(cfg, run_dir / rundir.CHECKPOINTS, device, ctx=distributed.from_env())
    if trainer.ctx.main and (removed := rundir.clean_leftovers(run_dir)):
        print(f"note: removed {len(removed)} temporary files an interrupted write left, e.g. {removed[0]}")
    state = resume_state.load_resume_state(run_dir / rundir.CHECKPOINTS)
    if state is not None:
        trainer.load_state_dict(state)
        if trainer.ctx.main:
            _repair_newest(trainer)
    return _drive(run_dir, trainer, echo, resumed=True)


def _repair_newest(trainer: Trainer) -> None:
    """The weights file of the resume point, rewritten from the resume state if it does not load."""
    path = trainer.out_dir / f"step{trainer.step:07d}.safetensors"
    try:
        checkpoints.load(path)
    except DstabError as exc:
        print(f"note: the checkpoint at the resume point was unusable ({exc}); rewriting it from resume state")
        trainer.save(trainer.step)


def _drive(run_dir: Path, trainer: Trainer, echo: bool, resumed: bool = False) -> dict:
    main = trainer.ctx.main
    trainer.log = _logger(run_dir, echo) if main else (lambda row: None)
    db = rundir.MetricsDB(run_dir / rundir.METRICS) if main else None
    if db:
        db.truncate_after(trainer.step)  # rows a crash left past the last checkpoint are recomputed
    redo = bool(resumed and db and trainer.step and not db.has_evaluation(trainer.step))
    write = (lambda step, values: db.write(step, values)) if db else None
    hb = rundir.Heartbeat(run_dir) if main else None
    try:
        with StopFlag() as stop, hb or _Null() as beat:
            if hb:
                trainer.on_step = lambda step: setattr(beat, "step", step)
            result = trainer.run(metrics=write, evaluate=_evaluator(trainer), should_stop=stop, redo_evaluation=redo)
        if main:
            rundir.write_status(run_dir, "stopped" if result["stopped"] else "finished", trainer.step)
        return result
    except BaseException as exc:
        if main:
            message = str(exc) if isinstance(exc, DstabError) else f"{type(exc).__name__}: {exc}"
            try:
                rundir.write_status(run_dir, "failed", trainer.step, message.splitlines()[0] if message else None)
            except OSError as status_exc:  # e.g. the disk is full: the original error matters more
                print(f"could not write {rundir.STATUS}: {status_exc}", file=sys.stderr)
            if not isinstance(exc, DstabError):
                traceback.print_exc(file=sys.stderr)
        raise
    finally:
        if db:
            db.close()
        trainer.end_distributed()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
