"""The "Base vs chat" tab: one request to a pretrained and an instruction-tuned model.

Sections, top to bottom: model pickers, the lecture presets and the shared sampling controls
(`playground.ui.controls`); (1) side by side: the base model on the raw prompt, the chat model
through its template, streamed together, each token coloured by its probability; (2) a multi-turn
conversation with the chat model, the base model continuing the same conversation as plain text or
in the chat template; (3) the exact template tokens and the SFT loss mask of that conversation;
(4) the chat model with and without its template; (5) teacher forcing: the surprisal of a text
under both models. Handlers are a few lines each over `playground.side_by_side` and
`playground.chat`; per-session history lives in a `gr.State` (a list of {role, content} dicts,
the format Gradio 6's Chatbot displays). Handlers take the sampling values as named arguments,
never `*values`: Gradio names each API parameter after its argument (`gradio_client` users saw
`param_4` ... `param_12`). The generated columns use the sampling lab's renderer and colour scale
(`playground.html.generated`); the template view refuses a conversation too long to show quickly
with a note in both panels (`playground.chat.check_view_size`). What it leaves out: any model code.
"""

from __future__ import annotations

import html

import gradio as gr

from playground import chat, limits
from playground.html import chat as chat_html
from playground.html.generated import GENERATED_CSS, generated_html
from playground.html.tokens import HOVER_JS, TOKEN_CSS
from playground.models import list_models
from playground.prompts import surrogate_free
from playground.plots.chat import surprisal_figure
from playground.sampling import PRESETS as PRESETS_SAMPLING
from playground.side_by_side import contender, iter_side_by_side
from playground.token_text import visible_whitespace
from playground.ui.common import model_choices, user_errors
from playground.ui.controls import sampling_controls, seed_from_value, settings_from_values

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
    return generated_html("", column.records, column.stop_note(), header=column.contender.note,
                          running=not column.done)


def stopped_html(part) -> str:
    """A column after Stop: a finished column keeps its reason, a running one says it was stopped.

    `part` is a streamed column, or the note of one still loading its model or reading the prompt.
    """
    if isinstance(part, str):
        return generated_html("", [], "Stopped before the first token: you pressed Stop.", header=part, running=False)
    return generated_html("", part.records, part.stop_note(user_stopped=True), header=part.contender.note,
                          running=False)


def waiting_html(note: str) -> str:
    return generated_html("", [], "Loading the model and reading the prompt…", header=note, running=True)


def _stream(contenders_fn, sampling_values, max_tokens):
    """Yield (column HTML, ...) until every column has stopped."""
    settings = settings_from_values(*sampling_values[:5])
    seed = seed_from_value(sampling_values[5])
    contenders = contenders_fn()
    max_tokens = limits.clamp_int(max_tokens, "max new tokens", 1, MAX_NEW_TOKENS)
    for columns in iter_side_by_side(contenders, settings, max_tokens, seed):
        yield columns


# ---------------------------------------------------------------------------------------------
# Handlers


@user_errors
def side_by_side(prompt, base_model, chat_model, max_tokens, temperature, top_k, top_p, min_p, order, seed):
    """Base model on the raw prompt, chat model through its template, streamed together."""
    notes = [f"{base_model}: the prompt as raw text", f"{chat_model}: through its template"]
    yield waiting_html(notes[0]), waiting_html(notes[1]), notes
    for columns in _stream(lambda: [contender(base_model, "raw", prompt), contender(chat_model, "template", prompt)],
                           (temperature, top_k, top_p, min_p, order, seed), max_tokens):
        yield column_html(columns[0]), column_html(columns[1]), columns


@user_errors
def with_without_template(prompt, chat_model, max_tokens, temperature, top_k, top_p, min_p, order, seed):
    """The chat model on the raw prompt next to the chat model through its template."""
    notes = [f"{chat_model}: raw text", f"{chat_model}: template"]
    yield waiting_html(notes[0]), waiting_html(notes[1]), notes
    for columns in _stream(lambda: [contender(chat_model, "raw", prompt), contender(chat_model, "template", prompt)],
                           (temperature, top_k, top_p, min_p, order, seed), max_tokens):
        yield column_html(columns[0]), column_html(columns[1]), columns


