"""The "Base vs chat" tab: one request to a pretrained and an instruction-tuned model.

Sections, top to bottom: model pickers, the lecture presets and the shared sampling controls
(`playground.ui.controls`); (1) side by side: the base model on the raw prompt, the chat model
through its template, streamed together, each token coloured by its probability; (2) a multi-turn
conversation with the chat model, the base model continuing the same conversation as plain text or
in the chat template; (3) the exact template tokens and the SFT loss mask of that conversation;
(4) the chat model with and without its template; (5) teacher forcing: the surprisal of a text
under both models. Handlers are a few lines each over `playground.side_by_side`, `playground.chat`
and `playground.conversation` (the conversation and its turn-taking: this module only renders its
steps); per-session history lives in a `gr.State` (a `Conversation`: finished turns as {role,
content} dicts, the format Gradio 6's Chatbot displays, the turn being answered, and the messages
sent meanwhile).

Honest pages: a stream ended by Stop, the time limit or an error yields one last view saying so in
words in each of its panels (never left "Generating…"), then the error goes on as a message (a
toast); Stop presses the tab's `StopSignal` (`playground.ui.common.connect_stop`, never Gradio's
`cancels=`, whose cancel marks the outputs as failed); an instant first step shows "waiting for
its turn" in a stream's panels, and a run refused as busy before it began says so there. The
conversation never blocks its box: Send puts the message in the conversation at once, and one
stream answers the waiting messages, then lets the base model continue, until a newer message
waits (the base column stops for it).

Handlers take the sampling values as named arguments,
never `*values`: Gradio names each API parameter after its argument (`gradio_client` users saw
`param_4` ... `param_12`). The generated columns use the sampling lab's renderer and colour scale
(`playground.html.generated`); the template view refuses a conversation too long to show quickly
with a note in both panels (`playground.chat.check_view_size`).

Engine models are listed for both columns (their backend can stream: `backends.runs_in`): an engine column streams from the
engine (`playground.engines.stream`), its header says the engine sampled it, and a failing engine
says so in its own column while the other goes on (in the conversation, the chat model's failure is
said where its reply would be). The template view shows an engine model's template when its entry
names a `tokenizer`, and says otherwise that the template is the engine's own and not shown;
teacher forcing on an engine model is the engine's (`playground.engines.forcing`, through
`chat.score_text`), with a line saying how it was scored and what is exact. What it leaves out: any model code.
"""

from __future__ import annotations

import html
from contextlib import closing
import gradio as gr

from playground import chat, exports, limits
from playground.conversation import Conversation, Turns, as_conversation, with_system
from playground.errors import PlaygroundError
from playground.html import chat as chat_html
from playground.html.generated import GENERATED_CSS, generated_html
from playground.html.tokens import HOVER_JS, TOKEN_CSS
from playground.backends import backend_for
from playground.models import list_models
from playground.prompts import surrogate_free
from playground.plots.chat import surprisal_figure
from playground.sampling import PRESETS as PRESETS_SAMPLING
from playground.side_by_side import contender, iter_side_by_side
from playground.token_text import visible_whitespace
from playground.ui import fim_section, link_wiring
from playground.ui.common import (StopPressed, StopSignal, connect_stop, halted_note, model_choices, user_errors,
                                  user_message)
from playground.ui.controls import sampling_controls, seed_from_value, settings_from_values
from playground.ui.exports import data_downloads

POEM = "Write me a poem about large language models"
ORANGES = ("What is the color of oranges?", "I have a green orange, can I eat it?")
APPLES = "I want to refocus my diet on only eating Apples and supplements."
PRESETS = {"poem": ("Poem about LLMs", POEM), "oranges": ("Oranges (two turns)", ORANGES[0]),
           "apples": ("Apples diet", APPLES)}
# The lecture's instruction-tuning slide: shown in the template view until the class has chatted.
LECTURE_DIALOGUE = [
    {"role": "user", "content": ORANGES[0]},
    {"role": "assistant", "content": "The answer, of course, depends on the type of orange! ..."},
    {"role": "user", "content": ORANGES[1]},
    {"role": "assistant", "content": "You might be surprised to know that some oranges are indeed green!..."},
]
BASE_MODES = [("as plain text (User: … / Assistant: …)", "conversation_text"),
              ("in the chat template", "conversation_template")]
