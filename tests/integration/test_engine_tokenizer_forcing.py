"""The tokenizer explorer and teacher forcing on engine models: a real llama.cpp `llama-server`
serving each packaged GGUF.

- The explorer's engine tokenizer (`/tokenize` with pieces) gives the same ids as the in-process
  model's own tokenizer, and each token's exact bytes (the bytes of a split emoji or a CJK
  character included) spell the text.
- Teacher forcing through the engine (llama.cpp has no prompt logprobs: one request per position
  for its top K) agrees with the in-process one-pass scoring of the same text: every token that
  lies inside the engine's top K has the engine's probability within `PROB_TOL` of ours (llama.cpp
  runs the quantized weights with 8-bit activations; the same tolerance as the Base vs chat engine
  test), and a token outside it is only bounded, never below our own probability by more than
  `PROB_TOL`.
- The Base vs chat tab's handler scores a text with an engine model next to an in-process one.

Skipped when llama-server is not built (`make llama-server`; `make test` builds it first).
"""

from __future__ import annotations

import pytest

from playground import chat, models, tokenizer_registry
from playground.engines import forcing
from playground.engines import lab as engine_lab
from playground.errors import PlaygroundError
from playground.engines.build import find_server
from playground.engines.server import LlamaServer

pytestmark = pytest.mark.skipif(find_server() is None, reason="llama-server is not built (make llama-server)")

PACKAGED = ["smollm2-135m-instruct", "gemma-3-270m"]
PROB_TOL = 0.12
TEXTS = ["The capital of France is Paris.", "Tokens: 🙂 and 一隻貓正在爬樹。", "def add(a, b):\n    return a + b"]
SCORED = "Oranges are orange. Apples are usually red or green."


@pytest.fixture(scope="module", params=PACKAGED)
def engine_model(request, tmp_path_factory):
    """(engine model id, in-process model id): the packaged GGUF served by llama-server."""
    model_id = request.param
    gguf = models.gguf_path(models.get_spec(model_id))
    path = tmp_path_factory.mktemp("engine-tok") / "models.toml"
    with LlamaServer(gguf, context=1024) as server:
        path.write_text(f'[[models]]\nid = "tok-engine"\nrole = "base"\nengine = "llama.cpp"\n'
                        f'base_url = "{server.base_url}"\ntokenizer = "{model_id}"\n')
        try:
            assert models.configure_model_list(str(path), ()) == ()
            tokenizer_registry._CACHE.pop("tok-engine", None)
            engine_lab.forget_engines()
            yield "tok-engine", model_id
        finally:
            tokenizer_registry._CACHE.pop("tok-engine", None)
            engine_lab.forget_engines()
            models.configure_model_list("", ())


def test_the_engine_tokenizer_gives_our_ids_and_exact_bytes(engine_model):
    engine_id, model_id = engine_model
    assert engine_id in tokenizer_registry.tokenizer_ids()
    ours = models.load_tokenizer(model_id)
    for text in TEXTS:
        result = tokenizer_registry.tokenize(engine_id, text)
        assert result.ids == ours.encode(text, add_special_tokens=False), text
        assert b"".join(t.bytes for t in result.tokens) == text.encode(), text
        assert "".join(text[t.start:t.end] for t in result.tokens) == text
    tokenizer = tokenizer_registry.get_tokenizer(engine_id)
    assert tokenizer.vocab_size == len(ours)


def test_teacher_forcing_through_the_engine_agrees_with_ours(engine_model):
    engine_id, model_id = engine_model
    engine = chat.score_text(engine_id, SCORED)
    ours = chat.score_text(model_id, SCORED)
    assert [t.id for t in engine.tokens] == [t.id for t in ours.tokens]
    assert engine.context_ids == ours.context_ids
    inside = [(e.prob, o.prob) for e, o in zip(engine.tokens, ours.tokens) if not e.bounded]
    assert len(inside) >= len(engine.tokens) // 2  # most of an ordinary sentence lies inside the top 100
    worst = max(abs(a - b) for a, b in inside)
    print(f"\n{model_id}: {len(inside)} of {len(engine.tokens)} tokens inside the engine's top K, "
          f"largest probability difference {worst:.4f}")
    assert worst < PROB_TOL
    for e, o in zip(engine.tokens, ours.tokens):
        if e.bounded:  # P(token) < p_K = e.prob
            assert o.prob < e.prob + PROB_TOL
    assert engine.note.startswith(f"{engine_id}: scored by llama.cpp at")


def test_the_chat_tab_scores_with_an_engine_model(engine_model):
    from playground.ui import chat_tab

    engine_id, model_id = engine_model
    figure, summary, text = chat_tab.teacher_forcing(SCORED, [], engine_id, model_id)
    assert text == SCORED and figure is not None
    assert "Largest disagreements" in summary and "scored by llama.cpp at" in summary
    with pytest.raises(PlaygroundError, match="at most 512 tokens"):
        forcing.teacher_forcing(models.get_spec(engine_id), "a b " * 600,  # past MAX_TOKENS: a message, not a crash
                                tokenizer_registry.get_tokenizer(engine_id))
