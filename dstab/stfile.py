"""safetensors files written and checked one tensor at a time.

`safetensors.torch.save` builds the whole file in memory (one more copy of the
weights); here each tensor is cast, hashed and written in turn, so saving costs
the largest tensor, not the checkpoint. The layout is safetensors' own: an 8-byte
little-endian header length, the JSON header (name -> dtype, shape, data_offsets;
"__metadata__" -> str -> str) padded with spaces to 8 bytes, then the tensors'
bytes back to back with no holes, here in name order.
"""

from __future__ import annotations

import hashlib
import json
import os

import torch
from safetensors import safe_open

from . import budgets
from .errors import DstabError
from .fileio import atomic_writer

DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on its JSON header
HASH_SLOT = "#" * 64  # where the weights' sha256 goes once every tensor has been hashed: same length


def hash_tensor(h, key: str, t: torch.Tensor) -> None:
    """Feed one named tensor (name, dtype, shape, bytes) to the hash `h` (dstab's weights_sha256)."""
    t = t.detach().cpu().contiguous()
    h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, no bytes copy


def stored(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A tensor as it is stored: floating tensors cast to `dtype`, all contiguous on the CPU."""
    t = t.detach().cpu()
    return (t.to(dtype) if t.is_floating_point() else t).contiguous()


def write(path: str | os.PathLike, tensors: dict[str, torch.Tensor], header: dict, dtype: torch.dtype) -> str:
    """Write `tensors` (floating ones as `dtype`) with `header` as the "dstab" metadata, its
    "weights_sha256" filled in; returns that hash. Atomic (see fileio.atomic_writer)."""
    keys = sorted(tensors)
    table, offset = {}, 0
    for key in keys:
        t = tensors[key]
        out_dtype = dtype if t.is_floating_point() else t.dtype
        size = t.numel() * torch.empty((), dtype=out_dtype).element_size()
        table[key] = {"dtype": DTYPES[out_dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size

    def encoded(sha: str) -> bytes:
        meta = json.dumps({**header, "weights_sha256": sha}, sort_keys=True)
        raw = json.dumps({"__metadata__": {"dstab": meta}, **table}, separators=(",", ":")).encode()
        return raw + b" " * (-len(raw) % 8)

    raw, h = encoded(HASH_SLOT), hashlib.sha256()
    single_pass = raw.count(HASH_SLOT.encode()) == 1  # else the header's own text holds the slot
    if not single_pass:
        for key in keys:
            hash_tensor(h, key, stored(tensors[key], dtype))
        raw = encoded(h.hexdigest())
    with atomic_writer(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for key in keys:
            t = stored(tensors[key], dtype)
            if single_pass:
                hash_tensor(h, key, t)
            f.write(t.reshape(-1).view(torch.uint8).numpy())
        if single_pass:
            f.seek(8 + raw.index(HASH_SLOT.encode()))
            f.write(h.hexdigest().encode())
    return h.hexdigest()


class _TooMany(Exception):
    pass


def parse_table(raw: bytes, path) -> dict:
    """A safetensors JSON header (`raw`, without its 8-byte length) as a dict, refused as soon as it holds
    more objects than DSTAB_MAX_TENSORS allows (one per tensor, plus the root and the metadata), before any
    tensor exists. Every JSON object needs a '{' byte, so a header with no more of them than the limit
    allows (every real checkpoint) is parsed plainly; only one with more is parsed object by object and
    stopped at the limit ('{' inside strings cannot refuse a file). A 20 MB header listing 300,000 empty
    tensors costs ~0.07 CPU s, a 3,000-tensor header ~2 ms."""
    limit = budgets.limit("DSTAB_MAX_TENSORS")
    count = 0

    def counted(pairs):
        nonlocal count
        count += 1
        if count > limit + 2:
            raise _TooMany
        return dict(pairs)

    try:
        table = json.loads(raw) if raw.count(b"{") <= limit + 2 else json.loads(raw, object_pairs_hook=counted)
    except _TooMany:
        raise DstabError(
            f"{path}: refused: its header lists more than {limit:,} tensors, above the DSTAB_MAX_TENSORS limit; "
            "raise DSTAB_MAX_TENSORS if the file is a real checkpoint"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DstabError(f"{path}: damaged safetensors header ({str(exc)[:200]})") from None
    if not isinstance(table, dict):
        raise DstabError(f"{path}: damaged safetensors header (a JSON {type(table).__name__}, not an object)")
    return table


def read_table(path: str | os.PathLike) -> dict:
    """The JSON header of the safetensors file at `path`, read alone (the 8-byte length, then that many
    bytes) and checked (`parse_table`) before any tensor is touched."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise DstabError(f"{path}: file is empty or truncated ({size} bytes); it is not a checkpoint")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise DstabError(f"{path}: truncated safetensors file (header says {n} bytes, file has {size})")
        if n > MAX_HEADER_BYTES:
            raise DstabError(f"{path}: refused: a {n / 1e6:.0f} MB header, above safetensors' own 100 MB limit")
        return parse_table(f.read(n), path)


def read_structure(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], str]:
    """(the "dstab" header, meta-device tensors of every name with its shape and dtype, the weights'
    sha256 recomputed from the file one tensor at a time): what a checkpoint holds, read without
    holding its weights in memory."""
    read_table(path)  # the tensor count first
    h = hashlib.sha256()
    shapes = {}
    with safe_open(str(path), framework="pt") as f:
        header = json.loads((f.metadata() or {}).get("dstab", "null"))
        for key in sorted(f.keys()):
            t = f.get_tensor(key)
            hash_tensor(h, key, t)
            shapes[key] = torch.empty(t.shape, dtype=t.dtype, device="meta")
            del t
    return header, shapes, h.hexdigest()