DEFAULT_MAX_TOKENS = 128
MAX_NEW_TOKENS = 512
# The lecture's nucleus preset: greedy (and low temperatures) make these small models loop.
DEFAULT_SAMPLING = PRESETS_SAMPLING["nucleus"]
HUB_PAIR = ("smollm2-135m", "smollm2-135m-instruct-hub")
OFFLINE_PAIR = ("gemma-3-270m", "smollm2-135m-instruct")

CSS = """
#chat-chatbot { font-size: 1.15rem; }
/* on a projector the conversation takes the screen less the message row: both turns in view */
html.playground-present #chat-chatbot { height: calc(100vh - 160px) !important; max-height: none !important;
                                         font-size: 18px; }
.chat-col-title { font-weight: 700; font-size: 1.1rem; }
"""


def default_models() -> tuple[str | None, str | None]:
    """The same-family SmolLM2 pair when the hub is reachable, else the packaged pair."""
    available = {info.id for info in list_models(include_hidden=False) if info.available}
    for pair in (HUB_PAIR, OFFLINE_PAIR):
        if set(pair) <= available:
            return pair
    base, chat_ids = model_choices("base"), model_choices("chat")
    return (base[0][1] if base else None), (chat_ids[0][1] if chat_ids else None)


def _html_view(**kwargs) -> gr.HTML:
    return gr.HTML(css_template=TOKEN_CSS + chat_html.CSS + GENERATED_CSS, js_on_load=HOVER_JS, **kwargs)


# ---------------------------------------------------------------------------------------------
# Rendering columns


def column_html(column) -> str:
    return generated_html("", column.records, column.stop_note(), header=column.header, running=not column.done)


def waiting_html(note: str, status: str = "Loading the model and reading the prompt…") -> str:
    return generated_html("", [], status, header=note, running=True)


def halted_html(part, exc: BaseException | None = None, message: str | None = None) -> str:
    """A column as its stream left it, saying why it ended (Stop when `exc` is None, else the time
    limit or the error's `message`); a column that had finished keeps its own reason. `part` is a
    streamed column, or the header note of one that had not begun."""
    if isinstance(part, str):
        return generated_html("", [], halted_note(None, exc, message), header=part, running=False)
    part.halt(halted_note(len(part.records) or None, exc, message))
    return column_html(part)


def _stream(contenders_fn, sampling_values, max_tokens):
    """Yield (column HTML, ...) until every column has stopped."""
    settings = settings_from_values(*sampling_values[:5])
    seed = seed_from_value(sampling_values[5])
    contenders = contenders_fn()
    max_tokens = limits.clamp_int(max_tokens, "max new tokens", 1, MAX_NEW_TOKENS)
    # closed on Stop, the time limit or an error (an engine column's HTTP stream with it)
    with closing(iter_side_by_side(contenders, settings, max_tokens, seed)) as stream:
        yield from stream


def _column_pair(notes, contenders_fn, sampling_values, max_tokens):
    """Stream two columns: (HTML, HTML, what they hold) until both stopped. After Stop, the time
    limit or an error, one last view says so in both panels (never left "Generating…"); then the
    error goes on as a message."""
    parts = list(notes)  # header notes until the columns exist
    try:
        yield waiting_html(notes[0]), waiting_html(notes[1]), parts
        for columns in _stream(contenders_fn, sampling_values, max_tokens):
            parts = columns
            yield column_html(columns[0]), column_html(columns[1]), columns
    except StopPressed:
        yield halted_html(parts[0]), halted_html(parts[1]), parts
    except Exception as exc:  # noqa: BLE001 - said in both panels, then raised as its message
        message = user_message(exc)
        yield halted_html(parts[0], exc, message), halted_html(parts[1], exc, message), parts
        raise gr.Error(message) from None


