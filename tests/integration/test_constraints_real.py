"""Structured outputs on the packaged models, in-process and on a real llama.cpp `llama-server`.

In-process (both packaged models, greedy, short outputs): a JSON schema, a regular expression and a
choice list; every output validates (`jsonschema`) or matches, and greedy constrained decoding equals
llguidance's own reference loop on the same logits (`test_constraints.reference_greedy`), and the
masks of our view of the tokenizer equal those of llguidance's own (`llguidance.hf`) along a sampled run.
The engine (llama-server on the packaged GGUF, through the backend as the CLI sends it): with the
same JSON schema (`json_schema` in the request) both outputs validate; with one GBNF grammar (the
same language on both sides: llama.cpp's JSON layout differs from llguidance's) the greedy texts are
equal up to the first step where they may honestly differ: where the in-process margin between the
two most probable allowed tokens is under `TOP1_MARGIN`, or the engine's own probabilities there
differ from ours by more than `PROB_TOLERANCE` (llama.cpp runs the quantized weights, the
in-process model their fp32 dequantization: test_engine_llamacpp).
Skipped when llama-server is not built (`make llama-server`; `make test` builds it first).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest

from playground import backends, constraints, decoding, models
from playground.engines import lab as engine_lab
from playground.engines.build import find_server
from playground.engines.server import LlamaServer
from playground.engines.topk import next_token_topk
from playground.sampling import SamplingSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_constraints import assert_library_masks, reference_greedy  # noqa: E402

PACKAGED = ["gemma-3-270m", "smollm2-135m-instruct"]
GREEDY = SamplingSettings(temperature=0.0)
HOT = SamplingSettings(temperature=1.5)
PROMPT = "Paris is the capital of France. As JSON:"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 16},
                                           "country": {"type": "string", "maxLength": 16}},
          "required": ["city", "country"], "additionalProperties": False}
GBNF = 'root ::= "{\\"city\\": \\"" name "\\", \\"country\\": \\"" name "\\"}"\nname ::= [A-Za-z ]{1,16}\n'
REGEX = r"(19|20)[0-9]{2}"
TOP1_MARGIN = 0.05  # as tests/integration/test_engine_llamacpp.py
PROB_TOLERANCE = 0.1


@pytest.fixture(scope="module", params=PACKAGED)
def loaded(request):
    return models.load_model(request.param)


def test_outputs_are_valid_and_equal_the_reference(loaded):
    ids = decoding.prompt_ids(loaded, PROMPT)
    schema = constraints.parse_constraint("json_schema", json.dumps(SCHEMA))
    both = constraints.compare(loaded, ids, schema, GREEDY, 40)
    run = both.constrained
    assert run.complete and run.stop == "complete", (run.stop, run.text)
    jsonschema.validate(json.loads(run.text), SCHEMA)
    assert run.token_ids == reference_greedy(loaded, ids, schema, 40)
    assert any(step.removed_mass > 0.01 for step in run.steps)  # the mask did remove something
    sampled = constraints.constrained_generate(loaded, ids, constraints.parse_constraint("json_schema", json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}})), HOT, 24, seed=3)
    assert_library_masks(loaded, sampled.constraint, sampled)  # text of any kind: every token's bytes matter
    year = constraints.constrained_generate(loaded, decoding.prompt_ids(loaded, "The Eiffel Tower was built in"),
                                            constraints.parse_constraint("regex", REGEX), GREEDY, 8)
    assert re.fullmatch(REGEX, year.text), year.text
    choice = constraints.constrained_generate(loaded, decoding.prompt_ids(loaded, "The capital of France is"),
                                              constraints.parse_constraint("choices", "Paris, London, Rome"),
                                              GREEDY, 8)
    assert choice.text == "Paris"


@pytest.fixture(scope="module")
def engine_entry(loaded, tmp_path_factory):
    if find_server() is None:
        pytest.skip("llama-server is not built (make llama-server)")
    gguf = models.gguf_path(models.get_spec(loaded.id))
    path = tmp_path_factory.mktemp("constraints-engine") / "models.toml"
    with LlamaServer(gguf, context=1024) as server:
        path.write_text(f'[[models]]\nid = "engine-{loaded.id}"\nrole = "base"\nengine = "llama.cpp"\n'
                        f'base_url = "{server.base_url}"\ntokenizer = "{loaded.id}"\n')
        try:
            assert models.configure_model_list(str(path), ()) == ()
            engine_lab.forget_engines()
            yield f"engine-{loaded.id}"
        finally:
            engine_lab.forget_engines()
            models.configure_model_list("", ())


def test_llama_server_json_schema_output_validates_as_ours_does(loaded, engine_entry):
    schema = constraints.parse_constraint("json_schema", json.dumps(SCHEMA))
    engine = backends.backend_for(engine_entry).constrained(PROMPT, schema, GREEDY, 40, 0)
    assert engine.request_fields == {"json_schema": SCHEMA}
    jsonschema.validate(json.loads(engine.text), SCHEMA)
    ours = backends.backend_for(loaded.id).constrained(PROMPT, schema, GREEDY, 40, 0).constrained
    jsonschema.validate(json.loads(ours.text), SCHEMA)
    print(f"{loaded.id}: llama.cpp json_schema {engine.text!r}, in-process {ours.text!r}")


def test_llama_server_grammar_greedy_equals_ours_where_the_numbers_agree(loaded, engine_entry):
    """One GBNF grammar, sent verbatim to llama.cpp and converted by llguidance here: the same language on
    both sides (llama.cpp's own JSON layout differs from llguidance's, so a schema compares layouts too)."""
    grammar = constraints.parse_constraint("grammar", GBNF)
    engine = backends.backend_for(engine_entry).constrained(PROMPT, grammar, GREEDY, 40, 0)
    assert engine.request_fields == {"grammar": GBNF}
    ours = backends.backend_for(loaded.id).constrained(PROMPT, grammar, GREEDY, 40, 0).constrained
    jsonschema.validate(json.loads(ours.text), SCHEMA)
    print(f"{loaded.id}: llama.cpp grammar {engine.text!r}, in-process {ours.text!r}")
    done = ""
    for step in ours.steps:
        if engine.text.startswith(done + step.text):
            done += step.text
            continue
        top = step.allowed_top
        margin = top[0].masked_prob - (top[1].masked_prob if len(top) > 1 else 0.0)
        # the engine's own numbers at this position (its top K over the same ids)
        state = engine_lab.engine_for(models.get_spec(engine_entry))
        ids = engine_lab.prompt_ids(state, PROMPT, False) + [s.id for s in ours.steps[:step.index]]
        theirs = {t.token_id: t.prob for t in next_token_topk(state.client, ids, 20).tokens}
        gap = max(abs(theirs.get(t.id, 0.0) - t.raw_prob) for t in top[:2])
        # a divergence only where the numbers differ, or are too close to call
        assert margin < TOP1_MARGIN or gap > PROB_TOLERANCE, (done, step.text, engine.text[len(done):], margin, gap)
        return
    assert engine.text == ours.text
