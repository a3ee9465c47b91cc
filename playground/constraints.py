"""Structured outputs as a mask on the next-token distribution (constrained decoding), step by step.

A `Constraint` is what the user asks for: a choice list, a regular expression, a JSON schema, or a
grammar (Lark, or llama.cpp's GBNF, converted by the library). `compile_constraint` turns it into
llguidance's matcher over the model's vocabulary (llguidance was chosen by measurement on Gemma 3's
262,144-token vocabulary: `bench/bench_grammar.py`, bench/results/grammar-cpu.json). Each step of
`iter_constrained`:

    allowed = the grammar's token mask after the tokens so far
    removed_mass = sum of p(t) over the tokens t not allowed       (p: the model's softmax)
    p_masked(t) = p(t) / (1 - removed_mass) for allowed t, else 0  (logits of other tokens -> -inf)

then the sampling rules (`playground.sampling`) cut p_masked and the token is drawn with the same
random scheme as every other generation (`generation.step_generator`), so temperature 0 is greedy
decoding under the mask. Every step records the model's distribution before the mask, the allowed
count, the removed mass, and the renormalised distribution the rules then cut (`MaskStep`).
`compare` runs the same prompt and settings once with the constraint and once without.

What it leaves out: engines' own structured outputs (`playground.engines`, behind
`backends.Backend.constrained`), fast-forwarding the tokens a grammar forces (every token here is a
model step, so the mask is visible at each one), drawing (`playground.plots.constraints`,
`playground.html.constraints`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from playground import limits
from playground.errors import PlaygroundError
from playground.generation import Decoder, GenerationResult, _check_run, generate, generated_text, step_generator
from playground.models import LoadedModel
from playground.sampling import RankedLogits, SamplingSettings, filter_logits, sample_token
from playground.token_text import bytes_table, display_text, token_bytes

Kind = Literal["choices", "regex", "json_schema", "grammar"]
KINDS: dict[str, str] = {"choices": "a choice list", "regex": "a regular expression",
                         "json_schema": "a JSON schema", "grammar": "a grammar (Lark or GBNF)"}
MAX_CONSTRAINT_CHARS = 20_000
MAX_CHOICES = 200
TOP_SHOWN = 10
# One JSON layout (", " and ": ", no other whitespace) unless the schema's "x-guidance" says otherwise:
# with free whitespace a small model can spend its whole budget on new lines.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ConstrainedStop = Literal["complete", "eos", "max_tokens", "context", "dead_end"]
STOP_WORDS: dict[str, str] = {
    "complete": "the constraint is complete (nothing more may follow)",
    "eos": "the end-of-sequence token was sampled where the constraint allows the text to end",
    "max_tokens": "the maximum number of new tokens was reached before the constraint was complete",
    "context": "the model's context length was reached",
    "dead_end": "the grammar allows no token here",
}


@dataclass(frozen=True)
class Constraint:
    """One constraint: its kind and its text (the choices as a tuple for `choices`)."""

    kind: Kind
    text: str
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        shown = ", ".join(self.choices) if self.kind == "choices" else self.text
        return f"{KINDS[self.kind]}: {shown if len(shown) <= 80 else shown[:77] + '...'}"

    @property
    def schema(self) -> dict | None:
        return json.loads(self.text) if self.kind == "json_schema" else None


def parse_constraint(kind: str, text) -> Constraint:
    """A `Constraint` from the user's text; a PlaygroundError in words for what cannot be one.

    Choices: separated by commas or new lines (a line holding a comma keeps it when the text has
    several lines). A JSON schema must be a JSON object. Regular expressions and grammars are
    checked when compiled (`compile_constraint`), by the library that runs them.
    """
    if kind not in KINDS:
        raise PlaygroundError(f"Unknown constraint kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError(f"Write {KINDS[kind]} first: the constraint is empty.")
    if len(text) > MAX_CONSTRAINT_CHARS:
        raise PlaygroundError(f"The constraint is {len(text):,} characters long; at most {MAX_CONSTRAINT_CHARS:,}.")
    if kind == "choices":
        parts = text.splitlines() if "\n" in text.strip() else text.split(",")
        choices = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
        if not choices:
            raise PlaygroundError("Write at least one choice (separated by commas or new lines).")
        if len(choices) > MAX_CHOICES:
            raise PlaygroundError(f"{len(choices)} choices; at most {MAX_CHOICES}.")
        return Constraint("choices", text, choices)
    if kind == "json_schema":
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlaygroundError(f"The JSON schema is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                  f"column {exc.colno}.") from None
        if not isinstance(schema, dict):
            raise PlaygroundError("A JSON schema must be a JSON object, such as {\"type\": \"object\"}.")
    return Constraint(kind, text)  # type: ignore[arg-type]


def grammar_text(constraint: Constraint) -> str:
    """The llguidance grammar of a constraint (its JSON grammar format)."""
    import llguidance  # noqa: PLC0415 - the grammar engine loads with the first constraint

    M = llguidance.LLMatcher
    if constraint.kind == "choices":
        return M.grammar_from_lark("start: " + " | ".join(json.dumps(c) for c in constraint.choices))
    if constraint.kind == "regex":
        return M.grammar_from_regex(constraint.text)
    if constraint.kind == "json_schema":
        return M.grammar_from_json_schema(constraint.text, defaults=JSON_LAYOUT)
    from llguidance.gbnf_to_lark import any_to_lark  # noqa: PLC0415

    try:
        return M.grammar_from_lark(any_to_lark(constraint.text))
    except Exception as exc:  # noqa: BLE001 - the converter raises plain exceptions for bad GBNF
        raise PlaygroundError(f"The grammar could not be read: {exc}.") from None


class _TokenBytes:
    """The model's tokenizer as llguidance's `TokenizerWrapper` reads it: every id's exact bytes
    (`token_text.bytes_table`, the bytes every tab shows), the special ids (which a grammar never
    allows inside text), and encode."""

    def __init__(self, tokenizer):
        table = bytes_table(tokenizer)
        self.eos_token_id, self.bos_token_id = tokenizer.eos_token_id, tokenizer.bos_token_id
        self.tokens = list(table.table)
        # as `llguidance.hf.from_tokenizer` reads them: an added token is special when it says so or
        # looks like a tag (Gemma's <table>, ...; its [multimodal] is text)
        added = {i for i, token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()
                 if getattr(token, "special", False) or (str(token).startswith("<") and str(token).endswith(">"))}
        self.special_token_ids = sorted(set(table.special) | set(tokenizer.all_special_ids) | added)
        self._tokenizer = tokenizer

    def __call__(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)


def ll_tokenizer(loaded: LoadedModel):
    """llguidance's view of the model's tokenizer, built once per model from our bytes table: ~2 s
    for Gemma's 262,144 tokens (`llguidance.hf.from_tokenizer`, which re-reads the tokenizer's JSON,
    took 4-26 s on the loaded 2-core machine; both give the same masks: tests/unit/test_constraints.py)."""
    def build():
        import llguidance  # noqa: PLC0415

        if loaded.tokenizer is None:
            raise PlaygroundError(f"Model {loaded.id} has no tokenizer, so it cannot be constrained.")
        return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_TokenBytes(loaded.tokenizer)),
                                      n_vocab=loaded.vocab_size, eos_token=list(loaded.eos_token_ids) or None)
    return loaded.runtime.part("llguidance_tokenizer", build)


@dataclass
class CompiledConstraint:
    """A constraint compiled for one model's vocabulary: a fresh matcher per run (`matcher()`)."""

    constraint: Constraint
    grammar: str
    tokenizer: object  # llguidance.LLTokenizer
    vocab_size: int
    compile_ms: float

    def matcher(self):
        import llguidance  # noqa: PLC0415

        return llguidance.LLMatcher(self.tokenizer, self.grammar, log_level=0)


