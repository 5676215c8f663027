"""The readouts, interval, test and verdict rule of a speed-up report, frozen: the defaults are the
pre-registered protocol of the digits confirmation (results/preregistered/speedup-digits-confirm.json,
written before its runs started), and `describe()` writes its definitions in the words of that file.

A confirmation group (`reproduce speedup --confirm`) stores its protocol with the group when it is
launched (`store`), and every later report of the group reads it back (`for_group`), so the
readouts cannot be tuned after the results are in. A group launched before this tool existed may
have its protocol in the repository's results/preregistered/<group>.json instead. Everything can
be overridden for exploration (`replace`); a report says which protocol it used.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..errors import DstabError, require
from ..fileio import write_json

REPO = Path(__file__).resolve().parents[2]
PREREGISTERED = REPO / "results" / "preregistered"
KEYS = ("smoothing", "ladder", "area", "final", "own_plateau", "interval", "test", "verdict", "time")


def _pct(fractions) -> str:
    return "/".join(f"{round(f * 100):d}" for f in fractions) + "%"


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Protocol:
    metric: str | None = None  # None: the group's default metric (compare.pick_metric)
    reference: str = "baseline"
    smooth_window: int = 5
    ladder_fractions: tuple[float, ...] = tuple(k / 5 for k in range(1, 5))  # fifths of the log distance
    ladder_top_at: float = 0.10  # the ladder's top: the pooled smoothed curve at this fraction of the run
    final_k: int = 10
    plateau_window: int = 20
    plateau_alpha: float = 0.05
    level: float = 0.90
    bca_min_n: int = 10
    verdict_alpha: float = 0.10
    min_seeds: int = 3
    length_margin: float = 1.5  # the run length: this times the reference's latest plateau (item 4)
    floor_sd: float = 2.0  # the floor band: real-vs-reference mean +- this many sd

    def __post_init__(self):
        object.__setattr__(self, "ladder_fractions", tuple(float(f) for f in self.ladder_fractions))
        require(self.smooth_window >= 1, f"smoothing window must be >= 1, got {self.smooth_window}")
        require(self.final_k >= 1, f"final k must be >= 1, got {self.final_k}")
        require(self.plateau_window >= 3, f"the plateau window must be >= 3 evaluations, got {self.plateau_window}")
        require(0 < self.plateau_alpha < 1 and 0 < self.level < 1, "alpha and the interval level lie in (0, 1)")
        require(self.ladder_fractions and all(0 < f < 1 for f in self.ladder_fractions), "ladder fractions in (0, 1)")
        require(self.min_seeds >= 2, f"a verdict needs >= 2 seeds, got min_seeds={self.min_seeds}")

    def describe(self) -> dict[str, str]:
        """The definitions in words (the pre-registration's words for the defaults)."""
        levels, k, w = len(self.ladder_fractions), self.final_k, self.plateau_window
        level = f"{round(self.level * 100):d}%"
        return {
            "smoothing": f"centred running mean of the metric over {self.smooth_window} evaluations (fewer at the "
            "ends); crossings are read on it, interpolated linearly between evaluations",
            "ladder": f"{levels} levels geometrically spaced at {_pct(self.ladder_fractions)} of the log distance "
            "from the top (the pooled curve, geometric mean of every run of every variant after smoothing, at "
            f"{round(self.ladder_top_at * 100):d}% of the run) to the bottom (the highest of the variants' mean "
            "final levels); per seed the ladder readout is the mean over the levels both runs reach of "
            "log(x_reference / x_variant)",
            "area": "mean over evaluations of log(metric), reference minus variant (area under the log-metric "
            "curve divided by its length)",
            "final": f"log(mean of the reference's last {k} evaluations) - log(mean of the variant's last {k})",
            "own_plateau": f"per run, the first evaluation at which the OLS slope of log(metric) over the trailing "
            f"{w} evaluations is not below 0 at one-sided {_num(self.plateau_alpha * 100)}% (t-test on the slope); "
            "readout log(x_reference / x_variant); 'not reached' is reported as such",
            "interval": f"Student-t {level} interval of the mean per-seed log ratio (BCa bootstrap at n >= "
            f"{self.bca_min_n})",
            "test": "two-sided Student-t p of the mean per-seed log ratio, Holm-adjusted across every variant and "
            "readout of one report (raw and adjusted shown); the exact sign-flip permutation p printed beside it "
            "with its floor 2 / 2^n",
            "verdict": f"faster (or slower) only when all four readouts point the same way with their {level} "
            f"t-intervals excluding no effect and their Holm-adjusted p <= {self.verdict_alpha:.2f}; otherwise "
            "'depends on the readout', naming the readouts that disagree or do not reach significance; fewer than "
            f"{self.min_seeds} complete seeds: numbers, no verdict",
            "time": "CPU seconds (cpu_s, process time in training steps); wall-clock ratios only for arms that ran "
            "interleaved",
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "ladder_fractions": list(self.ladder_fractions)}

    @classmethod
    def from_dict(cls, d: dict) -> Protocol:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        require(not unknown, f"protocol options {unknown} are not known; known: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes) -> Protocol:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def record_path(group: str, root) -> Path:
    """Where a group's protocol and run-length decisions live: beside the workspace's runs."""
    from .. import runs

    return runs.workspace_root(root).parent / "groups" / f"{group}.json"


def read_record(group: str, root) -> dict | None:
    path = record_path(group, root)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DstabError(f"{path} is unreadable ({exc}); it holds the group's protocol: restore it") from None


def write_record(group: str, root, record: dict) -> Path:
    path = record_path(group, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return path


def store(group: str, root, protocol: Protocol, **about) -> dict:
    """Fix `protocol` for `group` before its runs start; a group that already has one keeps it, and
    asking for another is refused (the readouts may not change once results can be seen)."""
    record = read_record(group, root) or {}
    if "protocol" in record:
        stored = Protocol.from_dict(record["protocol"])
        require(
            stored == protocol,
            f"group {group!r} was launched with another protocol ({record_path(group, root)}); a confirmation's "
            "readouts are fixed before its runs start: use the stored one, or a new group",
        )
        return record
    record.update(group=group, written=time.strftime("%Y-%m-%d %H:%M:%S %Z"), protocol=protocol.to_dict())
    record["description"] = protocol.describe()
    record.update(about)
    write_record(group, root, record)
    return record


def preregistered(group: str, folder: Path = PREREGISTERED) -> dict | None:
    """The committed pre-registration of `group`, if the repository has one."""
    path = Path(folder) / f"{group}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def from_preregistration(prereg: dict) -> Protocol:
    """The protocol a pre-registration file describes: its metric and reference on the defaults, whose
    words must be the file's (this version implements what was registered, or says it does not)."""
    words = prereg["protocol"]
    p = Protocol(metric=words.get("metric"), reference=words.get("reference", "baseline"))
    mine = p.describe()
    differ = [k for k in KEYS if k in words and words[k] != mine[k]]
    require(
        not differ,
        f"the pre-registration of {prereg.get('group')!r} defines {differ} otherwise than this version of dstab "
        "implements them; report it with the version it was registered with",
    )
    return p


def for_group(group: str, root=None, folder: Path = PREREGISTERED) -> tuple[Protocol, str] | None:
    """(the group's fixed protocol, where it was found), or None for a group without one."""
    record = read_record(group, root)
    if record and "protocol" in record:
        return Protocol.from_dict(record["protocol"]), str(record_path(group, root))
    prereg = preregistered(group, folder)
    if prereg and "protocol" in prereg:
        return from_preregistration(prereg), str(Path(folder) / f"{group}.json")
    return None