# ---------------------------------------------------------------------------------------------
# Handlers


@user_errors
def side_by_side(prompt, base_model, chat_model, max_tokens, temperature, top_k, top_p, min_p, order, seed,
                 stop=None):
    """Base model on the raw prompt, chat model through its template, streamed together (`stop`: the
    tab's `StopSignal`)."""
    yield from _column_pair([f"{base_model}: the prompt as raw text", f"{chat_model}: through its template"],
                            lambda: [contender(base_model, "raw", prompt), contender(chat_model, "template", prompt)],
                            (temperature, top_k, top_p, min_p, order, seed), max_tokens)


@user_errors
def with_without_template(prompt, chat_model, max_tokens, temperature, top_k, top_p, min_p, order, seed, stop=None):
    """The chat model on the raw prompt next to the chat model through its template."""
    yield from _column_pair([f"{chat_model}: raw text", f"{chat_model}: template"],
                            lambda: [contender(chat_model, "raw", prompt), contender(chat_model, "template", prompt)],
                            (temperature, top_k, top_p, min_p, order, seed), max_tokens)


def _chat_view(conversation: Conversation, note: str = "", unanswered: dict | None = None) -> list[dict]:
    """What the Chatbot shows: the conversation, each message's text escaped so typed HTML appears
    literally (the conversation keeps the raw text: it is what the models read); `note`, in words,
    after the last answer (or after `unanswered`, a message whose answer never began); then the
    messages waiting for their turn."""
    messages = [*conversation.messages, *conversation.answering, *([unanswered] if unanswered else [])]
    shown = [{"role": m["role"], "content": html.escape(m["content"])} for m in messages]
    if note:
        words = f"*({html.escape(note)})*"
        if shown and shown[-1]["role"] == "assistant":
            shown[-1]["content"] += "\n\n" + words
        else:
            shown.append({"role": "assistant", "content": words})
    return shown + [{"role": "user", "content": html.escape(text)} for text in conversation.waiting]


def _conversation(history, system) -> list[dict]:
    messages = history.messages if isinstance(history, Conversation) else list(history or [])
    return with_system(messages, system)


def _message_text(message, conversation: Conversation) -> str:
    text = surrogate_free(str(message or "")).strip()
    if not text:
        raise gr.Error("Type a message first.")
    # refused before it is stored: longer than the model reads, or the conversation would be
    stored = limits.text_chars([conversation.messages, conversation.answering, conversation.waiting])
    return limits.check_chat_message(text, stored)


@user_errors
def send_message(message, history, event: gr.EventData = None):
    """Send (or Enter, or the oranges preset): the message joins the conversation's waiting list
    and the box empties at once; `answer` streams the reply. Nothing here waits on a model, so the
    box and Send stay usable while a reply or the base model's column streams."""
    conversation = as_conversation(history)
    if getattr(event, "target", None) is not None and getattr(event.target, "elem_id", "") == "chat-preset-oranges":
        conversation.restart(ORANGES)
    else:
        conversation.send(_message_text(message, conversation))
    base_view = gr.skip() if conversation.streaming else generated_html("", [], QUEUED, running=True)
    return "", _chat_view(conversation), conversation, base_view


def _answer(conversation: Conversation, system, chat_model, base_model, base_mode, max_tokens, sampling):
    """The views of one run of `playground.conversation.Turns`: (chatbot, base column HTML, the new
    answer or gr.skip()). After Stop, the time limit or an error, one last view says so where it
    happened: a reply keeps what it had, with a note; the base column says why it ended."""
    base_note = f"{base_model} continues the conversation"
    base_view = waiting_html(base_note, "Waits for the chat model's answer…")
    turns = Turns(conversation, system, chat_model, base_model, base_mode,
                  lambda contenders_fn: _stream(contenders_fn, sampling, max_tokens))
    with turns:
        try:
            with closing(turns.steps()) as steps:
                for step in steps:
                    if step.kind in ("base", "base-halted"):
                        base_view = column_html(turns.base)
                    yield _chat_view(conversation), base_view, step.answer if step.kind == "answered" else gr.skip()
        except StopPressed:
            if turns.current:
                yield _ended(turns, base_note)
        except Exception as exc:  # noqa: BLE001 - said where it happened, then raised as its message
            message = user_message(exc)
            if turns.current:
                yield _ended(turns, base_note, exc, message)
            raise gr.Error(message) from None


