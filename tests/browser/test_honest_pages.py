"""Honest pages (issue 13.3), in headless Chromium against the real app, most of them started with
small limits: every error a student can meet is said in words on the page, in the panel it
concerns; no panel is left looking busy; Stop never shows an error; a follow-up typed while the
base model's column streams is kept and sent.

- time limit (`PLAYGROUND_REQUEST_TIMEOUT=3`): both Base vs chat columns say "Stopped at the time
  limit (3 s) ..." (no "Generating…"), a conversation turn says it in the chat or the base panel;
- Stop, five times on each kind of stream: never an element with Gradio's error status (the status
  tracker's `span.error` badge, an error toast), and never a `/gradio_api/cancel` request (Gradio
  6.31's cancel answers the stream with an empty completion that the page's handler throws on:
  the cause of the badges, so Stop must not use it);
- the chat follow-up: typed while the chat reply and then the base column stream, it stays in the
  box, Send stays usable, and sending it gets it answered without waiting for the base column;
- busy (`PLAYGROUND_HEAVY_CONCURRENCY=1`, `PLAYGROUND_QUEUE_WAIT=1`): a second student's request
  is refused with "The server is busy ..." on the page, and its panels (which showed "waiting for
  its turn") say it was not run; pressing Stop while it waits takes it out of the queue, said so;
- out of memory (`PLAYGROUND_FAULT_INJECTION=forward:every=5`): both columns say the out-of-memory
  message.

Each test waits for conditions (never a fixed sleep as its only sync) with bounded timeouts; the
apps with small limits are started once per module.
"""

from __future__ import annotations

import re

import pytest

from playground.ui.chat_tab import NOT_STARTED, STOPPED_WAITING
from playground.ui.common import OUT_OF_MEMORY
from tests.conftest import ServerCalls, screenshot, select_tab, set_number, start_app, stop_app, wait_until

ERROR_STATUS = "span.error, .toast-body.error"  # Gradio 6.31: the status tracker's badge, an error toast
BUSY_WORDS = ("Generating…", "Loading the model", "Waits for the chat model")
COLUMNS = ("#chat-base-column", "#chat-chat-column")
LONG = 200  # max new tokens: the default poem runs past it, so a stream is always still running


@pytest.fixture(scope="module")
def limited_app():
    url, process = start_app({"PLAYGROUND_REQUEST_TIMEOUT": "3"}, log_name="honest-timeout-app.log")
    yield url
    stop_app(process)


def open_chat_tab(page, url: str, max_tokens: int) -> None:
    page.goto(url)
    select_tab(page, "Base vs chat")
    set_number(page, "chat-max-tokens", max_tokens)


def status_of(page, panel: str) -> str:
    return page.locator(f"{panel} .gen-status").inner_text()


def wait_done(page, panels, timeout: int = 180_000) -> None:
    """Wait until every panel's view is finished (`gen-done`: not streaming, not waiting)."""
    selectors = ",".join(f"'{p}'" for p in panels)
    page.wait_for_function(
        f"() => [{selectors}].every(p => document.querySelector(p + ' .gen-root.gen-done'))", timeout=timeout)


def wait_streaming(page, panel: str, tokens: int, timeout: int = 180_000) -> None:
    """Wait until `panel` streams a run (`gen-running`) that has at least `tokens` tokens."""
    page.wait_for_function(
        "([p, n]) => { const root = document.querySelector(p + ' .gen-root');"
        " return root && root.classList.contains('gen-running') && +root.dataset.tokens >= n; }",
        arg=[panel, tokens], timeout=timeout)


def wait_reply_begins(page, text: str, timeout: int = 180_000) -> None:
    """Wait until the chatbot shows a reply with some text after the user message holding `text`."""
    page.wait_for_function(
        "(text) => { const rows = [...document.querySelectorAll('#chat-chatbot .message-row')];"
        " const i = rows.findIndex(r => r.innerText.includes(text));"
        " return i >= 0 && rows.length > i + 1 && rows[i + 1].innerText.trim().length > 0; }",
        arg=text, timeout=timeout)


