"""Chat templates made visible: roles, special tokens, the SFT loss mask, and teacher-forced scoring.

- `template_view` renders a conversation with the chat model's own `tokenizer.apply_chat_template`
  and labels every token of the result: its role (system, user, assistant, or none), whether it is
  a special token, and its part of the turn (header, content, end of turn, separator, generation
  prompt). The supervised fine-tuning loss mask follows from those labels: a token is trained when
  it overlaps an assistant message's content, or is the first special token after that content
  (the assistant's end-of-turn token, `<|im_end|>` in ChatML). Nothing of system or user messages,
  of headers, or of the generation prompt is trained.

  Where each message sits in the rendered string is computed from the template itself, never by
  searching for the message text: the conversation is rendered one message at a time (each prefix
  of a well-behaved template's output is the output for the shorter conversation), and each
  message is rendered once more with a sentinel as its content, which splits its part of the
  string into header, content and trailer. Character offsets then map to tokens through the
  tokenizer's offset mapping of the rendered string, whose ids are checked against
  `apply_chat_template(tokenize=True)`. A template that inserts a default system prompt (SmolLM2
  does) is detected the same way and that prompt is shown as an implicit system message.
  `check_view_size` refuses, before rendering, a conversation the page's template view would not
  show in well under a second (`MAX_VIEW_CHARS`, `MAX_VIEW_MESSAGES`); the long loops here check
  the request's deadline (`playground.limits.check_deadline`).
- `score_text` teacher-forces a text through a model, by its backend (`playground.backends`,
  `playground.scoring`): per token its log-probability and surprisal `-log2 p`.
- `align_scores` aligns two scorings of the same text by different tokenizers: the text is cut at
  the character positions where both tokenizations have a token boundary, and each model's
  surprisal is summed over each piece, so the two numbers measure the same characters.
- `conversation_as_text` writes a conversation as plain text for a base model.

What it leaves out: generation (`playground.generation`), rendering (`playground.html.chat`,
`playground.plots.chat`), templates whose output is not a concatenation of per-message parts
(e.g. ones that fold the system prompt into the first user turn): those get a clear error.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from playground import limits, scoring
from playground.backends import backend_for
from playground.errors import PlaygroundError
from playground.models import get_spec, load_tokenizer
from playground.scoring import LN2, MAX_SCORE_TOKENS, ScoredText, ScoredToken  # noqa: F401 - part of this module's API
from playground.token_text import display_text, token_bytes

ROLES = ("system", "user", "assistant")
SENTINEL = "\u2063SENTINEL7f3a\u2063"
# The template view answers in the page's "instant" group, so it refuses what it cannot label in
# well under a second (measured on the 2-core CPU): 16,384 characters take 0.04 s as one English
# system prompt and 0.5 s as 100 messages of emoji (three tokens a character); 100 short messages
# take 0.1 s (each is rendered twice, after all those before it). A 1.9 MB system prompt took
# 52-75 s there and stalled the server.
MAX_VIEW_CHARS = 16_384
MAX_VIEW_MESSAGES = 100


# ---------------------------------------------------------------------------------------------
# Conversations


def validate_messages(messages) -> list[dict]:
    """A clean copy of `messages` ([{role, content}]), or a PlaygroundError saying what is wrong."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise PlaygroundError("A conversation is a list of messages like {\"role\": \"user\", \"content\": \"Hi\"}.")
    clean = []
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise PlaygroundError(f"Message {number} needs a \"role\" and a \"content\".")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise PlaygroundError(f"Message {number} has role {role!r}; use one of {', '.join(ROLES)}.")
        if not isinstance(content, str):
            raise PlaygroundError(f"Message {number}: content must be text.")
        clean.append({"role": role, "content": content})
    if not clean:
        raise PlaygroundError("The conversation is empty.")
    return clean


