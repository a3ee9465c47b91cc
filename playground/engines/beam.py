"""Beam search on an engine model: each live beam's row of log-probabilities, from the engine's top-K.

`playground.beam` runs the search (`search_steps`: expand and score, finished hypotheses, record,
stop rule, the very functions of the in-process search); this module gives it its rows.
`open_beams(spec, prompt, ...)` tokenizes the prompt through the engine (`engines.lab.prompt_ids`,
a chat template through the entry's tokenizer) and returns `EngineBeams`, which holds each live
beam's sequence and answers `first_rows` (step 1: every beam is the prompt, one request, its row
copied for each beam; only the first counts, as in-process) and `follow(slots, tokens)` (the live
beams follow their parents with their tokens: one request per live beam). A request
(`engines.topk.next_token_topk`, the sequence sent as token ids) asks for the top K tokens, where
K = max(2, 1 + number of EOS ids) x num_beams is the search's own number of candidates per step;
the beam's row holds those K log-probabilities and -inf for every other token.

Why that is the whole search, given the engine's numbers: a step keeps the K best (beam, token)
pairs by cumulative log-probability over all live beams. A pair (b, t) among them has at most
K - 1 pairs above it, so at most K - 1 tokens of its own beam b above it (beam b's pairs are ordered
as its token log-probabilities, its running score being common to them): t is within beam b's own
top K. So every candidate of the step, its log-probability, its rank among its siblings and its
vocabulary rank are known exactly, and an unknown (-inf) token is never among them. The numbers
are the engine's (llama.cpp: the quantized model with 8-bit activations), so the search equals the
in-process one on the same weights wherever its decisions' margins exceed the two runtimes'
numeric differences (tests/integration/test_engine_beam.py).

Requests run one after another, each under the request's time limit (`limits.check_deadline`).
Engine state (client, EOS ids, tokenizer) is `engines.lab.engine_for`'s. Refused with a message:
an engine whose top_logprobs cap is below K, one without logprobs, one that names its top tokens
without ids, one that does not take token-id prompts.
What it leaves out: the search itself (`playground.beam`), the greedy and sampled comparison paths
(not computed on engines), concurrent requests, a context-length check (the engine answers with
its own message).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from playground import limits, prompts
from playground.engines.client import EngineError
from playground.engines.lab import EngineState, KnownTokens, engine_for, fit_ids, prompt_ids
from playground.engines.topk import TopK, next_token_topk
from playground.model_spec import ModelSpec
from playground.token_text import display_text, token_label

NO_COMPARISONS = "The greedy and sampled comparison paths are not computed on engine models."


def check_candidates(state: EngineState, num_beams: int, k: int) -> None:
    """A message when the engine cannot give each beam's top `k` tokens by id."""
    config, who = state.spec.engine, state.client._who()
    if config.top_logprobs < 1:
        raise EngineError(f"{who} gives no logprobs (top_logprobs = 0 in its entry): beam search needs "
                          "each beam's top tokens with their log-probabilities.", "no-logprobs")
    if config.top_logprobs < k:
        per_beam = k // num_beams
        most = config.top_logprobs // per_beam
        fewer = f"use at most {most} beam{'s' if most != 1 else ''}" if most else "it cannot run beam search"
        raise EngineError(f"Beam search with {num_beams} beams needs each beam's top {k} tokens per step "
                          f"({per_beam} x beams), but {who} gives at most {config.top_logprobs} "
                          f"(top_logprobs in its entry): {fewer}.", "unsupported")
    if not config.token_prompts:
        raise EngineError(f"{who} does not take prompts as token ids (token_prompts = false): beam search "
                          "sends each beam's sequence as ids, never as re-tokenized text.", "unsupported")


def rows_of(tops: Sequence[TopK], vocab_size: int | None) -> torch.Tensor:
    """One row of log-probabilities per top-K, over the vocabulary: the known ones, -inf elsewhere."""
    size = max([int(vocab_size or 0)] + [t.token_id + 1 for top in tops for t in top.tokens])
    rows = torch.full((len(tops), size), -math.inf, dtype=torch.float32)
    for row, top in zip(rows, tops):
        row[torch.tensor([t.token_id for t in top.tokens])] = torch.tensor([t.logprob for t in top.tokens])
    return rows


