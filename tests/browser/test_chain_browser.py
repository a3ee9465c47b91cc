"""Chromium at presenter scale (1280x720, device scale 1.5) drives the sampler chain section: the
funnel of llama.cpp's default chain after "Show distribution", a stage moved up re-filters without
the model, A/B draws two strips on the same dice and K samples A/B two histograms, a preset switches
the chain; the funnel and its table are in view and legible."""

from __future__ import annotations

from tests.conftest import screenshot, select_tab, shown_legibly

FUNNEL = "#chain-funnel .js-plotly-plot"
LABELS = f"() => JSON.stringify(document.querySelector('{FUNNEL}').data[0].x)"


def test_the_funnel_follows_the_chain_at_presenter_scale(presenter_page, app_url):
    page = presenter_page
    page.goto(app_url)
    select_tab(page, "Sampling lab")
    page.locator("#sampling-show").click()
    page.wait_for_function("() => document.querySelector('#sampling-numbers table')", timeout=180_000)
    page.locator("#chain-section").get_by_text("Sampler chain").first.click()
    page.locator(FUNNEL).wait_for(timeout=180_000)
    page.wait_for_function(f"() => document.querySelector('{FUNNEL}').data")
    assert page.evaluate(LABELS) == ('["model","1. penalties","2. dry","3. top_n_sigma","4. top_k","5. typical_p",'
                                     '"6. top_p","7. min_p","8. xtc","9. temperature"]')
    kept = page.evaluate(f"() => document.querySelector('{FUNNEL}').data[0].y")
    assert kept[4] == 40 and kept[0] > 40 >= kept[-1] >= 1
    assert page.locator("#chain-table tr[data-stage]").count() == 10

    # temperature up to third place: a stage moves, the funnel is drawn again
    before = page.evaluate(LABELS)
    page.locator("#chain-stage input").click()
    page.get_by_role("option", name="9. temperature").click()
    for _ in range(6):
        page.locator("#chain-up").click()
        page.wait_for_function(f"(b) => JSON.stringify(document.querySelector('{FUNNEL}').data[0].x) !== b",
                               arg=before)
        before = page.evaluate(LABELS)
    assert '"3. temperature"' in before
    assert ";temperature=0.8;top_n_sigma=-1.0;top_k=40;" in page.locator("#chain-text textarea").input_value()

    # the funnel and its numbers are in view and legible at presenter scale
    shown_legibly(page, "chain-funnel", "#chain-table td", 400, "chain-funnel-presenter")

    # A/B on the same dice: two strips, the divergence (if any) marked
    page.locator("#chain-ab").click()
    page.locator("#ab-note").wait_for(timeout=300_000)
    assert page.locator("#ab-a .ab-tok").count() >= 1 and page.locator("#ab-b .ab-tok").count() >= 1
    note = page.locator("#ab-note").inner_text()
    assert ("First divergence" in note) == (page.locator("#ab-a .ab-diverged").count() == 1)
    strip = page.locator("#ab-a")
    strip.scroll_into_view_if_needed()
    assert strip.bounding_box()["width"] >= 400
    screenshot(page, "chain-ab-presenter")

    # K samples A/B: the next token's counts, A beside B over the same K = 64 numbers, in view
    page.locator("#chain-ab-samples").click()
    histograms = "#chain-ab-histograms .js-plotly-plot"
    page.wait_for_function(f"() => document.querySelector('{histograms}') && document.querySelector('{histograms}').data"
                           f" && document.querySelector('{histograms}').data.length == 2", timeout=180_000)
    bars = page.evaluate(f"() => document.querySelector('{histograms}').data.map((t) => [t.name, t.x, t.y])")
    assert bars[0][0].startswith("A: ") and bars[1][0].startswith("B: ") and bars[0][1] == bars[1][1]
    assert 0 < sum(bars[0][2]) <= 64 and 0 < sum(bars[1][2]) <= 64
    assert "K = 64 next-token draws" in page.evaluate(f"() => document.querySelector('{histograms}').layout.title.text")
    block = page.locator("#chain-ab-histograms")
    block.scroll_into_view_if_needed()
    assert block.bounding_box()["width"] >= 400
    screenshot(page, "chain-ab-samples-presenter")

    # a preset replaces the chain
    page.locator("#chain-preset input").click()
    page.get_by_role("option", name="Ollama").click()
    page.wait_for_function(f"() => JSON.stringify(document.querySelector('{FUNNEL}').data[0].x).includes('1. penalties')"
                           f" && document.querySelector('{FUNNEL}').data[0].x.length == 6")
    assert not page.errors, page.errors


def test_a_deep_link_opens_the_chain_and_ab_and_the_tree_grows(page, app_url):
    query = "tab=sampling&chain=top_k%3D5%3Btemperature%3D0.8&chain_b=top_k%3D5%3Btemperature%3D0.8&ab_tokens=6&run=ab&view=ab"
    page.goto(app_url + "?" + query)
    page.locator("#ab-note").wait_for(timeout=300_000)
    assert "Identical on every position" in page.locator("#ab-note").inner_text()  # A and B are the same chain
    assert page.locator("#ab-a .ab-tok").count() == page.locator("#ab-b .ab-tok").count() >= 1
    page.wait_for_function(f"() => document.querySelector('{FUNNEL}') && document.querySelector('{FUNNEL}').data"
                           f" && JSON.stringify(document.querySelector('{FUNNEL}').data[0].x) =="
                           f" JSON.stringify(['model', '1. top_k', '2. temperature'])")
    assert page.locator("#chain-text textarea").input_value() == "top_k=5;temperature=0.8"

    # the branching tree follows the lab: two tokens, two nodes on the current path
    tree = "#chain-tree .js-plotly-plot"
    for count in (1, 2):
        page.locator("#sampling-next").click()
        page.wait_for_function(f"(n) => document.querySelector('{tree}') && document.querySelector('{tree}').data"
                               f" && document.querySelector('{tree}').data[3].x.length == n", arg=count)

    # a click on a node brings the text to it: Undo twice, then the leaf brings both tokens back, the
    # first node drops the second again; the tree's current node follows, no node is added
    tokens = "#sampling-generated .gen-tok"
    texts = [page.locator(tokens).nth(i).text_content() for i in range(2)]
    for left in (1, 0):
        page.locator("#sampling-undo").click()
        page.wait_for_function(f"(n) => document.querySelectorAll('{tokens}').length == n", arg=left)
    for node, shown in ((1, texts), (0, texts[:1])):
        # the node's centre, read at once (the chart is redrawn as the lab follows: the same layout), clicked
        # once the drawn chart's clicks are bound; the nodes are the points with customdata
        page.evaluate("() => document.getElementById('chain-tree').scrollIntoView({ block: 'center' })")
        page.wait_for_function(f"() => [...document.querySelectorAll('{tree}')].every(p => p.dataset.samplingClick)")
        x, y = page.evaluate(f"""(i) => {{ const r = document.querySelectorAll('{tree} path.point.plotly-customdata')[i]
                                 .getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }}""", node)
        page.mouse.click(x, y)
        page.wait_for_function(f"(n) => document.querySelectorAll('{tokens}').length == n", arg=len(shown))
        assert [page.locator(tokens).nth(i).text_content() for i in range(len(shown))] == shown
        page.wait_for_function(f"(n) => document.querySelector('{tree}').data[1].x.length == 3 * (n + 1)"
                               f" && document.querySelector('{tree}').data[3].x.length == 2", arg=node)
    screenshot(page, "chain-tree-returned")
