"""Server-side validation of hostile values, odd text, prompt budgets, registry-only ids, queue groups.

Handlers are called directly (as Gradio calls them) on the tiny random model: every hostile value
must give a result or a clean message (gr.Error whose text is not the generic internal error).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from playground import limits, prompts, tokenizer_registry
from playground.errors import PlaygroundError, UnknownIdError
from playground.models import get_spec, load_model
from playground.ui import controls
from tests.conftest import handler_outcome

ROOT = Path(__file__).resolve().parents[2]
NAN, INF = float("nan"), float("inf")
HOSTILE_NUMBERS = [NAN, INF, -INF, -1, 0, 1e300, -1e300, "abc", "", None, [1], {"a": 1}, True, "1e999", "12"]
ODD_TEXTS = {
    "empty": "", "whitespace": " \n\t  \r\n", "nul-control": "a\x00b\x01\x07\x1b[31m\x7f",
    "lone-surrogate": "a\ud800b\udfff", "rtl": "שלום עולם — مرحبا بالعالم", "combining": "e\u0301\u0308 Z\u0351\u0352",
    "emoji": "👩‍👩‍👧‍👦 🙂 🇫🇷 𝔘𝔫𝔦", "megabyte": "Lorem ipsum 🙂 dolor sit amet. " * 34_000,
}


# -- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_clamps_give_a_number_in_range_or_a_message(value):
    for clamp, low, high in ((limits.clamp_int, 1, 10), (limits.clamp_float, 0.0, 5.0)):
        try:
            number = clamp(value, "x", low, high)
        except PlaygroundError as exc:
            assert str(exc).startswith("x must be a number")
        else:
            assert low <= number <= high and not math.isnan(number)
    assert limits.clamp_int(value, "x", 1, 10, default=3) == 3 if value in (None, "") else True


def test_clamp_int_handles_infinity():
    assert limits.clamp_int(INF, "n", 1, 200) == 200 and limits.clamp_int("-inf", "n", 1, 200) == 1


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_sampling_controls_never_crash(value):
    for position in range(4):
        values = [1.0, 0, 1.0, 0.0]
        values[position] = value
        try:
            settings = controls.settings_from_values(*values, "transformers")
        except PlaygroundError as exc:
            assert str(exc)
        else:
            assert 0 <= settings.temperature <= 100 and 0 < settings.top_p <= 1 and 0 <= settings.min_p <= 1
    try:
        assert controls.seed_from_value(value) >= 0
    except PlaygroundError as exc:
        assert "seed" in str(exc).lower()


def test_sampling_controls_refuse_bad_orders_with_a_message():
    for order in ("zzz", ["transformers"], 3):
        with pytest.raises(PlaygroundError, match="order must be one of"):
            controls.settings_from_values(1.0, 0, 1.0, 0.0, order)


# -- prompt budgets ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ODD_TEXTS)
def test_fit_prompt_handles_odd_text(name):
    loaded = load_model("tiny-random")
    for chat_template in (False, True):
        fitted = prompts.fit_prompt(loaded, ODD_TEXTS[name], chat_template, max_tokens=256)
        assert 1 <= len(fitted.ids) <= 256
        fitted.text.encode("utf-8")  # always valid Unicode
        assert ODD_TEXTS[name].endswith(fitted.text) or name == "lone-surrogate"
    if name == "megabyte":
        assert fitted.was_cut and "cut from the left" in fitted.note
    if name == "lone-surrogate":
        assert "\ufffd" in fitted.text and "surrogate" in fitted.note


def test_fit_prompt_keeps_short_prompts_and_the_end_of_long_ones():
    loaded = load_model("tiny-random")
    short = prompts.fit_prompt(loaded, "The capital of France is", max_tokens=64)
    assert short.note is None and short.text == "The capital of France is"
    long = prompts.fit_prompt(loaded, " ".join(f"w{i}" for i in range(5000)) + " THE END", max_tokens=100)
    assert long.text.endswith("THE END") and 90 <= len(long.ids) <= 100
    assert long.ids == list(__import__("playground.decoding", fromlist=["x"]).prompt_ids(loaded, long.text))


# -- the sampling lab's handlers, with hostile values ---------------------------------------------


@pytest.fixture
def lab_state():
    from playground.ui import sampling_tab

    out = sampling_tab.show_distribution("tiny-random", False, "Hello there", 10, False, 1.0, 0, 1.0, 0.0,
                                         "transformers")
    return out[0]


@pytest.mark.parametrize("name", ODD_TEXTS)
def test_sampling_distribution_odd_text(name):
    from playground.ui import sampling_tab

    for chat_template in (False, True):
        out = sampling_tab.show_distribution("tiny-random", chat_template, ODD_TEXTS[name], 10, False,
                                             1.0, 0, 1.0, 0.0, "transformers")
        state, details = out[0], out[5]
        assert len(details["tokens"]) == 10 and len(state.prompt_ids) <= sampling_tab.MAX_PROMPT_TOKENS
    if name == "megabyte":
        assert "cut from the left" in details["prompt_note"] and "cut from the left" in out[2]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_sampling_handlers_hostile_numbers(lab_state, value):
    from playground.ui import sampling_tab as tab

    rules = (1.0, 0, 1.0, 0.0, "transformers")
    assert handler_outcome(tab.refilter, lab_state, value, False, *rules)
    assert handler_outcome(tab.refilter, lab_state, 10, False, value, 0, 1.0, 0.0, "transformers")
    assert handler_outcome(tab.next_token, lab_state, 10, False, *rules, value)
    assert handler_outcome(tab.append_token, lab_state, value, 10, False, *rules)
    assert handler_outcome(tab.generate_n, lab_state, value, "", 10, False, *rules, 1)
    assert handler_outcome(tab.draw_samples, lab_state, value, 2, "", 10, *rules, 1)
    assert handler_outcome(tab.draw_samples, lab_state, 2, value, "", 10, *rules, 1)
    assert handler_outcome(tab.show_distribution, "tiny-random", value, value, value, value, *rules)


def test_sampling_caps_and_messages(lab_state):
    from playground.ui import sampling_tab as tab

    rules = (0.0, 0, 1.0, 0.0, "transformers")
    *_, details = tab.generate_n(lab_state, 10**9, "", 10, False, *rules, 1).__next__()
    last = None
    for last in tab.generate_n(lab_state, 1e300, "", 10, False, *rules, 1):
        pass
    assert len(last[5]["generated"]) <= 1 + tab.MAX_GENERATE
    assert "stop strings" in handler_outcome(tab.generate_n, lab_state, 3, "|".join("x" * 300 for _ in range(3)), 10,
                                     False, *rules, 1)
    assert "Not a token id" in handler_outcome(tab.append_token, lab_state, "1e999", 10, False, *rules)
    assert "outside the vocabulary" in handler_outcome(tab.append_token, lab_state, 10**12, 10, False, *rules)
    assert "Show a distribution first" in handler_outcome(tab.next_token, None, 10, False, *rules, 1)
    assert "Pick a model" in handler_outcome(tab.show_distribution, None, False, "x", 10, False, *rules)
    assert "Unknown model id" in handler_outcome(tab.show_distribution, "../../etc/passwd", False, "x", 10, False, *rules)


def test_stopping_a_generation_keeps_its_tokens_and_frees_the_session(lab_state, monkeypatch):
    """A stream closed between tokens (Gradio closes it when the page goes away) keeps its tokens."""
    from playground.ui import sampling_tab as tab

    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 0.0)  # a whole view after every token
    rules = (1.0, 0, 1.0, 0.0, "transformers")
    stream = tab.generate_n(lab_state, 200, "", 10, False, *rules, 1)
    for _ in range(3):
        view = next(stream)
    stream.close()
    assert len(view[5]["generated"]) == 3 and lab_state.stop_note == tab.STOPPED_BY_USER
    assert lab_state.lock.acquire(timeout=1)  # the session's lock was released
    lab_state.lock.release()
    after = tab.next_token(lab_state, 10, False, *rules, 1)
    assert len(after[5]["generated"]) == 4


def test_the_stop_signal_ends_both_lab_streams_with_a_view_that_says_so(lab_state, monkeypatch):
    """Stop (the tab's StopSignal): Generate N's last view keeps the tokens so far and says Stop; a
    stopped samples run is kept for the view after Stop; the session is free again either way."""
    from playground.ui import sampling_tab as tab
    from playground.ui.common import StopSignal

    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 0.0)  # a whole view after every token

    rules = (1.0, 0, 1.0, 0.0, "transformers")
    signal = StopSignal()
    stream = tab.generate_n(lab_state, 200, "", 10, False, *rules, 1, signal)
    views = [next(stream) for _ in range(3)]
    signal.press()
    last, *rest = list(stream)
    assert not rest and len(last[5]["generated"]) == len(views[-1][5]["generated"]) == 3
    assert last[5]["stop"] == tab.STOPPED_BY_USER and tab.STOPPED_BY_USER in last[4] and last[1] is not None
    assert lab_state.lock.acquire(timeout=1)
    lab_state.lock.release()
    stream = tab.draw_samples(lab_state, 3, 100, "", 10, *rules, 1, signal)
    next(stream)
    signal.press()
    assert list(stream) == []
    assert lab_state.lock.acquire(timeout=1)
    lab_state.lock.release()
    html, _figure, summary = tab.samples_after_stop(lab_state)
    assert summary["stopped_by_user"] and not summary["finished"] and "you pressed Stop" in html
    assert lab_state.samples is None and len(lab_state.records) == 3


# -- the tokenizer tab ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ODD_TEXTS)
def test_tokenizer_tab_odd_text(name):
    from playground.ui import tokenizer_tab as tab

    text = ODD_TEXTS[name]
    results = [handler_outcome(tab.explore, "cl100k_base", text, False, True),
               handler_outcome(tab.explore, "tiny-random", text, True, False),
               handler_outcome(tab.compare, ["bytes", "r50k_base", "tiny-random"], text, False, False),
               handler_outcome(tab.decode, "bytes", text)]
    if name == "lone-surrogate":
        assert all("surrogate" in r for r in results[:3])
    else:
        assert results[:3] == ["ok"] * 3
    if name != "megabyte":  # (training on a megabyte works too, in ~10 s: tests/integration)
        assert handler_outcome(tab.bpe_train, "My own text", text, "", 50, "gpt4") in (
            "ok", "The training text is empty: paste some text or choose the bundled corpus.",
            "The text contains an unpaired surrogate character, which is not valid Unicode.")


def test_tokenizer_tab_exact_counts_capped_rendering():
    from playground.ui import tokenizer_tab as tab

    text = "ab " * 20_000
    counts, view, *_ , ids = tab.explore("bytes", text, False, False)
    assert len(ids) == len(text) and f">{len(text):,}<" in counts
    assert view.count('class="tok ') <= tab.RENDER_LIMIT + 1 or view.count("tok-") < len(text)


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_tokenizer_tab_hostile_values(value):
    from playground.ui import tokenizer_tab as tab

    assert handler_outcome(tab.explore, value, "text", value, value)
    assert handler_outcome(tab.compare, value, value, False, False)
    assert handler_outcome(tab.decode, "bytes", value)
    assert handler_outcome(tab.bpe_train, "My own text", "abc abd abe", "", value, "gpt2")
    state = {"training": __import__("playground.bpe", fromlist=["x"]).train("abc abd abe" * 5, 5, "gpt2"),
             "text": "abc abd abe" * 5}
    assert handler_outcome(tab.bpe_step, state, value)
    assert handler_outcome(tab.bpe_encode, state, value, "abc")


# -- registry-only ids; nothing runs what a user sends ---------------------------------------------


@pytest.mark.parametrize("given", ["../../etc/passwd", "/etc/passwd", "assets/tiktoken/cl100k_base.tiktoken",
                                   "HuggingFaceTB/SmolLM2-135M", "evil/../../x", "a/b", "x" * 5000, "", " ",
                                   None, 3, ["llama-3"]])
def test_tokenizer_ids_only_from_the_registry(monkeypatch, given):
    monkeypatch.delenv("PLAYGROUND_ALLOW_HUB_IDS", raising=False)
    locks_before = len(tokenizer_registry._LOCKS)
    with pytest.raises(PlaygroundError) as info:
        tokenizer_registry.get_tokenizer(given)
    message = str(info.value)
    assert len(message) < 1000
    if isinstance(given, str) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", given) and ".." not in given:
        assert "--allow-hub-ids" in message
    assert len(tokenizer_registry._LOCKS) == locks_before  # unknown ids leave nothing behind


def test_hub_tokenizer_ids_only_when_the_operator_allows(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_ALLOW_HUB_IDS", "1")
    from playground import models

    if models.hub_reachable()[0]:
        pytest.skip("the hub is reachable here")
    with pytest.raises(PlaygroundError, match="needs the Hugging Face hub"):
        tokenizer_registry.get_tokenizer("HuggingFaceTB/SmolLM2-135M")
    with pytest.raises(UnknownIdError):
        tokenizer_registry.get_tokenizer("../../etc/passwd")


def test_app_flag_sets_the_hub_switch(monkeypatch):
    import app

    monkeypatch.delenv("PLAYGROUND_ALLOW_HUB_IDS", raising=False)
    assert app.parse_args(["--allow-hub-ids"]).allow_hub_ids and not app.parse_args([]).allow_hub_ids


@pytest.mark.parametrize("given", ["../../etc/passwd", "/tmp/model", "gpt2", None, 3, ["tiny-random"]])
def test_model_ids_only_from_the_registry(given):
    with pytest.raises(UnknownIdError):
        get_spec(given)


def test_trust_remote_code_is_never_enabled():
    """Every setting of trust_remote_code is False, and every from_pretrained call sets it."""
    loaders = 0
    for path in [*ROOT.glob("playground/**/*.py"), ROOT / "app.py", *ROOT.glob("bench/*.py")]:
        text = path.read_text(encoding="utf-8")
        assert set(re.findall(r"trust_remote_code\s*=\s*([^,)\s]+)", text)) <= {"False"}, path
        for line in text.splitlines():
            if ".from_pretrained(" in line:
                loaders += 1
                assert "trust_remote_code=False" in line, f"{path}: {line.strip()}"
    assert loaders >= 3


# -- the app layer ---------------------------------------------------------------------------------


def test_lone_surrogates_are_replaced_at_the_boundary():
    from playground.ui.shell import _without_surrogates

    assert _without_surrogates(["a\ud800", {"k": ["\udfffz"]}, 1.5, None]) == ["a\ufffd", {"k": ["\ufffdz"]}, 1.5, None]
    assert _without_surrogates("🙂") == "🙂"


# -- faults inside a sequence ----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["injected", "time-limit"])
def test_a_failed_step_leaves_the_sequence_intact(monkeypatch, fault):
    """A step that fails (injected out-of-memory, time limit) must not corrupt the KV cache."""
    import time as _time

    import torch

    from playground import generation
    from playground.decoding import Stepper

    loaded = load_model("tiny-random")
    clean = Stepper(loaded, [1, 2, 3])
    for token in (5, 6, 7):
        clean.append(token)
    stepper = Stepper(loaded, [1, 2, 3])
    if fault == "injected":
        monkeypatch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=1")
        with pytest.raises(limits.InjectedFault):
            stepper.append(5)
        monkeypatch.delenv("PLAYGROUND_FAULT_INJECTION")
    else:
        with limits.deadline(0.0):
            _time.sleep(0.01)
            with pytest.raises(limits.RequestTimeout):
                stepper.append(5)
    assert stepper.ids == [1, 2, 3]
    for token in (5, 6, 7):
        stepper.append(token)
    assert torch.allclose(stepper.logits, clean.logits, atol=1e-5)

    decoder = generation.Decoder(loaded, [1, 2, 3])
    decoder.push(5)
    monkeypatch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=1")
    with pytest.raises(limits.InjectedFault):
        decoder.logits
    monkeypatch.delenv("PLAYGROUND_FAULT_INJECTION")
    assert decoder.ids == [1, 2, 3, 5] and decoder.pending == [5]  # the token waits to be fed again
    decoder.push(6)
    decoder.push(7)
    assert torch.allclose(decoder.logits, clean.logits, atol=1e-5)


@pytest.mark.parametrize("temperature", [5e-324, 1e-310, 4.4e-150, 1e-40, 1e-31, 1e-29, 1e-6])
@pytest.mark.parametrize("order", ["transformers", "temperature_last"])
def test_tiny_temperatures_give_a_distribution_not_nan(temperature, order):
    """Found by the API fuzzer: float32 rounded a tiny temperature to 0 and 0 / 0 gave NaN."""
    import torch

    from playground import sampling

    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(5000, generator=generator) * 4
    logits[7] = logits[11] = logits.max() + 1  # a tie at the top
    for top_k, top_p in ((None, 1.0), (27, 0.64), (3, 1.0)):
        settings = sampling.SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, order=order)
        result = sampling.filter_logits(logits, settings)
        assert not torch.isnan(result.kept_probs).any() and float(result.kept_probs.sum()) == pytest.approx(1.0)
        assert sampling.sample_token(result, torch.Generator().manual_seed(0)) in (7, 11)
        assert math.isfinite(result.entropy_bits)


def test_a_failed_lab_step_leaves_the_session_as_it_was(monkeypatch, lab_state):
    from playground.ui import sampling_tab as tab
    from playground.ui.common import OUT_OF_MEMORY

    rules = (0.0, 0, 1.0, 0.0, "transformers")
    tab.next_token(lab_state, 10, False, *rules, 1)
    from playground import lab

    before = (list(lab_state.ids), [r.id for r in lab_state.records], lab.distribution(lab_state))
    monkeypatch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=1")
    assert handler_outcome(tab.next_token, lab_state, 10, False, *rules, 1) == OUT_OF_MEMORY
    assert handler_outcome(tab.append_token, lab_state, 42, 10, False, *rules) == OUT_OF_MEMORY
    assert handler_outcome(tab.generate_n, lab_state, 5, "", 10, False, *rules, 1) == OUT_OF_MEMORY
    monkeypatch.delenv("PLAYGROUND_FAULT_INJECTION")
    assert (lab_state.ids, [r.id for r in lab_state.records], lab.distribution(lab_state)) == before
    out = tab.next_token(lab_state, 10, False, *rules, 1)
    assert len(out[5]["generated"]) == 2


# -- queue settings -------------------------------------------------------------------------------


def test_every_queued_event_has_a_deliberate_concurrency_group():
    from playground.ui.shell import EVENT_GROUPS, GROUP_LIMITS, build_app, handler_key

    app = build_app()
    named = {}
    for block_fn in app.fns.values():
        if block_fn.queue and handler_key(block_fn) is not None:
            assert block_fn.concurrency_id in GROUP_LIMITS
            assert block_fn.concurrency_limit == GROUP_LIMITS[block_fn.concurrency_id]
            if isinstance(block_fn.api_name, str) and block_fn.api_visibility == "public":
                named[block_fn.api_name] = block_fn
    for api_name, block_fn in named.items():  # a new endpoint must be placed in a group on purpose
        assert handler_key(block_fn) in EVENT_GROUPS, f"/{api_name} ({handler_key(block_fn)}) has no group"
    heavy = {"sampling_generate", "sampling_samples", "beam_search", "side_by_side", "converse", "bpe_train"}
    assert {n for n in heavy if named[n].concurrency_id == "heavy"} == heavy
    assert named["sampling_distribution"].concurrency_id == named["sampling_next_token"].concurrency_id == "model-step"
    assert GROUP_LIMITS["model-step"] > 1  # the micro-batcher needs concurrent next-token requests
    assert named["tokenize"].concurrency_id == named["sampling_refilter"].concurrency_id == "instant"
    # no Stop uses Gradio's cancel (its empty completion marks the outputs as failed): both sampling-lab
    # Stop buttons press the tab's StopSignal, which both long streams take as their last input
    config = app.get_config_file()
    assert not [d["id"] for d in config["dependencies"] if d["cancels"]]
    from playground.ui.common import StopSignal

    streams = [named["sampling_generate"], named["sampling_samples"]]
    signal = streams[0].inputs[-1]
    assert isinstance(signal.value, StopSignal) and streams[1].inputs[-1] is signal
    presses = [fn for fn in app.fns.values() if fn.inputs == [signal]
               and (handler_key(fn) or "").endswith("connect_stop.<locals>.press_stop")]
    buttons = sorted(app.blocks[block_id].elem_id for fn in presses for block_id, _event in fn.targets)
    assert buttons == ["sampling-stop-generate", "sampling-stop-samples"]
    assert not any(fn.queue for fn in presses)


def test_the_static_decoder_path_also_honours_time_limits_and_faults(monkeypatch):
    """The GPU fast path (forced here on the CPU) checks the request's deadline and injected faults."""
    import time as _time

    import torch

    from playground.decoding import Stepper

    monkeypatch.setenv("PLAYGROUND_FASTPATH", "1")
    loaded = load_model("tiny-random")
    stepper = Stepper(loaded, [1, 2, 3])
    assert stepper._decoder is not None  # the static decoder serves this sequence
    clean = [stepper.append(t).clone() for t in (5, 6)]
    stepper.close()
    stepper = Stepper(loaded, [1, 2, 3])
    with limits.deadline(0.0):
        _time.sleep(0.01)
        with pytest.raises(limits.RequestTimeout):
            stepper.append(5)
    monkeypatch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=1")
    with pytest.raises(limits.InjectedFault):
        stepper.append(5)
    monkeypatch.delenv("PLAYGROUND_FAULT_INJECTION")
    assert stepper.ids == [1, 2, 3]
    assert torch.allclose(stepper.append(5), clean[0], atol=1e-5)
    assert torch.allclose(stepper.append(6), clean[1], atol=1e-5)
    stepper.close()
