"""A class in Chromium: a presenter page at 1280x720 (device scale 1.5) and three student pages (one
a phone, 390x844) that join by the link the presenter's page shows, follow a tab change and a
sampling step, answer a next-token poll, and see the reveal beside the model's distribution; the
phone explores from there and follows again."""

from __future__ import annotations

import re

from tests.conftest import ServerCalls, screenshot, select_tab, wait_until

PRESENTER = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1.5}
STUDENTS = [{"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True},
            {"viewport": {"width": 1000, "height": 800}}, {"viewport": {"width": 1000, "height": 800}}]
FOLLOWED = "() => (document.querySelector('#class-follow') || {}).innerText"


def _page(browser, options):
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.server_calls = ServerCalls(page)
    return context, page


def _sees(page, text: str, what: str) -> None:
    wait_until(page, "(text) => ((document.querySelector('#class-follow') || {}).innerText || '').includes(text)",
               what, FOLLOWED, arg=text, timeout_ms=60_000)


def test_students_follow_the_presenter_and_answer_a_next_token_poll(browser, app_url):
    contexts = []
    try:
        context, presenter = _page(browser, PRESENTER)
        contexts.append(context)
        presenter.goto(app_url + "?class=new&present=1")
        code = presenter.locator("#class-code").inner_text(timeout=120_000).strip()
        link = presenter.locator("#class-link").inner_text().strip()
        assert re.fullmatch(r"[A-Z0-9]{6}", code) and link.endswith(f"/?join={code}")
        assert presenter.locator("#class-qr svg").count() == 1
        card = presenter.locator("#class-code").bounding_box()
        assert card["y"] + card["height"] <= 720 and card["height"] >= 48  # in view, large
        screenshot(presenter, "class-presenter-join")

        students = []
        for options in STUDENTS:
            context, student = _page(browser, options)
            contexts.append(context)
            student.goto(link)  # the link as the projector shows it
            students.append(student)
        for student in students:
            _sees(student, f"Class {code}", "the student page joined the class")
            assert student.get_by_role("tab", name="Sampling lab").count() == 0  # the light view only

        select_tab(presenter, "Sampling lab")
        for student in students:
            _sees(student, "The presenter is on: Sampling lab", "the tab change followed")
        presenter.locator("#sampling-next").click()
        for student in students:
            _sees(student, "Step 1:", "the sampling step followed")

        presenter.locator("#class-poll-next").click()
        wait_until(presenter, "() => !!document.querySelector('#class-poll-status-box [data-status=open]')",
                   "the poll started", "() => document.querySelector('#class-poll-status-box').innerText")
        tapped = None
        for student, guess in zip(students, [None, "a", "banana"]):
            _sees(student, "Which token comes next?", "the poll reached the student")
            if guess is None:  # the phone taps one of the chips (the model's likely words) instead of typing
                chip = student.locator("#class-follow .class-chip").first
                tapped = chip.inner_text().strip()
                assert student.locator("#class-follow .class-chip").count() >= 3 and tapped
                chip.click()
            else:
                student.locator("#class-answer").fill(guess)
                student.locator("#class-send").click()
            wait_until(student, "() => document.querySelector('#class-answer-status').dataset.outcome",
                       "the answer was taken", "() => document.querySelector('#class-answer-status').innerText")
            status = student.locator("#class-answer-status").inner_text()
            assert "Answer received" in status and "counted as" in status, status
        phone = students[0]
        assert phone.evaluate("document.documentElement.scrollWidth") <= 391  # no sideways scrolling
        assert phone.locator("#class-send").bounding_box()["x"] + 10 < 390
        screenshot(phone, "class-student-phone")

        wait_until(presenter, "() => (document.querySelector('#class-answer-count') || {}).innerText === '3'",
                   "the presenter sees 3 answers", "() => document.querySelector('#class-poll-status-box').innerText")
        presenter.locator("#class-reveal").click()
        wait_until(presenter, "() => !!document.querySelector('#class-result .class-table')"
                              " && !!document.querySelector('#class-result-plot .js-plotly-plot')",
                   "the reveal's table and chart", "() => document.querySelector('#class-result').innerText")
        wait_until(presenter, "() => { const b = document.querySelector('#class-result-plot').getBoundingClientRect();"
                              " return b.top >= -1 && b.top < window.innerHeight / 2; }",
                   "the reveal's chart brought into view", "() => document.querySelector('#class-result-plot')"
                   ".getBoundingClientRect().top")
        result = presenter.locator("#class-result").inner_text()
        assert "3 answers" in result and "surprised than the model" in result
        assert f"␣{tapped}" in result and "␣banana" in result  # guesses as the model's tokens, leading space
        screenshot(presenter, "class-presenter-reveal")
        for student in students:
            _sees(student, "surprised than the model", "the reveal reached the student")
        assert "Explore from here" in phone.locator("#class-follow").inner_text()
        href = phone.locator("#class-explore").get_attribute("href")
        assert "tab=sampling" in href and f"follow={code}" in href and "present" not in href
        phone.locator("#class-explore").click()  # explore from here: the full app, then follow again
        back = phone.locator("#class-follow-again")
        back.wait_for(timeout=120_000)
        assert back.get_attribute("href") == f"/?join={code}"
        assert phone.get_by_role("tab", name="Sampling lab").get_attribute("aria-selected") == "true"
        back.click()
        _sees(phone, f"Class {code}", "following again")
    finally:
        for context in contexts:
            context.close()


SIDES = """() => {
  const blind = document.documentElement.classList.contains('class-blind');
  const side = (id) => document.getElementById(id).getBoundingClientRect().left;
  const mark = (id) => getComputedStyle(document.getElementById(id), '::before').content.replace(/"/g, '');
  const title = document.querySelector('.chat-col-title');
  return {blind, base_left: side('chat-base-side') < side('chat-chat-side'), base: mark('chat-base-column'),
          chat: mark('chat-chat-column'), titles: getComputedStyle(title).visibility,
          model_box: getComputedStyle(document.getElementById('chat-chat-model')).visibility};
}"""


def test_the_chat_poll_hides_which_column_is_which_until_the_reveal(browser, app_url):
    """While "which is the chat model?" is open the projector names no model: titles, headers and model
    boxes hidden, the columns marked A (left) and B (right), and a coin decides the chat model's side;
    the reveal names them again, and its answer is the side the chat model was drawn on."""
    context, presenter = _page(browser, PRESENTER)
    try:
        presenter.goto(app_url + "?class=new&present=1")
        presenter.locator("#class-code").inner_text(timeout=120_000)
        select_tab(presenter, "Base vs chat")
        assert presenter.evaluate(SIDES)["titles"] == "visible"
        presenter.locator("#class-poll-chat").click()
        wait_until(presenter, "() => document.documentElement.classList.contains('class-blind')",
                   "the columns went blind", SIDES)
        sides = presenter.evaluate(SIDES)
        assert sides["titles"] == "hidden" and sides["model_box"] == "hidden", sides
        left, right = ("base", "chat") if sides["base_left"] else ("chat", "base")
        assert (sides[left], sides[right]) == ("A", "B"), sides  # A is whichever is drawn on the left
        screenshot(presenter, "class-chat-poll-blind")
        presenter.locator("#class-reveal").click()
        wait_until(presenter, "() => !!document.querySelector('#class-result .class-table')",
                   "the reveal", "() => document.querySelector('#class-result').innerText")
        wait_until(presenter, "() => !document.documentElement.classList.contains('class-blind')",
                   "the columns named again after the reveal", SIDES)
        after = presenter.evaluate(SIDES)
        assert after["titles"] == "visible" and after["base_left"], after
        result = presenter.locator("#class-result").inner_text()
        chat_label = "A" if left == "chat" else "B"
        assert re.search(rf"\b{chat_label}\b[^\n]*smollm2-135m-instruct", result), result
    finally:
        context.close()
