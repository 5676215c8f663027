import json
import subprocess
import sys

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
