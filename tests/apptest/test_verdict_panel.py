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


def test_a_single_pair_is_said_to_be_one_pair_beside_the_verdict_over_seeds():
    # toy2d as Home showed it: the sidebar's pair has DM lambda_1 169.35 above GAN 132.22 (against the
    # claim) while over the seeds, collapsed gan-s0 left out, the claim holds
    dm = [verdicts.Value(f"toy2d/dm-eps-s{i}", x) for i, x in enumerate([169.35, 121.5, 137.2])]
    gan = [verdicts.Value("toy2d/gan-s0", 4.04, True)] + [
        verdicts.Value(f"toy2d/gan-s{i}", x) for i, x in ((1, 132.22), (2, 208.0))
    ]
    v = verdicts.compare("toy2d: DM lambda_1 below GAN's (gan-g)", dm, gan, a_below_b=True)
    text = verdictpanel.pair_sentence("lambda_1", ("dm-eps-s0", 169.35), ("gan-s1", 132.22), True, v)
    assert text.startswith(
        "This one pair goes against the claim: dm-eps-s0's lambda_1 169.35 is above gan-s1's 132.22."
    )
    assert v.verdict == verdicts.HOLDS  # seeds 1 and 2 agree; seed 0's pair is left out
    assert "The claim, over every seed: holds (DM 142.7 +- 24 (n = 3) vs GAN 170.1 +- 54 (n = 2)" in text
    assert "collapsed toy2d/gan-s0 left out, with it: weak test" in text
    agree = verdictpanel.pair_sentence("lambda_1", ("dm-eps-s1", 121.5), ("gan-s1", 132.22), True)
    assert agree == "This one pair agrees with the claim: dm-eps-s1's lambda_1 121.50 is below gan-s1's 132.22."


def test_a_group_score_without_its_collapsed_models():
    # the toy2d GAN init group: gan-s0 (the reference) collapsed; without it the reference is gan-s1
    ids = ["toy2d/gan-s0", "toy2d/gan-s1", "toy2d/gan-s2"]
    entries = {"toy2d/gan-s0": {"collapse": {"collapsed": True}}, "toy2d/gan-s1": {}, "toy2d/gan-s2": {}}
    gone, without = verdictpanel.without_collapsed(ids, LOW, entries)
    assert gone == ["toy2d/gan-s0"] and without == 7.0  # LOW[1][2]
    assert verdictpanel.without_collapsed(ids[:2], LOW, entries) == (["toy2d/gan-s0"], None)  # no pair left
    assert verdictpanel.without_collapsed(ids, LOW, {}) == ([], 8.5)  # nothing collapsed: C(q) itself
