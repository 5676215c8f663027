"""What the browser tests and bench/bench_app.py share: how Chromium is started, when Home counts as drawn."""

from __future__ import annotations

HOME_HEADING = "dstab: why diffusion models train more stably than GANs"

# Debian's Chromium through Playwright (never `playwright install`), quiet: no network of its own
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_home_rendered(page, timeout_ms: float = 120_000) -> None:
    """Home is drawn when its heading, its four zoo numbers and every sample grid are on screen."""
    page.get_by_role("heading", name=HOME_HEADING).wait_for(timeout=timeout_ms)
    page.locator('[data-testid="stMetricValue"]').nth(3).wait_for(timeout=timeout_ms)
    page.locator('[data-testid="stImage"] img').last.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=timeout_ms
    )
