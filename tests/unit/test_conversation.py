"""The conversation and its turn-taking (`playground.conversation`) on the tiny random model, no page.

Checked: waiting messages are answered in order, each through the chat template with the earlier
turns (and the system message) in front; the base model then continues the same conversation; a
message sent while the base column streams stops it and waits for the next run; Stop mid-reply
keeps the reply so far; a reply that never began gives its message back as `unanswered`; a run left
mid-reply (the page went away) puts the message back among the waiting ones; Clear ends a run
quietly without writing to the new conversation.
"""

from __future__ import annotations

from contextlib import closing

import pytest

from playground import chat, side_by_side
from playground.conversation import Conversation, Turns, as_conversation
from playground.sampling import SamplingSettings

MODEL = "tiny-random"
GREEDY = SamplingSettings(temperature=0.0)


def _stream(max_tokens: int = 4, seen: list | None = None):
    """The tab's stream: every contender generated greedily, `max_tokens` each."""
    def stream(contenders_fn):
        contenders = contenders_fn()
        if seen is not None:
            seen.append(contenders)
        with closing(side_by_side.iter_side_by_side(contenders, GREEDY, max_tokens, 0)) as columns:
            yield from columns
    return stream


def _turns(conversation, stream=None, system="") -> Turns:
    return Turns(conversation, system, MODEL, MODEL, "conversation_text", stream or _stream())


def test_waiting_messages_are_answered_in_order_then_the_base_model_continues():
    conversation, seen = Conversation(), []
    conversation.send("Hi there")
    conversation.send("And then?")
    with _turns(conversation, _stream(3, seen), system="Be brief.") as turns:
        kinds = [step.kind for step in turns.steps()]
        assert conversation.streaming == 1
    assert conversation.streaming == 0
    assert kinds.count("asking") == 2 and kinds.count("answered") == 2 and kinds[-1] == "base"
    assert [m["role"] for m in conversation.messages] == ["user", "assistant"] * 2
    assert [m["content"] for m in conversation.messages[::2]] == ["Hi there", "And then?"]
    assert not conversation.waiting and not conversation.answering
    # the second question was asked after the system message and the first turn, through the template
    second = seen[1][0]
    expected = chat.template_prompt_ids(MODEL, [{"role": "system", "content": "Be brief."},
                                                 *conversation.messages[:3]])
    assert list(second.prompt_ids) == expected
    assert seen[2][0].mode == "conversation_text" and turns.base is not None and len(turns.base.records) == 3


def test_a_message_sent_during_the_base_turn_stops_it_and_waits():
    conversation = Conversation()
    conversation.send("Hi there")
    with _turns(conversation, _stream(6)) as turns:
        for step in turns.steps():
            if step.kind == "base" and not conversation.waiting:
                conversation.send("Wait, one more thing")
    assert step.kind == "base-halted" and "a new message was sent" in turns.base.halted
    assert conversation.waiting == ["Wait, one more thing"] and len(conversation.messages) == 2


def test_stop_mid_reply_keeps_the_reply_so_far():
    conversation = Conversation()
    conversation.send("First question")
    with _turns(conversation, _stream(8)) as turns:
        steps = turns.steps()
        kinds = [next(steps).kind for _ in range(3)]  # asking, then two rounds of the reply
        steps.close()  # Stop: the stream ends here
        turns.interrupted()
    assert kinds == ["asking", "reply", "reply"]
    assert turns.was_answering and turns.unanswered is None and turns.reply_tokens == 1
    assert [m["role"] for m in conversation.messages] == ["user", "assistant"]
    assert conversation.messages[1]["content"] and not conversation.answering


def test_a_reply_that_never_began_is_given_back_as_unanswered():
    conversation = Conversation()
    conversation.send("Anyone there?")
    with _turns(conversation) as turns:
        steps = turns.steps()
        assert next(steps).kind == "asking"
        steps.close()
        turns.interrupted()
    assert turns.unanswered == {"role": "user", "content": "Anyone there?"}
    assert conversation.messages == [] and conversation.waiting == []


def test_a_run_left_mid_reply_puts_the_message_back():
    conversation = Conversation()
    conversation.send("Anyone there?")
    with _turns(conversation) as turns:
        steps = turns.steps()
        next(steps)
        steps.close()  # the page went away: no interrupted()
    assert conversation.waiting == ["Anyone there?"] and conversation.messages == []


def test_clear_ends_a_run_without_writing_to_the_new_conversation():
    conversation = Conversation()
    conversation.send("Hi there")
    with _turns(conversation, _stream(8)) as turns:
        for step in turns.steps():
            if step.kind == "reply":
                conversation.clear()
    assert not turns.current and conversation.messages == [] and conversation.answering == []


def test_a_list_of_messages_becomes_a_conversation_and_restart_sends_the_dialogue():
    conversation = as_conversation([{"role": "user", "content": "hi"}])
    assert conversation.messages == [{"role": "user", "content": "hi"}] and as_conversation(conversation) is conversation
    conversation.restart(["a", "b"])
    assert conversation.messages == [] and conversation.waiting == ["a", "b"] and conversation.cleared == 1
    assert conversation.take_waiting() == ["a", "b"] and conversation.waiting == []
    assert conversation.with_system("  ") == [] and conversation.with_system("S")[0]["role"] == "system"


def test_an_engine_failure_ends_the_reply_with_its_error():
    """A column whose engine failed carries its error; the run raises it where the reply would be."""
    from playground.engines.client import EngineError

    def failing(contenders_fn):
        column = side_by_side.Column(contenders_fn()[0])
        column.error = EngineError("the engine at http://x is down", "down")
        column.stop = "halted"
        yield [column]

    conversation = Conversation()
    conversation.send("Hi")
    with _turns(conversation, failing) as turns:
        with pytest.raises(EngineError, match="down"):
            list(turns.steps())
        turns.interrupted()
    assert turns.was_answering and turns.unanswered == {"role": "user", "content": "Hi"}
