"""Crafted inputs and options through the CLI: exit status 2, exactly one line on stderr naming the
option or file and what to do, no traceback; refused before the computation; nothing written outside
the test's own folder (the working folder, cache, workspace and home are all in tmp)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dstab import zoo
from dstab.cli import main

from . import crafted as c

REPO = Path(__file__).resolve().parents[2]
DIGITS_DM = "digits/dm-eps-s0"


def repo_state() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def repo_unchanged():
    before = repo_state()
    yield
    assert repo_state() == before, "a CLI fault case wrote into the repository"


@pytest.fixture
def sandbox(tmp_path, monkeypatch, repo_unchanged):
    for var, sub in (("DSTAB_CACHE", "cache"), ("DSTAB_WORKSPACE", "ws"), ("HOME", "home")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tiny(d: Path) -> str:
    return str(c.native(d / "tiny.safetensors"))


def escaping(d: Path) -> str:
    """A checkpoint whose header asks for images from a folder outside the allowed roots."""
    return str(c.native(d / "escape.safetensors", c.with_header(dataset="folder:/usr/share?size=8&channels=1")))


# (case id, argv builder(tmp) -> list, expected fragment of the one error line)
CASES = [
    ("sample-n-1e8", lambda d: ["sample", tiny(d), "-o", "s.png", "-n", "100000000"], "DSTAB_MAX_SAMPLES"),
    (
        "sample-steps-0",
        lambda d: ["sample", tiny(d), "-o", "s.png", "--sampler", "ddim", "--steps", "0"],
        "--steps must be at least 1",
    ),
    (
        "sample-scale-100000",
        lambda d: [
            "sample",
            str(zoo.checkpoint_path(DIGITS_DM)),
            "-o",
            "s.png",
            "-n",
            "4",
            "--sampler",
            "ddim",
            "--steps",
            "2",
            "--scale",
            "100000",
        ],
        "DSTAB_MAX_IMAGE_PIXELS",
    ),
    (
        "sample-nan-weights",
        lambda d: [
            "sample",
            str(c.nan_weights(d / "nan.safetensors")),
            "-o",
            "s.png",
            "--sampler",
            "ddim",
            "--steps",
            "2",
            "-n",
            "4",
        ],
        "NaN or inf",
    ),
    ("sample-unwritable", lambda d: ["sample", tiny(d), "-o", "/proc/no/s.png"], "cannot be written"),
    (
        "sample-crafted-header",
        lambda d: ["sample", str(c.native(d / "l.safetensors", raw_header="[]")), "-o", "s.png"],
        "JSON list",
    ),
    ("hessian-top-k-100000", lambda d: ["hessian", DIGITS_DM, "-o", "h", "--top-k", "100000"], "DSTAB_MAX_TOP_K"),
    ("hessian-trace-0", lambda d: ["hessian", DIGITS_DM, "-o", "h", "--trace-samples", "0"], "--trace-samples"),
    ("hessian-slq-steps-0", lambda d: ["hessian", DIGITS_DM, "-o", "h", "--slq-steps", "0"], "--slq-steps"),
    ("hessian-slq-runs-0", lambda d: ["hessian", DIGITS_DM, "-o", "h", "--slq-runs", "0"], "--slq-runs"),
    ("hessian-batch-1e8", lambda d: ["hessian", DIGITS_DM, "-o", "h", "--batch-size", "100000000"], "DSTAB_MAX_BATCH"),
    (
        "hessian-output-is-a-file",
        lambda d: (d / "f").write_text("x") and ["hessian", DIGITS_DM, "-o", "f"],
        "is a file",
    ),
    ("hessian-output-unwritable", lambda d: ["hessian", DIGITS_DM, "-o", "/proc/nope"], "cannot be written"),
    (
        "hessian-header-dataset-escape",
        lambda d: [
            "hessian",
            escaping(d),
            "-o",
            "h",
            "--top-k",
            "1",
            "--trace-samples",
            "1",
            "--slq-runs",
            "1",
            "--slq-steps",
            "2",
        ],
        "outside the folders",
    ),
    (
        "convert-to-a-folder",
        lambda d: (d / "o.safetensors").mkdir() or ["convert", tiny(d), "-o", "o.safetensors"],
        "is a folder",
    ),
    ("convert-onto-itself", lambda d: ["convert", tiny(d), "-o", str(d / "tiny.safetensors")], "source itself"),
    ("convert-unwritable", lambda d: ["convert", tiny(d), "-o", "/proc/nope/o.safetensors"], "cannot be written"),
    ("surface-grid-100001", lambda d: ["surface", DIGITS_DM, "--grid", "100001"], "DSTAB_MAX_GRID_POINTS"),
    ("interpolate-steps-1e9", lambda d: ["interpolate", DIGITS_DM, "--steps", "1000000000"], "DSTAB_MAX_GRID_POINTS"),
    ("surface-out-unwritable", lambda d: ["surface", DIGITS_DM, "--out", "/proc/nope"], "cannot be written"),
    # issue 27: a traceback from float32 overflow; now refused before the computation, naming the limit
    (
        "surface-radius-1e308",
        lambda d: ["surface", DIGITS_DM, "--radius", "1e308"],
        "radius 1e+308 is beyond float32's range (the surface is computed in float32, at most 3.4e+38)",
    ),
    ("surface-radius-inf", lambda d: ["surface", DIGITS_DM, "--radius", "inf"], "radius must be a positive number"),
    ("surface-radius-nan", lambda d: ["surface", DIGITS_DM, "--radius", "nan"], "radius must be a positive number"),
    (
        "consistency-n-1e8",
        lambda d: ["consistency", "digits/dm-init", "-o", "c", "-n", "100000000"],
        "DSTAB_MAX_SAMPLES",
    ),
    (
        "train-save-steps-text",
        lambda d: ["train", "--out", "r", "--preset", "baseline", "--set", 'save_steps="x"'],
        "save_steps",
    ),
    (
        "train-batch-1e8",
        lambda d: ["train", "--out", "r", "--preset", "baseline", "--set", "batch_size=100000000"],
        "DSTAB_MAX_BATCH",
    ),
    (
        "train-arch-huge",
        lambda d: ["train", "--out", "r", "--preset", "baseline", "--set", "arch.model_channels=65536"],
        "DSTAB_MAX_PARAMS",
    ),
    ("runs-resume-missing", lambda d: ["runs", "--root", str(d / "ws"), "resume", "nosuch"], "no run named"),
    ("runs-stop-missing", lambda d: ["runs", "--root", str(d / "ws"), "stop", "nosuch"], "no run named"),
    ("info-nul-path", lambda d: ["info", "a\x00b.safetensors"], "not a usable checkpoint path"),
    ("info-zip-bomb", lambda d: ["info", str(c.zip_bomb(d / "b.pt", 64))], "inflate"),
    ("info-code-pickle", lambda d: ["info", str(c.code_pickle(d / "e.pt"))], "could run code"),
]


@pytest.mark.parametrize("argv", [a for _, a, _ in CASES], ids=[i for i, _, _ in CASES])
def test_cli_refuses_on_one_line(sandbox, capsys, argv, request):
    fragment = dict((i, f) for i, _, f in CASES)[request.node.callspec.id]
    args = argv(sandbox)
    code = main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    # progress bars may precede it; the error itself is one line, the last, and no traceback is printed
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:] and "Traceback" not in err, err
    assert fragment in lines[-1], lines[-1]
