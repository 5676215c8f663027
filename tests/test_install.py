"""`pip install -e .` gives a `dstab` command that works from any folder, offline.

The fresh venv sees the test interpreter's packages through a .pth file (so that torch is
not reinstalled); pip installs dstab alone, without the index and without build isolation.
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "outer-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", str(REPO)]
    r = subprocess.run(pip, capture_output=True, text=True, env=env, cwd=tmp_path_factory.mktemp("elsewhere"))
    assert r.returncode == 0, r.stdout + r.stderr
    return venv, env


@pytest.mark.slow
def test_the_dstab_command_works_from_another_folder(installed, tmp_path):
    venv, env = installed
    cli = venv / "bin" / "dstab"
    r = subprocess.run([str(cli), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and all(c in r.stdout for c in ("sample", "convert", "surface")), r.stderr
    assert r.stdout.startswith("usage: dstab "), r.stdout[:80]  # named as the user typed it
    # the zoo is found beside the package, not the working folder
    r = subprocess.run([str(cli), "zoo", "list"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "digits/dm-eps-s0" in r.stdout, r.stderr
    code = "import dstab, json; print(json.dumps([dstab.__file__, dstab.__version__]))"
    python = str(venv / "bin" / "python")
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    path, version = json.loads(r.stdout)
    assert Path(path).resolve() == (REPO / "dstab" / "__init__.py").resolve() and version == "0.1.0"


@pytest.mark.slow
def test_dstab_zoo_moves_the_zoo(installed, tmp_path):
    venv, env = installed
    r = subprocess.run(
        [str(venv / "bin" / "dstab"), "zoo", "list"],
        capture_output=True,
        text=True,
        env={**env, "DSTAB_ZOO": str(tmp_path / "nozoo")},
        cwd=tmp_path,
    )
    assert r.returncode == 2 and r.stderr.startswith("error:") and "nozoo" in r.stderr
