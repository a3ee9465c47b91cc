"""A real browser visits all four tabs of the running app and saves a screenshot of each."""

from __future__ import annotations

from tests.conftest import screenshot, wait_until

TABS = ["Tokenizer", "Base vs chat", "Sampling lab", "Beam search"]


def test_visit_all_tabs(page, app_url):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    page.get_by_text("LLM playground").first.wait_for()
    page.locator("#status-line").get_by_text("Device:").wait_for()
    for name in TABS:
        tab = page.get_by_role("tab", name=name)
        tab.click()
        wait_until(page, "(name) => [...document.querySelectorAll('button[role=tab]')].some("
                         "(b) => b.innerText.trim() === name && b.getAttribute('aria-selected') === 'true')",
                   f"the tab {name!r} selected", "() => (document.querySelector('button[role=tab][aria-selected=true]')"
                   " || {}).innerText", arg=name, timeout_ms=60_000)
        screenshot(page, "tab-" + name.lower().replace(" ", "-"))
    assert not errors, errors
