"""Constrained decoding on the tiny random model: exactness against llguidance's own reference
decoding on the same logits, validity of every output (regex, JSON schema with `jsonschema`,
choices), the per-step numbers, and the messages for constraints that cannot be used."""

from __future__ import annotations

import json
import math
import re

import jsonschema
import llguidance.numpy as llnp
import numpy as np
import pytest

from playground import constraints, decoding, generation, limits
from playground.decoding import Stepper
from playground.errors import PlaygroundError
from playground.models import load_model
from playground.sampling import SamplingSettings

MODEL = "tiny-random"
GREEDY = SamplingSettings(temperature=0.0)
HOT = SamplingSettings(temperature=1.5)
REGEX = r"[0-9]{3}-[a-z]{2,4}"
SCHEMA = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 6}, "ok": {"type": "boolean"},
                         "size": {"enum": ["S", "M", "L"]}},
          "required": ["name", "ok", "size"], "additionalProperties": False}
CASES = [("choices", "Paris, London, Berlin"), ("regex", REGEX), ("json_schema", json.dumps(SCHEMA))]


@pytest.fixture(scope="module")
def loaded():
    return load_model(MODEL)


@pytest.fixture(scope="module")
def prompt(loaded):
    return decoding.prompt_ids(loaded, "The answer is")


def reference_greedy(loaded, prompt, constraint, max_new_tokens):
    """llguidance's own loop: its bitmask applied to the model's logits by llguidance.numpy, then argmax."""
    compiled = constraints.compile_constraint(loaded, constraint)
    matcher = compiled.matcher()
    bitmask = llnp.allocate_token_bitmask(1, loaded.vocab_size)
    stepper, out = Stepper(loaded, list(prompt)), []
    for _ in range(max_new_tokens):
        logits = stepper.logits.numpy().copy()[None, :]
        llnp.fill_next_token_bitmask(matcher, bitmask)
        llnp.apply_token_bitmask_inplace(logits, bitmask)
        token = int(np.argmax(logits[0]))
        assert matcher.consume_token(token)
        out.append(token)
        if token in loaded.eos_token_ids or matcher.is_stopped():
            break
        stepper.append(token)
    return out


@pytest.mark.parametrize("kind,text", CASES)
def test_greedy_equals_llguidance_reference(loaded, prompt, kind, text):
    constraint = constraints.parse_constraint(kind, text)
    run = constraints.constrained_generate(loaded, prompt, constraint, GREEDY, 40)
    assert run.token_ids == reference_greedy(loaded, prompt, constraint, 40)
    assert all(step.chosen == "greedy" for step in run.steps)


def test_regex_outputs_match(loaded, prompt):
    constraint = constraints.parse_constraint("regex", REGEX)
    texts = set()
    for seed in range(4):
        run = constraints.constrained_generate(loaded, prompt, constraint, HOT, 20, seed=seed)
        assert run.complete and run.stop in ("complete", "eos"), run.stop
        assert re.fullmatch(REGEX, run.text), run.text
        texts.add(run.text)
    assert len(texts) > 1  # real draws, not one path


def test_json_outputs_validate(loaded, prompt):
    constraint = constraints.parse_constraint("json_schema", json.dumps(SCHEMA))
    for seed in range(3):
        run = constraints.constrained_generate(loaded, prompt, constraint, HOT, 60, seed=seed)
        assert run.complete and run.stop == "complete", (run.stop, run.text)
        jsonschema.validate(json.loads(run.text), SCHEMA)


def test_choices_give_one_of_them(loaded, prompt):
    constraint = constraints.parse_constraint("choices", "yes\nno, thanks\nmaybe")
    assert constraint.choices == ("yes", "no, thanks", "maybe")
    for seed in range(3):
        run = constraints.constrained_generate(loaded, prompt, constraint, HOT, 20, seed=seed)
        assert run.text in constraint.choices


def test_step_numbers(loaded, prompt):
    run = constraints.constrained_generate(loaded, prompt, constraints.parse_constraint("regex", REGEX), HOT, 20, 1)
    vocab = loaded.vocab_size
    for step in run.steps:
        assert 1 <= step.allowed_count < vocab
        assert 0.0 <= step.removed_mass <= 1.0
        # renormalised: p(t) / (1 - removed) for the chosen token
        if step.removed_mass < 0.999:
            assert math.isclose(step.masked_prob, step.raw_prob / (1 - step.removed_mass), rel_tol=1e-3)
        assert step.prob > 0 and step.kept_count <= step.allowed_count
        assert all(t.allowed == (t.masked_prob > 0) for t in step.model_top)
        assert all(t.allowed for t in step.allowed_top)
        assert step.allowed_top[0].masked_prob >= step.allowed_top[-1].masked_prob
        assert step.as_dict()["allowed_count"] == step.allowed_count
    # the first step of this regex allows tokens that start with a digit only
    assert all(t.text[:1].isdigit() for t in run.steps[0].allowed_top)


def test_compare_runs_the_free_generation_too(loaded, prompt):
    constraint = constraints.parse_constraint("choices", "Paris, London")
    both = constraints.compare(loaded, prompt, constraint, HOT, 8, seed=5)
    free = generation.generate(loaded, prompt, HOT, 8, seed=5)
    assert both.free.token_ids == free.token_ids
    assert both.constrained.text in ("Paris", "London")


