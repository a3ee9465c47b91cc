"""The class room's HTML: every presenter, student and vocabulary string escaped; the student's view
says what the presenter shows; the join card holds a QR code of the join link; the Lecture index
marks the demos that have a poll."""

from __future__ import annotations

import segno

from playground import lecture
from playground.html import class_room as class_html
from playground.plots.class_room import result_figure
from playground.rooms.room import RoomView
from playground.ui.lecture_tab import index_html

EVIL = '<img src=x onerror="alert(1)">'


def test_the_student_view_shows_the_presenters_state_escaped():
    view = RoomView("ABC234", 7, {"query": "tab=sampling&prompt=" + EVIL.replace("&", "%26") + "&temperature=0.7",
                                  "tab": "sampling", "step": 3, "text": "Hi " + EVIL, "last": "<b>"},
                    {"id": "ab12", "kind": "next_token", "question": "Which token comes next?", "prompt": EVIL,
                     "revealed": False}, 4)
    drawn = class_html.follow_html(view)
    assert "<img" not in drawn and '<mark class="class-last">&lt;b&gt;</mark>' in drawn
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in drawn
    assert 'data-version="7"' in drawn and "Sampling lab" in drawn and "Step 3:" in drawn
    assert 'data-open="1" data-poll="ab12"' in drawn
    explore = class_html.explore_link(view.state["query"] + "&present=1", "ABC234")
    assert explore.startswith("/?tab=sampling") and explore.endswith("follow=ABC234") and "present" not in explore
    assert class_html.explore_link("tab=lecture", "ABC234") == "/?follow=ABC234"


def test_results_escape_tokens_and_answers():
    result = {"kind": "next_token", "answers": 2, "hidden": 0, "top_label": EVIL, "top_share": 0.5,
              "class_surprisal_bits": 3.0, "model_entropy_bits": 2.0, "verdict": "The class was more surprised",
              "rows": [{"id": 1, "label": EVIL, "p": 0.5, "rank": 1, "count": 1, "share": 0.5}],
              "several": [{"text": EVIL, "tokens": 3, "label": "<x"}]}
    drawn = class_html.result_html(result)
    assert "<img" not in drawn and "<x" not in drawn and "&lt;img" in drawn
    figure = result_figure(result)
    assert all("<img" not in str(label) for label in figure.data[0].y)
    counted = class_html.result_html({"kind": "count", "answers": 1, "hidden": 0, "median": 3.0,
                                      "guesses": [{"label": "3", "count": 1}], "real": {EVIL: 4}})
    assert "<img" not in counted and "<b>4</b> tokens" in counted


def test_the_join_card_has_the_code_the_link_and_its_qr_code():
    card = class_html.join_html("ABC234", "http://127.0.0.1:7860/?join=ABC234")
    assert 'id="class-code">ABC234<' in card and "http://127.0.0.1:7860/?join=ABC234" in card
    assert card.count("<svg") == 1
    assert segno.make("http://127.0.0.1:7860/?join=ABC234", error="m").svg_inline(scale=6, dark="#111827",
                                                                               light="#ffffff") in card


def test_the_lecture_index_marks_the_demos_with_a_poll():
    marked = {demo.id for demo in lecture.DEMOS if demo.poll}
    assert marked == {"base-model-distribution", "tokenization", "base-vs-chat-poem"}
    drawn = index_html()
    for demo_id, name in [("base-model-distribution", "guess the next token"), ("tokenization", "how many tokens?"),
                          ("base-vs-chat-poem", "which is the chat model?")]:
        item = drawn.split(f'id="demo-{demo_id}"', 1)[1].split("</li>", 1)[0]
        assert f"Class poll: {name}" in item
    assert drawn.count("Class poll:") == 3