@dataclass
class EngineBeams:
    """The engine's side of one beam search: the prompt, each live beam's sequence, the rows."""

    state: EngineState
    ids: list[int]  # the prompt's ids, as the engine tokenized them
    eos: list[int]
    prompt_text: str
    prompt_note: str | None = None
    k: int = 0  # the top tokens asked per request (set by `first_rows`)
    requests: int = 0
    sequences: list[list[int]] = field(default_factory=list)  # each live beam's ids, prompt included
    known: KnownTokens | None = None  # the bytes of every token the engine named (the labels)

    def top(self, ids: Sequence[int]) -> TopK:
        """The engine's top K after `ids` (one request), checked to carry ids and all K tokens."""
        limits.check_deadline()
        topk = next_token_topk(self.state.client, list(ids), self.k)
        self.requests += 1
        who = self.state.client._who()
        if any(t.token_id is None for t in topk.tokens):
            raise EngineError(f"{who} names its top tokens by text only, without token ids: beam search needs "
                              "ids (llama.cpp gives them).", "unsupported")
        if len(topk.tokens) < min(self.k, self.state.vocab_size or self.k):
            raise EngineError(f"{who} answered {len(topk.tokens)} top tokens where {self.k} were asked: beam "
                              "search needs all of them.", "bad-answer")
        self.known.known.update(KnownTokens(topk).known)
        return topk

    def first_rows(self, num_beams: int, k: int) -> torch.Tensor:
        """Step 1's rows: the prompt's top `k`, once per beam (all beams start as the prompt)."""
        check_candidates(self.state, num_beams, k)
        self.k, self.sequences = k, [self.ids] * num_beams
        self.known = KnownTokens(TopK((), 0.0, 0, False), self.state.tokenizer)
        return rows_of([self.top(self.ids)] * num_beams, self.state.vocab_size)

    def follow(self, slots: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The live beams follow their parents' `slots` with `tokens`: one request per live beam."""
        self.sequences = [[*self.sequences[s], t] for s, t in zip(slots.tolist(), tokens.tolist())]
        return rows_of([self.top(ids) for ids in self.sequences], self.state.vocab_size)

    def label(self, token_id: int) -> str:
        return token_label(self.known, token_id)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """What `beam.returned_sequences` reads of a tokenizer: the entry's tokenizer where it names
        one, else the bytes the engine gave for each token."""
        if self.state.tokenizer is not None:
            return self.state.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return display_text(b"".join(self.known.decode_single_token_bytes(i) for i in ids))

    def note(self, compared: bool) -> str:
        """The line the tab shows: where it ran, the requests, what is exact (and the paths left out)."""
        spec = self.state.spec
        text = (f"Ran on the engine: {spec.id} ({spec.engine.where}), {self.requests} requests (one per live "
                f"beam per step), each for the top {self.k} tokens. Exact given the engine's numbers: every "
                f"candidate a step considers lies within its own beam's top {self.k}.")
        return f"{text} {NO_COMPARISONS}" if compared else text


def open_beams(spec: ModelSpec, prompt: str | None, chat_template: bool, max_prompt_tokens: int,
               eos_token_ids: Sequence[int] | None = None) -> EngineBeams:
    """The prompt's ids from the engine (cut from the left to `max_prompt_tokens`, with a note) and
    the EOS ids (the caller's, else the entry's tokenizer's)."""
    state = engine_for(spec)
    text = prompts.surrogate_free("" if prompt is None else str(prompt))
    ids, note = fit_ids(prompt_ids(state, text, bool(chat_template) and spec.role == "chat"), max_prompt_tokens)
    eos = [int(e) for e in (eos_token_ids if eos_token_ids is not None else state.eos_token_ids)]
    shown = state.tokenizer.decode(ids, skip_special_tokens=False) if state.tokenizer is not None else text
    return EngineBeams(state, ids, eos, shown, note)