def _ended(turns: Turns, base_note: str, exc=None, message=None):
    """The conversation's last view after Stop, the time limit or an error: a reply in progress is
    kept as far as it got (a reply that never began is not kept: the note says why), the base
    column says why it ended."""
    turns.interrupted()
    conversation, base_part = turns.conversation, turns.base or base_note
    if not turns.was_answering:  # the base column was running, or had not begun
        return _chat_view(conversation), halted_html(base_part, exc, message), gr.skip()
    note = halted_note(turns.reply_tokens, exc, message)
    chat_view = _chat_view(conversation, note, turns.unanswered)
    return (chat_view, halted_html(base_part, exc, message),
            gr.skip() if turns.unanswered else conversation.messages[-1]["content"])


@user_errors
def answer(history, system, chat_model, base_model, base_mode, max_tokens, temperature, top_k, top_p, min_p, order,
           seed, stop=None):
    """The page's conversation stream (after `send_message`): the waiting messages' replies, then the
    base model's continuation."""
    yield from _answer(as_conversation(history), system, chat_model, base_model, base_mode, max_tokens,
                       (temperature, top_k, top_p, min_p, order, seed))


def _api_views(conversation, *args):
    """`_answer`'s views with the outputs of the API's one-call turns (the last answer in every view
    after it, so the call's result has it)."""
    last = gr.skip()
    for chat_view, base_view, new_answer in _answer(conversation, *args):
        last = last if isinstance(new_answer, dict) else new_answer
        yield chat_view, conversation, base_view, "", last


@user_errors
def converse(message, history, system, chat_model, base_model, base_mode, max_tokens,
             temperature, top_k, top_p, min_p, order, seed):
    """One user turn in one call (the API's `/converse`): the chat model answers (through its
    template), the base model continues the conversation."""
    conversation = as_conversation(history)
    conversation.send(_message_text(message, conversation))
    yield from _api_views(conversation, system, chat_model, base_model, base_mode, max_tokens,
                          (temperature, top_k, top_p, min_p, order, seed))


@user_errors
def converse_oranges(history, system, chat_model, base_model, base_mode, max_tokens,
                     temperature, top_k, top_p, min_p, order, seed):
    """The lecture's two-turn dialogue, from a fresh conversation (the API's `/preset_oranges`)."""
    conversation = as_conversation(history)
    conversation.restart(ORANGES)
    yield from _api_views(conversation, system, chat_model, base_model, base_mode, max_tokens,
                          (temperature, top_k, top_p, min_p, order, seed))


def _template_messages(history, system) -> tuple[list[dict], str]:
    """The messages the template view shows (the lecture's dialogue while empty) and a note saying so."""
    if not _conversation(history, None):
        return (_conversation(LECTURE_DIALOGUE, system),
                "<div class='tok-note'>No conversation yet: showing the lecture's example dialogue.</div>")
    return _clean_messages(_conversation(history, system)), ""


@user_errors
def template_views(history, system, chat_model, generation_prompt):
    """The conversation's template tokens and its loss mask (the lecture's dialogue while empty)."""
    messages, note = _template_messages(history, system)
    try:
        _check_template_view(chat_model, messages)
    except (chat.TemplateTooLong, TemplateNotShown) as exc:  # said in both panels, where the tokens would be
        refused = f"<div class='tok-note'>{html.escape(str(exc))}</div>"
        return refused, refused
    view = chat.template_view(chat_model, messages, add_generation_prompt=bool(generation_prompt))
    return note + chat_html.template_html(view), note + chat_html.loss_mask_html(view)


