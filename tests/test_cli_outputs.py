"""What every CLI command shares: output names that never collide, one JSON writer that never writes
NaN silently, and `--threads` (honouring DSTAB_THREADS) on every compute command."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dstab import cli, fileio
from dstab.commands import COMMANDS

COMPUTE = [
    ("zoo", "build"),
    ("sample",),
    ("train",),
    ("features", "train"),
    ("surface",),
    ("interpolate",),
    ("precompute",),
    ("hessian",),
    ("consistency",),
    ("trajectory",),
    ("report",),
]


def _subparser(parser, path):
    for word in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


@pytest.mark.parametrize("path", COMPUTE, ids="-".join)
def test_every_compute_command_takes_threads(path):
    parser = _subparser(cli.build_parser(path[0]), path)
    threads = [a for a in parser._actions if a.dest == "torch_threads"]
    assert len(threads) == 1 and threads[0].option_strings == ["--threads"]


def test_the_compute_list_covers_every_command_but_the_bookkeeping_ones():
    # runs start, sweep and reproduce launch runs: their --threads is the runs' (runs.start), not theirs
    # timesteps draws tables of P(t) (well under a second): no threads to set
    bookkeeping = {"info", "convert", "runs", "sweep", "compare", "reproduce", "timesteps"}
    assert {p[0] for p in COMPUTE} == set(COMMANDS) - bookkeeping


def two_files_named_final(ckpts, tmp_path):
    paths = []
    for name in ("toy_dm", "toy_dm_b"):
        (tmp_path / name).mkdir()
        paths.append(tmp_path / name / "final.safetensors")
        shutil.copy(ckpts[name], paths[-1])
    return paths


def test_two_models_written_to_one_folder_are_both_there(ckpts, caches, tmp_path, capsys):
    a, b = two_files_named_final(ckpts, tmp_path)
    out = tmp_path / "out"
    surface = ["--grid", "3", "--radius", "0.5", "--timestep", "50", "--batch-size", "8", "--out", str(out)]
    hess = [
        "--timesteps",
        "50",
        "--batch-size",
        "8",
        "--top-k",
        "1",
        "--trace-samples",
        "2",
        "--slq-runs",
        "1",
        "--slq-steps",
        "4",
        "-o",
        str(out),
    ]
    for path in (a, b, a):  # the third run rewrites a's own files
        assert cli.main(["surface", str(path), *surface, "--device", "cpu"]) == 0
        assert cli.main(["hessian", str(path), *hess, "--device", "cpu"]) == 0
    for prefix in ("surface_final_t50", "hessian_final_t50"):
        written = sorted(out.glob(f"{prefix}*.json"))
        assert len(written) == 2, written
        owners = [json.loads(p.read_text())["checkpoints_sha256"] for p in written]
        assert owners[0] != owners[1] and all(len(o) == 1 and len(o[0]) == 64 for o in owners)
        assert all(p.with_suffix(".npz").exists() and p.with_suffix(".png").exists() for p in written)
    first, second = (np.load(p.with_suffix(".npz"))["loss"] for p in sorted(out.glob("surface_final_t50*.json")))
    assert not np.array_equal(first, second)  # two models' surfaces, not one written twice


def test_json_never_holds_nan_and_says_so(tmp_path, capsys):
    path = tmp_path / "r.json"
    fileio.write_json(path, {"ok": 1.5, "bad": [1.0, math.nan], "worse": np.float32("inf"), "arr": np.arange(2)})
    record = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert record == {"ok": 1.5, "bad": [1.0, None], "worse": None, "arr": [0, 1]}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN/inf written as null at bad[1], worse" in err


# a fresh interpreter: run the CLI, then report torch's thread count
_THREADS = """import sys, torch
from dstab.cli import main
code = main(sys.argv[1:])
print("THREADS", torch.get_num_threads())
sys.exit(code)
"""


def _sample_threads(ckpt, tmp_path, env_threads: str, *extra: str) -> subprocess.CompletedProcess:
    argv = ["sample", str(ckpt), "-o", str(tmp_path / "s.png"), "-n", "2", "--sampler", "ddim", "--steps", "2"]
    env = {**os.environ, "DSTAB_THREADS": env_threads, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", _THREADS, *argv, "--device", "cpu", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_threads_option_and_dstab_threads_are_respected(ckpts, tmp_path):
    given = _sample_threads(ckpts["toy_dm"], tmp_path, "3", "--threads", "1")
    assert given.returncode == 0, given.stderr[-2000:]
    assert given.stdout.strip().endswith("THREADS 1")
    default = _sample_threads(ckpts["toy_dm"], tmp_path, "3")
    assert default.returncode == 0 and default.stdout.strip().endswith("THREADS 3")
    bad = _sample_threads(ckpts["toy_dm"], tmp_path, "many")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: DSTAB_THREADS='many' is not a whole number; set it to a thread count such as 1"
    )
