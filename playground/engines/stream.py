"""Streamed generation on an engine model: the engine samples, each token with its probabilities.

`EngineRun(model_id, settings, max_new_tokens, seed, prompt=..., messages=...)` is one streamed
request, iterated for `generation.StepRecord`s (the shape the in-process columns and their views
use):

- with `prompt` (token ids, or text): a raw `/v1/completions` stream; the ids go as ids where the
  engine takes them (`token_prompts`), else the text (`prompt_text`) goes;
- with `messages`: `/v1/chat/completions` streamed; the engine applies its own chat template, which
  is not seen here (a chat model whose entry names a `tokenizer` never comes here: its template is
  rendered with that tokenizer and sent as a raw completion, so the template stays visible).

Our sampling settings are sent as the engine's parameters (`engine_sampling`): llama.cpp takes all
of them (temperature, top_k, top_p, min_p, the seed, and the order as its `samplers` chain); vLLM
takes them but applies its own order; Ollama and OpenAI take temperature, top-p and the seed only
(what is not sent is said in the note). The draws are the engine's (its sampler, its seed), never
ours: `note` says so, e.g. "sampled by the engine (llama.cpp), seed 0". Each streamed token
carries the probability of the chosen token under the model and the engine's top alternatives
(`logprobs`, at most `TOP_LOGPROBS`); the "after the rules" probability of a record is our rules on
those known tokens plus the rest (`engines.lab.known_distribution`): exact for greedy and when the
kept set lies inside them, otherwise approximate. An engine that names tokens by text only gives
records with id -1 and no after-rules numbers (their model probabilities stand in, said in `note`).

The engine's `finish_reason` becomes our stop reason: `length` -> `max_tokens` (or `context` when
fewer tokens came), `stop` -> `eos` (the last token was end-of-sequence; marked so when the entry
names no tokenizer), `stop_string` when stop strings were sent, and `end_of_turn` on the chat API,
which does not stream the end-of-turn token. The record before a finish is held back one event, so
the last record yielded carries the stop; a stream that ends without a token leaves it in `stop`.
Every event checks the request's deadline; `close()` (or leaving the iteration: Stop, an error in
the page) closes the HTTP stream, and the engine stops generating.
What it leaves out: the engine's client and its failures (`engines.client`), the columns
(`playground.side_by_side`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace

from playground import generation, limits
from playground.engines import lab as engine_lab
from playground.engines.client import EngineError
from playground.engines.topk import TopK, TopToken, _token
from playground.models import get_spec
from playground.sampling import SamplingSettings, filter_logits
from playground.token_text import display_text, token_bytes

TOP_LOGPROBS = 20  # alternatives asked per token (capped by the entry's top_logprobs)
SAMPLER_NAMES = {"transformers": ["temperature", "top_k", "top_p", "min_p"],
                 "temperature_last": ["top_k", "top_p", "min_p", "temperature"]}
END_OF_TURN = "end_of_turn"
TEXT_ONLY = "; tokens named by text only: \"after rules\" shows the model's probability"
NO_LOGPROBS = ("answered without token probabilities (logprobs): this engine does not provide them "
               "(vLLM: --max-logprobs; Ollama: version 0.12.11 or later).")


def engine_sampling(kind: str, settings: SamplingSettings, seed: int) -> tuple[dict, str]:
    """(the request's sampling parameters, a note) for an engine of `kind`."""
    greedy = settings.greedy
    params: dict = {"temperature": 0.0 if greedy else settings.temperature, "seed": int(seed)}
    if kind == "llama.cpp":
        params.update(top_k=settings.top_k or 0, top_p=settings.top_p, min_p=settings.min_p,
                      samplers=SAMPLER_NAMES[settings.order])
        unsent = ""
    elif kind == "vllm":
        params.update(top_k=settings.top_k or -1, top_p=settings.top_p, min_p=settings.min_p)
        unsent = " (in its own rule order)" if not greedy else ""
    else:
        params["top_p"] = settings.top_p
        missing = [name for name, on in (("top-k", settings.top_k), ("min-p", settings.min_p)) if on]
        unsent = f" ({' and '.join(missing)} not sent: the API has no such parameter)" if missing and not greedy else ""
    if greedy:
        return params, f"greedy, by the engine ({kind})"
    return params, f"sampled by the engine ({kind}), seed {int(seed)}{unsent}"


# ---------------------------------------------------------------------------------------------
# Reading streamed tokens


def streamed_tokens(choice: dict) -> list[tuple[TopToken, list[TopToken]]]:
    """The tokens of one streamed choice: (the chosen token, its alternatives best first), read from
    `logprobs.content` (llama.cpp, chat APIs) or OpenAI's legacy `tokens`/`token_logprobs`/
    `top_logprobs` lists; [] when it carries none."""
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(logprobs, dict):
        return []
    if isinstance(logprobs.get("content"), list):
        return [(_token(item), sorted((_token(t) for t in item.get("top_logprobs") or []
                                       if isinstance(t, dict) and "logprob" in t), key=lambda t: -t.logprob))
                for item in logprobs["content"] if isinstance(item, dict) and "logprob" in item]
    texts, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if not isinstance(texts, list) or not isinstance(values, list):
        return []
    tops = logprobs.get("top_logprobs") or [{}] * len(texts)
    return [(TopToken(str(text), float(lp), math.exp(float(lp))),
             sorted((TopToken(str(t), float(v), math.exp(float(v))) for t, v in (top or {}).items()),
                    key=lambda t: -t.logprob))
            for text, lp, top in zip(texts, values, tops) if lp is not None]


def _has_text(choice: dict) -> bool:
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return bool(text)


class EngineRun:
    """One streamed generation on an engine model (an iterator of StepRecords); `note` says who
    sampled, `stop` holds the stop reason once the stream ended."""

    def __init__(self, model_id: str, settings: SamplingSettings, max_new_tokens: int, seed: int,
                 prompt: Sequence[int] | str | None = None, prompt_text: str = "",
                 messages: Sequence[dict] | None = None, stops: Sequence[str] = ()):
        self.spec = get_spec(model_id)
        self.settings, self.max_new_tokens, self.seed = settings, int(max_new_tokens), int(seed)
        self.prompt, self.prompt_text = prompt, prompt_text
        self.messages = list(messages) if messages is not None else None
        self.stops = [s for s in stops if s]
        self.params, self.note = engine_sampling(self.spec.engine.kind, settings, seed)
        self.stop: str | None = None
        self.count = 0
        self._events: Iterator[dict] | None = None
        self._records = self._run()

    def __iter__(self):
        return self

    def __next__(self) -> generation.StepRecord:
        return next(self._records)

    def close(self) -> None:
        """Close the HTTP stream (the engine stops generating)."""
        self._records.close()
        if self._events is not None:
            self._events.close()

    # -- the request ---------------------------------------------------------------------------

    def _open(self, state) -> Iterator[dict]:
        cap = self.spec.engine.top_logprobs
        if cap < 1:
            raise EngineError(f"{state.client._who()} gives no logprobs (top_logprobs = 0 in its entry): this "
                              "tab shows every token's probability.", "no-logprobs")
        k = min(TOP_LOGPROBS, cap)
        options = {**self.params, **({"stop": self.stops} if self.stops else {})}
        if self.messages is not None:
            return state.client.stream_chat(self.messages, self.max_new_tokens, logprobs=True, top_logprobs=k,
                                            **options)
        ids = self.prompt if not isinstance(self.prompt, str) and self.prompt else None
        prompt = list(ids) if ids is not None and self.spec.engine.token_prompts else (self.prompt_text or self.prompt)
        if not prompt:
            raise EngineError("Type a prompt: the engine needs at least one token.", "unsupported")
        return state.client.stream_completion(prompt, self.max_new_tokens, logprobs=k, **options)

    def _run(self) -> Iterator[generation.StepRecord]:
        limits.check_deadline()
        state = engine_lab.engine_for(self.spec)
        self._events = self._open(state)
        held, finish = None, None
        try:
            for event in self._events:
                limits.check_deadline()
                choices = event.get("choices") if isinstance(event, dict) else None
                choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
                tokens = streamed_tokens(choice)
                if not tokens and _has_text(choice):
                    raise EngineError(f"{state.client._who()} {NO_LOGPROBS}", "no-logprobs")
                for chosen, top in tokens:
                    if held is not None:
                        yield held
                    held = self._record(state, chosen, top)
                    self.count += 1
                finish = choice.get("finish_reason") or finish
                if finish:
                    break
        except EngineError:
            if held is not None:  # a token that came before the failure is kept
                yield held
            raise
        self._events.close()
        self.stop = self._stop_reason(finish, held)
        if held is not None:
            if self.stop == "eos" and not held.is_eos:
                held = replace(held, is_eos=True)  # the engine says so; the entry names no end-of-sequence id
            yield replace(held, stop=self.stop)

    def _stop_reason(self, finish: str | None, last) -> str:
        if finish == "length" or (finish is None and self.count >= self.max_new_tokens):
            return "max_tokens" if self.count >= self.max_new_tokens else "context"
        if finish == "stop":
            if self.messages is not None and (last is None or not last.is_eos):
                return END_OF_TURN
            if self.stops and (last is None or not last.is_eos):
                return "stop_string"
            return "eos"
        if finish is None:
            raise EngineError(f"The engine for model {self.spec.id!r} ended its stream after {self.count} tokens "
                              "without saying why (no finish_reason).", "bad-answer")
        return str(finish)

    # -- one record -----------------------------------------------------------------------------

    def _record(self, state, chosen: TopToken, top: list[TopToken]) -> generation.StepRecord:
        index, kind = self.count, "greedy" if self.settings.greedy else "sampled"
        if chosen.token_id is None or any(t.token_id is None for t in top):
            return self._record_without_ids(chosen, top, index, kind)
        if state.tokenizer is not None:  # the token itself (the engine's text may hold back or merge bytes)
            chosen = replace(chosen, token_bytes=token_bytes(state.tokenizer, chosen.token_id))
        listed = [t for t in top if t.token_id != chosen.token_id]
        tokens = sorted([*listed, chosen], key=lambda t: -t.logprob)
        topk = TopK(tuple(tokens), max(0.0, 1.0 - math.fsum(t.prob for t in tokens)), len(tokens), False)
        known = engine_lab.known_distribution(topk, state.vocab_size)
        result = filter_logits(known.ranked, self.settings)
        count = min(generation.TOP_ALTERNATIVES, known.k)
        return generation.step_record(engine_lab.owner(state, known), known.ranked, result, chosen.token_id,
                                      index, kind, count)

    def _record_without_ids(self, chosen: TopToken, top: list[TopToken], index: int, kind: str):
        """A record from text-only logprobs: id -1, the model's probabilities, no after-rules numbers."""
        if TEXT_ONLY not in self.note:
            self.note += TEXT_ONLY
        def text(token: TopToken) -> str:
            return display_text(token.token_bytes if token.token_bytes is not None else token.text.encode())

        alternatives = tuple(generation.Alternative(-1, text(t), t.prob, t.prob)
                             for t in top[:generation.TOP_ALTERNATIVES])
        rank = 1 + sum(1 for t in top if t.logprob > chosen.logprob)
        return generation.StepRecord(index=index, id=-1, text=text(chosen), raw_prob=chosen.prob, prob=chosen.prob,
                                     rank=rank, eos_raw_prob=0.0, eos_prob=0.0, kept_count=0,
                                     raw_entropy_bits=float("nan"), entropy_bits=float("nan"),
                                     alternatives=alternatives, chosen=kind)
