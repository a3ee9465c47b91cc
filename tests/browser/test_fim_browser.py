"""The Base vs chat tab's fill-in-the-middle section in headless Chromium (issue 14, item 3).

Opening the accordion draws the default code cut into its three coloured parts, the PSM string
as tokens of the chosen model's tokenizer, and says plainly that running it live needs a
FIM-trained model (the packaged ones are not), with the button disabled.
"""

from __future__ import annotations

from playground import fim
from playground.ui import fim_section
from tests.conftest import screenshot

PART_TEXT_JS = "els => els.map(e => [e.dataset.part, e.textContent])"


def test_the_fim_section_shows_three_parts_and_the_honest_note(page, app_url):
    page.goto(app_url)
    page.get_by_role("tab", name="Base vs chat").click()
    page.get_by_text("Fill-in-the-middle (code completion)").click()
    page.wait_for_selector("#fim-parts .fim-middle", timeout=120_000)
    example = fim.cut_marked(fim_section.DEFAULT_CODE)
    parts = page.locator("#fim-parts .fim-seg").evaluate_all(PART_TEXT_JS)
    assert parts == [["prefix", example.prefix], ["middle", example.middle], ["suffix", example.suffix]]
    colours = page.locator("#fim-parts .fim-seg").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == 3
    notes = page.inner_text("#fim-notes")
    assert "Run live needs a FIM-trained model, e.g. a StarCoder2 or Qwen2.5-Coder GGUF in the models file" in notes
    assert "has no FIM tokens" in notes and "[pre]" in notes
    assert page.locator("#fim-run").is_disabled()
    encoded = fim.layout_for(fim_section.default_model(fim_section.model_choices()), example)
    assert page.locator("#fim-psm .fim-chips .tok").count() == encoded.result.num_tokens
    psm_text = "".join(page.locator("#fim-psm .fim-psm .fim-seg").evaluate_all("els => els.map(e => e.textContent)"))
    assert psm_text == encoded.psm.training
    screenshot(page, "fim-section")
