"""Structured outputs on an engine model: the engine's own constrained decoding, one request.

`engine_fields(kind, constraint)` says what the request carries for a `constraints.Constraint`:

- llama.cpp (`llama-server`): `json_schema` (its json-schema-to-grammar) or `grammar` (GBNF); a
  choice list becomes the GBNF `root ::= "a" | "b"`. A regular expression or a Lark grammar is
  refused in words (llama-server takes neither).
- vLLM: `structured_outputs` with `json`, `regex`, `choice` or `grammar` (its grammar backends).
- Ollama and other OpenAI-compatible servers: refused in words (their completions endpoint takes no
  constraint).

`constrained_completion(spec, ...)` sends the prompt's ids (the ids every tab reads) with the
sampling parameters of `engines.stream.engine_sampling` and returns an `EngineConstrained`: the
text and why it stopped. What it leaves out: the per-step mask (an engine does not expose it; the
in-process run in `playground.constraints` shows it), streaming.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from playground import limits
from playground.engines.client import EngineError
from playground.errors import PlaygroundError
from playground.sampling import SamplingSettings


@dataclass(frozen=True)
class EngineConstrained:
    model_id: str
    text: str
    stop: str  # the engine's finish reason ("stop", "length", ...)
    completion_tokens: int | None
    request_fields: dict  # what carried the constraint
    note: str  # how it was sampled

    def as_dict(self, tops: bool = False) -> dict:
        """The CLI's JSON: the engine's text and finish reason; no steps (the engine keeps its mask)."""
        return {"text": self.text, "stop_reason": self.stop, "completion_tokens": self.completion_tokens,
                "request_fields": self.request_fields, "sampling": self.note,
                "steps": None, "steps_note": "the engine applies its mask inside; per-step numbers need an "
                                             "in-process model"}


def gbnf_choices(choices) -> str:
    """A GBNF grammar that allows exactly one of `choices` (JSON string literals are GBNF literals)."""
    return "root ::= " + " | ".join(json.dumps(c) for c in choices)


def engine_fields(kind: str, constraint) -> dict:
    """The request fields that carry `constraint` to an engine of `kind`; PlaygroundError where it has none."""
    if kind == "llama.cpp":
        if constraint.kind == "json_schema":
            return {"json_schema": json.loads(constraint.text)}
        if constraint.kind == "choices":
            return {"grammar": gbnf_choices(constraint.choices)}
        if constraint.kind == "grammar" and "::=" in constraint.text:
            return {"grammar": constraint.text}
        what = "regular expressions" if constraint.kind == "regex" else "Lark grammars"
        raise PlaygroundError(f"llama.cpp's server takes JSON schemas and GBNF grammars, not {what}: write the "
                              "constraint as a GBNF grammar (root ::= ...) or choose an in-process model.")
    if kind == "vllm":
        key = {"json_schema": "json", "regex": "regex", "choices": "choice", "grammar": "grammar"}[constraint.kind]
        value = (json.loads(constraint.text) if key == "json" else list(constraint.choices) if key == "choice"
                 else constraint.text)
        return {"structured_outputs": {key: value}}
    raise PlaygroundError(f"This engine ({kind}) takes no constraint on its completions endpoint: structured "
                          "outputs run on in-process models, llama.cpp and vLLM.")


def constrained_completion(spec, prompt: str, constraint, settings: SamplingSettings, max_new_tokens: int,
                           seed: int = 0, chat_template: bool = False) -> EngineConstrained:
    """One constrained completion of `prompt` by the engine that serves `spec`."""
    from playground.engines import lab as engine_lab
    from playground.engines.stream import engine_sampling

    fields = engine_fields(spec.engine.kind, constraint)
    limits.check_deadline()
    state = engine_lab.engine_for(spec)
    ids = engine_lab.prompt_ids(state, prompt, chat_template)
    params, note = engine_sampling(spec.engine.kind, settings, seed)
    sent = ids if spec.engine.token_prompts else prompt
    answer = state.client.completion(sent, max_new_tokens, **params, **fields)
    try:
        choice = answer["choices"][0]
        text = choice["text"]
    except (KeyError, IndexError, TypeError):
        raise EngineError(f"The engine for model {spec.id!r} answered without a completion.", "bad-answer") from None
    usage = answer.get("usage") or {}
    return EngineConstrained(spec.id, text, str(choice.get("finish_reason")), usage.get("completion_tokens"),
                             fields, note)
