"""Size bombs: a small file (or option) that would make the server allocate without bound is refused
from sizes read before any allocation: each refusal reads a bounded number of bytes (the kernel's
count, /proc/self/io, not a clock), with the process's peak RSS (PyTorch included) below 1 GiB
(issue 15). Measured in a fresh child process that imports only what loading
needs (dstab.checkpoints, dstab.data), so nothing this test session has allocated counts: its peak
RSS is the kernel's `ru_maxrss` of that one child (`os.wait4`, in a small launcher: see LAUNCH),
cross-checked by the child's own `resource` and VmHWM readings, and what the bombs add beyond the
imports is bounded separately."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dstab.errors import DstabError

from . import crafted as c
from .test_loader_faults import BIG_UNET

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, os, resource, sys
from dstab import checkpoints, data
from dstab.errors import DstabError
try:  # warm-up, uncounted: the first load pays one-off lazy imports, which are not part of refusing a bomb
    checkpoints.load(json.loads(sys.argv[1])[0][1])
except DstabError:
    pass
base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # PyTorch and the loaders imported
out = []


def read_bytes():  # every byte this process has read through read() and friends, files or not
    return next(int(l.split()[1]) for l in open("/proc/self/io") if l.startswith("rchar:"))


for kind, target in json.loads(sys.argv[1]):
    start = read_bytes()
    try:
        checkpoints.load(target) if kind == "checkpoint" else data.load(target)
        outcome = "accepted"
    except DstabError as exc:
        outcome = str(exc)
    out.append({"target": target, "read": read_bytes() - start, "outcome": outcome})
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
hwm_mb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("streamlit", "plotly", "pandas", "matplotlib", "scipy")
               or m.startswith(("dstab.analysis", "dstab.training", "dstab.runs", "dstab.plots")))
print(json.dumps({"cases": out, "peak_rss_mb": rss_mb, "hwm_mb": hwm_mb, "base_rss_mb": base_mb, "heavy": heavy}),
      flush=True)
os._exit(0)  # no interpreter teardown: unloading PyTorch's modules alone peaks ~120 MiB higher, no refusal's doing
"""


# Linux keeps a process's ru_maxrss across fork + exec: a child forked from this test session (about
# 1 GiB resident after the full suite's imports) starts with the session's RSS as its "peak". So the probe
# is started by a tiny launcher (python -S, ~10 MiB), whose child's ru_maxrss is the probe's own.
LAUNCH = r"""
import json, os, subprocess, sys
proc = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss, "out": out.decode()}))
"""


def run_child(argv: list[str], env: dict, cwd: Path) -> tuple[int, str, str, float]:
    """(exit code, stdout, stderr, peak RSS in MiB) of one child process; the RSS is that child's own
    `ru_maxrss` from `os.wait4` in a small launcher (see LAUNCH)."""
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCH, json.dumps(argv)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            check=True,
        )
        err.seek(0)
        got = json.loads(done.stdout)
        return got["code"], got["out"], err.read().decode(errors="replace"), got["maxrss_kb"] / 1024


