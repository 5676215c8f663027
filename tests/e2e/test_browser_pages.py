"""Issue 13 in a real browser: the GAN's landscape surface is visible on its own scale, chart PNG downloads
are real PNGs, and a run launched while the Training tab is open joins its charts without a reload."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dstab import runs
from tests import processes
from tests.e2e.test_browser_training import POINTS_JS, TINY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 180_000
# each 3-D surface trace as plotly.js drew it: the spread of its z values over its colour range
SURFACES_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    for (const tr of (el._fullData || [])) {
      if (tr.type !== 'surface') continue;
      const z = [].concat(...Array.from(tr.z, row => Array.from(row)));
      out.push({name: el.layout.title.text, n: z.length, lo: Math.min(...z), hi: Math.max(...z),
                cmin: tr.cmin, cmax: tr.cmax});
    }
  }
  return out;
}"""


def _open(browser_context, url: str):
    page = browser_context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    return page


def test_the_gan_surface_fills_its_own_scale(server, browser_context):
    # toy2d at t = 900: the DM's centre loss is small, so on the old shared relative rise the GAN was a flat sheet
    page = _open(browser_context, server["url"] + "/landscape?data=toy2d&t=900&grid=11&surf3d=true")
    page.wait_for_function(f"() => ({SURFACES_JS})().length === 2", timeout=TIMEOUT_MS)
    dm, gan = page.evaluate(SURFACES_JS)
    for surf in (dm, gan):
        assert surf["n"] == 11 * 11 and surf["hi"] > surf["lo"]
        assert surf["cmin"] == pytest.approx(surf["lo"]) and surf["cmax"] == pytest.approx(surf["hi"])
    assert "gan" in gan["name"]


@pytest.mark.skipif(importlib.util.find_spec("kaleido") is None, reason="kaleido (requirements.txt) draws PNGs")
def test_chart_png_downloads_are_real_pngs(server, browser_context, tmp_path):
    page = _open(browser_context, server["url"] + "/landscape?data=toy2d&grid=11")
    popover = page.get_by_role("button", name="Download contour-gan")  # a chart's files sit in one popover
    popover.wait_for(timeout=TIMEOUT_MS)
    popover.click()
    files = {}
    for fmt in ("png", "svg", "pdf"):
        button = page.get_by_role("button", name=f"contour-gan.{fmt}")
        button.wait_for(timeout=TIMEOUT_MS)
        with page.expect_download(timeout=TIMEOUT_MS) as info:
            button.click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        files[fmt] = path
    assert sorted(p.name for p in files.values()) == ["contour-gan.pdf", "contour-gan.png", "contour-gan.svg"]
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files["png"].stat().st_size > 20_000
    assert files["svg"].read_text().startswith("<svg") and files["pdf"].read_bytes()[:5] == b"%PDF-"
    html = page.get_by_role("button", name="contour-gan.html")
    assert html.count() == 1  # a distinct label for the HTML file beside them


def test_a_run_started_while_the_tab_is_open_joins_its_charts(server, browser_context, monkeypatch):
    root = Path(server["log"]).parent / "workspace" / "runs"  # the server's DSTAB_WORKSPACE
    # both runs train at once: with one slot the second would wait in the queue behind the first (which
    # runs until stopped), and a queued run has no points to draw
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "2")
    first, joins = "e2e-first", "e2e-joins"
    page = _open(browser_context, server["url"] + "/training")
    page.get_by_role("heading", name="Training", exact=True).wait_for(timeout=TIMEOUT_MS)
    try:
        # the tab opened with no run training (seen in Chromium: it then never polled, so a run started by
        # the CLI or another tab stayed off it until a reload); the idle poll lists this one
        runs.start(first, preset="baseline", overrides=TINY, device="cpu", threads=1, root=root)
        page.wait_for_function(f"() => ({POINTS_JS})('{first}') > 0", timeout=TIMEOUT_MS)
        runs.start(joins, preset="baseline", overrides=TINY, device="cpu", threads=1, root=root)
        # no reload, no click: the next poll lists the new run and, being active, it joins the charts
        page.wait_for_function(f"() => ({POINTS_JS})('{joins}') > 0", timeout=TIMEOUT_MS)
        assert page.evaluate(POINTS_JS, first) > 0
    except Exception:
        print(Path(server["log"]).read_text()[-3000:])  # the server's side of a failure
        raise
    finally:
        processes.stop_runs(root)
