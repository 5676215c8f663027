"""Crafted and damaged inputs, made by the tests in a temporary folder (never committed binaries)."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import torch
from safetensors.torch import save as st_save

from dstab import checkpoints, models

ARCH = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2, "time_dim": 8}
DIFFUSION = {"schedule": "linear", "T": 100, "prediction": "eps"}


def _tensors(arch=ARCH, role="model") -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {f"{role}.{k}": v.contiguous() for k, v in models.build(arch).state_dict().items()}


def header(**over) -> dict:
    h = checkpoints.make_header("dm", ARCH, "toy2d", 1, 0, diffusion=dict(DIFFUSION))
    h.update(over)
    return h


def native(path: Path, mutate=None, tensors=None, raw_header: str | None = None) -> Path:
    """A dstab .safetensors whose header `mutate(header)` may change; the weights hash is kept valid
    so that the loader's later checks are the ones reached."""
    tensors = _tensors() if tensors is None else tensors
    h = header(storage_dtype="float32", weights_sha256=checkpoints.weights_sha256(tensors))
    if mutate:
        h = mutate(h)
    text = raw_header if raw_header is not None else json.dumps(h)
    path.write_bytes(st_save(tensors, metadata={"dstab": text}))
    return path


def with_header(**fields):
    return lambda h: {**h, **fields}


def without(*keys):
    return lambda h: {k: v for k, v in h.items() if k not in keys}


def raw_safetensors(path: Path, table) -> Path:
    """A safetensors file whose JSON table is `table` as given (any JSON value)."""
    body = json.dumps(table).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    return path


def nan_weights(path: Path) -> Path:
    tensors = _tensors()
    first = next(iter(tensors))
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    return native(path, tensors=tensors)


def code_pickle(path: Path) -> Path:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch /tmp/dstab-fault-pwned",))

    path.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    return path


def zip_bomb(path: Path, inflated_mb: int = 1024) -> Path:
    """A torch-style zip whose one member inflates from ~1 MB to `inflated_mb` MB of zeros (built from
    one compressed block repeated: no inflated buffer is ever held here)."""
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("archive/data/0", "w", force_zip64=True) as member:
            for _ in range(inflated_mb):
                member.write(chunk)
        z.writestr("archive/data.pkl", pickle.dumps({}))
    return path


def many_members(path: Path, n: int) -> Path:
    """A zip of `n` empty stored members (zip64 end records past 65,535), as zipfile would write it, built
    with struct in one pass (zipfile's writestr takes seconds for 150,000 members)."""
    local, central, offset = [], [], 0
    for i in range(n):
        name = f"archive/data/{i}".encode()
        local.append(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name)
        central.append(
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset)
            + name
        )
        offset += len(local[-1])
    directory = b"".join(central)
    end64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(directory), offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(b"".join(local) + directory + end64 + locator + end)
    return path


def truncated_torch(path: Path) -> Path:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1000)}, buf)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def plain_state_dict(path: Path) -> Path:
    torch.save({"mystery.weight": torch.zeros(3, 3)}, path)
    return path


def diffusers_folder(root: Path, config, weights: bytes | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    if weights is not None:
        (root / "diffusion_pytorch_model.safetensors").write_bytes(weights)
    return root


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height (a decompression bomb's shape) with one tiny IDAT:
    PIL reads the size from the header; decoding would need width * height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"\0" * ((width + 1) * height if width * height <= 4096 else 64)  # a small one decodes whole
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


def many_tensors(path: Path, n: int) -> Path:
    """A safetensors file whose header lists `n` empty tensors (~67 bytes each): small on disk, costly to
    materialise."""
    table = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)}
    return raw_safetensors(path, {"__metadata__": {"format": "pt"}, **table})
