"""Chat template view, SFT loss mask, teacher-forced scoring and span alignment on tiny-random
(a random 2-layer Llama with SmolLM2's tokenizer and ChatML template)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground import chat
from playground import settings as playground_settings
from playground.__main__ import main as cli_main
from playground.errors import PlaygroundError
from playground.html.chat import loss_mask_html, template_html
from playground.models import load_model, load_tokenizer
from playground.token_text import token_bytes

MODEL = "tiny-random"
ORANGES = [
    {"role": "user", "content": "What is the color of oranges?"},
    {"role": "assistant", "content": "The answer, of course, depends on the type of orange!"},
    {"role": "user", "content": "I have a green orange, can I eat it?"},
    {"role": "assistant", "content": "You might be surprised to know that some oranges are indeed green!"},
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MODEL)


def im_end(tokenizer) -> int:
    return tokenizer.convert_tokens_to_ids("<|im_end|>")


def assert_mask_is_exact(view, tokenizer, messages):
    """Trained = exactly each assistant message's content tokens, each followed by its <|im_end|>."""
    tokens = view.tokens
    assistant_contents = [m["content"] for m in messages if m["role"] == "assistant"]
    groups, current = [], None
    for token in tokens:
        if token.trained and token.id != im_end(tokenizer):
            current = current if current is not None else []
            current.append(token)
        elif token.trained:  # the end-of-turn token closes the group right after the content
            groups.append(current or [])
            current = None
        else:
            assert current is None, "a trained run must end with <|im_end|>"
    assert current is None
    assert len(groups) == len(assistant_contents)
    for group, content in zip(groups, assistant_contents):
        assert b"".join(token_bytes(tokenizer, t.id) for t in group).decode("utf-8") == content
        if group:  # contiguous tokens, and <|im_end|> is the very next token
            indices = [t.index for t in group]
            assert indices == list(range(indices[0], indices[-1] + 1))
            assert tokens[indices[-1] + 1].id == im_end(tokenizer) and tokens[indices[-1] + 1].trained
    # independent count: the content tokens in context, plus one <|im_end|> per assistant message
    assert view.num_trained == sum(len(g) for g in groups) + len(assistant_contents)
    assert all(t.role == "assistant" for t in tokens if t.trained)
    assert not any(t.trained for t in tokens if t.role in ("system", "user") or t.header)
    # every untrained, non-special piece of text belongs to a system/user message or to a header
    untrained = b"".join(token_bytes(tokenizer, t.id) for t in tokens if not t.trained).decode("utf-8")
    for message in messages:
        if message["role"] != "assistant":
            assert message["content"] in untrained


def test_loss_mask_is_exact_on_the_lecture_dialogue(tokenizer):
    view = chat.template_view(MODEL, ORANGES)
    assert_mask_is_exact(view, tokenizer, ORANGES)
    trained = [t for t in view.tokens if t.trained]
    assert [t.text for t in trained][-1] == "<|im_end|>"
    assert view.loss_mask == [int(t.trained) for t in view.tokens]
    assert 0 < view.num_trained < view.num_tokens


def test_loss_mask_with_system_prompt_and_empty_reply(tokenizer):
    messages = [{"role": "system", "content": "Answer in French."}, *ORANGES[:2],
                {"role": "user", "content": "Merci"}, {"role": "assistant", "content": ""}]
    view = chat.template_view(MODEL, messages)
    assert view.default_system_prompt is None and not view.spans[0].implicit
    assert_mask_is_exact(view, tokenizer, messages)
    # the empty reply still trains its end-of-turn token
    assert sum(t.trained and t.id == im_end(tokenizer) for t in view.tokens) == 2


