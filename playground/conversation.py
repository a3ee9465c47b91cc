"""One session's chat conversation and its turn-taking (the Base vs chat tab's section 2), without a page.

`Conversation` holds the finished messages, the turn being answered and the messages sent
meanwhile. Each field is replaced, never changed in place, so a stream reading it in one thread
never sees half an update from another (the page's Send, Clear and Stop share the object).

`Turns` answers the waiting messages one at a time, the chat model's reply streamed through its
template; then the base model continues the same conversation, until a newer message waits (its
reply comes first, in the next run). Used as a context manager around `steps()`:

    with Turns(conversation, system, chat_model, base_model, base_mode, stream) as turns:
        for step in turns.steps():   # a TurnStep after every streamed round
            ...
    # Stop, the time limit or an error: turns.interrupted() keeps the reply as far as it got,
    # or gives back the message whose reply never began (`unanswered`)

Leaving the block without `interrupted()` (the page went away mid-reply) keeps a reply that had
begun, or puts its message back among the waiting ones. Clear (`Conversation.clear`) ends a run
quietly: it stops writing to the conversation it no longer belongs to.

What it leaves out: generating (the caller's `stream` runs `playground.side_by_side`), drawing and
the page's Stop (`playground.ui.chat_tab`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from playground.side_by_side import Column, Contender, contender

# stream(contenders_fn) -> every column after each round (the caller's sampling settings and limits)
Stream = Callable[[Callable[[], list[Contender]]], Iterator[list[Column]]]


@dataclass
class Conversation:
    messages: list = field(default_factory=list)  # finished turns, {role, content}, raw text
    answering: list = field(default_factory=list)  # the turn being answered: its user message, the reply so far
    waiting: list = field(default_factory=list)  # messages sent meanwhile, not answered yet
    cleared: int = 0  # bumped by Clear: a stream of the conversation before stops writing to it
    streaming: int = 0  # streams answering it now

    def clear(self) -> None:
        self.messages, self.answering, self.waiting = [], [], []
        self.cleared += 1

    def send(self, text: str) -> None:
        """A message joins the waiting ones (answered in turn by the running or the next stream)."""
        self.waiting = [*self.waiting, text]

    def restart(self, texts: Sequence[str]) -> None:
        """A fresh conversation whose first messages are `texts` (the lecture's dialogue)."""
        self.clear()
        self.waiting = list(texts)

    def with_system(self, system: str | None) -> list[dict]:
        """The finished messages, after a system message when `system` is not blank."""
        return with_system(self.messages, system)

    def take_waiting(self) -> list[str]:
        """The messages sent but not answered yet, taken out of the conversation."""
        texts, self.waiting = self.waiting, []
        return texts


def as_conversation(history) -> Conversation:
    """A Conversation as it is; a list of messages (from a direct API call) as a new one."""
    if isinstance(history, Conversation):
        return history
    return Conversation(messages=[dict(m) for m in history or []])


def with_system(messages, system: str | None) -> list[dict]:
    system = (system or "").strip()
    return ([{"role": "system", "content": system}] if system else []) + list(messages)


@dataclass(frozen=True)
class TurnStep:
    kind: str  # "asking", "reply" (the reply grew), "answered" (`answer` is final), "base", "base-halted"
    answer: str | None = None


class Turns:
    """One run over a conversation: the waiting messages answered, then the base model's turn."""

    def __init__(self, conversation: Conversation, system: str | None, chat_model: str, base_model: str,
                 base_mode: str, stream: Stream):
        self.conversation = conversation
        self.system, self.chat_model, self.base_model, self.base_mode = system, chat_model, base_model, base_mode
        self.stream = stream
        self.cleared_at = conversation.cleared
        self.asked: list[dict] | None = None  # the messages the chat model was last given
        self.reply: Column | None = None  # the chat model's reply being streamed
        self.base: Column | None = None  # the base model's column, once it began
        self.unanswered: dict | None = None  # after `interrupted()`: a message whose reply never began
        self.was_answering = False  # after `interrupted()`: it ended during a reply (not the base turn)

    @property
    def current(self) -> bool:
        """False once the conversation was cleared: the run no longer writes to it."""
        return self.conversation.cleared == self.cleared_at

    def __enter__(self) -> "Turns":
        self.conversation.streaming += 1
        return self

    def __exit__(self, *exc_info) -> None:
        conversation = self.conversation
        conversation.streaming -= 1
        if conversation.answering and self.current:  # the consumer went away mid-reply
            if len(conversation.answering) == 2 and conversation.answering[1]["content"]:
                conversation.messages = [*conversation.messages, *conversation.answering]
            else:
                conversation.waiting = [conversation.answering[0]["content"], *conversation.waiting]
            conversation.answering = []

    def steps(self) -> Iterator[TurnStep]:
        conversation = self.conversation
        while conversation.waiting and self.current:
            message, conversation.waiting = conversation.waiting[0], conversation.waiting[1:]
            asked = self.asked = conversation.with_system(self.system) + [{"role": "user", "content": message}]
            conversation.answering = [asked[-1]]
            self.reply = None
            yield TurnStep("asking")
            for columns in self.stream(lambda: [contender(self.chat_model, "conversation_template", messages=asked)]):
                if not self.current:
                    return
                self.reply = columns[0]
                conversation.answering = [asked[-1], {"role": "assistant", "content": self.reply.text}]
                yield TurnStep("reply")
            if self.reply is not None and self.reply.error is not None:
                raise self.reply.error  # an engine's failure: said where the reply would be
            answer = self.reply.text if self.reply is not None else ""
            conversation.messages = [*conversation.messages, asked[-1], {"role": "assistant", "content": answer}]
            conversation.answering, self.reply = [], None
            yield TurnStep("answered", answer)
        if self.asked is None or not self.current or conversation.waiting:
            return  # nothing was waiting, or a newer message waits: its reply comes first
        asked = self.asked
        for columns in self.stream(lambda: [contender(self.base_model, self.base_mode, messages=asked,
                                                      chat_model_id=self.chat_model)]):
            if not self.current:
                return
            self.base = columns[0]
            if conversation.waiting:  # a newer message: the next run answers it first
                self.base.halt(f"Stopped after {len(self.base.records)} tokens: a new message was sent, "
                               "so the chat model answers it first.")
                yield TurnStep("base-halted")
                return
            yield TurnStep("base")

    def interrupted(self) -> None:
        """After Stop, the time limit or an error: a reply in progress is kept as far as it got; a
        reply that never began is not kept, its message is `unanswered` (for the page to say why)."""
        conversation = self.conversation
        self.was_answering = bool(conversation.answering)
        if not self.was_answering:
            return
        if len(conversation.answering) == 2 and conversation.answering[1]["content"]:
            conversation.messages = [*conversation.messages, *conversation.answering]
        else:
            self.unanswered = conversation.answering[0]
        conversation.answering = []

    @property
    def reply_tokens(self) -> int | None:
        """Tokens of the reply in progress (None: it had not begun)."""
        return len(self.reply.records) if self.reply is not None and self.reply.records else None
