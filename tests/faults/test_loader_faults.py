"""Crafted and damaged checkpoints through `checkpoints.load`: each refused with one line that names
the file (or the path) and the problem, never a traceback, never code run, nothing written."""

from __future__ import annotations

import os
import random
import struct

import pytest

from dstab import checkpoints
from dstab.errors import DstabError

from . import crafted as c

RANDOM = random.Random(0).randbytes(4096)
BIG_UNET = {"arch": "unet", "image_size": 8, "in_channels": 1, "model_channels": 65536, "norm_groups": 32}


def _safetensors_bytes(path, payload: bytes):
    path.write_bytes(payload)
    return path


# (case id, builder(tmp) -> path, expected fragment of the one-line message)
CASES = [
    ("header-json-list", lambda d: c.native(d / "a.safetensors", raw_header="[1, 2]"), "JSON list"),
    ("header-not-json", lambda d: c.native(d / "a.safetensors", raw_header="{nope"), "not valid JSON"),
    ("header-no-arch", lambda d: c.native(d / "a.safetensors", c.without("arch")), "'arch'"),
    ("header-arch-string", lambda d: c.native(d / "a.safetensors", c.with_header(arch="unet")), "'arch'"),
    (
        "gan-without-generator",
        lambda d: c.native(d / "a.safetensors", c.with_header(kind="gan", arch={})),
        "'generator'",
    ),
    ("unknown-kind", lambda d: c.native(d / "a.safetensors", c.with_header(kind="vae")), "unknown kind"),
    ("dm-without-diffusion", lambda d: c.native(d / "a.safetensors", c.without("diffusion")), "'diffusion'"),
    ("diffusion-list", lambda d: c.native(d / "a.safetensors", c.with_header(diffusion=[1])), "'diffusion'"),
    (
        "T-1e11",
        lambda d: c.native(d / "a.safetensors", c.with_header(diffusion={**c.DIFFUSION, "T": 10**11})),
        "DSTAB_MAX_TIMESTEPS",
    ),
    (
        "T-zero",
        lambda d: c.native(d / "a.safetensors", c.with_header(diffusion={**c.DIFFUSION, "T": 0})),
        "diffusion steps T",
    ),
    (
        "T-text",
        lambda d: c.native(d / "a.safetensors", c.with_header(diffusion={**c.DIFFUSION, "T": "many"})),
        "diffusion steps T",
    ),
    (
        "diffusion-unknown-option",
        lambda d: c.native(d / "a.safetensors", c.with_header(diffusion={**c.DIFFUSION, "warp": 9})),
        "unknown diffusion options",
    ),
    (
        "mlp-100000-wide",
        lambda d: c.native(d / "a.safetensors", c.with_header(arch={**c.ARCH, "hidden": 100_000})),
        "DSTAB_MAX_PARAMS",
    ),
    ("unet-65536-channels", lambda d: c.native(d / "a.safetensors", c.with_header(arch=BIG_UNET)), "DSTAB_MAX_PARAMS"),
    ("mlp-depth-1e9", lambda d: c.native(d / "a.safetensors", c.with_header(arch={**c.ARCH, "depth": 10**9})), "depth"),
    (
        "arch-field-text",
        lambda d: c.native(d / "a.safetensors", c.with_header(arch={**c.ARCH, "hidden": "wide"})),
        "MLP option hidden must be a positive integer, got 'wide'",
    ),
    (
        "arch-unknown",
        lambda d: c.native(d / "a.safetensors", c.with_header(arch={"arch": "transformer"})),
        "unknown architecture",
    ),
    (
        "arch-weights-disagree",
        lambda d: c.native(d / "a.safetensors", c.with_header(arch={**c.ARCH, "hidden": 32})),
        "header and weights disagree",
    ),
    ("dataset-not-text", lambda d: c.native(d / "a.safetensors", c.with_header(dataset=["digits"])), "'dataset'"),
    (
        "format-version-text",
        lambda d: c.native(d / "a.safetensors", c.with_header(format_version="2")),
        "format_version",
    ),
    ("format-version-newer", lambda d: c.native(d / "a.safetensors", c.with_header(format_version=99)), "newer dstab"),
    (
        "weights-tampered",
        lambda d: c.native(d / "a.safetensors", c.with_header(weights_sha256="0" * 64)),
        "do not match the sha256",
    ),
    ("empty-file", lambda d: _safetensors_bytes(d / "a.safetensors", b""), "empty or truncated"),
    ("five-bytes", lambda d: _safetensors_bytes(d / "a.safetensors", b"\x01\x02\x03\x04\x05"), "empty or truncated"),
    (
        "header-length-beyond-file",
        lambda d: _safetensors_bytes(d / "a.safetensors", struct.pack("<Q", 10**9) + b"{}"),
        "truncated safetensors",
    ),
    ("table-json-list", lambda d: c.raw_safetensors(d / "a.safetensors", [1, 2]), "JSON list"),
    (
        "metadata-list",
        lambda d: c.raw_safetensors(d / "a.safetensors", {"__metadata__": [1]}),
        "metadata is a JSON list",
    ),
    ("random-safetensors", lambda d: _safetensors_bytes(d / "a.safetensors", RANDOM), "safetensors"),
    ("random-pt", lambda d: _safetensors_bytes(d / "a.pt", RANDOM), "not a readable PyTorch file"),
    (
        "random-pt-like-a-pickle",
        lambda d: _safetensors_bytes(d / "a.pt", b"\x80\x02\x93" + RANDOM),
        "not a readable PyTorch file",
    ),
    ("code-pickle", lambda d: c.code_pickle(d / "a.pt"), "could run code"),
    ("zip-bomb", lambda d: c.zip_bomb(d / "a.pt", 256), "inflate"),
    ("truncated-torch-zip", lambda d: c.truncated_torch(d / "a.pt"), "a.pt"),
    ("unknown-state-dict", lambda d: c.plain_state_dict(d / "a.pt"), "a.pt"),
    ("plain-folder", lambda d: (d / "empty-folder").mkdir() or d / "empty-folder", "no importer recognises"),
    ("missing-file", lambda d: d / "nothing-here.safetensors", "no checkpoint at"),
    ("diffusers-config-list", lambda d: c.diffusers_folder(d / "unet", [1, 2, 3]), "unet"),
    (
        "diffusers-zero-timesteps",
        lambda d: c.diffusers_folder(
            d / "unet", {"_class_name": "UNet2DModel", "num_train_timesteps": 0, "sample_size": 8}
        ),
        "unet",
    ),
    (
        "diffusers-truncated-weights",
        lambda d: c.diffusers_folder(
            d / "unet", {"_class_name": "UNet2DModel", "sample_size": 8}, struct.pack("<Q", 500) + b"{}"
        ),
        "unet",
    ),
]


@pytest.mark.parametrize(("builder", "fragment"), [(b, f) for _, b, f in CASES], ids=[i for i, _, _ in CASES])
def test_crafted_checkpoint_is_refused_on_one_line(tmp_path, builder, fragment):
    path = builder(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(DstabError) as info:
        checkpoints.load(path)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert fragment in message, message
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # the loader wrote nothing
    assert not os.path.exists("/tmp/dstab-fault-pwned")


def test_the_table_covers_enough_cases():
    assert len(CASES) >= 35


@pytest.mark.parametrize("text", ["bad\x00path.safetensors", "x" * 5000 + ".safetensors"])
def test_unusable_path_text_is_one_line(text):
    with pytest.raises(DstabError, match="not a usable checkpoint path"):
        checkpoints.load(text)


def test_a_zip_with_too_many_members_is_refused_from_its_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_MAX_ARCHIVE_MEMBERS", "50")
    with pytest.raises(DstabError, match="DSTAB_MAX_ARCHIVE_MEMBERS"):
        checkpoints.load(c.many_members(tmp_path / "a.pt", 60))
