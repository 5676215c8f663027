"""Where dstab reads and writes by default: the zoo by one rule, the cache and the workspace in the user's
own folders (XDG), never inside the package; `dstab info` and `sample` take zoo ids (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dstab import cache, cli, confine, image_data, sizing, zooindex
from dstab.analysis import fid
from dstab.errors import DstabError

PACKAGE = Path(zooindex.__file__).resolve().parent


@pytest.fixture
def no_overrides(monkeypatch, tmp_path):
    for var in ("DSTAB_CACHE", "DSTAB_WORKSPACE", "DSTAB_ZOO", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_cache_is_the_users_and_every_cache_shares_it(no_overrides, monkeypatch, tmp_path):
    assert cache.user_dir() == no_overrides / ".cache" / "dstab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.user_dir() == tmp_path / "xdg" / "dstab"
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "mine"))
    assert cache.user_dir() == tmp_path / "mine"
    # results, decoded datasets, Frechet statistics and the memory guard's table: one root, one variable
    assert fid.cache_dir() == tmp_path / "mine" / "fd-stats"
    assert image_data.cache_dir() == tmp_path / "mine" / "datasets"
    assert sizing._table_path() == tmp_path / "mine" / "sizing" / "activations.json"
    assert not cache.user_dir().is_relative_to(PACKAGE.parent)


def test_the_workspace_is_the_users(no_overrides, monkeypatch, tmp_path):
    assert confine.workspace_root() == no_overrides / ".local" / "share" / "dstab" / "workspace"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert confine.workspace_root() == tmp_path / "data" / "dstab" / "workspace"
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    assert confine.workspace_root() == tmp_path / "ws"
    assert (tmp_path / "ws").resolve() in confine.allowed_roots()  # checkpoints there may be opened


def test_the_zoo_rule(no_overrides, monkeypatch, tmp_path):
    installed = tmp_path / "site" / "dstab" / "zoo_data"
    monkeypatch.setattr(zooindex, "INSTALLED_ZOO", installed)
    assert zooindex.zoo_root() == zooindex.CHECKOUT_ZOO  # a checkout: checkpoints/ beside the package
    installed.mkdir(parents=True)
    (installed / "manifest.json").write_text(json.dumps({"entries": {}}))
    assert zooindex.zoo_root() == installed  # a non-editable install: the copy installed with it
    with pytest.raises(DstabError, match="zoo installed with the package.*DSTAB_ZOO"):
        zooindex.writable_zoo()
    monkeypatch.setenv("DSTAB_ZOO", str(tmp_path / "mine"))
    assert zooindex.zoo_root() == tmp_path / "mine" and zooindex.writable_zoo() == tmp_path / "mine"
    with pytest.raises(DstabError, match=r"no zoo manifest at .*mine.*\(DSTAB_ZOO\); set DSTAB_ZOO"):
        zooindex.read_manifest()


def test_info_and_sample_take_zoo_ids(capsys, tmp_path):
    assert cli.main(["info", "toy2d/dm-eps-s0", "--stage", "early"]) == 0
    info = json.loads(capsys.readouterr().out)
    entry = zooindex.read_manifest()["entries"]["toy2d/dm-eps-s0"]["checkpoints"]["early"]
    assert info["path"] == str(zooindex.zoo_root() / entry["path"]) and info["sha256"] == entry["sha256"]
    out = tmp_path / "s.npz"
    assert cli.main(["sample", "toy2d/gan-s1", "--npz", str(out), "-n", "4", "--threads", "1"]) == 0
    assert out.exists()
    assert cli.main(["info", "toy2d/no-such-run"]) == 2
    assert "neither a checkpoint file nor a zoo id" in capsys.readouterr().err