def compile_constraint(loaded: LoadedModel, constraint: Constraint) -> CompiledConstraint:
    """Compile `constraint` for the model's vocabulary; its problems as a PlaygroundError in words."""
    import llguidance  # noqa: PLC0415

    tokenizer = ll_tokenizer(loaded)  # once per model, not counted in the compile time
    start = time.perf_counter()
    grammar = grammar_text(constraint)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    if is_error:
        what = {"regex": "The regular expression", "json_schema": "The JSON schema",
                "grammar": "The grammar", "choices": "The choice list"}[constraint.kind]
        raise PlaygroundError(f"{what} cannot be used: {messages[0] if messages else 'the library refused it'}.")
    compiled = CompiledConstraint(constraint, grammar, tokenizer, loaded.vocab_size, 0.0)
    matcher = compiled.matcher()
    if matcher.is_error():
        raise PlaygroundError(f"The constraint cannot be used: {matcher.get_error()}.")
    compiled.compile_ms = (time.perf_counter() - start) * 1000
    return compiled


def allowed_tokens(matcher, vocab_size: int) -> torch.Tensor:
    """The matcher's mask for the next token as a bool vector over the vocabulary."""
    words = np.zeros((vocab_size + 31) // 32, dtype=np.int32)
    matcher.unsafe_compute_mask_ptr(words.ctypes.data, words.nbytes)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[:vocab_size]
    return torch.from_numpy(bits.astype(bool))


def masked_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """logits where the grammar allows the token, -inf elsewhere (a new tensor)."""
    return logits.masked_fill(~allowed, float("-inf"))


@dataclass(frozen=True)
class ShownToken:
    """One bar of a step's charts: the model's probability, the renormalised one, the rules'."""

    id: int
    text: str  # display text (partial UTF-8 as <0xNN>)
    raw_prob: float  # the model's, before the mask
    allowed: bool
    masked_prob: float  # renormalised over the allowed tokens (0 if not allowed)
    prob: float  # after the sampling rules cut the renormalised distribution


@dataclass(frozen=True)
class MaskStep:
    index: int
    id: int
    text: str
    allowed_count: int
    removed_mass: float  # the model's probability of the tokens the grammar forbids
    raw_prob: float  # the chosen token's probability under the model (before the mask)
    masked_prob: float  # ... after the mask, renormalised
    prob: float  # ... after the sampling rules
    kept_count: int  # tokens the rules kept of the allowed ones
    model_top: tuple[ShownToken, ...]  # the model's most probable tokens, allowed or not
    allowed_top: tuple[ShownToken, ...]  # the most probable allowed tokens
    mask_ms: float  # computing the mask (the grammar engine) and applying it
    chosen: Literal["greedy", "sampled"] = "sampled"
    stop: ConstrainedStop | None = None

    def as_dict(self, tops: bool = True) -> dict:
        row = {"index": self.index, "id": self.id, "text": self.text, "allowed_count": self.allowed_count,
               "removed_mass": self.removed_mass, "raw_prob": self.raw_prob, "masked_prob": self.masked_prob,
               "prob": self.prob, "kept": self.kept_count, "mask_ms": round(self.mask_ms, 3),
               "chosen": self.chosen, "stop": self.stop}
        if tops:
            row.update(model_top=[vars(t) for t in self.model_top], allowed_top=[vars(t) for t in self.allowed_top])
        return row


@dataclass
class ConstrainedRun:
    constraint: Constraint
    prompt_ids: list[int]
    steps: list[MaskStep]
    stop: ConstrainedStop | None
    complete: bool  # the grammar accepts the text as it stands
    settings: SamplingSettings
    seed: int
    compile_ms: float
    text: str = ""
    token_ids: list[int] = field(default_factory=list)

    @property
    def stop_words(self) -> str:
        return STOP_WORDS[self.stop] if self.stop else "running"


def _shown(tokenizer, ids, raw, allowed, masked, processed) -> tuple[ShownToken, ...]:
    return tuple(ShownToken(int(i), display_text(token_bytes(tokenizer, int(i))), float(raw[i]), bool(allowed[i]),
                            float(masked[i]), float(processed[i])) for i in ids)


def iter_constrained(decoder: Decoder, compiled: CompiledConstraint, settings: SamplingSettings,
                     max_new_tokens: int, seed: int = 0, top: int = TOP_SHOWN) -> Iterator[MaskStep]:
    """Decode up to `max_new_tokens` tokens under the constraint, yielding one `MaskStep` each.

    The last step carries the stop reason: `complete` (the grammar allows nothing more), `eos`,
    `max_tokens`, `context`, or `dead_end` (the mask is empty: the grammar cannot go on).
    """
    _check_run(max_new_tokens, settings)
    loaded, matcher = decoder.loaded, compiled.matcher()
    tokenizer, vocab = loaded.tokenizer, compiled.vocab_size
    start_index = len(decoder.generated_ids)
    for step in range(max_new_tokens):
        limits.check_deadline()
        if decoder.at_context_limit:
            return
        logits = decoder.logits
        began = time.perf_counter()
        allowed = allowed_tokens(matcher, vocab)
        masked = masked_logits(logits, allowed)
        mask_ms = (time.perf_counter() - began) * 1000
        model = RankedLogits(logits)
        raw = model.raw_probs
        allowed_count = int(allowed.sum())
        if allowed_count == 0:
            raise PlaygroundError(f"The grammar allows no token after {step} tokens "
                                  f"({matcher.get_error() or 'a dead end'}).")
        removed = max(0.0, 1.0 - float(raw[allowed].sum()))
        ranked = RankedLogits(masked)
        result = filter_logits(ranked, settings)
        token_id = sample_token(result, step_generator(seed, start_index + step))
        masked_probs, processed = ranked.raw_probs, result.probs
        _, model_ids = model.top(top)
        _, allowed_ids = ranked.top(min(top, allowed_count))
        if not matcher.consume_token(token_id):
            raise PlaygroundError(f"The grammar engine refused the token it allowed: {matcher.get_error()}.")
        is_eos = token_id in loaded.eos_token_ids
        if not is_eos:
            decoder.push(token_id)
        stop: ConstrainedStop | None = None
        if is_eos:
            stop = "eos"
        elif matcher.is_stopped():
            stop = "complete"
        elif step == max_new_tokens - 1:
            stop = "max_tokens"
        elif decoder.at_context_limit:
            stop = "context"
        yield MaskStep(
            index=start_index + step, id=token_id, text=display_text(token_bytes(tokenizer, token_id)),
            allowed_count=allowed_count, removed_mass=removed, raw_prob=float(raw[token_id]),
            masked_prob=float(masked_probs[token_id]), prob=float(processed[token_id]),
            kept_count=int((result.kept_probs > 0).sum()),
            model_top=_shown(tokenizer, model_ids[:top], raw, allowed, masked_probs, processed),
            allowed_top=_shown(tokenizer, allowed_ids[:min(top, allowed_count)], raw, allowed, masked_probs,
                               processed),
            mask_ms=mask_ms, chosen="greedy" if settings.greedy else "sampled", stop=stop)
        if stop is not None:
            return


def constrained_generate(loaded: LoadedModel, prompt_ids: Sequence[int], constraint: Constraint,
                         settings: SamplingSettings, max_new_tokens: int, seed: int = 0) -> ConstrainedRun:
    """One constrained generation of `prompt_ids`, all its steps recorded."""
    compiled = compile_constraint(loaded, constraint)
    decoder = Decoder(loaded, prompt_ids)
    try:
        steps = list(iter_constrained(decoder, compiled, settings, max_new_tokens, seed))
    finally:
        decoder.close()
    return run_from_steps(loaded, compiled, prompt_ids, steps, settings, seed)


def run_from_steps(loaded: LoadedModel, compiled: CompiledConstraint, prompt_ids: Sequence[int],
                   steps: list[MaskStep], settings: SamplingSettings, seed: int) -> ConstrainedRun:
    """The run so far (or finished): its text, whether the grammar accepts it, why it stopped."""
    ids = [s.id for s in steps]
    matcher = compiled.matcher()
    matcher.consume_tokens(ids)
    stop = steps[-1].stop if steps and steps[-1].stop else ("context" if steps else None)
    return ConstrainedRun(compiled.constraint, list(prompt_ids), steps, stop, matcher.is_accepting(), settings,
                          seed, compiled.compile_ms, generated_text(loaded.tokenizer, ids, loaded.eos_token_ids), ids)


@dataclass
class Comparison:
    """The same prompt and settings, with the constraint and without it."""

    constrained: ConstrainedRun
    free: GenerationResult

    def as_dict(self, tops: bool = False) -> dict:
        """The CLI's JSON: the constrained text, whether it is complete, each step's numbers, the free text."""
        run, free = self.constrained, self.free
        return {"constraint": {"kind": run.constraint.kind, "text": run.constraint.text}, "text": run.text,
                "stop_reason": run.stop, "stop_explanation": run.stop_words, "complete": run.complete,
                "compile_ms": round(run.compile_ms, 3), "steps": [s.as_dict(tops) for s in run.steps],
                "free": {"text": free.text, "stop_reason": free.stop_reason, "tokens": len(free.records)}}


def compare(loaded: LoadedModel, prompt_ids: Sequence[int], constraint: Constraint, settings: SamplingSettings,
            max_new_tokens: int, seed: int = 0) -> Comparison:
    """`constrained_generate` and the unconstrained `generation.generate` of the same prompt."""
    constrained = constrained_generate(loaded, prompt_ids, constraint, settings, max_new_tokens, seed)
    free = generate(loaded, prompt_ids, settings, max_new_tokens, seed)
    return Comparison(constrained, free)
