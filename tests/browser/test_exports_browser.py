"""Chromium downloads every kind of export: charts as PNG and SVG, each view's data as CSV and JSON.

On the sampling lab, beam search, tokenizer, base-vs-chat (section 3) and inside-the-model tabs: a
view is computed, then each button's download is caught and read: the PNG has the PNG signature,
is 1920 pixels wide and over 10 kB; the SVG parses as XML with an <svg> root; the CSV parses with
csv (a header row and more than one data row); the JSON parses. The chart bar is added once per
chart, also after the chart is redrawn; a download before its view exists says what to do first.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from playground import exports
from tests.conftest import ARTIFACTS, screenshot, select_tab, wait_until

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def download(page, locator) -> tuple[bytes, str]:
    """The file a click on `locator` downloads (also kept under artifacts/exports/, git-ignored)."""
    with page.expect_download(timeout=120_000) as info:
        locator.click()
    data, name = Path(info.value.path()).read_bytes(), info.value.suggested_filename
    folder = ARTIFACTS / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return data, name


def check_chart(page, host: str, stem: str) -> None:
    """The chart in `host` (a CSS selector) downloads as a slide-sized PNG and as an SVG."""
    chart = page.locator(host)
    assert chart.locator(".chart-export").count() == 1
    png, name = download(page, chart.get_by_role("button", name="Download chart as PNG"))
    assert png[:8] == PNG_SIGNATURE and len(png) > 10_000, (name, len(png))
    assert struct.unpack(">I", png[16:20])[0] == 1920 and name == f"{stem}.png"
    svg, name = download(page, chart.get_by_role("button", name="Download chart as SVG"))
    root = ElementTree.fromstring(svg)
    assert root.tag.rsplit("}", 1)[-1] == "svg" and name == f"{stem}.svg"


def check_data(page, elem_prefix: str, stem: str, columns: tuple[str, ...], rows_at_least: int = 2) -> list[list[str]]:
    """The view's CSV (header + rows) and JSON downloads; returns the CSV's rows."""
    data, name = download(page, page.locator(f"#{elem_prefix}-csv"))
    assert name == f"{stem}.csv" and data.startswith(b"\xef\xbb\xbf")  # a byte-order mark for spreadsheets
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(columns) and len(rows) - 1 >= rows_at_least, rows[:3]
    assert all(len(row) == len(columns) for row in rows)
    data, name = download(page, page.locator(f"#{elem_prefix}-json"))
    parsed = json.loads(data.decode("utf-8"))
    assert name == f"{stem}.json" and parsed["columns"] == list(columns)
    return rows


def open_tab(page, app_url, name: str):
    """Open the tab and let its first-visit run (`ui.links`: the default action) finish first, so that
    it cannot replace what the test computes next; returns the list that collects page errors."""
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    select_tab(page, name, timeout_ms=300_000)
    return errors


GENERATED_TOKENS = ("() => { const td = [...document.querySelectorAll('#sampling-numbers td')].find("
                    "(td) => td.innerText.includes('generated tokens'));"
                    " return td ? Number(td.nextElementSibling.innerText) : null; }")


def test_sampling_lab_exports(page, app_url):
    errors = open_tab(page, app_url, "Sampling lab")
    page.locator("#sampling-prompt textarea").fill("The capital of Italy is")
    page.locator("#sampling-show").click()
    page.wait_for_function("document.querySelector('#sampling-generated').innerText.includes('Italy')",
                           timeout=300_000)
    page.locator("#sampling-tokens-data-csv").click()  # nothing generated yet: a message, no file
    page.locator("#sampling-tokens-data-note").get_by_text("No generated tokens yet").wait_for(timeout=60_000)
    page.locator("#sampling-dist-plot .chart-export").wait_for()
    screenshot(page, "exports-sampling")
    check_chart(page, "#sampling-dist-plot", "sampling-dist-plot")
    rows = check_data(page, "sampling-dist-data", "sampling-distribution", exports.DISTRIBUTION_COLUMNS, 20)
    assert [row[0] for row in rows[1:4]] == ["1", "2", "3"]
    for count in (1, 2):
        page.locator("#sampling-next").click()
        page.wait_for_function("document.querySelector('#sampling-numbers').innerText.includes('perplexity')",
                               timeout=300_000)
        wait_until(page, f"(n) => ({GENERATED_TOKENS})() === n", f"{count} generated token(s) in the numbers",
                   GENERATED_TOKENS, arg=count, timeout_ms=150_000)
    rows = check_data(page, "sampling-tokens-data", "sampling-tokens", exports.RECORD_COLUMNS, 2)
    assert [row[0] for row in rows[1:]] == ["0", "1"]
    assert page.locator("#sampling-dist-plot .chart-export").count() == 1  # redrawn, still one bar
    assert not errors, errors


def test_beam_search_exports(page, app_url):
    errors = open_tab(page, app_url, "Beam search")  # its first visit ran the default search
    page.locator("#beam-tree .js-plotly-plot").wait_for(timeout=300_000)
    page.locator("#beam-summary").get_by_text("steps").wait_for(timeout=300_000)
    page.locator("#beam-tree .chart-export").wait_for()
    screenshot(page, "exports-beam")
    check_chart(page, "#beam-tree", "beam-tree")
    rows = check_data(page, "beam-data", "beam-tree", exports.BEAM_COLUMNS, 4)
    assert rows[1][exports.BEAM_COLUMNS.index("status")] == "root"
    assert not errors, errors


def test_tokenizer_exports(page, app_url):
    errors = open_tab(page, app_url, "Tokenizer")
    page.locator("#tok-counts .tok-count").wait_for(timeout=120_000)
    count = int(page.locator("#tok-counts .tok-count").get_attribute("data-count"))
    rows = check_data(page, "tok-data", "tokens", exports.TOKEN_COLUMNS, 2)
    assert len(rows) - 1 == count
    compare = page.locator(".tabitem:visible .block:has(.js-plotly-plot)").first
    compare.locator(".chart-export").wait_for(timeout=120_000)
    png, name = download(page, compare.get_by_role("button", name="Download chart as PNG"))
    assert png[:8] == PNG_SIGNATURE and len(png) > 10_000 and name == "tok-compare-plot.png"  # named by its elem_id
    svg, _ = download(page, compare.get_by_role("button", name="Download chart as SVG"))
    assert ElementTree.fromstring(svg).tag.endswith("svg")
    screenshot(page, "exports-tokenizer")
    assert not errors, errors


def test_chat_template_exports(page, app_url):
    errors = open_tab(page, app_url, "Base vs chat")
    page.locator("#chat-template-view .ct-root").wait_for(timeout=120_000)
    rows = check_data(page, "chat-template-data", "chat-template", exports.TEMPLATE_COLUMNS, 10)
    mask = [row[exports.TEMPLATE_COLUMNS.index("loss_mask")] for row in rows[1:]]
    assert set(mask) == {"0", "1"}
    roles = {row[exports.TEMPLATE_COLUMNS.index("role")] for row in rows[1:]}
    assert {"user", "assistant"} <= roles
    assert not errors, errors


def test_inside_the_model_exports(page, app_url):
    errors = open_tab(page, app_url, "Inside the model")
    page.locator("#inside-run").click()
    page.locator("#inside-attention .js-plotly-plot").wait_for(timeout=300_000)
    page.locator("#inside-attention .chart-export").wait_for()
    check_chart(page, "#inside-attention", "inside-attention")
    rows = check_data(page, "inside-attention-data", "attention", exports.ATTENTION_COLUMNS, 10)
    queries = {row[0] for row in rows[1:]}
    assert len(queries) > 3
    assert not errors, errors