def template_data(history, system, chat_model, generation_prompt, fmt):
    """The template's tokens with roles and loss mask (what section 3 shows) as CSV or JSON text."""
    messages = _template_messages(history, system)[0]
    _check_template_view(chat_model, messages)
    view = chat.template_view(chat_model, messages, add_generation_prompt=bool(generation_prompt))
    return exports.export(exports.template_table(view), fmt)


class TemplateNotShown(PlaygroundError):
    """An engine model whose entry names no tokenizer: its template is the engine's own."""


def _check_template_view(model_id, messages) -> None:
    """Refuse, in words said in the template panels, what the view cannot show: a conversation too
    long to show quickly, or the template of an engine model whose entry names no tokenizer."""
    chat.check_view_size(messages)
    refusal = backend_for(model_id).capabilities.missing.get("template_view")
    if refusal:
        raise TemplateNotShown(refusal)


def _clean_messages(messages) -> list[dict]:
    return [{**m, "content": surrogate_free(str(m.get("content", "")))} for m in messages]


def last_answer(history) -> str:
    answers = [m["content"] for m in _conversation(history, None) if m.get("role") == "assistant"]
    return answers[-1] if answers else ""


@user_errors
def teacher_forcing(text, history, base_model, chat_model):
    """Surprisal of `text` (default: the chat model's last answer) under both models."""
    text = surrogate_free(str(text or "")) or last_answer(history)
    if not text.strip():
        raise gr.Error("Type a text to score, or chat first: the chat model's last answer is the default.")
    base, chat_scored = chat.score_text(base_model, text), chat.score_text(chat_model, text)
    spans = chat.align_scores(base, chat_scored)
    worst = sorted(spans, key=lambda s: -abs(s.difference))[:3]
    summary = f"Largest disagreements ({base_model} vs {chat_model}): " + ", ".join(
        f"“{html.escape(visible_whitespace(s.text))}” ({s.bits[0]:.1f} vs {s.bits[1]:.1f} bits)" for s in worst)
    summary += "".join(f"\n\n{html.escape(scored.note)}" for scored in (base, chat_scored) if scored.note)
    why = (chat.why_prompts(base), chat.why_prompts(chat_scored))
    return surprisal_figure(base, chat_scored, spans, why), summary, text


def _setter(value):
    return lambda: value


def clear_conversation(history):
    """Clear: a new conversation (a reply or base column still streaming stops writing to it); the
    message box keeps what is typed in it."""
    conversation = as_conversation(history)
    conversation.clear()
    return [], conversation, generated_html("", [], "Conversation cleared.", running=False), ""


# ---------------------------------------------------------------------------------------------
# Instant steps around the streams (no queue, no model): a panel waiting for its turn says so, and
# says so again if its run never started (refused as busy, or Stop)

QUEUED = "Waiting for its turn on the server…"
NOT_STARTED = "Not run: the server was too busy to start it; try again in a minute."
STOPPED_WAITING = "Not run: you pressed Stop while it waited for its turn."


def queued_views(count: int, prompt_text: str | None = None):
    """A run's first step: its `count` panels wait for their turn (and a preset sets the prompt)."""
    views = tuple(generated_html("", [], QUEUED, running=True) for _ in range(count))
    return lambda: views if prompt_text is None else (prompt_text, *views)


def _waiting(panel) -> bool:
    return isinstance(panel, str) and QUEUED in panel


def not_started(*panels):
    """After a run failed: each of its panels still waiting for its turn says it was never started."""
    return tuple(generated_html("", [], NOT_STARTED, running=False) if _waiting(p) else gr.skip() for p in panels)


def _unsent_back(history, message):
    """The messages sent but not answered yet go back into the box, before what it holds, so none is
    lost: (box, chatbot)."""
    if not isinstance(history, Conversation) or not history.waiting:
        return gr.skip(), gr.skip()
    texts = history.take_waiting()
    return "\n".join([*texts, message] if message else texts), _chat_view(history)


def conversation_failed(history, message, base_panel):
    """After the conversation's stream failed (said where it happened, or refused as busy before it
    began): messages not answered go back into the box; a base panel still waiting says so."""
    return (*_unsent_back(history, message),
            generated_html("", [], NOT_STARTED, running=False) if _waiting(base_panel) else gr.skip())


