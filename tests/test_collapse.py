"""Collapse records: analytic cases on data and one-mode samples, the shipped digit classifier on real
digits, and the zoo manifest's records (present for every entry, reproduced from the checkpoints)."""

import math

import numpy as np
import pytest
import torch

from dstab import checkpoints, cli, collapse, data, zoo, zooindex
from dstab.errors import DstabError

TOY = "toy2d:8gaussians"
HAVE_ZOO = (zoo.zoo_root() / zoo.MANIFEST).exists()


def test_the_8_gaussians_data_covers_8_modes_and_a_one_mode_sample_covers_1():
    points = data.load(TOY).fixed_batch(2000, 0)
    reference = data.load(TOY).fixed_batch(2000, 1)
    full = collapse.record_of(points, TOY)
    assert full["coverage"] == 8 and not full["collapsed"] and full["precision"] > 0.98
    assert full["sliced_w2"] < 0.05  # two draws of the data: close to 0
    assert full["settings"] == collapse.TOY_SETTINGS and full["rule"] == collapse.RULES[TOY]
    one = torch.from_numpy(data.EIGHT_GAUSSIANS_CENTRES[3] + 0.1 * np.random.default_rng(0).standard_normal((500, 2)))
    rec = collapse.toy_record(one, reference)
    assert rec["coverage"] == 1 and rec["collapsed"] and rec["shares"][3] > 0.98
    seven = points[(points[:, 0] < 1.5) | (points[:, 1].abs() > 0.5)]  # drop the mode at (2, 0)
    assert collapse.toy_record(seven, reference)["coverage"] == 7
    assert not collapse.toy_record(seven, reference)["collapsed"]  # 7 of 8 still counts as converged


def test_class_record_entropy_and_confidence_are_exact():
    uniform = np.eye(10)[np.arange(1000) % 10]
    r = collapse.class_record(uniform)
    assert r["class_entropy"] == pytest.approx(math.log(10), abs=1e-4) and r["coverage"] == 10
    assert r["confident_share"] == 1.0 and not r["collapsed"]
    soft = np.full((4, 10), 0.1)
    soft[:, 2] = 0.1 + 1e-9
    one = collapse.class_record(soft)
    assert one["class_entropy"] == 0.0 and one["coverage"] == 1 and one["confident_share"] == 0.0 and one["collapsed"]
    five = collapse.class_record(np.eye(10)[np.arange(1000) % 5])  # five digits equally often: entropy ln 5
    assert five["class_entropy"] == pytest.approx(math.log(5), abs=1e-4) and five["collapsed"]


def test_real_digits_through_the_shipped_classifier():
    digits = data.load("digits").fixed_batch(512, 0)
    r = collapse.record_of(digits, "digits")
    assert r["coverage"] == 10 and r["class_entropy"] > 2.25 and r["confident_share"] > 0.9 and not r["collapsed"]


def test_unknown_dataset_is_refused():
    with pytest.raises(DstabError, match="no collapse measurement for dataset 'toy2d:swissroll'"):
        collapse.settings_for("toy2d:swissroll")


@pytest.mark.skipif(not HAVE_ZOO, reason="zoo not built")
def test_every_zoo_entry_has_its_collapse_record_and_the_flag_follows_its_rule():
    entries = zoo.read_manifest()["entries"]
    for eid, e in entries.items():
        c = e.get("collapse")
        assert c, f"{eid} has no collapse record"
        assert set(zoo.COLLAPSE_FIELDS) <= set(c) and c["rule"] == collapse.RULES[e["dataset"]]
        if e["dataset"] == TOY:
            assert c["collapsed"] == (c["coverage"] < 7) and 0.0 <= c["precision"] <= 1.0
        else:
            assert c["collapsed"] == (c["coverage"] < 7 or c["class_entropy"] < math.log(5))
    # the zoo's known cases: the toy2d seed-0 GAN covers one wedge, its DMs all eight modes
    assert entries["toy2d/gan-s0"]["collapse"]["collapsed"] and zooindex.is_collapsed(entries["toy2d/gan-s0"])
    assert zooindex.collapse_label(entries["toy2d/gan-s0"]) == "collapsed: 1 of 8 modes"
    assert not any(entries[f"toy2d/dm-eps-s{s}"]["collapse"]["collapsed"] for s in range(3))


@pytest.mark.skipif(not HAVE_ZOO, reason="zoo not built")
@pytest.mark.parametrize("eid", ["toy2d/gan-s0", "toy2d/gan-s1", "digits/gan-s0"])
def test_manifest_records_are_reproduced_from_the_checkpoints(eid, tmp_path, monkeypatch):
    """GANs sample in one forward pass: the stored numbers are what the checkpoint gives today (computed
    afresh in an empty cache, then read back from it)."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path))
    stored = zoo.read_manifest()["entries"][eid]["collapse"]
    bundle = checkpoints.load(zoo.checkpoint_path(eid))
    assert collapse.measure(bundle) == stored
    results = [f for f in tmp_path.rglob("*.json") if f.parent.name != "sizing"]  # not the memory guard's table
    assert len(results) == 1 and collapse.measure(bundle) == stored


def test_verify_names_an_entry_without_a_collapse_record(tmp_path, ckpts, capsys):
    from tests.conftest import write_zoo

    write_zoo(tmp_path, {"toy2d/gan-s0": ("gan", ["gan-init"], {"final": ckpts["toy_gan"]})})
    manifest = zoo.read_manifest(tmp_path)
    fields = {"dataset": TOY, "prediction": None, "seed": 0, "steps": 0, "loss_last": 0.0, "wall_time_s": 0.0}
    manifest["entries"]["toy2d/gan-s0"].update(fields)
    zoo._write_manifest(tmp_path, manifest)
    assert cli.main(["zoo", "list", "--root", str(tmp_path), "--verify"]) == 1
    assert "toy2d/gan-s0: no collapse record" in capsys.readouterr().out
    assert zoo.measure(tmp_path, log=lambda m: None) == 1  # fills it without touching the checkpoint
    assert cli.main(["zoo", "list", "--root", str(tmp_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "every collapse record present" in out and "toy2d/gan-s0" in out