words = st.text(alphabet=st.sampled_from(list("abcxyz ,.!?é日本🙂\n")), min_size=0, max_size=30)
content = st.builds(lambda head, rest: head + rest, st.sampled_from(["Yes", "No", "I", "The", "日", "🙂"]), words)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(st.tuples(content, content), min_size=1, max_size=4), system=st.booleans())
def test_loss_mask_is_exact_on_random_conversations(tokenizer, turns, system):
    messages = [{"role": "system", "content": "Be brief."}] if system else []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    view = chat.template_view(MODEL, messages)
    assert_mask_is_exact(view, tokenizer, messages)


def test_template_round_trips_to_the_same_ids(tokenizer):
    for generation_prompt in (False, True):
        view = chat.template_view(MODEL, ORANGES[:3], add_generation_prompt=generation_prompt)
        direct = tokenizer.apply_chat_template(ORANGES[:3], tokenize=True, return_dict=False,
                                               add_generation_prompt=generation_prompt)
        assert list(view.ids) == list(direct)
        assert view.rendered == tokenizer.apply_chat_template(ORANGES[:3], tokenize=False,
                                                              add_generation_prompt=generation_prompt)
        assert tokenizer.decode(list(view.ids)) == view.rendered
        assert "".join(t.text for t in view.tokens) == view.rendered
        assert list(tokenizer(view.rendered, add_special_tokens=False)["input_ids"]) == list(view.ids)


def test_roles_headers_and_generation_prompt(tokenizer):
    view = chat.template_view(MODEL, ORANGES[:1], add_generation_prompt=True)
    # SmolLM2's template adds a default system prompt when none is given; it is shown as system
    assert view.default_system_prompt and "SmolLM" in view.default_system_prompt
    assert view.spans[0].implicit and view.spans[0].role == "system"
    assert view.generation_prompt == "<|im_start|>assistant\n"
    prompt = [t for t in view.tokens if t.part == "generation_prompt"]
    assert "".join(t.text for t in prompt) == "<|im_start|>assistant\n"
    assert prompt == list(view.tokens[-len(prompt):]) and not any(t.trained for t in prompt)
    starts = [t for t in view.tokens if t.text == "<|im_start|>"]
    assert all(t.special and t.header for t in starts) and len(starts) == 3
    by_role = {role: "".join(t.text for t in view.tokens if t.role == role and t.part == "content")
               for role in ("system", "user")}
    assert by_role == {"system": view.default_system_prompt, "user": ORANGES[0]["content"]}
    headers = "".join(t.text for t in view.tokens if t.part == "header")
    assert headers == "<|im_start|>system\n<|im_start|>user\n"
    assert {t.role for t in view.tokens} == {"system", "user", "assistant"}


def test_bad_conversations_are_explained():
    with pytest.raises(PlaygroundError, match="empty"):
        chat.template_view(MODEL, [])
    with pytest.raises(PlaygroundError, match="role"):
        chat.template_view(MODEL, [{"role": "wizard", "content": "hi"}])
    with pytest.raises(PlaygroundError, match="content"):
        chat.template_view(MODEL, [{"role": "user"}])
    with pytest.raises(PlaygroundError):
        chat.template_view(MODEL, "hello")


