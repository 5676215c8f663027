"""The "paper vs this zoo" panel writes the report's verdict lines for the same numbers."""

import pytest

from dashboard import verdictpanel
from dstab import report, verdicts, zoo, zooindex, zooresults

EYE = [[100.0, 20.0, 20.0], [20.0, 100.0, 20.0], [20.0, 20.0, 100.0]]
LOW = [[100.0, 8.0, 9.0], [8.0, 100.0, 7.0], [9.0, 7.0, 100.0]]


def _header(collapsed=()) -> dict:
    return {
        "date": "today",
        "commit": "c",
        "scale": "s",
        "num": 32,
        "collapsed": list(collapsed),
        "entries": {},
        "hessian": {"top_k": 1, "trace_samples": 2, "slq_runs": 1, "slq_steps": 3},
        "hessian_batch": 16,
    }


def test_panel_lines_are_the_reports_lines():
    values = {"dm-init": 20.0, "gan-init": 8.0, "dm-structure": None, "gan-structure": None}
    row = {
        "family": "toy2d",
        "sampler": "ddpm",
        "values": values,
        "groups": {
            "dm-init": {"ids": ["toy2d/dm-eps-s0", "toy2d/dm-eps-s1", "toy2d/dm-eps-s2"], "matrix": EYE},
            "gan-init": {"ids": ["toy2d/gan-s0", "toy2d/gan-s1", "toy2d/gan-s2"], "matrix": LOW},
        },
        "x0": [
            {
                "kind": "eps vs x0 pair",
                "ids": ["toy2d/dm-eps-s0", "toy2d/dm-x0-s0"],
                "matrix": [[100.0, 21.6], [21.6, 100.0]],
            }
        ],
    }
    hess = [
        {
            "id": f"toy2d/dm-eps-s{i}",
            "probe": "dm",
            "n_params": 10,
            "lambda_1": x,
            "lambda_min": -1.0,
            "trace": 1.0,
            "mean": 0.1,
            "sigma2": 1.0,
            "ritz_variance": 1.0,
        }
        for i, x in enumerate([169.0, 121.5])
    ]
    hess += [
        {
            "id": f"toy2d/gan-s{i}",
            "probe": "gan-g",
            "n_params": 10,
            "lambda_1": x,
            "lambda_min": -1.0,
            "trace": 1.0,
            "mean": 0.1,
            "sigma2": 2.0,
            "ritz_variance": 0.5,
        }
        for i, x in enumerate([4.04, 132.2])
    ]
    collapsed = {"toy2d/gan-s0"}
    text = report.render([row], hess, [], _header(collapsed)).splitlines()
    lines = verdictpanel.consistency_lines(verdicts.consistency_claims(row, collapsed))
    lines += verdictpanel.hessian_lines(verdicts.hessian_claims(hess, collapsed))
    assert len(lines) == 2 + 2  # DMs vs GANs (inits), the x0 stand-in; lambda_1 and sigma2
    for line in lines:
        assert line in text, line
    dm_vs_gan = lines[0]
    assert "DMs more consistent than GANs (inits, toy2d, ddpm)" in dm_vs_gan
    assert "excluded as collapsed: toy2d/gan-s0" in dm_vs_gan  # the caveat travels with the verdict
    assert "weak test" in lines[1] and "stand-in" in lines[1]


@pytest.mark.skipif(not (zoo.zoo_root() / zoo.MANIFEST).exists(), reason="zoo not built")
def test_home_finds_the_shipped_consistency_verdicts_without_a_model():
    entries = zoo.read_manifest()["entries"]
    collapsed = {e for e, v in entries.items() if zooindex.is_collapsed(v)}
    for family in ("toy2d", "digits"):
        claims = zooresults.shipped_consistency_claims(family, entries)
        assert any(v.claim.startswith("DMs more consistent than GANs (inits") for v in claims)
        for v in claims:
            ids = [*v.a.ids, *v.b.ids]
            assert all(i.startswith(f"{family}/") for i in ids) and not set(ids) & collapsed
    assert verdictpanel.collapse_note("toy2d", entries) is None or "toy2d/" in verdictpanel.collapse_note(
        "toy2d", entries
    )


def test_home_shows_the_panel(app):
    at = app(None, data="toy2d")
    assert not at.exception, at.exception
    assert any(m.value == "**Paper vs this zoo**" for m in at.markdown)