@pytest.mark.parametrize("kind,text,words", [
    ("regex", "[0-9", "regular expression cannot be used"),
    ("json_schema", "{\"type\": ", "not valid JSON"),
    ("json_schema", "[1, 2]", "must be a JSON object"),
    ("json_schema", json.dumps({"type": "object", "properties": {"a": {"type": "nonsense"}}}),
     "JSON schema cannot be used"),
    ("grammar", "start: (", "grammar"),
    ("choices", " , ,", "at least one choice"),
    ("regex", "   ", "constraint is empty"),
    ("xml", "a", "Unknown constraint kind"),
])
def test_unusable_constraints_are_refused_in_words(loaded, kind, text, words):
    with pytest.raises(PlaygroundError, match=words):
        constraints.compile_constraint(loaded, constraints.parse_constraint(kind, text))


def test_gbnf_grammar_is_taken(loaded, prompt):
    gbnf = 'root ::= "yes" | "no"'
    run = constraints.constrained_generate(loaded, prompt, constraints.parse_constraint("grammar", gbnf), HOT, 5)
    assert run.text in ("yes", "no") and run.complete


def test_deadline_stops_a_run(loaded, prompt):
    constraint = constraints.parse_constraint("regex", "[a-z]{50}")
    with limits.deadline(0.0), pytest.raises(limits.RequestTimeout):
        constraints.constrained_generate(loaded, prompt, constraint, GREEDY, 30)


def test_max_tokens_leaves_an_incomplete_run(loaded, prompt):
    run = constraints.constrained_generate(loaded, prompt, constraints.parse_constraint("regex", "[a-z]{50}"),
                                           GREEDY, 3)
    assert run.stop == "max_tokens" and not run.complete and len(run.steps) == 3


def test_cli_generate_prints_the_output_and_each_steps_mask(tmp_path, capsys):
    from playground.__main__ import main

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    assert main(["generate", "--model", MODEL, "--temperature", "0", "--max-new-tokens", "60",
                 "--json-schema", str(schema), "The answer is", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    jsonschema.validate(json.loads(out["text"]), SCHEMA)
    assert out["complete"] and out["stop_reason"] == "complete" and out["free"]["text"]
    assert all(1 <= s["allowed_count"] and 0 <= s["removed_mass"] <= 1 for s in out["steps"])
    assert "".join(s["text"] for s in out["steps"]) == out["text"]
    assert main(["generate", "--model", MODEL, "--regex", "[0-9", "x"]) == 2
    assert "regular expression cannot be used" in capsys.readouterr().err
    assert main(["generate", "--model", MODEL, "--regex", "a", "--choices", "a,b", "x"]) == 2
    assert "Give one constraint" in capsys.readouterr().err


def test_engines_take_what_they_can_and_refuse_the_rest_in_words():
    from playground.backends import backend_for
    from playground.engine_config import engine_config
    from playground.engines.structured import engine_fields
    from playground.model_spec import ModelSpec

    schema = constraints.parse_constraint("json_schema", json.dumps(SCHEMA))
    assert engine_fields("llama.cpp", schema) == {"json_schema": SCHEMA}
    assert engine_fields("llama.cpp", constraints.parse_constraint("choices", "a,b")) == {"grammar": 'root ::= "a" | "b"'}
    assert engine_fields("vllm", constraints.parse_constraint("regex", "[a-z]+")) == {
        "structured_outputs": {"regex": "[a-z]+"}}
    with pytest.raises(PlaygroundError, match="not regular expressions"):
        engine_fields("llama.cpp", constraints.parse_constraint("regex", "[a-z]+"))
    spec = ModelSpec(id="fake-ollama", role="base", source="engine", description="fake",
                     engine=engine_config("ollama", "http://fake:1"))
    with pytest.raises(PlaygroundError, match="takes no constraint"):
        backend_for(spec).constrained("Hi", schema, GREEDY, 8, 0)


def test_our_tokenizer_view_gives_the_masks_of_llguidance_hf(loaded, prompt):
    """`ll_tokenizer` builds llguidance's tokenizer from our bytes table (fast); the library's own
    `llguidance.hf.from_tokenizer` gives the same mask at every step of a run."""
    for kind, text in CASES:
        constraint = constraints.parse_constraint(kind, text)
        assert_library_masks(loaded, constraint, constraints.constrained_generate(loaded, prompt, constraint, HOT, 30, 2))


def assert_library_masks(loaded, constraint, run):
    """At every step of `run`, the mask of `ll_tokenizer` equals the one of the library's own
    `llguidance.hf.from_tokenizer` view of the same tokenizer."""
    import llguidance
    import llguidance.hf

    theirs = llguidance.hf.from_tokenizer(loaded.tokenizer, n_vocab=loaded.vocab_size,
                                          eos_token=list(loaded.eos_token_ids))
    ours = constraints.compile_constraint(loaded, constraint)
    a, b = ours.matcher(), llguidance.LLMatcher(theirs, ours.grammar, log_level=0)
    for step in run.steps:
        mask = constraints.allowed_tokens(a, loaded.vocab_size)
        assert mask.equal(constraints.allowed_tokens(b, loaded.vocab_size)), (constraint.kind, step.index)
        assert int(mask.sum()) == step.allowed_count
        assert a.consume_token(step.id) and b.consume_token(step.id)