def after_stop(history, message, *panels):
    """After Stop (the streams say how they ended): messages not answered go back into the box, and
    a panel still waiting for its turn (its run was taken out of the queue) says so."""
    return (*_unsent_back(history, message),
            *(generated_html("", [], STOPPED_WAITING, running=False) if _waiting(p) else gr.skip() for p in panels))


# ---------------------------------------------------------------------------------------------
# Layout


def build() -> link_wiring.TabLink:
    base_default, chat_default = default_models()
    gr.Markdown("A **base** model was only trained to continue text; a **chat** model was then fine-tuned on "
                "dialogues written in a chat template. Give both the same request.")
    with gr.Row():
        base_model = gr.Dropdown(model_choices("base", tab="chat"), value=base_default,
                                 label="Base model (pretrained)",
                                 elem_id="chat-base-model")
        chat_model = gr.Dropdown(model_choices("chat", tab="chat"), value=chat_default,
                                 label="Chat model (instruction-tuned)",
                                 elem_id="chat-chat-model")
        max_tokens = gr.Slider(1, 512, value=DEFAULT_MAX_TOKENS, step=1, label="max new tokens",
                               elem_id="chat-max-tokens")
    with gr.Row(elem_classes=["chat-presets"]):
        gr.Markdown("**Lecture demos**")
        preset_buttons = {key: gr.Button(label, variant="secondary", elem_id=f"chat-preset-{key}")
                          for key, (label, _) in PRESETS.items()}
    with gr.Accordion("Sampling (the same settings and seed for both models)", open=False):
        controls = sampling_controls(initial=DEFAULT_SAMPLING, elem_prefix="chat")
    sampling = controls.inputs
    history = gr.State(Conversation())  # each session gets its own copy
    stop_signal = gr.State(StopSignal())  # both Stop buttons of the tab, for the streams they stop

    with gr.Accordion("1 · Side by side: the base model on raw text, the chat model through its template", open=True):
        with gr.Row():
            prompt = gr.Textbox(value=POEM, label="Prompt", lines=2, scale=4, elem_id="chat-prompt")
            run = gr.Button("Generate with both", variant="primary", scale=1, elem_id="chat-run")
            stop = gr.Button("Stop", variant="stop", scale=0, elem_id="chat-stop")
        with gr.Row(equal_height=False):
            with gr.Column(elem_id="chat-base-side"):  # ids: a class room's blind poll may swap the sides
                gr.Markdown("Base model · raw text", elem_classes=["chat-col-title"])
                base_column = _html_view(elem_id="chat-base-column")
            with gr.Column(elem_id="chat-chat-side"):
                gr.Markdown("Chat model · chat template", elem_classes=["chat-col-title"])
                chat_column = _html_view(elem_id="chat-chat-column")

    with gr.Accordion("2 · Conversation: a chatbot program around the chat model", open=True):
        system = gr.Textbox(label="System prompt (empty: the template's own default, if it has one)", lines=1,
                            elem_id="chat-system")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat model", height=420, elem_id="chat-chatbot", feedback_options=None)
                # the message box has the column's width (beside three buttons it was squeezed to 160 px)
                message = gr.Textbox(show_label=False, elem_id="chat-message", lines=1,
                                     placeholder="Your message: ask the chat model something and press Enter")
                with gr.Row(equal_height=True):
                    send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="chat-send")
                    stop_conversation = gr.Button("Stop", variant="stop", scale=1, min_width=80,
                                                  elem_id="chat-stop-conversation")
                    clear = gr.Button("Clear", scale=1, min_width=80, elem_id="chat-clear")
            with gr.Column(scale=2):
                base_mode = gr.Radio(BASE_MODES, value="conversation_text", label="The base model gets the conversation",
                                     elem_id="chat-base-mode")
                base_conversation = _html_view(elem_id="chat-base-conversation")

    with gr.Accordion("3 · The chat template and the fine-tuning loss mask of this conversation", open=True):
        generation_prompt = gr.Checkbox(False, label="add the generation prompt (the assistant header the chatbot "
                                                     "program writes before the model answers)",
                                        elem_id="chat-generation-prompt")
        show_template = gr.Button("Show the template", size="sm", elem_id="chat-show-template")
        template_view = _html_view(elem_id="chat-template-view")
        gr.Markdown("**Loss mask**: supervised fine-tuning trains only on the assistant's replies and its end-of-turn "
                    "token.")
        loss_view = _html_view(elem_id="chat-loss-view")
        data_downloads("Download the template's tokens and loss mask", template_data,
                       [history, system, chat_model, generation_prompt], "chat-template", "chat-template-data")

    with gr.Accordion("4 · The same chat model with and without its template", open=False):
        run_both_ways = gr.Button("Generate: raw prompt vs chat template (the prompt of section 1)",
                                  elem_id="chat-run-template")
        with gr.Row(equal_height=False):
            raw_column = _html_view(elem_id="chat-raw-column")
            templated_column = _html_view(elem_id="chat-templated-column")

    with gr.Accordion("5 · Teacher forcing: how surprised is each model by a text?", open=False):
        score_input = gr.Textbox(label="Text to score (empty: the chat model's last answer)", lines=3,
                                 elem_id="chat-score-text")
        score = gr.Button("Score under both models", elem_id="chat-score")
        score_note = gr.Markdown()
        score_plot = gr.Plot(elem_id="chat-score-plot")

    # -- events -----------------------------------------------------------------------------------
    # Each long stream takes the tab's StopSignal as its last input (a State: not an API
    # parameter); the Stop buttons press it (`connect_stop`), never `cancels=`. An instant first
    # step shows "waiting for its turn" in the stream's panels; a run that fails before its first
    # view (refused as busy) says so there (`not_started`).
    sampling_inputs = [max_tokens, *sampling]
    side_inputs = [prompt, base_model, chat_model, *sampling_inputs, stop_signal]
    conversation_inputs = [history, system, chat_model, base_model, base_mode, *sampling_inputs]
    template_inputs = [history, system, chat_model, generation_prompt]
    template_outputs = [template_view, loss_view]
    side_columns, templated_columns = [base_column, chat_column], [raw_column, templated_column]
    side_streamed = gr.State(None)  # what each pair of columns last streamed (the records behind the HTML)
    templated_streamed = gr.State(None)

    def column_run(first, fn, inputs, columns, streamed, api_name):
        run = first.then(fn, inputs, [*columns, streamed], api_name=api_name)
        run.failure(not_started, columns, columns, api_name=False, queue=False, show_progress="hidden")
        return run

    def waiting_first(trigger, prompt_text=None):
        outputs = [prompt, *side_columns] if prompt_text is not None else side_columns
        return trigger(queued_views(2, prompt_text), None, outputs, api_name=False, queue=False,
                       show_progress="hidden")

    generations = [
        column_run(waiting_first(run.click), side_by_side, side_inputs, side_columns, side_streamed, "side_by_side"),
        column_run(waiting_first(prompt.submit), side_by_side, side_inputs, side_columns, side_streamed, False),
        column_run(run_both_ways.click(queued_views(2), None, templated_columns, api_name=False, queue=False,
                                       show_progress="hidden"),
                   with_without_template, [prompt, chat_model, *sampling_inputs, stop_signal], templated_columns,
                   templated_streamed, "with_without_template"),
    ]
    for key, button in preset_buttons.items():
        if key != "oranges":  # oranges runs the conversation (below)
            generations.append(column_run(waiting_first(button.click, PRESETS[key][1]), side_by_side, side_inputs,
                                          side_columns, side_streamed, f"preset_{key}"))

    # The conversation: Send (or Enter, or the oranges preset) puts the message in the conversation
    # at once (no queue, no model), then one stream answers what waits and lets the base model
    # continue. The message box is never an output of that stream: a follow-up typed meanwhile stays,
    # and sending it stops the base column for the new reply ("always_last": the stream runs again
    # after the one running). Stop, or a failed stream, puts the messages not answered yet back into
    # the box.
    oranges = preset_buttons["oranges"]
    oranges.click(_setter(ORANGES[0]), None, prompt, api_name=False, queue=False)
    sent = gr.on([send.click, message.submit, oranges.click], send_message, [message, history],
                 [message, chatbot, history, base_conversation], api_name=False, queue=False, show_progress="hidden")
    answering = sent.success(answer, [*conversation_inputs, stop_signal], [chatbot, base_conversation, score_input],
                             api_name=False, trigger_mode="always_last")
    answering.then(template_views, template_inputs, template_outputs, api_name=False, show_progress="hidden")
    answering.failure(conversation_failed, [history, message, base_conversation], [message, chatbot, base_conversation],
                      api_name=False, queue=False, show_progress="hidden")
    generations.append(answering)
    # The API's one-call turns (`/converse`, `/preset_oranges`): the page's own flow is the one above.
    api_outputs = [chatbot, history, base_conversation, message, score_input]
    with gr.Row(visible=False):
        converse_api, oranges_api = gr.Button("converse"), gr.Button("preset_oranges")
    converse_api.click(converse, [message, *conversation_inputs], api_outputs, api_name="converse")
    oranges_api.click(converse_oranges, conversation_inputs, api_outputs, api_name="preset_oranges")

    waiting_panels = [*side_columns, *templated_columns, base_conversation]
    for button in (stop, stop_conversation):
        connect_stop(button, stop_signal, generations).then(
            after_stop, [history, message, *waiting_panels], [message, chatbot, *waiting_panels], api_name=False,
            queue=False, show_progress="hidden")
    clear.click(clear_conversation, history, [chatbot, history, base_conversation, score_input], api_name=False,
                queue=False).then(template_views, template_inputs, template_outputs, api_name=False)
    show_template.click(template_views, template_inputs, template_outputs, api_name="template_view")
    # On page load and whenever the system prompt, model or checkbox changes (so no tokenizer is
    # loaded while the app is being built); the conversation's turns update it through the events above.
    gr.on(None, template_views, template_inputs, template_outputs, api_name=False, trigger_mode="always_last",
          show_progress="hidden")
    score.click(teacher_forcing, [score_input, history, base_model, chat_model], [score_plot, score_note, score_input],
                api_name="teacher_forcing")
    fim_section.build()
    return tab_link(base_model, chat_model, max_tokens, controls, prompt, system, base_mode, generation_prompt)