def busy_panels(page, panels) -> list[str]:
    """Panels that still look busy: busy words in them, or a visible status tracker that is not an error."""
    busy = []
    for panel in panels:
        text = page.locator(panel).inner_text()
        trackers = page.locator(f"{panel} [data-testid='status-tracker']:not(.hide)")
        pending = [i for i in range(trackers.count()) if trackers.nth(i).locator("span.error").count() == 0
                   and trackers.nth(i).inner_text().strip()]
        if any(word in text for word in BUSY_WORDS) or pending:
            busy.append(f"{panel}: {text[:200]!r}")
    return busy


def errors_shown(page) -> list[str]:
    return page.locator(ERROR_STATUS).evaluate_all(
        "els => els.map(e => (e.closest('[id]') || {}).id + ': ' + e.innerText.slice(0, 120))")


def errors_once_settled(page) -> list[str]:
    """Error elements once every call the page made has ended (a late badge came after the stopped
    view: it comes with the end of a call, so once none is in flight it is on the page or never comes)."""
    page.server_calls.wait_idle("the calls after Stop")
    return errors_shown(page)


# -- the time limit ---------------------------------------------------------------------------------


def test_the_time_limit_is_said_in_both_columns_and_in_the_conversation(page, limited_app):
    open_chat_tab(page, limited_app, 400)
    page.locator("#chat-run").click()
    wait_done(page, COLUMNS)
    for panel in COLUMNS:
        assert "Stopped at the time limit (3 s)" in status_of(page, panel), status_of(page, panel)
    assert not busy_panels(page, COLUMNS)
    page.locator(".toast-body").get_by_text("time limit (3 s)").first.wait_for(timeout=120_000)
    screenshot(page, "honest-time-limit-columns")
    # a conversation turn: its reply or the base model's column runs into the limit, and says so
    page.locator("#chat-message textarea").fill("Tell me a long story about the sea.")
    page.locator("#chat-send").click()
    wait_done(page, ["#chat-base-conversation"])
    said = page.locator("#chat-chatbot").inner_text() + page.locator("#chat-base-conversation").inner_text()
    assert "time limit (3 s)" in said, said
    assert not busy_panels(page, ["#chat-base-conversation"])
    screenshot(page, "honest-time-limit-conversation")


# -- Stop ---------------------------------------------------------------------------------------------


def _count_cancels(page) -> list[str]:
    cancels = []
    page.on("request", lambda request: cancels.append(request.url) if "/cancel" in request.url else None)
    return cancels


def test_stop_never_shows_an_error_in_base_vs_chat(page, app_url):
    cancels = _count_cancels(page)
    open_chat_tab(page, app_url, LONG)
    for attempt in range(5):
        page.locator("#chat-run").click()
        wait_streaming(page, "#chat-base-column", 2 + attempt % 3)  # Stop at different points
        page.locator("#chat-stop").click()
        wait_done(page, COLUMNS, timeout=180_000)
        assert not errors_once_settled(page), (attempt, errors_shown(page))
        statuses = [status_of(page, panel) for panel in COLUMNS]
        # a column that had finished by itself keeps its own reason
        assert "you pressed Stop" in statuses[0] and all(s.startswith("Stopped") for s in statuses), statuses
        assert not busy_panels(page, COLUMNS)
    screenshot(page, "honest-stop-columns")
    # the conversation: Stop during the reply, and during the base model's column
    for attempt, panel in enumerate(["#chat-chatbot", "#chat-base-conversation"] * 2):
        question = f"Tell me a long story about the number {attempt}."
        page.locator("#chat-message textarea").fill(question)
        page.locator("#chat-send").click()
        if panel == "#chat-base-conversation":
            wait_streaming(page, panel, 2)
        else:
            wait_reply_begins(page, question)
        page.locator("#chat-stop-conversation").click()
        wait_done(page, ["#chat-base-conversation"], timeout=180_000)
        assert not errors_once_settled(page), (attempt, errors_shown(page))
        assert "you pressed Stop" in page.locator("#chat-chatbot").inner_text() + status_of(
            page, "#chat-base-conversation")
    screenshot(page, "honest-stop-conversation")
    assert not cancels, cancels


