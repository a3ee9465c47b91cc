"""Chromium runs a beam search from a lecture preset and sees the tree drawn, replayed and collapsed."""

from __future__ import annotations

from tests.conftest import screenshot, select_tab, wait_until

PRESET = "Chat answer ends with EOS"  # smollm2-135m-instruct, 3 beams, stops early on <|im_end|>


def _points(page) -> int:
    return page.locator("#beam-tree .scatterlayer .point").count()


def test_preset_search_draws_the_tree(page, app_url):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    select_tab(page, "Beam search")
    page.get_by_role("button", name=PRESET).click()
    # the tab's first visit drew a tree already: wait for the preset's own (its labels are drawn as
    # text: the answer's tokens, the EOS token, the prompt root), then for the page's calls to end
    wait_until(page, "() => ['Paris', '<|im_end|>', 'prompt'].every((t) => [...document.querySelectorAll("
                     "'#beam-tree text')].some((el) => el.textContent.includes(t)))",
               "the preset's tree (Paris, <|im_end|>, prompt)",
               "() => [(document.querySelector('#beam-summary') || {}).innerText, [...document.querySelectorAll("
               "'#beam-tree text')].map((el) => el.textContent).slice(0, 30)]", timeout_ms=300_000)
    page.server_calls.wait_idle("the preset's search")
    full = _points(page)
    assert full > 3 * 6  # every considered candidate (6 per step) is a point
    screenshot(page, "beam-tree")
    # the returned sequences are listed with their scores
    page.wait_for_function("['beam #1', 'beam #3', 'greedy', 'Paris'].every("
                           "t => document.querySelector('#beam-sequences').innerText.includes(t))")
    # collapsing the pruned candidates redraws with fewer points
    page.locator("#beam-collapse input").check()
    page.wait_for_function(f"document.querySelectorAll('#beam-tree .scatterlayer .point').length < {full}",
                           timeout=180_000)
    screenshot(page, "beam-tree-collapsed")
    assert not errors, errors
