"""Chromium presses Stop during a long "Generate N": the stream ends, the tokens so far stay, the
session keeps working (the next token is appended after them)."""

from __future__ import annotations

from tests.conftest import screenshot

TOKENS = "#sampling-generated .gen-tok"


def test_stop_button_ends_a_long_generation(page, app_url):
    page.goto(app_url)
    page.get_by_role("tab", name="Sampling lab").click()
    page.locator("#sampling-show").click()
    page.locator("#sampling-dist-plot .js-plotly-plot").wait_for(timeout=180_000)
    box = page.locator("#sampling-n input[type=number]")
    box.fill("200")
    box.press("Enter")
    page.locator("#sampling-generate").click()
    page.wait_for_function(f"() => document.querySelectorAll('{TOKENS}').length >= 3", timeout=120_000)
    page.locator("#sampling-stop-generate").click()
    page.wait_for_timeout(1500)
    stopped_at = page.locator(TOKENS).count()
    page.wait_for_timeout(4000)
    assert page.locator(TOKENS).count() == stopped_at < 200  # nothing more arrives after Stop
    page.locator("#sampling-next").click()
    page.wait_for_function(f"(n) => document.querySelectorAll('{TOKENS}').length === n + 1", arg=stopped_at,
                           timeout=120_000)
    screenshot(page, "sampling-stopped")
