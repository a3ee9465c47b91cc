"""No way in through the page: HTML and script typed into every tab shows as text and never runs.

In real Chromium, `<script>window.__pwned=1</script>` and `<img src=x onerror="window.__pwned=1">`
go through the tokenizer (text, compare, BPE), the sampling lab (prompt and generated text), beam
search (prompt, tree, table) and base-vs-chat (prompt columns, conversation, template view).
After each: `window.__pwned` is undefined, no `<img src=x>` or injected `<script>` exists in the
page, and where the tab shows the user's text, it shows it literally.
"""

from __future__ import annotations

import pytest

from tests.conftest import screenshot, select_tab, set_number, wait_until

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
PAYLOAD = f"Hi {SCRIPT} and {IMG} <b>bold</b> end"
INJECTED = ("() => ({pwned: window.__pwned, imgs: document.querySelectorAll('img[src=\"x\"]').length,"
            " scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('__pwned')).length,"
            " bolds: [...document.querySelectorAll('b')].filter(b => b.textContent === 'bold').length})")
CLEAN = {"pwned": None, "imgs": 0, "scripts": 0, "bolds": 0}


def assert_not_injected(page, where: str) -> None:
    # an injected <img src=x> counts below; an onerror handler has fired once every image is complete
    wait_until(page, "() => [...document.images].every((img) => img.complete)", f"{where}: every image loaded or failed",
               "() => [...document.images].filter((img) => !img.complete).map((img) => img.src.slice(0, 80))",
               timeout_ms=60_000)
    state = page.evaluate(INJECTED)
    assert state == CLEAN, f"{where}: {state}"


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def shows_literally(text: str) -> bool:
    return SCRIPT in text and 'onerror="window.__pwned=1"' in text and "<b>bold</b>" in text


def shows_payload_once_rendered(page, selector: str, timeout: int) -> bool:
    """Wait until the element at `selector` shows the payload's script text, then check it is literal."""
    page.wait_for_function("(a) => document.querySelector(a.selector).innerText.includes(a.text)",
                           arg={"selector": selector, "text": SCRIPT}, timeout=timeout)
    return shows_literally(text_of(page, selector))


@pytest.fixture
def opened(page, app_url):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    select_tab(page, "Tokenizer")
    # the tab's first visit fills the tokenizer tab (presets or a shared link): wait for it to finish
    page.wait_for_function("() => document.querySelector('#tok-view') && "
                           "document.querySelector('#tok-view').innerText.includes('A cat')", timeout=120_000)
    page.wait_for_function("() => document.querySelector('#tok-compare').innerText.includes('A cat')",
                           timeout=120_000)
    yield page
    assert not [e for e in errors if "__pwned" in e], errors


def test_tokenizer_tab(opened):
    page = opened
    page.locator("#tok-text textarea").fill(PAYLOAD)
    assert shows_payload_once_rendered(page, "#tok-view", timeout=60_000)
    assert shows_payload_once_rendered(page, "#tok-compare", timeout=60_000)
    screenshot(page, "escaping-tokenizer")
    assert_not_injected(page, "tokenizer tab")


def test_sampling_lab(opened):
    page = opened
    select_tab(page, "Sampling lab")
    page.locator("#sampling-prompt textarea").fill(PAYLOAD)
    page.locator("#sampling-show").click()
    assert shows_payload_once_rendered(page, "#sampling-generated", timeout=180_000)
    set_number(page, "sampling-n", 3)
    page.locator("#sampling-generate").click()
    page.locator("#sampling-generated .gen-tok").first.wait_for(timeout=120_000)
    page.server_calls.wait_idle("the generation of 3 tokens")  # its last view has arrived
    assert shows_literally(text_of(page, "#sampling-generated"))
    screenshot(page, "escaping-sampling")
    assert_not_injected(page, "sampling lab")


def test_beam_search(opened):
    page = opened
    select_tab(page, "Beam search")
    page.locator("#beam-prompt textarea").fill(PAYLOAD + " <script>")
    for label, value in (("Beams", "2"), ("Max new tokens", "3"), ("Returned sequences (at most the beams)", "2")):
        box = page.locator(f'input[aria-label="number input for {label}"]')
        box.fill(value)
        box.press("Enter")
    page.locator("#beam-run").click()
    page.locator("#beam-summary").get_by_text("steps").wait_for(timeout=300_000)
    page.locator("#beam-tree .js-plotly-plot").wait_for()
    screenshot(page, "escaping-beam")
    assert_not_injected(page, "beam search")


def test_base_vs_chat(opened):
    page = opened
    select_tab(page, "Base vs chat")
    set_number(page, "chat-max-tokens", 2)
    page.locator("#chat-prompt textarea").fill(PAYLOAD)
    page.locator("#chat-run").click()
    page.locator("#chat-chat-column .gen-done").wait_for(timeout=300_000)
    assert_not_injected(page, "chat columns")

    page.locator("#chat-message textarea").fill(PAYLOAD)
    page.locator("#chat-send").click()
    assert shows_payload_once_rendered(page, "#chat-template-view", timeout=300_000)
    screenshot(page, "escaping-chat")
    assert_not_injected(page, "conversation")
    chatbot = text_of(page, "#chat-chatbot")
    assert shows_literally(chatbot), f"the chatbot does not show the user's message literally: {chatbot[:300]!r}"
