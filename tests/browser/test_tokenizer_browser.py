"""The Tokenizer tab in headless Chromium: typing updates the count, hover, presets, share URLs, caps."""

from __future__ import annotations

from tests.conftest import select_tab

from pathlib import Path
from urllib.parse import quote

from playground import tokenizer_registry
from playground.ui import tokenizer_tab
from playground.ui.tokenizer_presets import PRESETS_BY_NAME

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
COUNT = "#tok-counts .tok-count"


def wait_for_count(page, expected: int) -> None:
    try:
        page.wait_for_function(
            "n => { const el = document.querySelector('#tok-counts .tok-count'); return el && el.dataset.count === String(n); }",
            arg=expected, timeout=60_000)
    except Exception:
        raise AssertionError(f"expected {expected} tokens; the page shows: {page.inner_text('#tok-counts')!r}") from None


def open_tab(page, app_url: str, query: str = "") -> None:
    page.goto(app_url + query)
    select_tab(page, "Tokenizer")
    page.wait_for_selector(COUNT)
    page.wait_for_selector("#tok-compare .tok-col")  # the page-load events are done


def test_typing_updates_the_token_count(page, app_url):
    open_tab(page, app_url)
    box = page.locator("#tok-text textarea")
    text = "Counting the r's in strawberry: 12345678 🐟"
    expected = tokenizer_registry.tokenize("llama-3", text).num_tokens  # the default tokenizer of the tab
    box.fill("")
    box.press_sequentially(text, delay=5)
    wait_for_count(page, expected)
    assert page.inner_text(COUNT) == str(expected)
    spans = page.locator("#tok-view .tok")
    assert spans.count() == expected
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "tokenizer-typed.png"), full_page=True)


def test_hover_highlights_the_same_token_in_the_id_list(page, app_url):
    open_tab(page, app_url, "?tokenizer=cl100k_base&text=" + quote("hello world"))
    wait_for_count(page, 2)
    page.hover("#tok-view .tok[data-i='1']")
    highlighted = page.locator("#tok-view .tok-hl")
    assert highlighted.count() == 2
    assert sorted(highlighted.evaluate_all("els => els.map(e => e.className)")) == ["tok tok-hl", "tok-id tok-hl"]


def test_an_older_share_url_without_tab_opens_the_same_state(page, app_url):
    text = "一隻貓正在爬樹。"
    open_tab(page, app_url, f"?tokenizer=o200k_base&compare=r50k_base,bytes&text={quote(text)}")
    wait_for_count(page, tokenizer_registry.tokenize("o200k_base", text).num_tokens)
    assert "o200k_base" in page.inner_text("#tok-counts")
    page.wait_for_selector("#tok-compare .tok-col")
    assert "bytes: 24 tokens" in page.inner_text("#tok-compare")


def test_lecture_preset_reproduces_33_llama3_tokens(page, app_url):
    open_tab(page, app_url, "?tokenizer=cl100k_base&text=x")
    wait_for_count(page, 1)
    page.get_by_role("button", name="A cat was climbing a tree (lecture, Llama 3)").click()
    wait_for_count(page, 33)


def test_huge_paste_is_capped_with_a_note_and_exact_counts(page, app_url):
    open_tab(page, app_url, "?tokenizer=cl100k_base&text=x")
    wait_for_count(page, 1)
    text = "The quick brown fox jumps over the lazy dog. " * 4000  # 180 KB
    expected = tokenizer_registry.tokenize("cl100k_base", text).num_tokens
    page.locator("#tok-text textarea").fill(text)  # like a paste: one input event, no keystrokes
    wait_for_count(page, expected)
    assert "Showing the first 5,000 of" in page.inner_text("#tok-view")