def conversation_as_text(messages, next_role: str | None = "assistant") -> str:
    """A conversation as plain text ("User: ...") for a base model, ending with the next speaker's cue."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    lines = [f"{names[m['role']]}: {m['content']}" for m in validate_messages(messages)]
    if next_role:
        lines.append(f"{names[next_role]}:")
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The template view


class TemplateTooLong(PlaygroundError):
    """A conversation too long for the template view, refused before it is rendered."""


def check_view_size(messages) -> None:
    """Refuse (`TemplateTooLong`) a conversation the template view would not show in well under a
    second: over `MAX_VIEW_CHARS` characters or `MAX_VIEW_MESSAGES` messages."""
    messages = validate_messages(messages)
    chars = sum(len(m["content"]) for m in messages)
    if chars > MAX_VIEW_CHARS:
        raise TemplateTooLong(
            f"This conversation (with its system prompt) is {chars:,} characters long; the template view "
            f"shows at most {MAX_VIEW_CHARS:,} characters, so that it answers in well under a second. "
            "Shorten the system prompt or clear the conversation.")
    if len(messages) > MAX_VIEW_MESSAGES:
        raise TemplateTooLong(
            f"This conversation has {len(messages)} messages; the template view shows at most "
            f"{MAX_VIEW_MESSAGES}, so that it answers in well under a second. Clear the conversation.")


@dataclass(frozen=True)
class TemplateToken:
    index: int
    id: int
    text: str  # display text of the token's exact bytes
    start: int  # character offsets into the rendered template string
    end: int
    special: bool
    role: str  # "system", "user", "assistant" or "none"
    part: str  # "header", "content", "end_of_turn", "separator", "generation_prompt" or "other"
    message: int | None  # index into ChatTemplateView.messages (None: generation prompt / other)
    trained: bool

    @property
    def header(self) -> bool:
        return self.part in ("header", "generation_prompt")


@dataclass(frozen=True)
class MessageSpan:
    """Where one message lies in the rendered string: [start, content_start) is its header,
    [content_start, content_end) its content, [content_end, end) its trailer."""

    index: int
    role: str
    start: int
    content_start: int
    content_end: int
    end: int
    implicit: bool  # inserted by the template (a default system prompt), not given by the user


@dataclass(frozen=True)
class ChatTemplateView:
    model_id: str
    messages: tuple[dict, ...]  # the effective messages, an implicit system prompt included
    rendered: str
    ids: tuple[int, ...]
    tokens: tuple[TemplateToken, ...]
    spans: tuple[MessageSpan, ...]
    add_generation_prompt: bool
    generation_prompt: str
    default_system_prompt: str | None

    @property
    def loss_mask(self) -> list[int]:
        return [int(t.trained) for t in self.tokens]

    @property
    def num_trained(self) -> int:
        return sum(t.trained for t in self.tokens)

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)


def _render(tokenizer, messages, add_generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # jinja errors, e.g. "roles must alternate"
        raise PlaygroundError(f"The chat template rejected this conversation: {exc}") from None


def _template_ids(tokenizer, messages, add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=add_generation_prompt,
                                        return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def default_system_prompt(tokenizer, messages: list[dict]) -> str | None:
    """The system prompt the template inserts when the conversation has none (None if it inserts none).

    Found by rendering the conversation with a sentinel system prompt: the text around the sentinel
    is the system turn's frame, and what the plain rendering holds in that frame is the default.
    """
    if messages[0]["role"] == "system":
        return None
    plain = _render(tokenizer, messages, False)
    framed = _render(tokenizer, [{"role": "system", "content": SENTINEL}] + messages, False)
    at = framed.find(SENTINEL)
    if at < 0:
        return None
    head, rest = framed[:at], framed[at + len(SENTINEL):]
    if not (plain.startswith(head) and plain.endswith(rest) and len(plain) >= len(head) + len(rest)):
        return None
    candidate = plain[len(head):len(plain) - len(rest)]
    if _render(tokenizer, [{"role": "system", "content": candidate}] + messages, False) != plain:
        return None
    return candidate


def _message_spans(tokenizer, messages: list[dict], implicit_first: bool) -> list[MessageSpan]:
    """Header/content/trailer offsets of every message, from incremental and sentinel renderings."""
    full = _render(tokenizer, messages, False)
    spans, start = [], 0
    for index, message in enumerate(messages):
        limits.check_deadline()
        prefix = _render(tokenizer, messages[:index + 1], False)
        probe = _render(tokenizer, messages[:index] + [{"role": message["role"], "content": SENTINEL}], False)
        at = probe.find(SENTINEL)
        if not full.startswith(prefix) or at < start or not probe.startswith(full[:start]):
            raise PlaygroundError(
                "This chat template does not render a conversation one message after another "
                "(it may merge messages), so its tokens cannot be attributed to messages.")
        header = probe[start:at]
        trailer = probe[at + len(SENTINEL):]
        end = len(prefix)
        segment = full[start:end]
        if not (segment.startswith(header) and segment.endswith(trailer) and len(segment) >= len(header) + len(trailer)):
            raise PlaygroundError("This chat template frames a message differently depending on its content; "
                                  "its tokens cannot be attributed to messages.")
        spans.append(MessageSpan(index, message["role"], start, start + len(header), end - len(trailer), end,
                                 implicit_first and index == 0))
        start = end
    return spans


def _special_ids(tokenizer) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    for token_id, token in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(token, "special", False):
            ids.add(int(token_id))
    return ids


def build_template_view(tokenizer, model_id: str, messages, add_generation_prompt: bool = False) -> ChatTemplateView:
    """The labelled token sequence of `messages` under `tokenizer`'s chat template (no model needed)."""
    if not getattr(tokenizer, "chat_template", None):
        raise PlaygroundError(f"Model {model_id} has no chat template (it is a base model); pick a chat model.")
    given = validate_messages(messages)
    default = default_system_prompt(tokenizer, given)
    effective = ([{"role": "system", "content": default}] if default is not None else []) + given
    plain = _render(tokenizer, effective, False)
    rendered = _render(tokenizer, effective, add_generation_prompt)
    if not rendered.startswith(plain):
        raise PlaygroundError("This chat template changes earlier turns when asked for a generation prompt.")
    spans = _message_spans(tokenizer, effective, default is not None)

    encoding = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
    ids = [int(i) for i in encoding["input_ids"]]
    if ids != _template_ids(tokenizer, effective, add_generation_prompt):
        raise PlaygroundError("Tokenizing the rendered template does not reproduce apply_chat_template's ids.")
    offsets = [(int(a), int(b)) for a, b in encoding["offset_mapping"]]
    special = _special_ids(tokenizer)

    labels = _labels(offsets, spans, len(plain))
    # The end-of-turn token: the first special token in each assistant message's trailer.
    for span, members in zip(spans, _tokens_by_span(offsets, spans)):
        limits.check_deadline()
        for i in members:
            if span.content_end <= offsets[i][0] and ids[i] in special and labels[i][1] == "separator":
                labels[i] = (labels[i][0], "end_of_turn", labels[i][2])
                break

    tokens = []
    for i, (token_id, (start, end), (role, part, message)) in enumerate(zip(ids, offsets, labels)):
        if i % 1024 == 0:
            limits.check_deadline()
        trained = role == "assistant" and message is not None and part in ("content", "end_of_turn")
        tokens.append(TemplateToken(i, token_id, display_text(token_bytes(tokenizer, token_id)), start, end,
                                    token_id in special, role, part, message, trained))
    return ChatTemplateView(model_id, tuple(effective), rendered, tuple(ids), tuple(tokens), tuple(spans),
                            bool(add_generation_prompt), rendered[len(plain):], default)


