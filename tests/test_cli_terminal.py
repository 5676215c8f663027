"""The CLI without a terminal: no prompt that dies with EOFError, no escape codes in logs."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from dstab.commands.progress import bars


def _dstab(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DSTAB_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dstab", *args], capture_output=True, text=True, env=env, **kw)


def test_runs_delete_without_a_terminal_is_a_clear_error_and_deletes_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    r = _dstab("runs", "--root", str(tmp_path), "delete", "a", stdin=subprocess.DEVNULL, timeout=600)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "error: runs delete asks for the run's name on a terminal and there is none; pass --yes to delete 'a'"
    )
    assert (tmp_path / "a").is_dir()
    r = _dstab("runs", "--root", str(tmp_path), "delete", "nope", stdin=subprocess.DEVNULL, timeout=600)
    assert r.returncode == 2 and r.stderr.startswith("error: no run named 'nope'")


def test_progress_in_a_log_is_plain_lines_at_each_tenth():
    log = io.StringIO()
    with bars("hessian", unit="Hv", stream=log) as progress:
        for done in range(0, 21):
            progress("trace", done, 20)
        for done in range(4):
            progress("slq", done, 3)
    lines = log.getvalue().splitlines()
    assert lines[0] == "hessian trace: 0/20 Hv (0%)" and lines[10] == "hessian trace: 20/20 Hv (100%)"
    assert len(lines) == 11 + 4 and lines[-1] == "hessian slq: 3/3 Hv (100%)"
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar_and_off_when_disabled():
    term = _Terminal()
    with bars("surface", unit="points", stream=term) as progress:
        progress("t50", 5, 10)
    assert "surface t50" in term.getvalue() and "\r" in term.getvalue()
    quiet = io.StringIO()
    with bars("surface", stream=quiet, enabled=False) as progress:
        progress("t50", 5, 10)
    assert quiet.getvalue() == ""


def test_sample_shows_progress_without_escape_codes(ckpts, tmp_path):
    out = tmp_path / "s.png"
    r = _dstab(
        "sample",
        str(ckpts["toy_dm"]),
        "-o",
        str(out),
        "-n",
        "2",
        "--sampler",
        "ddim",
        "--steps",
        "4",
        "--device",
        "cpu",
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.splitlines() == [f"sample: {k}/4 steps ({25 * k}%)" for k in range(1, 5)]
    assert out.stat().st_size > 0
