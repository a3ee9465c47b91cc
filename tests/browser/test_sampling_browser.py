"""Chromium drives the Sampling lab: moving the temperature slider changes the chart, a bar click appends."""

from __future__ import annotations

from tests.conftest import screenshot, select_tab

PLOT = "#sampling-dist-plot .js-plotly-plot"
PROCESSED = f"() => JSON.stringify(document.querySelector('{PLOT}').data[1].x)"


def test_temperature_slider_changes_the_chart(page, app_url):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    select_tab(page, "Sampling lab")
    page.locator("#sampling-show").click()
    page.locator(PLOT).wait_for(timeout=180_000)
    page.wait_for_function(f"() => document.querySelector('{PLOT}').data && document.querySelector('{PLOT}').data.length == 2")
    before = page.evaluate(PROCESSED)
    kept_before = page.locator("#sampling-numbers").inner_text()

    slider = page.locator("#sampling-temperature input[type=range]")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)  # to about 3
    page.wait_for_function(f"(b) => JSON.stringify(document.querySelector('{PLOT}').data[1].x) !== b", arg=before)
    temperature = float(page.locator("#sampling-temperature input[type=number]").input_value())
    assert 2.0 < temperature < 4.0
    after = page.evaluate(PROCESSED)
    # hotter: the most probable token loses probability after the rules
    assert float(after.strip("[]").split(",")[0]) < float(before.strip("[]").split(",")[0])
    page.wait_for_function("(t) => document.querySelector('#sampling-numbers').innerText !== t", arg=kept_before)
    screenshot(page, "sampling-temperature")

    # a lecture preset in one click: greedy keeps one token
    page.locator("#sampling-preset-greedy").click()
    page.wait_for_function("() => document.querySelector('#sampling-numbers').innerText.includes('1 of ')")

    # clicking a bar appends that token to the text
    # the page binds plotly's click event to each newly drawn chart (every 200 ms): wait for it
    page.wait_for_function(f"() => [...document.querySelectorAll('{PLOT}')].every(p => p.dataset.samplingClick)")
    bars = page.locator("#sampling-dist-plot .trace.bars").nth(0).locator(".point path")
    bars.nth(1).click(force=True)
    page.locator("#sampling-generated .gen-tok").first.wait_for(timeout=60_000)
    assert page.locator("#sampling-generated .gen-forced").count() == 1
    screenshot(page, "sampling-clicked-bar")
    assert not errors, errors


def test_a_link_shows_once_with_its_own_prompt_and_a_chosen_model_shows_its_distribution(page, app_url):
    """A link that sets the model, the chat template and the prompt at once shows one distribution,
    of its prompt: the model's and the template's change events used to show the default prompt as
    well, and when that show ended last, Generate continued the default prompt (the eos demo)."""
    import json

    shows = []
    page.on("request", lambda r: shows.append(json.loads(r.post_data)["data"]) if "/queue/join" in r.url
            and r.post_data and '"What is' not in r.post_data and "The capital of France is" in r.post_data else None)
    page.goto(f"{app_url}?tab=sampling&model=smollm2-135m-instruct&chat_template=1"
              "&prompt=What%20is%20the%20capital%20of%20France%3F&run=show")
    page.wait_for_function("document.body.dataset.linkState === 'done'", timeout=240_000)
    page.server_calls.wait_idle("the link's calls")
    assert not shows, shows  # no request carried the default prompt
    title = page.evaluate(f"() => document.querySelector('{PLOT}').layout.title.text")
    assert "France?" in title, title

    # a model chosen by hand shows its own distribution (the dropdown's input event)
    page.locator("#sampling-model input").click()
    page.get_by_role("option", name="gemma-3-270m").click()
    page.wait_for_function("() => document.querySelector('#sampling-numbers').innerText.includes('262,144')",
                           timeout=180_000)
    assert not page.locator("#sampling-chat-template input").is_checked()  # a base model: no template
