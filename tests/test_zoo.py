"""The committed zoo: complete, intact, loadable, and its samples look like data."""

from dataclasses import asdict

import pytest
import torch

from dstab import checkpoints, data, zoo
from dstab.sampling import generate
from dstab.training.config import TrainConfig

pytestmark = pytest.mark.skipif(not (zoo.zoo_root() / zoo.MANIFEST).exists(), reason="zoo not built")


@pytest.fixture(scope="module")
def manifest():
    return zoo.read_manifest()


def test_manifest_sha256_matches_files(manifest):
    assert zoo.verify() == []


def test_every_spec_is_built(manifest):
    built, known = set(manifest["entries"]), {s.id for s in zoo.specs()}
    assert built == known, f"not built: {sorted(known - built)}; `python -m dstab zoo build --only <id>`"


def test_zoo_composition(manifest):
    entries = manifest["entries"]
    for family in ("digits", "toy2d"):
        groups = {}
        for eid, e in entries.items():
            if eid.startswith(family + "/"):
                for g in e["groups"]:
                    groups.setdefault(g, []).append(eid)
        assert len(groups["dm-init"]) == 3 and len(groups["gan-init"]) == 3
        assert len(groups["dm-structure"]) == 2 and len(groups["gan-structure"]) == 2
        init = [entries[i]["train_config"] for i in groups["dm-init"]]
        # identical but for the init seed
        assert len({c["seed"] for c in init}) == 3
        assert all(
            {k: v for k, v in c.items() if k != "seed"} == {k: v for k, v in init[0].items() if k != "seed"}
            for c in init
        )
        assert entries[f"{family}/dm-x0-s0"]["prediction"] == "x0"
        # the paper's x0 test: x0-prediction DMs of three inits, the eps group's recipe but for the prediction
        x0 = [entries[i]["train_config"] for i in groups["x0-init"]]
        assert len(x0) == 3
        assert [c["seed"] for c in x0] == [c["seed"] for c in init]
        for a, b in zip(x0, init):  # entries built later record the trainer's newer fields at their defaults
            a, b = asdict(TrainConfig.from_dict(a)), asdict(TrainConfig.from_dict(b))
            assert a["diffusion"] == {**b["diffusion"], "prediction": "x0"}
            assert {k: v for k, v in a.items() if k != "diffusion"} == {k: v for k, v in b.items() if k != "diffusion"}
    for e in entries.values():
        early, final = e["checkpoints"]["early"]["step"], e["checkpoints"]["final"]["step"]
        assert early == int(0.1 * final) and final == e["steps"]
        assert e["loss_last"] < e["loss_first"] or e["kind"] == "gan"
        assert (zoo.zoo_root() / e["samples"]).exists()


def test_zoo_size_is_under_40_MB():
    total = sum(p.stat().st_size for p in zoo.zoo_root().rglob("*") if p.is_file())
    assert total < 40e6


def test_every_entry_loads_and_samples(manifest):
    for eid, e in manifest["entries"].items():
        for stage in ("early", "final"):
            b = checkpoints.load(zoo.checkpoint_path(eid, stage))
            assert b.kind == e["kind"] and b.header["step"] == e["checkpoints"][stage]["step"]
        x = generate(b, 4, seed=0, sampler="ddim", steps=10)
        assert x.shape == (4, *data.load(e["dataset"]).sample_shape) and torch.isfinite(x).all()


def _nearest_distance(samples, reference):
    return torch.cdist(samples.flatten(1), reference.flatten(1)).min(dim=1).values


@pytest.mark.parametrize("eid", ["digits/dm-eps-s0", "digits/gan-s0"])
def test_final_digit_models_produce_digits(eid):
    """Samples sit much closer to real digits than noise does; an 8x8 digit
    has 64 pixels, so a per-pixel RMS distance is the natural scale."""
    digits = data.load("digits").data
    b = checkpoints.load(zoo.checkpoint_path(eid))
    x = generate(b, 32, seed=1, sampler="ddim", steps=50)
    noise = torch.rand(32, 1, 8, 8) * 2 - 1
    ours = _nearest_distance(x, digits).median() / 8
    blank = _nearest_distance(noise, digits).median() / 8
    assert ours < 0.5 * blank


def test_toy_models_put_samples_on_the_eight_modes():
    for eid in ("toy2d/dm-eps-s0", "toy2d/gan-s0"):
        x = generate(checkpoints.load(zoo.checkpoint_path(eid)), 512, seed=0, sampler="ddim", steps=50)
        assert x.norm(dim=1).median().item() == pytest.approx(2.0, abs=0.35)


def test_unknown_entry_and_stage():
    from dstab.errors import DstabError

    with pytest.raises(DstabError, match="no zoo entry 'digits/vae'"):
        zoo.checkpoint_path("digits/vae")
    with pytest.raises(DstabError, match="no 'middle' checkpoint"):
        zoo.checkpoint_path("digits/gan-s0", "middle")
