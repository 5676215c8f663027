"""Checkpoints written and read one tensor at a time: the same safetensors file, no extra copies."""

import json

import pytest
import torch
from safetensors.torch import load_file

from dstab import checkpoints, models, stfile
from dstab.commands.convert import verified
from dstab.importers.state_dicts import read_state_dict
from tests.conftest import TINY_UNET, randomise


def save_unet(path, dtype=torch.float32, name="unet"):
    model = randomise(models.build(TINY_UNET))
    header = checkpoints.make_header(
        "dm", TINY_UNET, "digits", 3, 0, diffusion={"schedule": "cosine", "T": 10}, name=name
    )
    checkpoints.save(path, header, {"model": model}, dtype)
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_a_saved_file_is_plain_safetensors_with_the_weights_hash(tmp_path, dtype):
    model = save_unet(tmp_path / "m.safetensors", dtype)
    tensors = load_file(tmp_path / "m.safetensors")  # safetensors' own reader
    for key, value in model.state_dict().items():
        want = value.to(dtype) if value.is_floating_point() else value
        assert torch.equal(tensors[f"model.{key}"], want), key
    with open(tmp_path / "m.safetensors", "rb") as f:
        raw = f.read()
    meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    header = json.loads(meta["dstab"])
    assert header["weights_sha256"] == checkpoints.weights_sha256(tensors)
    assert header["storage_dtype"] == str(dtype).removeprefix("torch.") and header["step"] == 3
    back = checkpoints.load(tmp_path / "m.safetensors")  # verifies the hash itself
    assert back.model.input_blocks[0][0].weight.dtype == torch.float32


def test_a_header_that_contains_the_hash_slot_still_gets_the_right_hash(tmp_path):
    save_unet(tmp_path / "m.safetensors", name=stfile.HASH_SLOT)
    bundle = checkpoints.load(tmp_path / "m.safetensors")
    assert bundle.header["name"] == stfile.HASH_SLOT


def test_read_structure_holds_shapes_not_weights(tmp_path):
    save_unet(tmp_path / "m.safetensors")
    header, shapes, sha = stfile.read_structure(tmp_path / "m.safetensors")
    assert sha == header["weights_sha256"] and all(t.device.type == "meta" for t in shapes.values())
    bundle = verified(str(tmp_path / "m.safetensors"))
    assert bundle.kind == "dm" and next(bundle.model.parameters()).device.type == "meta"


def test_imported_modules_take_the_mapped_tensors_and_loads_do_not_share_them(tmp_path):
    torch.manual_seed(0)
    arch = {"arch": "dcgan_g", "image_size": 64, "channels": 3, "nz": 10, "ngf": 4}  # pytorch/examples' layout
    g = models.build(arch)
    torch.save(g.state_dict(), tmp_path / "netG_epoch_1.pth")
    state = read_state_dict(tmp_path / "netG_epoch_1.pth")
    filled = checkpoints.build_filled(arch, state, "g")
    key = "main.0.weight"
    assert filled.state_dict()[key].data_ptr() == state[key].data_ptr()  # no copy
    first = checkpoints.load(tmp_path / "netG_epoch_1.pth")
    with torch.no_grad():
        first.generator.main[0].weight.add_(1.0)  # e.g. training the loaded model further
    again = checkpoints.load(tmp_path / "netG_epoch_1.pth")
    assert torch.equal(again.generator.main[0].weight, g.main[0].weight)
    assert torch.equal(torch.load(tmp_path / "netG_epoch_1.pth", weights_only=True)[key], g.main[0].weight)
