"""Heavy computations in a background thread, so that they outlive a rerun.

Streamlit stops the page script whenever a widget changes. A computation run
inside the script would be thrown away and restarted; here it runs in a
worker thread keyed by its cache key instead: a rerun with the same inputs
finds the job still running (or finished) and picks it up, other inputs
queue behind it, and Cancel stops it at its next progress report (the
engines report at least once per loss evaluation or Hessian-vector product).
A job's failure is kept beside the results, so a page says it once rather
than starting the job again. One worker only: the analyses already use
every core torch gives them. The server log has a line for every job's end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("dstab.dashboard.jobs")
CANCELLED_QUEUED = "%s: cancelled in the queue, before it started"  # the pool's future or its first check


class Cancelled(Exception):
    """Raised inside a job's progress callback once the user pressed Cancel."""


@dataclass
class Job:
    key: str
    label: str
    estimate_s: float
    cancel_event: threading.Event = field(default_factory=threading.Event)
    fraction: float = 0.0
    stage: str = ""
    started: float | None = None
    future: Future | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        """The callback handed to the computation (dstab's one protocol: stage, done, total): records
        progress, honours Cancel."""
        if self.cancel_event.is_set():
            raise Cancelled(self.label)
        self.stage = str(stage)
        self.fraction = min(1.0, max(0.0, done / total if total else 0.0))

    def shown_fraction(self) -> float:
        """Reported progress, or elapsed time over the estimate (capped) for silent computations."""
        if self.fraction > 0 or self.started is None:
            return self.fraction
        return min(0.95, (time.perf_counter() - self.started) / max(self.estimate_s, 1e-3))

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.perf_counter() - self.started

    def cancel(self) -> None:
        self.cancel_event.set()
        if self.future is not None and self.future.cancel():  # succeeds only while still queued
            log.info(CANCELLED_QUEUED, self.label)


class JobRunner:
    """Deduplicates jobs by key and keeps the latest results in memory (LRU)."""

    def __init__(self, keep: int = 64):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dstab-job")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._results: OrderedDict[str, object] = OrderedDict()
        self._failures: OrderedDict[str, BaseException] = OrderedDict()
        self._keep = keep
        self._idle = threading.Condition(self._lock)
        self.submitted = 0  # jobs started so far (a test waits for the ones its page run started)

    def result(self, key: str):
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        return None

    def failure(self, key: str) -> BaseException | None:
        """The exception a job of this key ended with (not a Cancel), until `forget_failure` or a new job."""
        with self._lock:
            return self._failures.get(key)

    def forget_failure(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._jobs)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is queued or running (True), or `timeout` seconds passed (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._jobs, timeout)

    def job(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def submit(self, key: str, label: str, fn: Callable[[Job], object], estimate_s: float) -> Job:
        """Start `fn(job)` unless a job with this key is already queued or running."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.cancel_event.is_set():
                return job
            # a cancelled job still winding down (or never started) is replaced; the new one queues behind it
            job = Job(key, label, estimate_s)
            self._jobs[key] = job
            self.submitted += 1
            self._failures.pop(key, None)
            job.future = self._pool.submit(self._run, job, fn)
            return job

    def _run(self, job: Job, fn: Callable[[Job], object]):
        if job.cancel_event.is_set():  # cancelled while queued, after the pool took it
            log.info(CANCELLED_QUEUED, job.label)
            self._forget(job)
            raise Cancelled(job.label)
        job.started = time.perf_counter()
        try:
            value = fn(job)
        except Cancelled:
            log.info(
                "%s: cancelled after %.1f s, %.0f%% done (%s)",
                job.label,
                job.elapsed(),
                100 * job.fraction,
                job.stage or "before its first step",
            )
            self._forget(job)
            raise
        except BaseException as exc:
            log.exception("%s: failed after %.1f s", job.label, job.elapsed())
            self._forget(job, exc)
            raise
        log.info("%s: finished in %.1f s", job.label, job.elapsed())
        with self._lock:
            self._results[job.key] = value
            self._results.move_to_end(job.key)
            while len(self._results) > self._keep:
                self._results.popitem(last=False)
        self._forget(job)
        return value

    def _forget(self, job: Job, failure: BaseException | None = None) -> None:
        with self._lock:
            if self._jobs.get(job.key) is job:  # not the job that replaced it after a Cancel
                del self._jobs[job.key]
                if failure is not None:
                    self._failures[job.key] = failure
                    while len(self._failures) > self._keep:
                        self._failures.popitem(last=False)
            self._idle.notify_all()

    def queue_ahead(self, key: str) -> list[str]:
        """Labels of the jobs started before this one and not yet finished."""
        with self._lock:
            labels = []
            for k, j in self._jobs.items():
                if k == key:
                    break
                if not j.cancel_event.is_set():
                    labels.append(j.label)
            return labels
