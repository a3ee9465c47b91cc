"""Chromium opens "Inside the model", looks inside a text, picks a layer and a head, and sees the
heatmap change; then the logit lens, teacher forcing and KV views on both packaged models."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot, set_number, select_tab


def _heatmap_state(page) -> str:
    """The heatmap's title and its drawn image (plotly draws a heatmap as one <image>)."""
    return page.evaluate("""() => {
        const root = document.querySelector('#inside-attention');
        const title = root.querySelector('.gtitle');
        const image = root.querySelector('.hm image');
        return (title ? title.textContent : '') + '|' + (image ? image.getAttribute('href').length + ':' +
            image.getAttribute('href').slice(-200) : '');
    }""")


def _wait_change(page, before: str, timeout: int = 60_000) -> str:
    page.wait_for_function("""(before) => {
        const root = document.querySelector('#inside-attention');
        const title = root && root.querySelector('.gtitle');
        const image = root && root.querySelector('.hm image');
        if (!title || !image) return false;
        const now = title.textContent + '|' + image.getAttribute('href').length + ':' +
            image.getAttribute('href').slice(-200);
        return now !== before;
    }""", arg=before, timeout=timeout)
    return _heatmap_state(page)


@pytest.mark.parametrize("model_id", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_pick_layer_and_head_and_the_heatmap_changes(page, app_url, model_id):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    select_tab(page, "Inside the model")
    page.locator("#inside-model input").click()
    page.get_by_role("option", name=model_id).click()
    page.locator("#inside-run").click()
    page.locator("#inside-attention .js-plotly-plot").wait_for(timeout=300_000)
    page.locator("#inside-card").get_by_text("the formula gives exactly the counted total").wait_for(timeout=300_000)
    page.locator("#inside-attention .gtitle", has_text="Layer 0, head 0").wait_for()
    first = _heatmap_state(page)
    screenshot(page, f"inside-{model_id}-first")

    set_number(page, "inside-head", 2)
    after_head = _wait_change(page, first)
    assert "head 2" in after_head and after_head.split("|")[1] != first.split("|")[1]
    set_number(page, "inside-layer", 5)
    after_layer = _wait_change(page, after_head)
    assert "Layer 5, head 2" in after_layer and after_layer.split("|")[1] != after_head.split("|")[1]
    page.locator("#inside-heads .gtitle", has_text="Layer 5").wait_for()
    if model_id == "gemma-3-270m":  # layers 0-4 slide over a window of 512; layer 5 is a full-attention layer
        assert "sliding window of 512" in first and "full attention" in after_layer
    cells = page.locator("#inside-attention .nsewdrag").first
    cells.scroll_into_view_if_needed()
    box = cells.bounding_box()
    cells.hover(position={"x": box["width"] * 0.3, "y": box["height"] * 0.8})  # below the diagonal
    hover = page.locator("#inside-attention .hoverlayer .hovertext").first
    hover.wait_for(timeout=10_000)
    hover_text = hover.text_content()
    assert "query" in hover_text and "key" in hover_text and "weight" in hover_text, hover_text
    screenshot(page, f"inside-{model_id}-layer5-head2")

    page.locator("#inside-lens-run").click()
    page.locator("#inside-lens .js-plotly-plot").wait_for(timeout=300_000)
    page.locator("#inside-lens").get_by_text("Berlin").first.wait_for(timeout=300_000)
    assert "one forward pass" in page.locator("#inside-forcing-note").inner_text()
    assert "equal" in page.locator("#inside-kv-note").inner_text()
    page.locator("#inside-table").get_by_text("GPT-3").wait_for()
    screenshot(page, f"inside-{model_id}-lens")
    assert not errors, errors
