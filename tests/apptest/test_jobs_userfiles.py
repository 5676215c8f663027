"""The background job runner and the server-side file rules, without a Streamlit session."""

import threading

import pytest

from dashboard import userfiles
from dashboard.jobs import Cancelled, Job, JobRunner
from dstab.errors import DstabError


def test_jobs_deduplicate_by_key_and_keep_results():
    runner, release, calls = JobRunner(keep=2), threading.Event(), []

    def work(job):
        calls.append(job.key)
        release.wait(5)
        job.progress("stage", 3, 4)
        return job.fraction

    first = runner.submit("k", "one", work, 1.0)
    assert runner.submit("k", "again", work, 1.0) is first  # a rerun picks up the running job
    queued = runner.submit("k2", "two", work, 1.0)
    assert runner.queue_ahead("k2") == ["one"]
    release.set()
    assert first.future.result(5) == 0.75 and queued.future.result(5) == 0.75
    assert calls == ["k", "k2"] and runner.result("k") == 0.75 and runner.job("k") is None
    runner.submit("k3", "three", work, 1.0).future.result(5)
    assert runner.result("k2") is None  # the least recently read result ("k" was read above) is dropped
    assert runner.result("k") == 0.75 and runner.result("k3") == 0.75


def test_cancel_stops_a_job_at_its_next_progress_report():
    runner, started, go_on = JobRunner(), threading.Event(), threading.Event()

    def work(job):
        for i in range(1000):
            started.set()
            go_on.wait(5)
            job.progress("work", i + 1, 1000)
        return "finished"

    job = runner.submit("c", "cancel me", work, 1.0)
    started.wait(5)
    job.cancel()
    go_on.set()
    with pytest.raises(Cancelled):
        job.future.result(5)
    assert runner.job("c") is None and runner.result("c") is None


def test_compute_after_cancel_replaces_the_job_still_winding_down(caplog):
    """Cancel, then Compute before the cancelled job reached its next progress report: a new job of
    the same key queues behind it and runs; the old one's end leaves the new one registered."""
    runner, started, go_on = JobRunner(), threading.Event(), threading.Event()

    def work(job):
        started.set()
        go_on.wait(5)
        job.progress("work", 1, 2)
        return "finished"

    old = runner.submit("c", "cancel me", work, 1.0)
    started.wait(5)
    never = runner.submit("n", "never started", work, 1.0)
    with caplog.at_level("INFO", logger="dstab.dashboard.jobs"):
        never.cancel()  # still queued: cancelled before it starts, and the server's log says so
        old.cancel()  # running: it says so itself at its next progress report
    assert [r.getMessage() for r in caplog.records] == ["never started: cancelled in the queue, before it started"]
    assert never.future.cancelled()
    # cancelled after the pool took it from the queue, before its first step: said the same way
    caplog.clear()
    taken = Job("t", "taken", 1.0)
    taken.cancel()
    with caplog.at_level("INFO", logger="dstab.dashboard.jobs"), pytest.raises(Cancelled):
        runner._run(taken, work)
    assert [r.getMessage() for r in caplog.records] == ["taken: cancelled in the queue, before it started"]
    new = runner.submit("c", "cancel me", work, 1.0)
    assert new is not old and runner.job("c") is new
    later = runner.submit("k", "later", lambda job: "later", 1.0)
    assert runner.queue_ahead("k") == ["cancel me"]  # the new job; cancelled ones are not shown as ahead
    go_on.set()
    with pytest.raises(Cancelled):
        old.future.result(5)
    assert new.future.result(5) == "finished" and runner.result("c") == "finished" and runner.job("c") is None
    assert later.future.result(5) == "later"


def test_confined_path_refuses_escapes(dash_env, tmp_path):
    workspace = userfiles.workspace_root()
    workspace.mkdir(parents=True, exist_ok=True)
    inside = workspace / "ok.safetensors"
    inside.write_bytes(b"x")
    assert userfiles.confined_path(str(inside)) == inside.resolve()
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"x")
    link = workspace / "link.safetensors"
    link.symlink_to(secret)  # a link inside the workspace pointing out of it
    for bad in (str(secret), str(link), str(workspace / ".." / ".." / "secret.safetensors"), "/etc/passwd"):
        with pytest.raises(DstabError, match="outside the folders"):
            userfiles.confined_path(bad)
    with pytest.raises(DstabError, match="empty checkpoint path"):
        userfiles.confined_path("  ")


def test_upload_names_are_content_addressed_and_sanitised(dash_env):
    with pytest.raises(DstabError, match="not a checkpoint file"):
        userfiles.save_upload("model.exe", b"MZ")
    with pytest.raises(DstabError, match="upload limit of 1 MiB"):
        userfiles.require_upload_size("x.safetensors", 2**20 + 1)
    assert userfiles._safe_stem("../../etc/pass wd") == "pass_wd"


def test_a_job_cancelled_during_its_last_points_stores_nothing(dash_env):
    # Cancel pressed while the engine computes its last points: no progress report comes after it, and
    # the result used to be stored anyway; the job checks once more before it stores
    from dashboard import compute
    from dstab import cache, checkpoints, zoo, zooresults
    from dstab.analysis.results import Plan
    from dstab.analysis.specs import ProbeSpec

    bundle = checkpoints.load(zoo.checkpoint_path("toy2d/dm-eps-s0"))
    spec = zooresults.SURFACE.__class__(probe=ProbeSpec.of("dm", 10), grid=5, seed=31)
    plan = Plan(spec, [bundle])
    job_box = {}
    computed = plan.compute

    def compute_then_cancel(progress=None, **kw):
        out = computed(progress, **kw)
        job_box["job"].cancel()  # after the engine's last report
        return out

    plan.compute = compute_then_cancel
    runner = JobRunner()
    job = runner.submit(plan.key, "late cancel", lambda j: compute._compute(plan, j, {}), 1.0)
    job_box["job"] = job
    with pytest.raises(Cancelled):
        job.future.result(60)
    assert cache.lookup(plan.spec.name, plan.params, plan.shas) is None and runner.result(plan.key) is None
    plan.compute = computed  # the same job not cancelled: stored
    done = runner.submit(plan.key, "no cancel", lambda j: compute._compute(plan, j, {}), 1.0).future.result(60)
    assert done.meta["grid"] == 5 and cache.lookup(plan.spec.name, plan.params, plan.shas) is not None


def test_a_failed_job_is_kept_once_and_forgotten_on_retry():
    runner = JobRunner()

    def boom(job):
        raise DstabError("the probe's loss is nan at the analysed parameters")

    job = runner.submit("f", "fails", boom, 1.0)
    with pytest.raises(DstabError):
        job.future.result(5)
    assert runner.wait_idle(5) and str(runner.failure("f")).startswith("the probe's loss is nan")
    runner.forget_failure("f")
    assert runner.failure("f") is None
