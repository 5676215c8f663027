"""The frozen protocol: its defaults are the committed pre-registration's definitions word for word,
it is stored with a group before its runs and read back, and it cannot be swapped afterwards."""

from __future__ import annotations

import json

import pytest

from dstab.errors import DstabError
from dstab.experiments import protocol
from dstab.experiments.protocol import KEYS, Protocol

PREREG = protocol.PREREGISTERED / "speedup-digits-confirm.json"


def test_the_defaults_are_the_preregistered_definitions():
    registered = json.loads(PREREG.read_text())
    words = Protocol().describe()
    assert {k: words[k] for k in KEYS} == {k: registered["protocol"][k] for k in KEYS}
    p = protocol.from_preregistration(registered)
    assert p == Protocol(metric="fd_local@1000x10ddim") and p.final_k == 10 and p.plateau_window == 20
    assert p.ladder_fractions == (0.2, 0.4, 0.6, 0.8) and p.smooth_window == 5 and p.verdict_alpha == 0.10


def test_a_preregistration_this_version_does_not_implement_is_refused():
    registered = json.loads(PREREG.read_text())
    registered["protocol"]["final"] = "log(mean of the reference's last 5 evaluations) - log(...)"
    with pytest.raises(DstabError, match=r"defines \['final'\] otherwise"):
        protocol.from_preregistration(registered)


def test_changed_definitions_are_written_from_their_numbers():
    words = Protocol(final_k=5, plateau_window=12, ladder_fractions=(0.25, 0.5, 0.75)).describe()
    assert words["final"] == "log(mean of the reference's last 5 evaluations) - log(mean of the variant's last 5)"
    assert "over the trailing 12 evaluations" in words["own_plateau"]
    assert words["ladder"].startswith("3 levels geometrically spaced at 25/50/75% of the log distance")


def test_a_group_keeps_the_protocol_it_was_launched_with(tmp_path):
    root = tmp_path / "ws" / "runs"
    assert protocol.for_group("g", root, folder=tmp_path) is None
    record = protocol.store("g", root, Protocol(metric="fd_local@1000x10ddim"), seeds=[5, 6])
    assert record["seeds"] == [5, 6] and record["description"]["final"].startswith("log(mean of the reference's")
    path = tmp_path / "ws" / "groups" / "g.json"
    assert json.loads(path.read_text())["protocol"]["final_k"] == 10
    got, where = protocol.for_group("g", root, folder=tmp_path)
    assert got == Protocol(metric="fd_local@1000x10ddim") and where == str(path)
    assert protocol.store("g", root, got)["seeds"] == [5, 6]  # the same protocol again: kept as it was
    with pytest.raises(DstabError, match="launched with another protocol"):
        protocol.store("g", root, Protocol(final_k=3))


def test_without_a_stored_protocol_the_committed_preregistration_is_read(tmp_path):
    got, where = protocol.for_group("speedup-digits-confirm", tmp_path / "runs")
    assert got.metric == "fd_local@1000x10ddim" and where.endswith("results/preregistered/speedup-digits-confirm.json")


@pytest.mark.parametrize(
    "bad", [{"final_k": 0}, {"plateau_window": 2}, {"level": 1.5}, {"ladder_fractions": (0.5, 1.2)}, {"min_seeds": 1}]
)
def test_impossible_definitions_are_refused(bad):
    with pytest.raises(DstabError):
        Protocol(**bad)
    with pytest.raises(DstabError, match="not known"):
        Protocol.from_dict({"nope": 1})
