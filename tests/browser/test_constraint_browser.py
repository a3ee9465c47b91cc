"""Chromium at presenter scale (1280x720, device scale 1.5) drives the Sampling lab's Constraint
section on the default model: a choice list gives one of its choices beside the free text, the mask
chart and the step chart are drawn, the step slider redraws a step, a JSON schema's text starts as
the schema says; the charts and the table are in view and legible."""

from __future__ import annotations

from tests.conftest import screenshot, select_tab, shown_legibly, set_number, wait_until

STEP_PLOT = "#constraint-step-plot .js-plotly-plot"
CONSTRAINED = "() => (document.querySelector('#constraint-constrained .constraint-text') || {}).innerText"


def _run_the_choices_example(page) -> None:
    """Open the section, pick the choice list (its example fills in), run it: one of the choices."""
    page.locator("#constraint-section").get_by_text("Constraint: structured outputs").first.click()
    page.locator("#constraint-kind").get_by_text("choices", exact=True).click()
    wait_until(page, "() => document.querySelector('#constraint-text textarea').value.startsWith('Paris,')",
               "the choices example", "() => document.querySelector('#constraint-text textarea').value")
    page.locator("#constraint-run").click()
    wait_until(page, f"() => ['Paris', 'London', 'Berlin', 'Rome'].includes(({CONSTRAINED})())",
               "one of the choices as the constrained text", CONSTRAINED)


def test_the_constraint_section_shows_the_mask_at_presenter_scale(presenter_page, app_url):
    page = presenter_page
    page.goto(app_url)
    select_tab(page, "Sampling lab")
    _run_the_choices_example(page)
    assert page.locator("#constraint-free .constraint-text").inner_text()
    page.wait_for_function(f"() => document.querySelector('{STEP_PLOT}') && document.querySelector('{STEP_PLOT}').data")
    title = page.evaluate(f"() => document.querySelector('{STEP_PLOT}').layout.title.text")
    assert title.startswith("step 1:") and "allowed" in title and "removed" in title
    assert page.locator("#constraint-overview .js-plotly-plot").count() == 1

    # the charts and the table in view and legible at presenter scale
    shown_legibly(page, "constraint-step-plot", "#constraint-steps td", 600, "constraint-choices-presenter")

    # a JSON schema: the text starts as the schema says; the slider shows another step
    page.locator("#constraint-kind").get_by_text("JSON schema", exact=True).click()
    wait_until(page, "() => document.querySelector('#constraint-text textarea').value.includes('population')",
               "the JSON schema example", "() => document.querySelector('#constraint-text textarea').value")
    set_number(page, "constraint-max-tokens", 12)
    page.locator("#constraint-run").click()
    wait_until(page, f"() => (({CONSTRAINED})() || '').startsWith('{{\"city\": \"')",
               "the schema's first key in the constrained text", CONSTRAINED)
    set_number(page, "constraint-step", 3)
    page.locator("#constraint-step input[type=range]").dispatch_event("pointerup")
    wait_until(page, f"() => document.querySelector('{STEP_PLOT}').layout.title.text.startsWith('step 3:')",
               "step 3 drawn", f"() => document.querySelector('{STEP_PLOT}').layout.title.text")
    screenshot(page, "constraint-json-presenter")
    assert not page.errors, page.errors


def test_the_constraint_section_on_the_other_packaged_model(presenter_page, app_url):
    """The same choice list on SmolLM2 (the test above runs the default, Gemma): one of the choices."""
    page = presenter_page
    page.goto(app_url + "?tab=sampling&model=smollm2-135m-instruct")
    wait_until(page, "() => document.body.dataset.linkState === 'done'", "the link applied",
               "() => document.body.dataset.linkState")
    _run_the_choices_example(page)
    assert "smollm2-135m-instruct" in page.locator("#sampling-model input").input_value()
    shown_legibly(page, "constraint-step-plot", "#constraint-steps td", 600, "constraint-choices-smollm2-presenter")
    assert not page.errors, page.errors
