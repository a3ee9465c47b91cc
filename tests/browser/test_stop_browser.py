"""Chromium presses Stop during a long "Generate N": the stream ends, the tokens so far stay, the
page shows every token the session holds (also one whose step ran while Stop was pressed), and the
session keeps working (the next token is appended after them).

Greedy decoding of the default prompt runs 200 tokens without an end-of-sequence token, so the
generation is always still running when Stop is pressed.

No test waits a fixed time: each waits for the view that says the run stopped, then until the page
waits on no call to the app (`ServerCalls`), so "nothing more arrives" is checked once everything
the page asked for has arrived."""

from __future__ import annotations

import re

from tests.conftest import screenshot, select_tab, set_number, wait_until

TOKENS = "#sampling-generated .gen-tok"


def test_stop_button_ends_a_long_generation(page, app_url):
    page.goto(app_url)
    select_tab(page, "Sampling lab")
    page.locator("#sampling-preset-greedy").click()
    page.locator("#sampling-show").click()
    page.locator("#sampling-dist-plot .js-plotly-plot").wait_for(timeout=180_000)
    set_number(page, "sampling-n", 200)
    page.locator("#sampling-generate").click()
    page.wait_for_function(f"() => document.querySelectorAll('{TOKENS}').length >= 3", timeout=120_000)
    page.locator("#sampling-stop-generate").click()
    # the stream's last view says it stopped; once the page waits on nothing, that view is the last one
    wait_until(page, "() => document.querySelector('#sampling-generated').innerText.includes('you pressed Stop')",
               "the view after Stop", f"() => [document.querySelectorAll('{TOKENS}').length,"
               " document.querySelector('#sampling-generated').innerText.slice(-300)]", timeout_ms=120_000)
    page.server_calls.wait_idle("the generation's stream and the view after Stop")
    stopped_at = page.locator(TOKENS).count()
    assert stopped_at < 200, stopped_at
    # nothing more arrives after Stop, and the page shows every token the session holds, even one
    # whose step ran while Stop was pressed: the next token is one more than the page showed
    page.locator("#sampling-next").click()
    wait_until(page, f"(n) => document.querySelectorAll('{TOKENS}').length > n", "the next token after Stop",
               f"() => document.querySelectorAll('{TOKENS}').length", arg=stopped_at, timeout_ms=120_000)
    page.server_calls.wait_idle("the next token")
    assert page.locator(TOKENS).count() == stopped_at + 1, (stopped_at, page.locator(TOKENS).count())
    screenshot(page, "sampling-stopped")


def test_chat_stop_marks_running_columns_as_stopped(page, app_url):
    page.goto(app_url)
    select_tab(page, "Base vs chat")
    set_number(page, "chat-max-tokens", 200)
    page.locator("#chat-run").click()
    page.wait_for_function("() => { const root = document.querySelector('#chat-base-column .gen-root');"
                           " return root && root.classList.contains('gen-running') && +root.dataset.tokens >= 2; }",
                           timeout=180_000)
    page.locator("#chat-stop").click()
    page.wait_for_function("() => ['base', 'chat'].every(n => document.querySelector("
                           "`#chat-${n}-column .gen-root.gen-done`))", timeout=60_000)
    columns = [page.locator(f"#chat-{name}-column") for name in ("base", "chat")]
    statuses = [column.locator(".gen-status").inner_text() for column in columns]
    counts = [column.locator(".gen-tok").count() for column in columns]
    assert not any("Generating" in status for status in statuses), statuses
    # the chat model's poem is far longer than what streams before Stop; a column that had already
    # finished by itself keeps its own reason
    assert statuses[1] == f"Stopped after {counts[1]} tokens: you pressed Stop.", statuses
    page.server_calls.wait_idle("the columns' stream after Stop")
    assert [column.locator(".gen-tok").count() for column in columns] == counts  # nothing more arrives
    assert page.locator("span.error, .toast-body.error").count() == 0  # Stop is not an error
    screenshot(page, "chat-stopped")


def test_samples_stop_says_where_it_stopped(page, app_url):
    page.goto(app_url)
    select_tab(page, "Sampling lab")
    page.locator("#sampling-show").click()
    page.locator("#sampling-dist-plot .js-plotly-plot").wait_for(timeout=180_000)
    page.get_by_text("Many samples: K continuations").click()
    set_number(page, "sampling-length", 100)
    page.locator("#sampling-samples").click()
    view = page.locator("#sampling-samples-view")
    _wait_for_text(page, view, re.compile(r"step \d+ of 100…"), "samples-not-running")
    assert "running…" in view.inner_text()
    page.locator("#sampling-stop-samples").click()
    wait_until(page, "() => document.querySelector('#sampling-samples-view').innerText"
                     ".includes('Stopped: you pressed Stop after step')",
               "the samples' view after Stop", "() => document.querySelector('#sampling-samples-view').innerText"
               ".slice(0, 400)", timeout_ms=120_000)
    page.server_calls.wait_idle("the samples' stream and the view after Stop")
    text = view.inner_text()
    assert "Stopped: you pressed Stop after step" in text, text
    assert "running…" not in text and "of 100…" not in text and "stopped (you pressed Stop)" in text, text
    page.server_calls.wait_idle("anything after the view after Stop")
    assert view.inner_text() == text  # nothing more arrives


def _wait_for_text(page, where, pattern, name: str, timeout: int = 180_000) -> None:
    """Wait for `pattern` in `where`; if it never comes, fail with what the page showed instead
    (the view, its status line with any queue position, toasts, the length box) and a screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        where.get_by_text(pattern).wait_for(timeout=timeout)
    except PlaywrightTimeout:
        path = screenshot(page, name)
        block = where.locator("xpath=..")
        shown = {"view": where.inner_text(), "block": block.inner_text(),
                 "toasts": page.locator(".toast-body").all_inner_texts(),
                 "length": page.locator("#sampling-length input[type=number]").input_value()}
        raise AssertionError(f"{pattern.pattern!r} never appeared; the page showed {shown} (screenshot {path})") from None
