"""Chromium at presenter scale (1280x720, device scale 1.5) opens a "Why this token?" deep link: the
target and its probability above the methods side by side, each with its formula, the prompt's
chips coloured by score (red and blue kept apart by sign), integrated gradients' completeness line,
the attention panel labelled not an attribution, legible and in view; the CSV and JSON downloads
hold a score column per method; a prompt with markup is shown as text."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from pathlib import Path

from tests.conftest import screenshot, wait_until

COLUMNS = ["position", "id", "text", "display", "bytes", "start", "occlusion-removed", "occlusion-replaced",
           "gradient", "integrated-gradients", "attention"]


def _open(page, app_url: str, **params) -> None:
    query = urllib.parse.urlencode({"tab": "why", "model": "smollm2-135m-instruct", "steps": "8", "run": "why",
                                    **params})
    page.goto(app_url + "?" + query)
    wait_until(page, "() => document.body.dataset.linkState === 'done' && "
                     "document.querySelectorAll('#why-view .why-panel').length > 0",
               "the link's attribution drawn",
               "() => [document.body.dataset.linkState, (document.querySelector('#why-view') || {}).innerText]",
               timeout_ms=300_000)


def _download(page, elem_id: str) -> tuple[bytes, str]:
    with page.expect_download(timeout=120_000) as info:
        page.locator(f"#{elem_id}").click()
    return Path(info.value.path()).read_bytes(), info.value.suggested_filename


def test_why_paris_at_presenter_scale_with_downloads(presenter_page, app_url):
    page = presenter_page
    _open(page, app_url, prompt="The capital of France is", target=" Paris")
    view = page.locator("#why-view")
    assert "Why ␣Paris? p = " in view.locator(".why-target").inner_text()
    panels = view.locator(".why-panel")
    assert panels.count() == 5
    assert [panels.nth(i).get_attribute("data-method") for i in range(5)] == COLUMNS[6:]
    assert "NOT an attribution" in panels.nth(4).inner_text()
    assert "Completeness (8 steps)" in panels.nth(3).inner_text()
    chips = page.evaluate("""() => [...document.querySelectorAll('#why-view .why-panel[data-method="occlusion-removed"] .why-chip')]
        .map((c) => [c.querySelector('.why-chip-text').textContent, c.querySelector('.why-chip-score').textContent,
                     getComputedStyle(c).backgroundColor])""")
    assert [c[0] for c in chips] == ["The", "␣capital", "␣of", "␣France", "␣is"]
    for _, score, color in chips:  # red for a positive score, blue for a negative one
        red, green, blue = (int(v) for v in color[color.index("(") + 1:-1].split(",")[:3])
        assert (red >= blue) if float(score) >= 0 else (blue >= red), (score, color)
    # in view and legible at presenter scale: the target line and the first panels' chips on the screen
    box = page.evaluate("""() => { const r = document.querySelector('#why-view .why-chips').getBoundingClientRect();
        const t = document.querySelector('#why-view .why-chip-text');
        return [r.top, r.bottom, r.right, parseFloat(getComputedStyle(t).fontSize)]; }""")
    assert 0 <= box[0] and box[1] <= 720 and box[2] <= 1280 and box[3] >= 14, box
    screenshot(page, "why-paris-presenter")

    data, name = _download(page, "why-data-csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert name == "attribution.csv" and rows[0] == COLUMNS and len(rows) == 6
    data, name = _download(page, "why-data-json")
    parsed = json.loads(data)
    assert name == "attribution.json" and parsed["target_text"] == " Paris"
    assert parsed["integrated-gradients"]["steps"] == 8 and len(parsed["tokens"]) == 5

    _open(page, app_url, prompt="<b>bold</b> & <i>", methods="occlusion")
    assert page.locator("#why-view b").count() == 0
    shown = page.evaluate("""() => [...document.querySelector('#why-view .why-panel').querySelectorAll(
        '.why-chip-text')].map((t) => t.textContent).join('')""")
    assert shown.replace("␣", " ") == "<b>bold</b> & <i>", shown
    assert not page.errors, page.errors


def test_why_on_gemma_at_presenter_scale(presenter_page, app_url):
    """The other packaged model (the test above runs SmolLM2): Gemma reads <bos> first, a start chip
    without a score; the target and the panels are in view."""
    page = presenter_page
    _open(page, app_url, model="gemma-3-270m", prompt="The capital of France is", target=" Paris",
          methods="occlusion,integrated-gradients")
    assert "Why ␣Paris? p = " in page.locator("#why-view .why-target").inner_text()
    chips = page.evaluate("""() => [...document.querySelectorAll('#why-view .why-panel[data-method="occlusion-removed"] .why-chip')]
        .map((c) => c.querySelector('.why-chip-text').textContent)""")
    assert chips[0] == "<bos>" and chips[1:] == ["The", "␣capital", "␣of", "␣France", "␣is"], chips
    assert "Completeness (8 steps)" in page.locator("#why-view").inner_text()
    top = page.evaluate("() => document.querySelector('#why-view .why-target').getBoundingClientRect().top")
    assert 0 <= top < 720, top
    screenshot(page, "why-paris-gemma-presenter")
    assert not page.errors, page.errors


def _why_opened_by(page, click):
    """The browser tab a click opens, once its "Why this token?" link has run."""
    with page.context.expect_page(timeout=30_000) as opened:
        click()
    why = opened.value
    done = "() => document.body.dataset.linkState === 'done' && document.querySelectorAll('#why-view .why-panel').length > 0"
    wait_until(why, done, "the why tab's attribution drawn",
               "() => [document.body.dataset.linkState, (document.querySelector('#why-view') || {}).innerText]",
               timeout_ms=300_000)
    return why


def test_a_generated_token_opens_why_on_the_text_before_it(page, app_url):
    """Sampling lab, greedy, 4 tokens: a click on the second opens "Why this token?" in a new browser
    tab on the prompt and the token before it, the second as the target, already run."""
    query = urllib.parse.urlencode({"tab": "sampling", "model": "smollm2-135m-instruct", "preset": "greedy",
                                    "prompt": "The capital of France is", "chat_template": "0", "n": "4",
                                    "run": "generate"})
    page.goto(app_url + "?" + query)
    wait_until(page, "() => document.body.dataset.linkState === 'done' && "
                     "document.querySelectorAll('#sampling-generated .gen-tok').length === 4 && "
                     "document.querySelectorAll('#sampling-generated .gen-why').length === 4",
               "four generated tokens with why links",
               "() => (document.querySelector('#sampling-generated') || {}).innerHTML", timeout_ms=300_000)
    assert not page.locator("#sampling-chat-template input").is_checked()  # the link's chat_template=0 holds
    token = page.locator("#sampling-generated .gen-tok").nth(1)
    texts = [page.locator("#sampling-generated .gen-tok").nth(i).text_content() for i in range(2)]
    assert "why this token" in token.get_attribute("title")
    why = _why_opened_by(page, lambda: token.click())
    prompt = why.locator("#why-prompt textarea").input_value()
    assert prompt == "The capital of France is" + texts[0], (prompt, texts)
    target = why.locator("#why-view .why-target").inner_text()
    assert target.startswith(f"Why {texts[1].replace(' ', '␣')}?"), (target, texts)
    screenshot(why, "why-from-a-generated-token")
    why.close()


def test_a_teacher_forced_token_opens_why_on_the_text_before_it(page, app_url):
    """Base vs chat, teacher forcing: a click on the base model's bar for " Paris" opens "Why this
    token?" in a new browser tab on the text before it, " Paris" as the target, already run."""
    page.goto(app_url + "?tab=chat")
    page.get_by_text("5 · Teacher forcing").click()
    page.locator("#chat-score-text textarea").fill("The capital of France is Paris.")
    page.locator("#chat-score").click()
    plot = "#chat-score-plot .js-plotly-plot"
    wait_until(page, f"() => {{ const p = document.querySelector('{plot}'); return p && p.data && p.dataset.whyClick; }}",
               "the teacher-forcing chart drawn, its clicks bound",
               f"() => (document.querySelector('#chat-score-plot') || {{}}).innerText", timeout_ms=300_000)
    links = page.evaluate(f"() => document.querySelector('{plot}').data[0].customdata")
    paris = next(i for i, link in enumerate(links)
                 if link and urllib.parse.parse_qs(link.lstrip("?"))["prompt"] == ["The capital of France is"])
    why = _why_opened_by(page, lambda: page.locator(f"{plot} .trace.bars").nth(0).locator(".point path")
                         .nth(paris).click(force=True))
    assert why.locator("#why-prompt textarea").input_value() == "The capital of France is"
    assert why.locator("#why-view .why-target").inner_text().startswith("Why ␣Paris?")
    screenshot(why, "why-from-a-teacher-forced-token")
    why.close()