def test_share_button_makes_a_link_that_restores_the_view(page, app_url):
    text = "Tree was climbed by a cat."
    open_tab(page, app_url, f"?tokenizer=r50k_base&compare=r50k_base,llama-3&text={quote(text)}")
    wait_for_count(page, tokenizer_registry.tokenize("r50k_base", text).num_tokens)
    page.locator("#copy-link").click()  # the header's "Copy link": the selected tab's state
    page.wait_for_function(
        "() => { const el = document.querySelector('#link-output textarea, #link-output input');"
        " return el && el.value.includes('tokenizer='); }")
    link = page.locator("#link-output textarea, #link-output input").first.input_value()
    assert "tab=tokenizer" in link
    assert "tokenizer=r50k_base" in link and "compare=r50k_base%2Cllama-3" in link
    page.goto(link)
    wait_for_count(page, tokenizer_registry.tokenize("r50k_base", text).num_tokens)
    assert page.locator("#tok-text textarea").input_value() == text


def test_a_preset_refills_the_decode_box_with_its_own_tokenizers_ids(page, app_url):
    open_tab(page, app_url)  # the default: Llama 3, and the Decode box holds Llama 3 ids
    box = page.locator("#tok-decode-ids textarea, #tok-decode-ids input").first
    text = PRESETS_BY_NAME["Count the r's in strawberry"].text  # a cl100k_base preset
    page.get_by_role("button", name="Count the r's in strawberry").click()
    wait_for_count(page, tokenizer_registry.tokenize("cl100k_base", text).num_tokens)
    expected = tokenizer_registry.tokenize("cl100k_base", text).ids[:tokenizer_tab.DECODE_SAMPLE]
    wanted = ", ".join(map(str, expected))
    try:
        page.wait_for_function("([sel, want]) => document.querySelector(sel).value === want",
                               arg=["#tok-decode-ids textarea", wanted], timeout=30_000)
    except Exception:
        raise AssertionError(f"the Decode box shows {box.input_value()!r}, not cl100k_base's {wanted!r}") from None
    page.get_by_role("button", name="Decode", exact=True).click()
    page.wait_for_selector("#tok-decoded .tok-decoded")
    decoded = page.inner_text("#tok-decoded")
    assert f"{len(expected)} ids decode to (with cl100k_base)" in decoded
    assert page.inner_text("#tok-decoded .tok-decoded") == tokenizer_registry.get_tokenizer("cl100k_base").decode(expected)
    assert text.startswith(page.inner_text("#tok-decoded .tok-decoded"))


# Widths in the page: a glyph the fonts lack is drawn as the fallback font's empty box ("tofu"),
# the same box for every missing character, here measured on U+10FFFD (private use, in no font).
GLYPH_WIDTHS_JS = """
(chars) => {
  const row = document.querySelector('#tok-view .tok-spans');
  const width = (text) => {
    const probe = document.createElement('span');
    probe.className = 'tok';
    probe.textContent = text;
    row.appendChild(probe);
    const w = probe.getBoundingClientRect().width;
    probe.remove();
    return w;
  };
  return {tofu: width('\\u{10FFFD}'), chars: chars.map(c => [c, width(c)]),
          family: getComputedStyle(document.querySelector('#tok-view .tok')).fontFamily};
}
"""


def test_chinese_and_emoji_tokens_are_drawn_with_real_glyphs_not_boxes(page, app_url):
    line = "一隻貓正在爬樹。"
    open_tab(page, app_url, "?tokenizer=llama-3&text=" + quote(line + " 🐈🌳"))
    wait_for_count(page, tokenizer_registry.tokenize("llama-3", line + " 🐈🌳").num_tokens)
    shown = page.locator("#tok-view .tok").evaluate_all("els => els.map(e => e.textContent)")
    assert "一" in shown and "樹" in shown  # whole characters are drawn as text, split ones as bytes
    measured = page.evaluate(GLYPH_WIDTHS_JS, [*line, "🐈", "🌳"])
    assert "Noto Sans CJK SC" in measured["family"] and "Noto Color Emoji" in measured["family"]
    tofu = measured["tofu"]
    boxes = [char for char, width in measured["chars"] if abs(width - tofu) < 0.5]
    assert not boxes, (f"{''.join(boxes)} drawn as empty boxes ({tofu:.1f} px wide, like U+10FFFD): "
                       "install the fonts with `make fonts` (fonts-noto-cjk, fonts-noto-color-emoji)")
