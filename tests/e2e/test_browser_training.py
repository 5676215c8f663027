"""The training page in a real browser: a short real run's loss curve grows while it trains."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dstab import runs
from tests import processes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 180_000
TINY = [
    "dataset=toy2d:8gaussians",
    'arch={"arch": "mlp_denoiser", "hidden": 32}',
    "batch_size=16",
    "steps=200000",
    "log_every=20",
    "checkpoint_every=100000",
    "eval_every=null",
]
# plotly.js's own view of each trace (_fullData: typed arrays decoded, _length = points drawn)
POINTS_JS = """name => {
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    for (const tr of (el._fullData || [])) { if (tr.name === name) return tr._length || 0; }
  }
  return 0;
}"""


def test_a_loss_curve_grows_while_a_run_trains(server, browser_context):
    root = Path(server["log"]).parent / "workspace" / "runs"  # the server's DSTAB_WORKSPACE
    runs.start("e2e-live", preset="baseline", overrides=TINY, device="cpu", threads=1, root=root)
    try:
        deadline = time.monotonic() + 900  # a hang guard, no speed limit
        while runs.status("e2e-live", root).step < 40:
            assert time.monotonic() < deadline, runs.status("e2e-live", root)
            time.sleep(0.2)
        page = browser_context.new_page()
        page.goto(server["url"] + "/training", wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot >> text=Training loss", timeout=TIMEOUT_MS)
        page.wait_for_function(f"() => ({POINTS_JS})('e2e-live') > 0", timeout=TIMEOUT_MS)
        first = page.evaluate(POINTS_JS, "e2e-live")
        # no reload, no click: the fragment's timer brings the new rows
        page.wait_for_function(f"() => ({POINTS_JS})('e2e-live') > {first}", timeout=TIMEOUT_MS)
        assert page.evaluate(POINTS_JS, "e2e-live") > first
    finally:
        processes.stop_runs(root)