def _direct_logprobs(loaded, sequence: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(loaded.model(input_ids=torch.tensor([sequence])).logits[0].float(), dim=-1)


@pytest.mark.parametrize("mode", ["model", "always"])
def test_scoring_matches_a_direct_forward(mode, monkeypatch):
    """SmolLM2's tokenizer adds no start token: by default (as the lab and llama.cpp read it) the
    text's first token is context; with PLAYGROUND_START_TOKEN=always it is scored after <|endoftext|>."""
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", mode)
    text = "The answer, of course, depends on the type of orange!"
    scored = chat.score_text(MODEL, text)
    loaded = load_model(MODEL)
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    separator = loaded.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    context = [separator] if mode == "always" else ids[:1]
    scored_ids = ids if mode == "always" else ids[1:]
    assert scored.context_ids == tuple(context)
    logprobs = _direct_logprobs(loaded, context + scored_ids)
    expected = [float(logprobs[len(context) - 1 + i, token]) for i, token in enumerate(scored_ids)]
    assert [t.id for t in scored.tokens] == scored_ids
    assert [t.logprob for t in scored.tokens] == pytest.approx(expected, abs=1e-4)
    assert scored.tokens[0].surprisal_bits == pytest.approx(-expected[0] / 0.6931471805599453, rel=1e-5)
    first = scored.tokens[0].start
    assert "".join(text[t.start:t.end] for t in scored.tokens) == text[first:]
    assert (first == 0) == (mode == "always")


def test_a_one_token_text_without_a_start_token_is_refused_in_words():
    with pytest.raises(PlaygroundError, match="reads no start token"):
        chat.score_text(MODEL, "The")


def test_scoring_with_a_conversation_as_context():
    context = chat.template_prompt_ids(MODEL, ORANGES[:1])
    scored = chat.score_text(MODEL, "Orange.", context_ids=context)
    assert scored.context_ids == tuple(context)
    with pytest.raises(PlaygroundError, match="no text"):
        chat.score_text(MODEL, "")


def _scored(text: str, cuts: list[int], bits: list[float]) -> chat.ScoredText:
    """A scoring of `text` cut at `cuts` (character positions) with the given surprisals."""
    bounds = [0, *cuts, len(text)]
    tokens = tuple(chat.ScoredToken(i, i, text[a:b], a, b, -bit * chat.LN2)
                   for i, (a, b, bit) in enumerate(zip(bounds, bounds[1:], bits)))
    return chat.ScoredText("m", text, (0,), tokens)


def test_alignment_sums_surprisal_over_shared_boundaries():
    text = "unbelievable day"
    first = _scored(text, [2, 6, 12], [1.0, 2.0, 3.0, 4.0])   # un|beli|evable| day
    second = _scored(text, [6, 9, 12], [5.0, 6.0, 7.0, 8.0])  # unbeli|eva|ble| day
    spans = chat.align_scores(first, second)
    assert [s.text for s in spans] == ["unbeli", "evable", " day"]
    assert [s.bits for s in spans] == [(3.0, 5.0), (3.0, 13.0), (4.0, 8.0)]
    assert [s.tokens for s in spans] == [((0, 1), (0,)), ((2,), (1, 2)), ((3,), (3,))]
    assert sum(s.bits[0] for s in spans) == pytest.approx(first.total_bits)
    real = chat.score_text(MODEL, "Green oranges are ripe.")
    same = chat.align_scores(real, real)
    assert len(same) == len(real.tokens) and all(s.difference == 0 for s in same)
    with pytest.raises(PlaygroundError):
        chat.align_scores(first, _scored("other", [], [1.0]))


def test_conversation_as_plain_text():
    text = chat.conversation_as_text(ORANGES[:1])
    assert text == "User: What is the color of oranges?\n\nAssistant:"


def test_html_escapes_and_counts():
    messages = [{"role": "user", "content": "<script>alert(1)</script>"},
                {"role": "assistant", "content": "<b>no</b>"}]
    view = chat.template_view(MODEL, messages, add_generation_prompt=False)
    page = template_html(view)
    assert "<script" not in page and "</script" not in page and "<b>" not in page
    assert ">&lt;</span>" in page and ">&lt;/</span>" in page  # the tokens "<" and "</", escaped
    assert page.count('class="ct-cell"') == view.num_tokens
    mask = loss_mask_html(view)
    assert f"Trained on {view.num_trained} of {view.num_tokens} tokens" in mask
    assert mask.count('data-trained="1"') == view.num_trained


def test_template_html_draws_at_most_its_limit_and_says_so():
    view = chat.template_view(MODEL, ORANGES)
    page = template_html(view, limit=10)
    assert page.count('class="ct-cell"') == 10 and f"Showing the first 10 of {view.num_tokens} tokens" in page
    mask = loss_mask_html(view, limit=10)
    assert f"Trained on {view.num_trained} of {view.num_tokens} tokens" in mask and "Showing the first 10" in mask
    assert "Showing the first" not in template_html(view)


def test_template_view_refuses_what_it_cannot_show_quickly_and_says_so_on_the_page(monkeypatch):
    from playground.ui import chat_tab

    huge = "x" * 1_900_000  # a 1.9 MB system prompt took 52-75 s and stalled the server
    with pytest.raises(chat.TemplateTooLong, match="at most 16,384 characters"):
        chat.check_view_size([{"role": "system", "content": huge}])
    with pytest.raises(chat.TemplateTooLong, match="104 messages"):
        chat.check_view_size(ORANGES * 26)
    chat.check_view_size([{"role": "system", "content": "x" * chat.MAX_VIEW_CHARS}])  # at the cap: shown
    rendered = []  # refused before the template is rendered (the slow part), not after
    monkeypatch.setattr(chat, "template_view", lambda *args, **kwargs: rendered.append(args))
    template, loss = chat_tab.template_views(ORANGES, huge, MODEL, True)
    assert rendered == []
    chars = len(huge) + sum(len(m["content"]) for m in ORANGES)
    assert template == loss and f"{chars:,} characters long" in template and "Shorten the system prompt" in template


def test_template_view_and_alignment_stop_at_the_deadline():
    from playground import limits

    with limits.deadline(0.0), pytest.raises(limits.RequestTimeout):
        chat.template_view(MODEL, ORANGES)
    scored = _scored("unbelievable day", [2, 6, 12], [1.0, 2.0, 3.0, 4.0])
    with limits.deadline(0.0), pytest.raises(limits.RequestTimeout):
        chat.align_scores(scored, scored)


def _scan_label(start, end, spans, plain_length):
    """The labelling rule read directly: every message looked at in order."""
    for span in spans:
        if start < span.content_end and end > span.content_start:
            return span.role, "content", span.index
    if start >= plain_length:
        return "assistant", "generation_prompt", None
    for span in spans:
        if span.start <= start < span.end:
            return span.role, "header" if start < span.content_start else "separator", span.index
    return "none", "other", None


@pytest.mark.parametrize("generation_prompt", [False, True])
def test_bisected_labels_match_a_scan_of_every_message(generation_prompt):
    messages = ORANGES + [{"role": "user", "content": ""}, {"role": "assistant", "content": "🍊 ok"}]
    view = chat.template_view(MODEL, messages, add_generation_prompt=generation_prompt)
    spans, plain = list(view.spans), len(view.rendered) - len(view.generation_prompt)
    offsets = [(t.start, t.end) for t in view.tokens] + [(0, 0), (3, 3), (plain, plain + 1), (10**6, 10**6)]
    assert chat._labels(offsets, spans, plain) == [_scan_label(a, b, spans, plain) for a, b in offsets]


def test_cli_chat_template_and_score(tmp_path, capsys, monkeypatch):
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(ORANGES))
    assert cli_main(["--json", "chat-template", "--model", MODEL, str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    view = chat.template_view(MODEL, ORANGES)
    assert out["ids"] == list(view.ids) and out["loss_mask"] == view.loss_mask
    assert {"id", "text", "special", "role"} <= set(out["tokens"][0])
    assert out["tokens"][0] == {**out["tokens"][0], "text": "<|im_start|>", "special": True, "role": "system"}
    assert cli_main(["--json", "score", "--model", MODEL, "Hello there"]) == 0
    scored = json.loads(capsys.readouterr().out)
    hello = load_model(MODEL).tokenizer("Hello", add_special_tokens=False)["input_ids"]
    assert [t["text"] for t in scored["tokens"]] == [" there"] and scored["context_ids"] == hello  # no start token
    assert all(t["logprob"] < 0 for t in scored["tokens"])
    monkeypatch.setattr(playground_settings, "_flags", {})  # the flag below is forgotten after this test
    monkeypatch.setattr(playground_settings, "_built", None)
    assert cli_main(["--json", "--start-token", "always", "score", "--model", MODEL, "Hello there"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert [t["text"] for t in scored["tokens"]] == ["Hello", " there"]
    assert cli_main(["chat-template", "--model", MODEL, str(tmp_path / "missing.json")]) == 2
    assert "Cannot read" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Side-by-side generation (playground.side_by_side) on tiny-random


def test_side_by_side_streams_columns_together_and_is_seeded():
    from playground.sampling import SamplingSettings
    from playground.side_by_side import contender, iter_side_by_side

    contenders = [contender(MODEL, "raw", "Write me a poem"), contender(MODEL, "template", "Write me a poem")]
    assert contenders[1].prompt_ids == tuple(chat.template_prompt_ids(MODEL, [{"role": "user", "content": "Write me a poem"}]))
    assert contenders[1].prompt_text.endswith("<|im_start|>assistant\n")
    settings = SamplingSettings(temperature=1.0)
    snapshots = [[len(c.records) for c in columns] for columns in iter_side_by_side(contenders, settings, 4, 7)]
    assert snapshots == [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]  # one token per column per round
    first = list(iter_side_by_side(contenders, settings, 4, 7))[-1]
    again = list(iter_side_by_side(contenders, settings, 4, 7))[-1]
    assert [[r.id for r in c.records] for c in first] == [[r.id for r in c.records] for c in again]
    assert all(c.stop == "max_tokens" and "maximum number of new tokens" in c.stop_note() for c in first)


def test_contender_modes_and_errors():
    from playground.side_by_side import contender

    text = contender(MODEL, "conversation_text", messages=ORANGES[:1])
    assert text.prompt_text == "User: What is the color of oranges?\n\nAssistant:"
    templated = contender(MODEL, "conversation_template", messages=ORANGES[:3])
    assert templated.prompt_ids == tuple(chat.template_prompt_ids(MODEL, ORANGES[:3]))
    with pytest.raises(PlaygroundError, match="prompt"):
        contender(MODEL, "raw", "  ")
    with pytest.raises(PlaygroundError, match="mode"):
        contender(MODEL, "sideways", "hi")


def test_stop_note_names_the_end_of_turn_token():
    from playground import generation
    from playground.sampling import SamplingSettings
    from playground.side_by_side import Column, contender

    column = Column(contender(MODEL, "template", "Hi"))
    decoder = generation.Decoder(load_model(MODEL), column.contender.prompt_ids)
    record = generation.forced_step(decoder, SamplingSettings(), load_tokenizer(MODEL).convert_tokens_to_ids("<|im_end|>"))
    column.records.append(record)
    column.stop = record.stop
    assert column.stop == "eos" and column.text == ""
    assert column.stop_note() == "Stopped after 1 token: it generated <|im_end|>, its end-of-turn token."


def test_plot_says_how_the_tokenizers_line_up():
    from playground.plots.chat import surprisal_figure, tokenizer_note

    text = "unbelievable day"
    first = _scored(text, [2, 6, 12], [1.0, 2.0, 3.0, 4.0])
    second = _scored(text, [6, 9, 12], [5.0, 6.0, 7.0, 8.0])
    figure = surprisal_figure(first, second, chat.align_scores(first, second))
    assert "The tokenizers differ (4 vs 4 tokens)" in figure.layout.annotations[-1].text
    assert [list(trace.y) for trace in figure.data[:2]] == [[3.0, 3.0, 4.0], [5.0, 13.0, 8.0]]
    assert tokenizer_note(first, first).startswith("Both models use the same tokenizer")
    renumbered = chat.ScoredText("n", text, (0,), tuple(
        chat.ScoredToken(t.index, t.id + 1000, t.text, t.start, t.end, t.logprob) for t in first.tokens))
    assert "cut this text at the same places" in tokenizer_note(first, renumbered)


# ---------------------------------------------------------------------------------------------
# Honest pages (issue 13.3): the Base vs chat handlers say how a stream ended, in its panels


SAMPLING = (1.0, 0, 1.0, 0.0, "transformers", 1)  # temperature, top-k, top-p, min-p, order, seed


def _status(column_html: str) -> str:
    import re

    return re.search(r'class="gen-status">(.*?)</div>', column_html, re.S).group(1)


def _consume(stream):
    """(views, the gr.Error's message or None)."""
    import gradio as gr

    views = []
    try:
        for view in stream:
            views.append(view)
    except gr.Error as exc:
        return views, exc.message
    return views, None


def test_stop_ends_the_side_by_side_stream_with_a_stopped_view_and_no_error():
    from playground.ui import chat_tab
    from playground.ui.common import StopSignal

    signal = StopSignal()
    stream = chat_tab.side_by_side("Write me a poem", MODEL, MODEL, 200, *SAMPLING, signal)
    running = [next(stream) for _ in range(4)]  # waiting, prompts read, two rounds
    assert "Generating… 2 tokens so far" in _status(running[-1][0])
    signal.press()
    views, error = _consume(stream)
    assert error is None and len(views) == 1  # one last view, then the stream ends
    assert [_status(html) for html in views[0][:2]] == ["Stopped after 2 tokens: you pressed Stop."] * 2
    assert all("gen-done" in html for html in views[0][:2])


@pytest.mark.parametrize("fault", ["limit", "memory"])
def test_a_limit_or_fault_mid_stream_is_said_in_both_columns_then_raised(monkeypatch, fault):
    from playground import limits
    from playground.ui import chat_tab
    from playground.ui.common import OUT_OF_MEMORY

    real = chat_tab.iter_side_by_side

    def failing(*args):
        for round_, columns in enumerate(real(*args)):
            if round_ == 3:  # the columns hold round 3's tokens already: they are shown
                raise limits.RequestTimeout("ran past its time limit") if fault == "limit" else MemoryError()
            yield columns

    monkeypatch.setattr(chat_tab, "iter_side_by_side", failing)
    monkeypatch.setattr(limits, "DEFAULT_REQUEST_SECONDS", 120.0)
    views, error = _consume(chat_tab.side_by_side("Write me a poem", MODEL, MODEL, 50, *SAMPLING))
    statuses = [_status(html) for html in views[-1][:2]]
    if fault == "limit":
        assert statuses == ["Stopped at the time limit (120 s) after 3 tokens: try fewer tokens."] * 2
        assert error == "ran past its time limit"
    else:
        assert statuses == [f"Stopped after 3 tokens: {OUT_OF_MEMORY}"] * 2 and error == OUT_OF_MEMORY
    assert [len(c.records) for c in views[-1][2]] == [3, 3]  # the records the columns show


def test_the_real_time_limit_and_bad_input_say_so_before_the_first_token(monkeypatch):
    from playground import limits
    from playground.ui import chat_tab

    views, error = _consume(chat_tab.side_by_side("   ", MODEL, MODEL, 5, *SAMPLING))
    assert error == "Type a prompt first." and _status(views[-1][0]) == "Not run: Type a prompt first."
    monkeypatch.setattr(limits, "DEFAULT_REQUEST_SECONDS", 0.0)  # passed before the first model call
    views, error = _consume(chat_tab.side_by_side("Write me a poem", MODEL, MODEL, 5, *SAMPLING))
    assert "time limit (0 s)" in error
    assert all(_status(html).startswith("Stopped at the time limit (0 s) before the first token") for html in views[-1][:2])


def test_a_follow_up_sent_while_the_base_column_streams_stops_it_and_is_answered_next():
    from playground.ui import chat_tab
    from playground.ui.common import StopSignal

    conversation, signal = chat_tab.Conversation(), StopSignal()
    box, shown, _, base_view = chat_tab.send_message("Hi there", conversation)
    assert box == "" and shown == [{"role": "user", "content": "Hi there"}]
    assert chat_tab.QUEUED in base_view  # the base panel waits for its turn
    stream = chat_tab.answer(conversation, "", MODEL, MODEL, "conversation_text", 40, *SAMPLING, stop=signal)
    for view in stream:
        if "gen-tok" in view[1] and 'data-tokens="2"' in view[1]:  # the reply is done, the base column streams
            assert len(conversation.messages) == 2
            _, shown, _, base_view = chat_tab.send_message("And then?", conversation)
            assert shown[-1] == {"role": "user", "content": "And then?"}
            assert isinstance(base_view, dict)  # a stream is running: the base panel is left to it
    assert "a new message was sent" in _status(view[1]) and conversation.waiting == ["And then?"]
    views = list(chat_tab.answer(conversation, "", MODEL, MODEL, "conversation_text", 3, *SAMPLING, stop=signal))
    assert [m["role"] for m in conversation.messages] == ["user", "assistant"] * 2
    assert conversation.messages[2]["content"] == "And then?" and not conversation.waiting
    assert "maximum number of new tokens" in _status(views[-1][1])


def test_stop_mid_reply_keeps_the_reply_so_far_and_gives_back_the_messages_not_answered():
    from playground.ui import chat_tab
    from playground.ui.common import StopSignal

    conversation, signal = chat_tab.Conversation(), StopSignal()
    chat_tab.send_message("First question", conversation)
    stream = chat_tab.answer(conversation, "", MODEL, MODEL, "conversation_text", 40, *SAMPLING, stop=signal)
    views = [next(stream) for _ in range(4)]  # the user message, prompt read, two tokens
    chat_tab.send_message("Second question", conversation)
    signal.press()
    views, error = _consume(stream)
    assert error is None and len(views) == 1
    chatbot, base_view, _ = views[0]
    assert chatbot[1]["role"] == "assistant" and chatbot[1]["content"].endswith("*(Stopped after 2 tokens: you pressed Stop.)*")
    assert _status(base_view) == "Stopped before the first token: you pressed Stop."
    assert len(conversation.messages) == 2 and "Stopped" not in conversation.messages[1]["content"]  # raw text kept
    box, chatbot, *panels = chat_tab.after_stop(conversation, "half typed", chat_tab.queued_views(1)()[0], "<p>done</p>")
    assert box == "Second question\nhalf typed" and not conversation.waiting and len(chatbot) == 2
    assert _status(panels[0]) == chat_tab.STOPPED_WAITING and isinstance(panels[1], dict)


def test_a_conversation_refused_before_it_began_gives_the_message_back():
    from playground.ui import chat_tab

    conversation = chat_tab.Conversation()
    _, _, _, base_view = chat_tab.send_message("Anyone there?", conversation)
    box, chatbot, base_view = chat_tab.conversation_failed(conversation, "", base_view)  # the queue refused it
    assert box == "Anyone there?" and chatbot == [] and _status(base_view) == chat_tab.NOT_STARTED


def test_the_api_turn_and_a_direct_call_with_a_list_still_work():
    from playground.ui import chat_tab

    views = list(chat_tab.converse("What is the color of oranges?", [], "", MODEL, MODEL, "conversation_text", 3,
                                   *SAMPLING))
    chatbot, conversation, base_view, box, answer = views[-1]
    assert [m["role"] for m in chatbot] == ["user", "assistant"] and box == ""
    assert answer == conversation.messages[-1]["content"]  # in the last view, for the call's result
    assert "maximum number of new tokens" in _status(base_view)
    template, _ = chat_tab.template_views(conversation, "", MODEL, False)
    assert "No conversation yet" not in template and "oranges" in template


def test_no_stop_button_of_the_chat_tab_cancels_through_gradio():
    from playground.ui.shell import build_app

    config = build_app().get_config_file()
    chat_ids = {d["id"] for d in config["dependencies"] if d.get("api_name") in ("side_by_side", "converse")}
    assert chat_ids and not any(set(d["cancels"]) & chat_ids for d in config["dependencies"] if d.get("cancels"))
