"""What a chat client sends is capped before it is stored (issue 27, item 5).

The chat tab's Send (and the API's /converse) keeps each message in the session's conversation and
echoes the whole conversation back on every answer. A message longer than the chat models read is
refused with a message before it joins the conversation, and so is one that would make the
conversation longer than `limits.CHAT_CONVERSATION_CHARS`; the conversation is unchanged by a
refusal. Before the fix one session kept ten 8 MB messages.
"""

from __future__ import annotations

import pytest

from playground import limits
from playground.conversation import Conversation
from playground.errors import PlaygroundError
from playground.ui import chat_tab
from tests.conftest import handler_outcome


def test_a_message_longer_than_the_model_reads_is_refused_before_it_is_stored():
    conversation = Conversation()
    message = handler_outcome(chat_tab.send_message, "x" * (limits.CHAT_MESSAGE_CHARS + 1), conversation)
    assert message.startswith(f"This message has {limits.CHAT_MESSAGE_CHARS + 1:,} characters")
    assert conversation.waiting == [] and conversation.messages == []


def test_the_conversation_stops_growing_at_its_cap():
    conversation = Conversation()
    sent = 0
    outcome = "ok"
    while outcome == "ok":
        outcome = handler_outcome(chat_tab.send_message, "y" * limits.CHAT_MESSAGE_CHARS, conversation)
        sent += outcome == "ok"
    assert "press Clear" in outcome
    assert sent == limits.CHAT_CONVERSATION_CHARS // limits.CHAT_MESSAGE_CHARS
    assert limits.text_chars(conversation.waiting) <= limits.CHAT_CONVERSATION_CHARS
    assert handler_outcome(chat_tab.send_message, "a short one", Conversation()) == "ok"


def test_a_history_sent_by_an_api_caller_counts_too():
    history = [{"role": "user", "content": "z" * limits.CHAT_CONVERSATION_CHARS}]
    outcome = handler_outcome(lambda: list(chat_tab.converse("and one more", history, "", "smollm2-135m-instruct",
                                                             "gemma-3-270m", "continue", 8, 1.0, 0, 1.0, 0.0,
                                                             "transformers", 0)))
    assert "press Clear" in outcome


def test_check_chat_message():
    assert limits.check_chat_message("hello", 10) == "hello"
    with pytest.raises(PlaygroundError):
        limits.check_chat_message("a" * 10, limits.CHAT_CONVERSATION_CHARS - 5)