def _labels(offsets: Sequence[tuple[int, int]], spans: list[MessageSpan],
            plain_length: int) -> list[tuple[str, str, int | None]]:
    """(role, part, message index) of each token at [start, end) of the rendered string.

    The spans are contiguous and in order, so bisection finds a token's message (a scan of every
    message per token took seconds on a long conversation).
    """
    content_ends = [span.content_end for span in spans]
    span_starts = [span.start for span in spans]
    labels = []
    for number, (start, end) in enumerate(offsets):
        if number % 1024 == 0:
            limits.check_deadline()
        # any overlap with a message's content makes the token part of that content: the first
        # content ending after `start` is the only one that can overlap it first
        k = bisect.bisect_right(content_ends, start)
        if k < len(spans) and spans[k].content_start < end:
            labels.append((spans[k].role, "content", spans[k].index))
            continue
        if start >= plain_length:
            labels.append(("assistant", "generation_prompt", None))
            continue
        k = bisect.bisect_right(span_starts, start) - 1  # the one message that can hold `start`
        if k >= 0 and start < spans[k].end:
            labels.append((spans[k].role, "header" if start < spans[k].content_start else "separator",
                           spans[k].index))
        else:
            labels.append(("none", "other", None))
    return labels


def _tokens_by_span(offsets: Sequence[tuple[int, int]], spans: list[MessageSpan]) -> list[list[int]]:
    """The indices of the tokens that start inside each span, in token order."""
    span_starts = [span.start for span in spans]
    members: list[list[int]] = [[] for _ in spans]
    for i, (start, _end) in enumerate(offsets):
        k = bisect.bisect_right(span_starts, start) - 1
        if k >= 0 and start < spans[k].end:
            members[k].append(i)
    return members