@user_errors
def columns_after_stop(side, templated):
    """After Stop: the two column pairs as their streams were left (a pair that finished, or never
    ran, stays as it is)."""
    views = []
    for parts in (side, templated):
        if not parts or all(not isinstance(part, str) and part.done for part in parts):
            views += [gr.skip(), gr.skip()]
        else:
            views += [stopped_html(part) for part in parts]
    return tuple(views)


def _display(messages) -> list[dict]:
    """What the Chatbot shows: each message's text escaped, so typed HTML appears literally.

    The history state keeps the raw text (it is what the models read); only the view is escaped.
    """
    return [{"role": m["role"], "content": html.escape(m["content"])} for m in messages]


def _conversation(history, system) -> list[dict]:
    system = (system or "").strip()
    return ([{"role": "system", "content": system}] if system else []) + list(history or [])


def _converse(turns, history, system, chat_model, base_model, base_mode, max_tokens, sampling):
    history = list(history or [])
    base_view = waiting_html(f"{base_model} continues the conversation")
    for message in turns:
        message = surrogate_free(str(message or "")).strip()
        if not message:
            raise gr.Error("Type a message first.")
        messages = _conversation(history, system) + [{"role": "user", "content": message}]
        shown = history + [{"role": "user", "content": message}]
        yield _display(shown), history, base_view, "", gr.skip()
        for columns in _stream(lambda: [contender(chat_model, "conversation_template", messages=messages),
                                        contender(base_model, base_mode, messages=messages, chat_model_id=chat_model)],
                               sampling, max_tokens):
            reply = {"role": "assistant", "content": columns[0].text}
            base_view = column_html(columns[1])
            yield _display(shown + [reply]), history, base_view, "", gr.skip()
        history = shown + [reply]
        yield _display(history), history, base_view, "", reply["content"]  # teacher forcing scores the new answer


@user_errors
def converse(message, history, system, chat_model, base_model, base_mode, max_tokens,
             temperature, top_k, top_p, min_p, order, seed):
    """One user turn: the chat model answers (through its template), the base model continues."""
    yield from _converse([message], history, system, chat_model, base_model, base_mode, max_tokens,
                         (temperature, top_k, top_p, min_p, order, seed))


@user_errors
def converse_oranges(history, system, chat_model, base_model, base_mode, max_tokens,
                     temperature, top_k, top_p, min_p, order, seed):
    """The lecture's two-turn dialogue, from a fresh conversation."""
    yield from _converse(list(ORANGES), [], system, chat_model, base_model, base_mode, max_tokens,
                         (temperature, top_k, top_p, min_p, order, seed))


@user_errors
def template_views(history, system, chat_model, generation_prompt):
    """The conversation's template tokens and its loss mask (the lecture's dialogue while empty)."""
    messages = _clean_messages(_conversation(history, system))
    note = ""
    if not history:
        messages = _conversation(LECTURE_DIALOGUE, system)
        note = "<div class='tok-note'>No conversation yet: showing the lecture's example dialogue.</div>"
    try:
        chat.check_view_size(messages)
    except chat.TemplateTooLong as exc:  # said in both panels, where the tokens would be
        refused = f"<div class='tok-note'>{html.escape(str(exc))}</div>"
        return refused, refused
    view = chat.template_view(chat_model, messages, add_generation_prompt=bool(generation_prompt))
    return note + chat_html.template_html(view), note + chat_html.loss_mask_html(view)


def _clean_messages(messages) -> list[dict]:
    return [{**m, "content": surrogate_free(str(m.get("content", "")))} for m in messages]


def last_answer(history) -> str:
    answers = [m["content"] for m in history or [] if m.get("role") == "assistant"]
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
    return surprisal_figure(base, chat_scored, spans), summary, text


def _setter(value):
    return lambda: value


def clear_conversation():
    return [], [], generated_html("", [], "Conversation cleared.", running=False), "", ""


# ---------------------------------------------------------------------------------------------
# Layout


