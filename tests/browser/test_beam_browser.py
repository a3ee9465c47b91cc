"""Chromium runs a beam search from a lecture preset and sees the tree drawn, replayed and collapsed."""

from __future__ import annotations

from tests.conftest import screenshot, select_tab

PRESET = "Chat answer ends with EOS"  # smollm2-135m-instruct, 3 beams, stops early on <|im_end|>


def _points(page) -> int:
    return page.locator("#beam-tree .scatterlayer .point").count()


def test_preset_search_draws_the_tree(page, app_url):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    select_tab(page, "Beam search")
    page.get_by_role("button", name=PRESET).click()
    page.locator("#beam-tree .js-plotly-plot").wait_for(timeout=300_000)
    page.locator("#beam-summary").get_by_text("steps").wait_for(timeout=300_000)
    tree = page.locator("#beam-tree")
    # node labels are drawn as text: the answer's tokens, the EOS token, the prompt root
    tree.locator("text", has_text="Paris").first.wait_for()
    tree.locator("text", has_text="<|im_end|>").first.wait_for()
    tree.locator("text", has_text="prompt").first.wait_for()
    full = _points(page)
    assert full > 3 * 6  # every considered candidate (6 per step) is a point
    screenshot(page, "beam-tree")
    # the returned sequences are listed with their scores
    page.wait_for_function("['beam #1', 'beam #3', 'greedy', 'Paris'].every("
                           "t => document.querySelector('#beam-sequences').innerText.includes(t))")
    # collapsing the pruned candidates redraws with fewer points
    page.locator("#beam-collapse input").check()
    page.wait_for_function(f"document.querySelectorAll('#beam-tree .scatterlayer .point').length < {full}",
                           timeout=60_000)
    screenshot(page, "beam-tree-collapsed")
    assert not errors, errors