def test_stop_never_shows_an_error_in_the_sampling_lab(page, app_url):
    cancels = _count_cancels(page)
    page.goto(app_url)
    select_tab(page, "Sampling lab")
    # greedy: the default prompt runs LONG tokens without an end of sequence, so however late Stop
    # lands (the page can trail the server by many tokens on a loaded machine) the run is still going
    page.locator("#sampling-preset-greedy").click()
    page.locator("#sampling-show").click()
    page.locator("#sampling-dist-plot .js-plotly-plot").wait_for(timeout=180_000)
    set_number(page, "sampling-n", LONG)
    tokens = "#sampling-generated .gen-tok"
    stops = 0
    for attempt in range(10):  # 5 runs that Stop ended; on a loaded machine a run can end first
        page.locator("#sampling-generate").click()
        seen = 2 + attempt % 3  # Stop at different points
        page.wait_for_function(f"(n) => document.querySelectorAll('{tokens}').length >= n", arg=seen,
                               timeout=180_000)
        page.locator("#sampling-stop-generate").click()
        wait_until(page, "() => ['you pressed Stop', 'maximum number of new tokens'].some((t) =>"
                         " document.querySelector('#sampling-generated').innerText.includes(t))",
                   f"attempt {attempt}: the view after Stop",
                   f"() => [document.querySelectorAll('{tokens}').length,"
                   " document.querySelector('#sampling-generated').innerText.slice(-300)]")
        assert not errors_once_settled(page), (attempt, errors_shown(page))
        kept = page.locator(tokens).count()  # the tokens so far stay (a step running at Stop completes)
        if "you pressed Stop" in page.locator("#sampling-generated").inner_text():
            stops += 1
            assert seen <= kept < LONG, (attempt, seen, kept)
        else:  # all LONG tokens came before the Stop landed (seen on a loaded machine): its own end, said so
            assert kept == LONG, (attempt, kept)
        # back to the prompt: the default seed samples the end of sequence some 70 tokens in, which
        # a text grown by each attempt (and Stop landing late on a loaded machine) would reach
        page.locator("#sampling-clear").click()
        page.wait_for_function(f"() => document.querySelectorAll('{tokens}').length === 0", timeout=180_000)
        if stops == 5:
            break
    assert stops == 5, f"only {stops} of 10 runs were still going when Stop landed"
    page.get_by_text("Many samples: K continuations").click()
    set_number(page, "sampling-length", 100)
    view = page.locator("#sampling-samples-view")
    for attempt in range(5):
        page.locator("#sampling-samples").click()
        view.get_by_text(re.compile(r"step [1-9]\d* of 100…")).wait_for(timeout=180_000)
        page.locator("#sampling-stop-samples").click()
        wait_until(page, "() => document.querySelector('#sampling-samples-view').innerText.includes('you pressed Stop')",
                   f"attempt {attempt}: the samples' view after Stop",
                   "() => document.querySelector('#sampling-samples-view').innerText.slice(0, 400)")
        assert not errors_once_settled(page), (attempt, errors_shown(page))
        # the steps so far stay: the stopped view says how far it got, with its samples
        assert re.search(r"you pressed Stop after step [1-9]\d* of 100", view.inner_text()), view.inner_text()[:300]
    screenshot(page, "honest-stop-sampling")
    assert not cancels, cancels


# -- the chat follow-up ----------------------------------------------------------------------------


