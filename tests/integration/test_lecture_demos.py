"""The lecture's demos against the real app's tabs: every demo's link is read without a single
note (no typo in a preset, model or parameter), names an action and a view its tab has, and the
`demos` command lists them with their URLs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from playground import lecture
from playground.ui import link_wiring
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def tab_links():
    from playground.ui import shell

    found = {}
    original = link_wiring.install

    def capture(tabs, tab_links, *args):
        found.update({link.tab: link for link in tab_links})
        return original(tabs, tab_links, *args)

    link_wiring.install = capture
    try:
        shell.build_app()
    finally:
        link_wiring.install = original
    return found


@pytest.mark.parametrize("demo", lecture.DEMOS, ids=[d.id for d in lecture.DEMOS])
def test_every_demo_link_is_read_cleanly(tab_links, demo):
    plan, values, notes = link_wiring.resolve({"demo": demo.id, "present": "1"}, tab_links)
    assert notes == []
    assert plan.tab == demo.tab and plan.present and plan.view
    wanted = {k for k in demo.query if k not in ("run", "view", "preset")}
    assert wanted <= set(values)
    run = demo.query.get("run", tab_links[demo.tab].default_run)
    assert run == "none" or plan.steps, demo.id


def test_ids_are_unique_and_in_lecture_order():
    ids = [demo.id for demo in lecture.DEMOS]
    assert len(ids) == len(set(ids))
    assert ids.index("tokenization") < ids.index("bpe-training") < ids.index("sampling-greedy") \
        < ids.index("beam-search") < ids.index("sampling-nucleus") < ids.index("chat-template") < ids.index("loss-mask")


def test_demos_command_lists_them_as_json():
    out = subprocess.run([sys.executable, "-m", "playground", "demos", "--json"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    listed = json.loads(out)
    assert [d["id"] for d in listed] == [d.id for d in lecture.DEMOS]
    for item in listed:
        assert item["url"] == f"/?demo={item['id']}" and item["title"] and item["tab"]


def test_a_link_with_an_unknown_demo_or_tab_says_so(tab_links):
    assert "no lecture demo" in link_wiring.resolve({"demo": "nope"}, tab_links)[2][0]
    assert "no tab" in link_wiring.resolve({"tab": "nope"}, tab_links)[2][0]
    plan, values, notes = link_wiring.resolve({"tokenizer": "cl100k_base", "text": "hi"}, tab_links)  # an older link
    assert plan.tab == "tokenizer" and values == {"tokenizer": "cl100k_base", "text": "hi"} and notes == []


def test_the_strawberry_demo_says_the_tokens_its_tokenizer_shows():
    """The words beside the demo name the pieces the tokenizer on screen really makes (they once
    said 'straw' + 'berry' beside chips showing str|aw|berry)."""
    from playground.tokenizer_registry import tokenize

    description = lecture.demo("tokenization-strawberry").line
    claims = re.findall(r"'([^']+)'(?: at a line's start)? as (one token|'[^']*'(?: \+ '[^']*')*)", description)
    assert len(claims) == 3, description
    for text, pieces in claims:
        wanted = [text] if pieces == "one token" else re.findall(r"'([^']*)'", pieces)
        assert [t.text for t in tokenize("cl100k_base", text).tokens] == wanted, (text, pieces)


def test_the_special_tokens_demo_names_the_one_special_token_it_shows():
    from playground.tokenizer_registry import tokenize

    demo = lecture.demo("special-tokens")
    tokens = tokenize(demo.query["tokenizer"], demo.query["text"], add_special_tokens=True).tokens
    specials = [t.text for t in tokens if t.text.startswith("<|")]
    assert specials == ["<|begin_of_text|>"] and tokens[0].text == "<|begin_of_text|>"
    assert "<|begin_of_text|>" in demo.line and "EOS" not in demo.title
