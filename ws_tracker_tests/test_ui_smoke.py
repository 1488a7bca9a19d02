"""Smoke test of the Dagster UI: the production topology's webserver, opened in headless
Chromium (Debian's ``chromium`` package, driven by Playwright), shows the asset graph with
our assets.

Skips, saying why, when Chromium or the ``playwright`` package is missing; ``.ci/run``
installs Chromium so it runs in CI. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict

import pytest

from ws_tracker.pipeline.assets import ASSETS
from ws_tracker_tests.topology import LOCATION_NAME, topology  # noqa: F401 - a fixture

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
UI_TIMEOUT_S = 120  # all pages together, first paint included, on a busy two-core machine


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for asset in ASSETS:
        groups[asset.group_names_by_key[asset.key]].append(asset.key.to_user_string())
    return dict(groups)


GROUPS = _groups()  # {"workstudio": ["circuits", ...], "derived": [...]}


def _browser_or_skip() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the `playwright` package is not installed (pip install '.[test]')")
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not path:
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
                    ".ci/run installs it)")
    return path


def test_ui_shows_the_asset_graph_with_our_assets(topology, tmp_path):
    chromium = _browser_or_skip()
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    with topology.diagnose(), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            console_errors: list[str] = []
            page.on("console",
                    lambda m: console_errors.append(m.text) if m.type == "error" else None)
            deadline = time.monotonic() + UI_TIMEOUT_S
            missing: dict[str, list[str]] = {}
            # The global asset lineage: our two groups, collapsed (one node each).
            page.goto(f"{topology.webserver_url}/asset-groups", wait_until="domcontentloaded")
            try:
                for group in GROUPS:
                    left_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
                    try:
                        page.get_by_text(group, exact=True).first.wait_for(
                            state="visible", timeout=left_ms)
                    except PlaywrightTimeoutError:
                        missing.setdefault("global lineage", []).append(group)
            finally:
                page.screenshot(path=str(tmp_path / "global_lineage.png"))
            for group, names in GROUPS.items():
                # The group's lineage page: the asset graph of that group, every asset a node
                # (the global lineage page starts with groups collapsed).
                page.goto(f"{topology.webserver_url}/locations/{LOCATION_NAME}/asset-groups/"
                          f"{group}", wait_until="domcontentloaded")
                try:
                    for name in names:
                        left_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
                        try:
                            page.get_by_text(name, exact=True).first.wait_for(
                                state="visible", timeout=left_ms)
                        except PlaywrightTimeoutError:
                            missing.setdefault(group, []).append(name)
                finally:
                    page.screenshot(path=str(tmp_path / f"asset_graph_{group}.png"))
            assert not missing, (f"the asset graph lacks {missing}; screenshots in {tmp_path}; "
                                 f"console errors: {console_errors[:10]}")
        finally:
            browser.close()