def template_view(model_id: str, messages, add_generation_prompt: bool = False) -> ChatTemplateView:
    """`build_template_view` with the registry model's tokenizer (its weights are not loaded)."""
    return build_template_view(load_tokenizer(model_id), model_id, messages, add_generation_prompt)


def template_prompt_ids(model_id: str, messages, add_generation_prompt: bool = True) -> list[int]:
    """The ids a chat model receives for `messages` (for generation: with the generation prompt)."""
    return list(template_view(model_id, messages, add_generation_prompt).ids)


def render_with_template(tokenizer, messages, add_generation_prompt: bool = True) -> str:
    """The conversation rendered by `tokenizer`'s chat template, as a string."""
    return _render(tokenizer, validate_messages(messages), add_generation_prompt)


# ---------------------------------------------------------------------------------------------
# Teacher forcing


def score_text(model_id: str, text: str, context_ids: Sequence[int] | None = None) -> ScoredText:
    """Teacher forcing: every token of `text` scored given all tokens before it, in one forward pass
    (by the model's backend, `playground.backends`: an engine model by its engine, `engine_scored`)."""
    if not text:
        raise PlaygroundError("There is no text to score.")
    return backend_for(get_spec(model_id)).score_text(text, context_ids)


def why_prompts(scored: ScoredText) -> tuple[str | None, ...]:
    """Each scored token's "why?" prompt (`playground.scoring.why_prompts`); none on a model whose
    backend has no attribution (an engine)."""
    if not backend_for(get_spec(scored.model_id)).capabilities.has("attribution"):
        return ()
    return scoring.why_prompts(scored)


@dataclass(frozen=True)
class AlignedSpan:
    start: int
    end: int
    text: str
    tokens: tuple[tuple[int, ...], tuple[int, ...]]  # token indices of each scoring in this span
    bits: tuple[float, float]  # surprisal of the span's characters under each model, in bits

    @property
    def difference(self) -> float:
        return self.bits[0] - self.bits[1]


def align_scores(first: ScoredText, second: ScoredText) -> list[AlignedSpan]:
    """Cut the shared text where both tokenizations have a boundary; sum each model's bits per piece
    (from where both scorings begin: a model without a start token does not score its first token)."""
    if first.text != second.text:
        raise PlaygroundError("The two scorings are of different texts.")
    text = first.text

    def boundaries(scored: ScoredText) -> set[int]:
        cuts = {0, len(text)}
        for token in scored.tokens:
            cuts.add(token.start)
        return cuts

    # a model that reads no start token has its first token as context, not scored: compare from
    # the first place both scorings have begun
    begun = max((scored.tokens[0].start for scored in (first, second) if scored.tokens), default=0)
    cuts = sorted(c for c in boundaries(first) & boundaries(second) if c >= begun)
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        limits.check_deadline()
        members = []
        for scored in (first, second):
            members.append(tuple(t.index for t in scored.tokens if start <= t.start < end
                                 or (t.start == t.end == end == len(text))))
        bits = tuple(sum(scored.tokens[i].surprisal_bits for i in idx) for scored, idx in zip((first, second), members))
        spans.append(AlignedSpan(start, end, text[start:end], (members[0], members[1]), (bits[0], bits[1])))
    return spans