def build() -> None:
    base_default, chat_default = default_models()
    gr.Markdown("A **base** model was only trained to continue text; a **chat** model was then fine-tuned on "
                "dialogues written in a chat template. Give both the same request.")
    with gr.Row():
        base_model = gr.Dropdown(model_choices("base"), value=base_default, label="Base model (pretrained)",
                                 elem_id="chat-base-model")
        chat_model = gr.Dropdown(model_choices("chat"), value=chat_default, label="Chat model (instruction-tuned)",
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
    history = gr.State([])

    with gr.Accordion("1 · Side by side: the base model on raw text, the chat model through its template", open=True):
        with gr.Row():
            prompt = gr.Textbox(value=POEM, label="Prompt", lines=2, scale=4, elem_id="chat-prompt")
            run = gr.Button("Generate with both", variant="primary", scale=1, elem_id="chat-run")
            stop = gr.Button("Stop", variant="stop", scale=0, elem_id="chat-stop")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("Base model · raw text", elem_classes=["chat-col-title"])
                base_column = _html_view(elem_id="chat-base-column")
            with gr.Column():
                gr.Markdown("Chat model · chat template", elem_classes=["chat-col-title"])
                chat_column = _html_view(elem_id="chat-chat-column")

    with gr.Accordion("2 · Conversation: a chatbot program around the chat model", open=True):
        system = gr.Textbox(label="System prompt (empty: the template's own default, if it has one)", lines=1,
                            elem_id="chat-system")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat model", height=420, elem_id="chat-chatbot", feedback_options=None)
                with gr.Row():
                    message = gr.Textbox(label="Your message", scale=4, elem_id="chat-message",
                                         placeholder="Ask the chat model something and press Enter")
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
                    clear = gr.Button("Clear", scale=1, elem_id="chat-clear")
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
    side_inputs = [prompt, base_model, chat_model, max_tokens, *sampling]
    conversation_inputs = [history, system, chat_model, base_model, base_mode, max_tokens, *sampling]
    conversation_outputs = [chatbot, history, base_conversation, message, score_input]
    template_inputs = [history, system, chat_model, generation_prompt]
    template_outputs = [template_view, loss_view]

    side_streamed = gr.State(None)  # what each pair of columns last streamed, for the view after Stop
    templated_streamed = gr.State(None)
    side_outputs = [base_column, chat_column, side_streamed]
    generations = [  # the long streams the Stop button cancels (which frees their queue slots)
        run.click(side_by_side, side_inputs, side_outputs, api_name="side_by_side"),
        prompt.submit(side_by_side, side_inputs, side_outputs, api_name=False),
    ]
    for trigger in (send.click, message.submit):
        conversing = trigger(converse, [message, *conversation_inputs], conversation_outputs,
                             api_name="converse" if trigger == send.click else False)
        conversing.then(template_views, template_inputs, template_outputs, api_name=False)
        generations.append(conversing)
    clear.click(clear_conversation, None, conversation_outputs, api_name=False, queue=False).then(
        template_views, template_inputs, template_outputs, api_name=False)
    show_template.click(template_views, template_inputs, template_outputs, api_name="template_view")
    # On page load and whenever the conversation, system prompt, model or checkbox changes (so no
    # tokenizer is loaded while the app is being built).
    gr.on(None, template_views, template_inputs, template_outputs, api_name=False, trigger_mode="always_last",
          show_progress="hidden")
    generations.append(run_both_ways.click(with_without_template, [prompt, chat_model, max_tokens, *sampling],
                                           [raw_column, templated_column, templated_streamed],
                                           api_name="with_without_template"))
    score.click(teacher_forcing, [score_input, history, base_model, chat_model], [score_plot, score_note, score_input],
                api_name="teacher_forcing")

    for key, button in preset_buttons.items():
        text = PRESETS[key][1]
        set_prompt = button.click(_setter(text), None, prompt, api_name=False, queue=False)
        if key == "oranges":
            preset_run = set_prompt.then(converse_oranges, conversation_inputs, conversation_outputs,
                                         api_name="preset_oranges")
            preset_run.then(template_views, template_inputs, template_outputs, api_name=False)
        else:
            preset_run = set_prompt.then(side_by_side, side_inputs, side_outputs, api_name=f"preset_{key}")
        generations.append(preset_run)
    stop.click(None, None, None, cancels=generations, api_name=False, queue=False).then(
        columns_after_stop, [side_streamed, templated_streamed],
        [base_column, chat_column, raw_column, templated_column], api_name=False, show_progress="hidden")