def test_bombs_are_refused_from_their_headers_with_bounded_reads_and_memory(tmp_path):
    wide = c.with_header(arch={**c.ARCH, "hidden": 100_000})  # ~40 GB of float32 weights
    long_T = c.with_header(diffusion={**c.DIFFUSION, "T": 10**11})  # 800 GB of float64 betas
    images = tmp_path / "images"
    images.mkdir()
    c.png_header_only(images / "huge.png", 30000, 30000)  # 900 Mpixels to decode
    c.png_header_only(images / "small.png", 8, 8)
    cases = [
        ("checkpoint", str(c.native(tmp_path / "wide.safetensors", wide))),
        ("checkpoint", str(c.native(tmp_path / "unet.safetensors", c.with_header(arch=BIG_UNET)))),
        ("checkpoint", str(c.native(tmp_path / "T.safetensors", long_T))),
        ("checkpoint", str(c.zip_bomb(tmp_path / "bomb.pt", 1024))),  # 1 GiB from ~1 MB
        ("dataset", f"folder:{images}?size=8&channels=1"),
        # issue 27: 300,000 empty tensors in a 20 MB header (was 8.3 CPU s, 1,046 MB); 150,007 zip members
        ("checkpoint", str(c.many_tensors(tmp_path / "tensors.safetensors", 300_000))),
        ("checkpoint", str(c.many_members(tmp_path / "members.pt", 150_007))),
    ]
    env = {
        "DSTAB_CACHE": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
    }
    code, out, err, child_peak_mb = run_child([sys.executable, "-c", PROBE, json.dumps(cases)], env, tmp_path)
    assert code == 0, err[-2000:]
    seen = json.loads(out.strip().splitlines()[-1])
    outcomes = [case["outcome"] for case in seen["cases"]]
    assert "DSTAB_MAX_PARAMS" in outcomes[0] and "DSTAB_MAX_PARAMS" in outcomes[1]
    assert "DSTAB_MAX_TIMESTEPS" in outcomes[2] and "inflate" in outcomes[3]
    assert outcomes[4] == "accepted"  # the bomb image is skipped and counted, the small one is used
    assert "more than 20,000 tensors" in outcomes[5] and "DSTAB_MAX_TENSORS" in outcomes[5]
    assert "lists 150,007 members" in outcomes[6] and "DSTAB_MAX_ARCHIVE_MEMBERS" in outcomes[6]
    # sizes from headers: each reads at most a few MiB (measured 3 kB per checkpoint, 64 kB for the zip, 0.45 MB
    # for the image folder), never the GiBs it describes; the 300,000-tensor file is all header (20 MB, below
    # safetensors' own 100 MB cap) and is read once, nothing made of it
    tensors = seen["cases"][5]
    assert tensors["read"] < Path(tensors["target"]).stat().st_size + (64 << 10), tensors
    for case in seen["cases"][:5] + seen["cases"][6:]:
        assert case["read"] < 4 << 20, case
    # the child's peak, PyTorch's import included (~0.5 GiB here; it varies by install), is below 1 GiB as
    # the kernel reports it for that process, and the child's own reading agrees
    assert child_peak_mb < 1024, (child_peak_mb, seen)
    assert abs(child_peak_mb - seen["peak_rss_mb"]) < 16, (child_peak_mb, seen)
    assert abs(child_peak_mb - seen["hwm_mb"]) < 16, (child_peak_mb, seen)  # the kernel's peak of this image
    assert seen["peak_rss_mb"] - seen["base_rss_mb"] < 128, seen  # the bombs themselves add next to nothing
    assert seen["heavy"] == [], seen["heavy"]  # the child imported what loading needs, nothing more


def test_the_tensor_bound_counts_objects_not_braces(tmp_path, monkeypatch):
    """DSTAB_MAX_TENSORS bounds the header's JSON objects exactly: the limit itself loads, one more is
    refused, and '{' bytes inside strings (a metadata value full of them) refuse nothing."""
    from dstab import stfile

    monkeypatch.setenv("DSTAB_MAX_TENSORS", "5")

    def header(n_tensors, note=""):
        table = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n_tensors)}
        return json.dumps({"__metadata__": {"note": note}, **table}).encode()

    assert len(stfile.parse_table(header(5), "five")) == 6  # five tensors and the metadata
    with pytest.raises(DstabError, match=r"^six: refused: its header lists more than 5 tensors"):
        stfile.parse_table(header(6), "six")
    braces = header(2, note="{" * 1000)
    assert braces.count(b"{") == 1004
    table = stfile.parse_table(braces, "braces")
    assert sorted(table) == ["__metadata__", "t0", "t1"] and table["__metadata__"]["note"] == "{" * 1000


@pytest.mark.parametrize(
    ("side", "reason"),
    [
        (10_000, "ValueError: 10000 x 10000 pixels, above DSTAB_MAX_IMAGE_PIXELS"),  # dstab's limit, 2**26
        (30_000, "DecompressionBombError: Image size (900000000 pixels) exceeds limit"),  # PIL's own, at open
    ],
)
def test_the_bomb_image_is_skipped_and_counted(tmp_path, monkeypatch, side, reason):
    from dstab import data

    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    c.png_header_only(images / "huge.png", side, side)
    c.png_header_only(images / "small.png", 8, 8)
    with pytest.warns(UserWarning, match="skipped 1 unreadable images"):
        ds = data.load(f"folder:{images}?size=8&channels=1")
    assert len(ds) == 1 and len(ds.meta["skipped"]) == 1
    assert ds.meta["skipped"][0].startswith(f"huge.png: {reason}")
