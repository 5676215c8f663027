"""Image datasets too large to hold as float tensors: CIFAR-10 and folders of images.

Both are decoded once, one batch file or one image at a time, into a uint8
array on disk (a `.npy` in the dataset cache, keyed by the source files'
names, sizes and times) and then memory-mapped: an `ImageArray` turns only the
rows asked for into float32 in [-1, 1]. So `Dataset.fixed_batch` and
`Dataset.batches` work as for the small in-memory sets, while memory stays at
one batch. The cache lives in the user cache (`dstab.cache.user_dir`: $DSTAB_CACHE, default ~/.cache/dstab)/datasets.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch

from . import budgets
from .errors import DstabError
from .fileio import atomic_write_bytes, user_cache_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
BATCH_ROWS = 10000
CIFAR_SPLITS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class ImageArray:
    """Read-only, tensor-like view of uint8 (N, C, H, W) images: indexing gives float32 in [-1, 1]."""

    def __init__(self, array: np.ndarray):
        self.array = array

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    def __len__(self) -> int:
        return self.array.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        rows = np.asarray(self.array[index], dtype=np.float32)
        return torch.from_numpy(rows / 127.5 - 1.0)

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        """The whole set in order, `size` images at a time (FID statistics, evaluation)."""
        for start in range(0, len(self), size):
            yield self[start : start + size]


def cache_dir() -> Path:
    return user_cache_dir() / "datasets"


def _fingerprint(files: list[Path], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cached_uint8(
    key: str, count: int, shape: tuple[int, ...], fill: Callable[[np.ndarray], dict]
) -> tuple[np.ndarray, dict]:
    """A memory-mapped uint8 array of `count` rows of `shape`, built once by `fill(out)`, which
    writes rows and returns metadata with "rows" (how many it wrote). Built under a temporary
    name and renamed, so an interrupted build is never mistaken for a finished one."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    data, meta_file = root / f"{key}.npy", root / f"{key}.json"
    if not (data.is_file() and meta_file.is_file()):
        tmp = root / f".{key}.{os.getpid()}.npy"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, *shape))
        meta = fill(out)
        out.flush()
        del out
        os.replace(tmp, data)
        atomic_write_bytes(meta_file, json.dumps(meta).encode())
    meta = json.loads(meta_file.read_text())
    return np.load(data, mmap_mode="r")[: meta["rows"]], meta


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles; this unpickler builds numpy arrays and plain
    containers only, so a tampered batch file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), list(batch[b"labels"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DstabError(f"{path}: not a CIFAR-10 python batch ({exc}); re-extract cifar-10-python.tar.gz") from None
    shape_ok = data.ndim == 2 and data.shape[0] <= BATCH_ROWS and data.shape[1] == 3072
    if data.dtype != np.uint8 or not shape_ok or len(labels) != data.shape[0]:
        raise DstabError(f"{path}: expected uint8 data of shape (n <= 10000, 3072) with n labels, got {data.shape}")
    return data, labels


def cifar_folder(path: Path) -> Path:
    """The folder holding the batches: `path` itself or its cifar-10-batches-py."""
    inner = path / "cifar-10-batches-py"
    return inner if inner.is_dir() else path


class NotDownloaded(DstabError):
    """A dataset that would be downloaded, asked for where downloading is off (`no_download`)."""


_DOWNLOADS = contextvars.ContextVar("dstab_image_downloads", default=True)


@contextlib.contextmanager
def no_download():
    """Within it, a dataset that is not downloaded yet raises `NotDownloaded` instead of downloading
    (a dry run checks configs without fetching 170 MB)."""
    token = _DOWNLOADS.set(False)
    try:
        yield
    finally:
        _DOWNLOADS.reset(token)


def download_cifar10() -> Path:
    """torchvision's CIFAR-10 download (checksummed) into the cache."""
    root = cache_dir() / "cifar10-download"
    if not (root / "cifar-10-batches-py").is_dir():
        if not _DOWNLOADS.get():
            raise NotDownloaded(f"CIFAR-10 is not downloaded yet ({root}): a run downloads it (~170 MB) first")
        try:
            from torchvision.datasets.utils import download_and_extract_archive

            url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
            download_and_extract_archive(url, str(root), md5="c58f30108f718f92721af3b95e74349a")
        except Exception as exc:  # noqa: BLE001 - any network failure means the same to the user
            raise DstabError(
                f"could not download CIFAR-10 ({type(exc).__name__}: {exc}); offline? Download "
                "cifar-10-python.tar.gz, extract it and use the spec cifar10:/path/to/cifar-10-batches-py"
            ) from None
    return root / "cifar-10-batches-py"


def load_cifar10(option: str) -> tuple[ImageArray, dict]:
    """Spec option: '' (download), or '/path[?split=train|test]'."""
    where, _, query = option.partition("?")
    params = dict(parse_qsl(query))
    split = params.get("split", "train")
    if split not in CIFAR_SPLITS:
        raise DstabError(f"unknown CIFAR-10 split {split!r}; choose train or test")
    folder = cifar_folder(Path(where).expanduser()) if where else download_cifar10()
    if not folder.is_dir():
        raise DstabError(f"no CIFAR-10 folder at {folder}")
    files = [folder / name for name in CIFAR_SPLITS[split]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DstabError(f"{folder}: CIFAR-10 {split} batches missing: {missing}; re-extract cifar-10-python.tar.gz")

    def fill(out: np.ndarray) -> dict:
        row, labels = 0, []
        for f in files:
            data, lab = _cifar_batch(f)
            out[row : row + len(data)] = data.reshape(-1, 3, 32, 32)
            row, labels = row + len(data), labels + lab
        return {"rows": row, "labels": labels}

    key = "cifar10-" + _fingerprint(files, {"split": split})
    # a batch holds at most 10000 images; rows beyond those written are cut off (sparse on disk)
    array, meta = cached_uint8(key, BATCH_ROWS * len(files), (3, 32, 32), fill)
    return ImageArray(array), {"source": str(folder), "split": split, "labels": meta["labels"]}


def write_random_cifar10(folder: Path, per_batch: int, seed: int = 0) -> Path:
    """A CIFAR-10 folder of random images in the layout `load_cifar10` reads (data_batch_1..5 and
    test_batch: pickled dicts with bytes keys, rows of 1024 red, 1024 green, 1024 blue bytes), for a
    machine without CIFAR-10: the GPU check (bench/gpu_train.py) and the tests. Returns `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for b, name in enumerate(CIFAR_SPLITS["train"] + CIFAR_SPLITS["test"]):
        batch = {
            b"batch_label": name.encode(),
            b"labels": [(b * per_batch + i) % 10 for i in range(per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img{b}_{i}.png".encode() for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return folder


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def eight_bit(img):
    """`img` with 8-bit channels, its values scaled from their real range: 16-bit integers by 255/65535
    (a 32768 pixel reads as 128, not as a clipped 255), 32-bit integers as 16-bit ones when they fit,
    floats from [0, 1]. Other ranges are refused (ValueError): no silent clipping or truncation."""
    from PIL import Image

    if img.mode not in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return img
    values = np.asarray(img)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if img.mode == "F":
        if not (np.isfinite(values).all() and lo >= 0.0 and hi <= 1.0):
            raise ValueError(f"float image with values in [{lo:.4g}, {hi:.4g}], not [0, 1]")
        scaled = values * 255.0
    elif lo < 0 or hi > 65535:
        raise ValueError(f"integer image with values in [{lo:.0f}, {hi:.0f}], beyond 16 bits")
    else:
        scaled = values.astype(np.float64) * (255.0 / 65535.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def square_image(path: Path, size: int, mode: str) -> np.ndarray:
    """(C, size, size) uint8: shorter side scaled to `size` (bicubic), centre cropped.
    Raises OSError/ValueError for files PIL cannot decode, and ValueError before decoding an image
    of more than DSTAB_MAX_IMAGE_PIXELS pixels (a decompression bomb: PIL reads the size from the
    header alone)."""
    from PIL import Image

    with Image.open(path) as img:
        pixels = img.width * img.height
        if pixels > budgets.limit("DSTAB_MAX_IMAGE_PIXELS"):
            raise ValueError(f"{img.width} x {img.height} pixels, above DSTAB_MAX_IMAGE_PIXELS")
        img.load()
        img = eight_bit(img)
        img = img.convert("RGBA").convert(mode) if img.mode in ("P", "LA") else img.convert(mode)
        scale = size / min(img.size)
        w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
        img = img.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (w - size) // 2, (h - size) // 2
        arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_folder(option: str) -> tuple[ImageArray, dict]:
    """Spec option: '/path[?size=32&channels=3]'; corrupt images are skipped and counted."""
    where, _, query = option.partition("?")
    params = dict(parse_qsl(query))
    try:
        size, channels = int(params.get("size", 32)), int(params.get("channels", 3))
    except ValueError:
        raise DstabError(f"folder dataset options size and channels must be integers, got {params}") from None
    budgets.check_count(size * size, "DSTAB_MAX_IMAGE_PIXELS", f"folder dataset size={size} (pixels per image)")
    if size < 4 or channels not in (1, 3):
        raise DstabError(f"folder dataset needs size >= 4 and channels 1 or 3, got size={size} channels={channels}")
    folder = Path(where).expanduser()
    if not where or not folder.is_dir():
        raise DstabError(f"no image folder at {where!r}; use the spec folder:/path/to/images?size=32")
    files = image_files(folder)
    if not files:
        raise DstabError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it or below it")
    mode = "RGB" if channels == 3 else "L"
    from PIL import Image

    def fill(out: np.ndarray) -> dict:
        row, skipped = 0, []
        for f in files:
            try:
                out[row] = square_image(f, size, mode)
                row += 1
            # PIL's errors for corrupt, truncated, oversized or out-of-range files
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                skipped.append(f"{f.relative_to(folder)}: {type(exc).__name__}: {str(exc)[:120]}")
        return {"rows": row, "skipped": skipped}

    # "decoder": 2 since 16-bit and float images are scaled rather than clipped
    key = "folder-" + _fingerprint(files, {"size": size, "channels": channels, "decoder": 2})
    array, meta = cached_uint8(key, len(files), (channels, size, size), fill)
    if meta["rows"] == 0:
        raise DstabError(f"{folder}: none of its {len(files)} images could be decoded")
    if meta["skipped"]:
        warnings.warn(
            f"{folder}: skipped {len(meta['skipped'])} unreadable images, e.g. {meta['skipped'][0]}", stacklevel=3
        )
    return ImageArray(array), {"source": str(folder), "skipped": meta["skipped"], "size": size}
