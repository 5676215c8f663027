"""Krylov vectors kept in a scratch file, not in the process's memory (a Hessian at CIFAR scale).

Why: at 35.7M parameters one vector of n is 136 MiB, and the product alone (weights, the gradient
graph, its input and output) peaks at ~2.9x the model plus one forward/backward. A capped top-3's
basis of 8 vectors in RAM took that to 6.4x (bench/RESULTS.md). Lanczos reads its basis only in
passes (reorthogonalisation, Ritz vectors), so the basis can live in a file: its pages sit in the
kernel's page cache while memory is free and go to disk under pressure, instead of in the process's
anonymous memory, which can only grow until the OOM killer acts. Rows are read and written with
pread / pwrite a slab of columns at a time (SLAB_BYTES over all rows): the process holds a slab,
never a whole vector, of a spilled row. The working vectors (the product's input and output) stay
in RAM.

Where: $DSTAB_SCRATCH, else the user cache's `scratch` folder. The file is created unlinked
(`tempfile.TemporaryFile`): it never shows in the folder, and the kernel frees its blocks when the
run ends, a crash included. A folder on tmpfs or ramfs would save nothing (its pages are RAM), so
`usable_dir` refuses one and the plan keeps the basis in RAM.

Arithmetic: the same float32 values as the RAM basis; dot products over slabs are summed in
float64, so results agree with the RAM path to float32 rounding (tests/test_spill.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch

from .. import fileio
from ..errors import DstabError, require

SCRATCH_ENV = "DSTAB_SCRATCH"
SLAB_BYTES = 16 << 20  # bytes of all rows' columns read at once
ITEMSIZE = 4
RAM_FS = {"tmpfs", "ramfs"}


def scratch_dir() -> Path:
    """$DSTAB_SCRATCH, else <user cache>/scratch."""
    if os.environ.get(SCRATCH_ENV):
        return Path(os.environ[SCRATCH_ENV]).expanduser()
    return fileio.user_cache_dir() / "scratch"


def filesystem(path: Path, mounts: str = "/proc/mounts") -> str:
    """The type of the filesystem holding `path` (the longest mount point above it; '' unknown)."""
    path = path.resolve()
    best, kind = "", ""
    try:
        with open(mounts) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = path == Path(mount) or Path(mount) in path.parents
                if inside and len(mount) > len(best):
                    best, kind = mount, parts[2]
    except OSError:
        return ""
    return kind


def usable_dir(nbytes: int) -> tuple[Path | None, str]:
    """(the scratch folder, '') when `nbytes` of Krylov vectors can be spilled there, else (None, why not)."""
    where = scratch_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, f"the scratch folder {where} cannot be created ({exc.strerror}); set {SCRATCH_ENV}"
    kind = filesystem(where)
    if kind in RAM_FS:
        return None, f"the scratch folder {where} is on {kind} (RAM): spilling there saves nothing; set {SCRATCH_ENV}"
    if not os.access(where, os.W_OK):
        return None, f"the scratch folder {where} is not writable; set {SCRATCH_ENV}"
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if free < nbytes * 1.1:
        return None, (
            f"the scratch folder {where} has {free / 2**30:.1f} GiB free, {nbytes * 1.1 / 2**30:.1f} GiB needed; "
            f"set {SCRATCH_ENV} to a folder with room"
        )
    return where, ""


class Scratch:
    """Rows of n float32 values in one unlinked file; a row's slot is reused once its Row is gone."""

    def __init__(self, n: int, directory: Path | str):
        self.n, self.row_bytes, self.directory = n, n * ITEMSIZE, Path(directory)
        try:
            self._file = tempfile.TemporaryFile(dir=directory, prefix="dstab-krylov-")
        except OSError as exc:
            raise self.failed(exc) from None
        self._fd = self._file.fileno()
        self._free: list[int] = []
        self.slots = 0  # slots ever used: the file's size in rows

    def row(self, values: torch.Tensor) -> Row:
        """A new row holding `values` (n float32 on the CPU)."""
        slot = self._free.pop() if self._free else self._grow()
        row = Row(self, slot)
        row.write(0, values)
        return row

    def failed(self, exc: OSError) -> DstabError:
        return DstabError(
            f"the Krylov scratch file in {self.directory} failed ({exc.strerror or exc}); set {SCRATCH_ENV} to a "
            "writable folder on a disk with room (or raise DSTAB_MAX_MEMORY_GB to keep the vectors in RAM)"
        )

    def _grow(self) -> int:
        self.slots += 1
        return self.slots - 1

    def _give(self, slot: int) -> None:
        self._free.append(slot)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Row:
    """One spilled vector of n: read and written by column ranges."""

    __slots__ = ("scratch", "slot")

    def __init__(self, scratch: Scratch, slot: int):
        self.scratch, self.slot = scratch, slot

    def __del__(self):
        self.scratch._give(self.slot)

    @property
    def n(self) -> int:
        return self.scratch.n

    def _offset(self, a: int) -> int:
        return self.slot * self.scratch.row_bytes + a * ITEMSIZE

    def read(self, a: int, out: torch.Tensor) -> torch.Tensor:
        """Columns a .. a + len(out) into `out` (float32, contiguous, CPU)."""
        view = memoryview(out.numpy()).cast("B")
        done, offset = 0, self._offset(a)
        while done < len(view):
            got = os.preadv(self.scratch._fd, [view[done:]], offset + done)
            require(got > 0, "a Krylov scratch file ended early (was its folder cleared during the run?)")
            done += got
        return out

    def write(self, a: int, values: torch.Tensor) -> None:
        data = memoryview(values.detach().to("cpu", torch.float32).contiguous().numpy()).cast("B")
        done, offset = 0, self._offset(a)
        try:
            while done < len(data):
                done += os.pwrite(self.scratch._fd, data[done:], offset + done)
        except OSError as exc:  # a full disk (ENOSPC), a quota
            raise self.scratch.failed(exc) from None

    def load(self) -> torch.Tensor:
        return self.read(0, torch.empty(self.n))