def tab_link(base_model, chat_model, max_tokens, controls, prompt, system, base_mode, generation_prompt) -> link_wiring.TabLink:
    fields = {"base_model": base_model, "chat_model": chat_model, "max_tokens": max_tokens,
              "temperature": controls.temperature, "top_k": controls.top_k, "top_p": controls.top_p,
              "min_p": controls.min_p, "seed": controls.seed, "prompt": prompt, "system": system,
              "base_mode": base_mode, "generation_prompt": generation_prompt}
    columns = ["#chat-base-column .gen-done", "#chat-chat-column .gen-done"]  # both columns finished
    actions = {"side": [("chat-run", columns)],
               "both-ways": [("chat-run-template", ["#chat-raw-column .gen-done", "#chat-templated-column .gen-done"])],
               "template": [("chat-show-template", "#chat-template-view .ct-root")],
               **{key: [(f"chat-preset-{key}", columns)] for key in PRESETS},
               "oranges": [("chat-preset-oranges", "#chat-base-conversation .gen-done")],
               "fim": [("fim-section", "#fim-psm .fim-root")]}  # a click on the accordion's header opens it
    return link_wiring.TabLink("chat", fields, actions=actions, default_run="side",
                         views={"columns": "chat-base-column", "conversation": "chat-chatbot",
                                "template": "chat-template-view", "loss": "chat-loss-view",
                                "both-ways": "chat-raw-column", "forcing": "chat-score-plot", "fim": "fim-parts"},
                         default_view="columns",
                         # A first visit shows the template and loss mask (computed on load); generating
                         # two answers for every student who opens the tab would fill the heavy queue.
                         visit_run=None)
