import json
import os
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from dstab import checkpoints, models
from dstab.diffusion import Diffusion
from dstab.errors import DstabError
from tests.conftest import TINY_UNET, randomise


def test_round_trip_is_bit_exact(tiny_dm_checkpoint, tiny_unet):
    b = checkpoints.load(tiny_dm_checkpoint)
    assert b.kind == "dm" and b.header["step"] == 7 and b.header["seed"] == 3
    assert b.header["diffusion"] == {"schedule": "linear", "T": 25, "prediction": "eps", "learn_sigma": False}
    assert b.header["storage_dtype"] == "float32" and len(b.header["weights_sha256"]) == 64
    theirs, ours = b.model.state_dict(), tiny_unet.state_dict()
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(theirs[k], ours[k]) for k in ours)
    assert not b.model.training
    assert b.sha256 == checkpoints.file_sha256(tiny_dm_checkpoint)


def test_float16_storage_loads_as_float32(tmp_path, tiny_unet):
    header = checkpoints.make_header(
        "dm", models.normalise(TINY_UNET), "digits", 1, 0, diffusion=Diffusion().to_config()
    )
    path = tmp_path / "half.safetensors"
    checkpoints.save(path, header, {"model": tiny_unet}, dtype=torch.float16)
    assert os.path.getsize(path) < 0.6 * sum(p.numel() * 4 for p in tiny_unet.parameters())
    b = checkpoints.load(path)
    for k, v in tiny_unet.state_dict().items():
        got = b.model.state_dict()[k]
        assert got.dtype == v.dtype
        assert torch.equal(got, v.half().float() if v.is_floating_point() else v)


def test_gan_round_trip(tmp_path):
    arch = {"generator": models.normalise({"arch": "mlp_g"}), "discriminator": models.normalise({"arch": "mlp_d"})}
    g, d = randomise(models.build(arch["generator"])), randomise(models.build(arch["discriminator"]), 1)
    path = tmp_path / "gan.safetensors"
    checkpoints.save(path, checkpoints.make_header("gan", arch, "toy2d", 5, 0), {"generator": g, "discriminator": d})
    b = checkpoints.load(path)
    z = torch.randn(4, 2)
    assert torch.equal(b.generator(z), g(z)) and torch.equal(b.discriminator(z), d(z))


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/dstab-pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    if os.path.exists("/tmp/dstab-pwned"):
        os.remove("/tmp/dstab-pwned")
    with pytest.raises(DstabError, match="refused"):
        checkpoints.load(path)
    assert not os.path.exists("/tmp/dstab-pwned")


def test_plain_state_dict_pickle_is_read_but_not_recognised(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(DstabError, match="match no layout dstab knows; closest is"):
        checkpoints.load(path)


def test_truncated_file_gives_a_clear_error(tiny_dm_checkpoint, tmp_path):
    raw = tiny_dm_checkpoint.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DstabError, match="truncated"):
        checkpoints.load(cut)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(DstabError, match="empty or truncated"):
        checkpoints.load(tmp_path / "empty.safetensors")


def _rewrite(path, out, header_edit=None, tensor_edit=None, rehash=True):
    tensors = load_file(path)
    meta = json.loads(checkpoints._read_safetensors(path.read_bytes(), path)[0]["dstab"])
    if header_edit:
        header_edit(meta)
    if tensor_edit:
        tensor_edit(tensors)
    if rehash:
        meta["weights_sha256"] = checkpoints.weights_sha256(tensors)
    save_file(tensors, out, metadata={"dstab": json.dumps(meta)})
    return out


def test_header_weights_mismatch(tiny_dm_checkpoint, tmp_path):
    def wider(h):
        h["arch"]["model_channels"] = 16

    bad = _rewrite(tiny_dm_checkpoint, tmp_path / "a.safetensors", header_edit=wider)
    with pytest.raises(DstabError, match="header and weights disagree on .* shapes"):
        checkpoints.load(bad)

    def drop(t):
        del t["model.out.2.weight"]

    bad = _rewrite(tiny_dm_checkpoint, tmp_path / "b.safetensors", tensor_edit=drop)
    with pytest.raises(DstabError, match=r"missing \['out.2.weight'\]"):
        checkpoints.load(bad)


def test_altered_weights_fail_the_sha256(tiny_dm_checkpoint, tmp_path):
    def poke(t):
        t["model.out.2.bias"] += 1

    bad = _rewrite(tiny_dm_checkpoint, tmp_path / "c.safetensors", tensor_edit=poke, rehash=False)
    with pytest.raises(DstabError, match="do not match the sha256"):
        checkpoints.load(bad)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(DstabError, match="no checkpoint at"):
        checkpoints.load(tmp_path / "nope.safetensors")
    txt = tmp_path / "notes.safetensors"
    txt.write_text("hello, this is not a checkpoint at all")
    with pytest.raises(DstabError, match="truncated|damaged"):
        checkpoints.load(txt)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, plain)
    with pytest.raises(DstabError, match="not a dstab checkpoint"):
        checkpoints.load(plain)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "c.bin"
    checkpoints.atomic_write_bytes(target, b"good")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        checkpoints.atomic_write_bytes(target, b"half")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["c.bin"]