def test_a_follow_up_typed_while_the_base_column_streams_is_kept_and_answered(page, app_url):
    open_chat_tab(page, app_url, 60)
    box = page.locator("#chat-message textarea")
    box.fill("Tell me about the sea.")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('#chat-message textarea').value === ''", timeout=120_000)
    # typed while the chat model's reply streams: kept
    follow_up = "And what about the moon?"
    wait_reply_begins(page, "Tell me about the sea.")
    box.fill(follow_up)
    # ... and while the base model's column streams: kept, and Send can be pressed
    wait_streaming(page, "#chat-base-conversation", 2)
    shown = int(page.locator("#chat-base-conversation .gen-root").get_attribute("data-tokens"))
    wait_streaming(page, "#chat-base-conversation", shown + 2)  # the stream updated the page meanwhile
    assert box.input_value() == follow_up
    assert page.locator("#chat-send").is_enabled() and box.is_editable()
    screenshot(page, "honest-follow-up-typed")
    page.locator("#chat-send").click()
    page.wait_for_function("() => document.querySelector('#chat-message textarea').value === ''", timeout=120_000)
    chatbot = page.locator("#chat-chatbot")
    chatbot.get_by_text(follow_up).wait_for(timeout=120_000)
    # answered at once: the base column of the first turn stops for it (it had up to 60 tokens to go)
    wait_reply_begins(page, follow_up)
    wait_done(page, ["#chat-base-conversation"], timeout=240_000)
    rows = chatbot.locator(".message-row")
    assert rows.count() == 4, chatbot.inner_text()
    assert follow_up in rows.nth(2).inner_text() and rows.nth(3).inner_text().strip()
    assert not busy_panels(page, ["#chat-base-conversation"])
    screenshot(page, "honest-follow-up-answered")


# -- a busy server ------------------------------------------------------------------------------------


def test_a_busy_server_says_so_on_the_page(browser):
    # a 5 s queue-wait bound: short enough to pass behind a 300-token run, long enough that Stop
    # (pressed once "Waiting for its turn" shows) lands first on a loaded machine (1 s did not)
    url, process = start_app({"PLAYGROUND_HEAVY_CONCURRENCY": "1", "PLAYGROUND_QUEUE_WAIT": "5"},
                             log_name="honest-busy-app.log")
    contexts = [browser.new_context(viewport={"width": 1600, "height": 1000}) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        second.server_calls = ServerCalls(second)
        cancels = _count_cancels(second)
        for page, tokens in ((first, 300), (second, 60)):
            page.set_default_timeout(60_000)
            open_chat_tab(page, url, tokens)
        first.locator("#chat-run").click()
        wait_streaming(first, "#chat-base-column", 1)
        # waiting behind the first, the second student presses Stop: taken out of the queue, said so
        second.locator("#chat-run").click()
        second.locator("#chat-base-column").get_by_text("Waiting for its turn").wait_for(timeout=120_000)
        second.locator("#chat-stop").click()
        wait_done(second, COLUMNS, timeout=120_000)
        assert [status_of(second, panel) for panel in COLUMNS] == [STOPPED_WAITING] * 2
        assert not errors_once_settled(second) and not cancels
        second.locator("#chat-run").click()  # waits behind the first again, longer than the 5 s allowed
        second.locator(".toast-body").get_by_text("The server is busy").first.wait_for(timeout=240_000)
        wait_done(second, COLUMNS, timeout=120_000)  # ... and its panels say it never started
        for panel in COLUMNS:
            assert status_of(second, panel) == NOT_STARTED
        assert not busy_panels(second, COLUMNS)
        screenshot(second, "honest-busy")
        wait_done(first, COLUMNS, timeout=600_000)  # the first student's request was not disturbed:
        ended = status_of(first, "#chat-base-column")  # its own end (on a loaded machine, the time limit)
        assert "maximum number of new tokens" in ended or "Stopped at the time limit" in ended, ended
    finally:
        for context in contexts:
            context.close()
        stop_app(process)


# -- out of memory --------------------------------------------------------------------------------------


def test_out_of_memory_is_said_in_both_columns(page):
    url, process = start_app({"PLAYGROUND_FAULT_INJECTION": "forward:every=5"}, log_name="honest-oom-app.log")
    try:
        open_chat_tab(page, url, LONG)
        page.locator("#chat-run").click()
        wait_done(page, COLUMNS)
        for panel in COLUMNS:
            assert OUT_OF_MEMORY in status_of(page, panel), status_of(page, panel)
        assert not busy_panels(page, COLUMNS)
        page.locator(".toast-body").get_by_text("ran out of memory").first.wait_for(timeout=120_000)
        screenshot(page, "honest-out-of-memory")
    finally:
        stop_app(process)
