"""Chromium runs the base-vs-chat presets: both columns fill, the conversation and loss mask update."""

from __future__ import annotations

import re

from tests.conftest import screenshot, set_number, select_tab

MAX_TOKENS = 5


def open_tab(page, app_url):
    page.goto(app_url)
    select_tab(page, "Base vs chat")
    set_number(page, "chat-max-tokens", MAX_TOKENS)
    page.locator("#chat-preset-poem").wait_for()


def test_poem_preset_fills_both_columns(page, app_url):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_tab(page, app_url)
    page.locator("#chat-preset-poem").click()
    base, chat = page.locator("#chat-base-column"), page.locator("#chat-chat-column")
    # both columns show tokens while generating, then both say why they stopped
    base.locator(".gen-tok").first.wait_for(timeout=240_000)
    chat.locator(".gen-tok").first.wait_for(timeout=240_000)
    base.locator(".gen-done").wait_for(timeout=240_000)
    chat.locator(".gen-done").wait_for(timeout=240_000)
    assert page.locator("#chat-prompt textarea").input_value() == "Write me a poem about large language models"
    assert base.locator(".gen-tok").count() == MAX_TOKENS
    assert 1 <= chat.locator(".gen-tok").count() <= MAX_TOKENS
    assert "Stopped after" in base.locator(".gen-status").inner_text()
    assert "Stopped after" in chat.locator(".gen-status").inner_text()
    # hovering a token shows its probability and the top alternatives
    title = chat.locator(".gen-tok").first.get_attribute("title")
    assert "p = " in title and "top alternatives" in title
    screenshot(page, "chat-poem-preset")
    assert not errors, errors


def test_oranges_preset_runs_two_turns_and_updates_the_loss_mask(page, app_url):
    open_tab(page, app_url)
    page.locator("#chat-preset-oranges").click()
    chatbot = page.locator("#chat-chatbot")
    chatbot.get_by_text("I have a green orange, can I eat it?").wait_for(timeout=300_000)
    loss = page.locator("#chat-loss-view")
    loss.get_by_text(re.compile(r"Trained on \d+ of \d+ tokens")).wait_for(timeout=300_000)
    # once both turns are done the template holds 5 turns, each opened and closed by a special token
    page.wait_for_function(
        "() => document.querySelectorAll('#chat-template-view .tok-special').length >= 10"
        " && !document.querySelector('#chat-loss-view').innerText.includes('No conversation yet')",
        timeout=300_000)
    page.locator("#chat-base-conversation .gen-done").wait_for(timeout=300_000)
    assert chatbot.get_by_text("What is the color of oranges?").count() == 1
    trained = page.locator("#chat-loss-view .ct-trained")
    assert trained.count() >= 2  # at least the two <|im_end|> of the assistant turns
    roles = set(page.locator("#chat-loss-view .ct-trained").evaluate_all("els => els.map(e => e.dataset.role)"))
    assert roles == {"assistant"}
    screenshot(page, "chat-oranges-preset")
