"""`pip install .` (and `pip install -e .`) give a `dstab` command and library that work from any folder,
offline: the zoo is found (installed with the package as dstab/zoo_data), the results cache and the run
workspace are the user's (XDG), never the installed package's, which may be read-only.

Each fresh venv sees the test interpreter's packages through a .pth file (so that torch is not
reinstalled); pip installs dstab alone, without the index and without build isolation. The non-editable
install builds from a copy of the checkout, so nothing is written into the checkout itself.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCE = (".git", ".venv", "workspace", ".dstab-cache", "__pycache__", "build", "*.egg-info", ".pytest_cache")


def _venv(tmp_path_factory, editable: bool):
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "outer-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for var in ("PYTHONPATH", "DSTAB_ZOO", "DSTAB_CACHE", "DSTAB_WORKSPACE", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env.pop(var, None)
    source = REPO
    if not editable:
        source = tmp_path_factory.mktemp("src") / "dstab-src"
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    pip = [
        python,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        *(["-e"] if editable else []),
        str(source),
    ]
    r = subprocess.run(pip, capture_output=True, text=True, env=env, cwd=tmp_path_factory.mktemp("elsewhere"))
    assert r.returncode == 0, r.stdout + r.stderr
    return venv, env, Path(site)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return _venv(tmp_path_factory, editable=True)[:2]


@pytest.fixture(scope="module")
def wheel_installed(tmp_path_factory):
    """A non-editable install whose package folder is then made read-only, as a shared install is."""
    venv, env, site = _venv(tmp_path_factory, editable=False)
    package = site / "dstab"
    for path in [package, *package.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield venv, env, package
    for path in [package, *package.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)  # so that pytest can remove it


def _run(venv, env, args, cwd, **more_env):
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, env={**env, **more_env}, cwd=cwd
    )


@pytest.mark.slow
def test_the_dstab_command_works_from_another_folder(installed, tmp_path):
    venv, env = installed
    r = _run(venv, env, ["dstab", "--help"], tmp_path)
    assert r.returncode == 0 and all(c in r.stdout for c in ("sample", "convert", "surface")), r.stderr
    assert r.stdout.startswith("usage: dstab "), r.stdout[:80]  # named as the user typed it
    # the zoo is found beside the package, not the working folder
    r = _run(venv, env, ["dstab", "zoo", "list"], tmp_path)
    assert r.returncode == 0 and "digits/dm-eps-s0" in r.stdout, r.stderr
    code = "import dstab, json; print(json.dumps([dstab.__file__, dstab.__version__]))"
    r = _run(venv, env, ["python", "-c", code], tmp_path)
    path, version = json.loads(r.stdout)
    assert Path(path).resolve() == (REPO / "dstab" / "__init__.py").resolve() and version == "0.1.0"


@pytest.mark.slow
def test_dstab_zoo_moves_the_zoo(installed, tmp_path):
    venv, env = installed
    r = _run(venv, env, ["dstab", "zoo", "list"], tmp_path, DSTAB_ZOO=str(tmp_path / "nozoo"))
    assert r.returncode == 2 and r.stderr.startswith("error:") and "nozoo" in r.stderr
    assert "set DSTAB_ZOO" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_non_editable_install_finds_its_zoo_and_writes_only_to_the_users_folders(wheel_installed, tmp_path):
    venv, env, package = wheel_installed
    home = tmp_path / "home"
    env = {**env, "HOME": str(home)}
    before = sorted(p.relative_to(package) for p in package.rglob("*") if "__pycache__" not in p.parts)
    code = (
        "import dstab, json; from dstab import zooindex; print(json.dumps([dstab.__file__, str(zooindex.zoo_root())]))"
    )
    r = _run(venv, env, ["python", "-c", code], tmp_path)
    path, zoo = json.loads(r.stdout)
    assert Path(path).parent == package and Path(zoo) == package / "zoo_data"
    assert not Path(path).resolve().is_relative_to(REPO)

    r = _run(venv, env, ["dstab", "zoo", "list", "--verify"], tmp_path)
    assert r.returncode == 0 and "digits/dm-eps-s0" in r.stdout and "all sha256 match" in r.stdout, r.stderr
    r = _run(venv, env, ["dstab", "info", "digits/dm-eps-s0"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(package / "zoo_data" / "digits" / "dm-eps-s0" / "final.safetensors")
    # a setting the zoo does not ship: computed, stored in the user's cache (~/.cache/dstab)
    args = ["dstab", "surface", "toy2d/dm-eps-s0", "--timestep", "500", "--grid", "3", "--batch-size", "4"]
    r = _run(venv, env, [*args, "--out", str(tmp_path / "out"), "--threads", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((home / ".cache" / "dstab" / "surface").glob("*.json"))) == 1
    assert len(list((tmp_path / "out").glob("surface_*.npz"))) == 1
    # XDG_CACHE_HOME moves it, DSTAB_CACHE overrides both
    r = _run(venv, env, [*args, "--out", str(tmp_path / "out2")], tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert r.returncode == 0 and len(list((tmp_path / "xdg" / "dstab" / "surface").glob("*.json"))) == 1
    # the run workspace is the user's data folder
    r = _run(venv, env, ["dstab", "runs", "list"], tmp_path)
    assert r.returncode == 0 and str(home / ".local" / "share" / "dstab" / "workspace" / "runs") in r.stdout
    # building into the installed zoo is refused, naming DSTAB_ZOO
    r = _run(venv, env, ["dstab", "precompute", "--only", "surface"], tmp_path)
    assert r.returncode == 2 and "DSTAB_ZOO" in r.stderr and str(package / "zoo_data") in r.stderr
    after = sorted(p.relative_to(package) for p in package.rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # nothing written inside the installed package
