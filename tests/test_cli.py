import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from dstab.cli import main


def test_info_prints_the_header(tiny_dm_checkpoint, capsys):
    assert main(["info", str(tiny_dm_checkpoint)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["header"]["kind"] == "dm" and info["parameters"]["model"] > 0
    assert info["sha256"] and info["header"]["diffusion"]["T"] == 25


def test_sample_writes_a_png_grid(tiny_dm_checkpoint, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        main(
            [
                "sample",
                str(tiny_dm_checkpoint),
                "-o",
                str(out),
                "-n",
                "9",
                "--sampler",
                "ddim",
                "--steps",
                "5",
                "--scale",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    img = Image.open(out)
    assert img.size == (2 * (3 * 9 + 1), 2 * (3 * 9 + 1))


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no checkpoint at") and err.count("\n") == 1
    (tmp_path / "x.txt").write_text("not a model")
    assert main(["info", str(tmp_path / "x.txt")]) == 2
    assert "not a dstab checkpoint" in capsys.readouterr().err
    assert main(["zoo", "build", "--only", "no-such-run", "--root", str(tmp_path)]) == 2
    assert "no zoo entry matches 'no-such-run'" in capsys.readouterr().err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "dstab", "sample", str(tmp_path / "nope.pt"), "-o", "x.png"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().startswith("error: no checkpoint at")
    r = subprocess.run([sys.executable, "-m", "dstab", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = subprocess.run([sys.executable, "-m", "dstab", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and all(c in r.stdout for c in ("zoo", "sample", "info"))


def test_zoo_build_miniature_and_list(tmp_path, capsys):
    assert main(["zoo", "build", "--root", str(tmp_path), "--only", "toy2d/gan-s1", "--scale", "0.01"]) == 0
    capsys.readouterr()
    assert main(["zoo", "list", "--root", str(tmp_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "toy2d/gan-s1" in out and "early@3,final@30" in out and "all sha256 match" in out
    (tmp_path / "toy2d/gan-s1/final.safetensors").write_bytes(b"tampered")
    assert main(["zoo", "list", "--root", str(tmp_path), "--verify"]) == 1
    assert "sha256 mismatch" in capsys.readouterr().out


def test_what_the_system_refuses_about_a_given_path_is_one_line_and_exit_2(tiny_dm_checkpoint, tmp_path):
    """OSError (a directory given as a file, a file where a folder is needed, no permission) and a
    config that is not text: one line on stderr, exit 2, no traceback."""
    import os

    (tmp_path / "afile").write_text("x")
    (tmp_path / "grid.png").mkdir()
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00binary")
    ws = ["--root", str(tmp_path / "afile" / "runs")]
    cases = [
        (
            [
                "sample",
                str(tiny_dm_checkpoint),
                "-o",
                str(tmp_path / "grid.png"),
                "-n",
                "4",
                "--sampler",
                "ddim",
                "--steps",
                "2",
                "--device",
                "cpu",
            ],
            "is a folder; give the file",
        ),  # refused before sampling
        (["runs", *ws, "list"], "Not a directory"),
        (["compare", "g", *ws], "Not a directory"),
        (["runs", "--root", str(tmp_path / "afile"), "list"], "is a file, not a folder"),
        (["train", "--out", str(tmp_path / "r"), "--config", str(tmp_path / "bin.toml")], "not UTF-8 text"),
    ]
    if os.geteuid() != 0:  # root reads and writes whatever the mode bits say
        (tmp_path / "locked").mkdir(mode=0o500)
        cases.append((["runs", "--root", str(tmp_path / "locked" / "runs"), "list"], "Permission denied"))
    elif os.path.isdir("/sys/kernel"):  # sysfs refuses a new folder even to root
        cases.append((["runs", "--root", "/sys/kernel/dstab-test", "list"], "/sys/kernel/dstab-test: "))
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    for argv, match in cases:
        r = subprocess.run([sys.executable, "-m", "dstab", *argv], capture_output=True, text=True, env=env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, (argv, r.stderr[-1500:])
        assert lines[0].startswith("error: ") and match in lines[0], (argv, lines)