def opened(n: int, where: Path | str | None) -> contextlib.AbstractContextManager:
    """A Scratch of rows of n in the folder `where`, or, `where` being None, nothing (the vectors stay in
    RAM): `with spill.opened(n, where) as scratch` gives a Scratch or None."""
    return contextlib.nullcontext() if where is None else Scratch(n, where)


def is_spilled(rows) -> bool:
    return len(rows) > 0 and isinstance(rows[0], Row)


def slab_columns(m: int, n: int) -> int:
    return max(1, min(n, SLAB_BYTES // (max(m, 1) * ITEMSIZE)))


def _slabs(rows: list[Row], buf: torch.Tensor):
    """(a, b, the rows' columns a:b) for consecutive slabs."""
    n, width = rows[0].n, buf.shape[1]
    for a in range(0, n, width):
        b = min(n, a + width)
        part = buf[:, : b - a]
        for r, out in zip(rows, part):
            r.read(a, out)
        yield a, b, part


def dots(rows: list[Row], W: torch.Tensor) -> torch.Tensor:
    """W @ R^T (p, m), summed over slabs in float64."""
    buf = torch.empty(len(rows), slab_columns(len(rows), rows[0].n))
    G = torch.zeros(W.shape[0], len(rows), dtype=torch.float64)
    for a, b, part in _slabs(rows, buf):
        G += (W[:, a:b] @ part.T).double()
    return G


def subtract(W: torch.Tensor, C, rows: list[Row]) -> torch.Tensor:
    """W -= C @ R in place, for C (p, m) (a tensor or an array)."""
    C = torch.as_tensor(C, dtype=W.dtype)
    buf = torch.empty(len(rows), slab_columns(len(rows), rows[0].n))
    for a, b, part in _slabs(rows, buf):
        W[:, a:b].addmm_(C, part, alpha=-1.0)
    return W


def project_out(rows: list[Row], W: torch.Tensor) -> torch.Tensor:
    """W minus its components along the (orthonormal) rows, in place: two passes over the file."""
    return subtract(W, dots(rows, W), rows)


def combine_in_place(rows: list[Row], St: torch.Tensor) -> None:
    """rows[:len(St)] <- St @ rows, a slab of columns at a time (Ritz vectors over a spilled basis)."""
    buf = torch.empty(len(rows), slab_columns(len(rows), rows[0].n))
    for a, _, part in _slabs(rows, buf):
        out = St @ part
        for r, o in zip(rows, out):
            r.write(a, o)


def load(rows) -> torch.Tensor:
    """A (p, n) tensor of the rows (spilled or not)."""
    if is_spilled(rows):
        return torch.stack([r.load() for r in rows])
    return rows if isinstance(rows, torch.Tensor) else torch.stack(list(rows))
