"""The engine's next-token top-K: the K most likely tokens with their probabilities, and the rest.

`next_token_topk(client, prompt, k)` asks the engine for one token with `logprobs = K` (capped at
the entry's `top_logprobs`) and returns a `TopK`: the tokens best first (id and bytes where the
engine gives them: llama.cpp does, OpenAI-style `{text: logprob}` maps do not), each probability,
and `rest_mass`, the probability of every token the engine did not list (1 minus the listed sum,
shown as one "rest of the vocabulary" bar). The probabilities are the engine's, under the model
before any sampling rule (llama.cpp: the softmax of the raw logits; vLLM: raw logprobs).
`parse_top_logprobs` reads both answer shapes: `logprobs.content[0].top_logprobs` (llama.cpp, chat
APIs) and `logprobs.top_logprobs[0]` (OpenAI's legacy completions, vLLM, Ollama).
What it leaves out: sampling from them and the labels exact/approximate (the tabs' job).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from playground.engines.client import EngineClient, EngineError


@dataclass(frozen=True)
class TopToken:
    text: str
    logprob: float
    prob: float
    token_id: int | None = None  # None where the engine names tokens by text only
    token_bytes: bytes | None = None


@dataclass(frozen=True)
class TopK:
    tokens: tuple[TopToken, ...]  # best first
    rest_mass: float  # probability of all tokens not listed
    requested: int  # the K asked for
    capped: bool  # True when K was above the engine's top_logprobs and the cap was asked instead


def _token(item: dict) -> TopToken:
    logprob = float(item["logprob"])
    raw = item.get("bytes")
    token_bytes = bytes(raw) if isinstance(raw, list) else None
    token_id = item.get("id", item.get("token_id"))
    return TopToken(str(item.get("token", "")), logprob, math.exp(logprob),
                    int(token_id) if token_id is not None else None, token_bytes)


def parse_top_logprobs(answer: dict) -> list[TopToken]:
    """The first position's alternatives, best first; [] when the answer carries none."""
    try:
        logprobs = answer["choices"][0].get("logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return []
    if not isinstance(logprobs, dict):
        return []
    if isinstance(logprobs.get("content"), list) and logprobs["content"]:
        items = logprobs["content"][0].get("top_logprobs") or []
        tokens = [_token(item) for item in items if isinstance(item, dict) and "logprob" in item]
    elif isinstance(logprobs.get("top_logprobs"), list) and logprobs["top_logprobs"]:
        first = logprobs["top_logprobs"][0] or {}
        tokens = [TopToken(str(text), float(lp), math.exp(float(lp))) for text, lp in first.items()]
    else:
        return []
    return sorted(tokens, key=lambda token: -token.logprob)


def topk_of(tokens: list[TopToken], requested: int, capped: bool) -> TopK:
    rest = max(0.0, 1.0 - math.fsum(token.prob for token in tokens))
    return TopK(tuple(tokens), rest, requested, capped)


def next_token_topk(client: EngineClient, prompt: str | list[int], k: int) -> TopK:
    """The engine's top-`k` next tokens after `prompt` (text, or token ids where the engine takes them)."""
    if int(k) < 1:
        raise EngineError("Ask for at least one token (k >= 1).", "unsupported")
    cap = client.config.top_logprobs
    if cap < 1:
        raise EngineError(f"{client._who()} gives no logprobs (top_logprobs = 0 in its entry).", "no-logprobs")
    asked = min(int(k), cap)
    answer = client.completion(prompt, max_tokens=1, logprobs=asked, temperature=0.0)
    tokens = parse_top_logprobs(answer)
    if not tokens:
        raise EngineError(f"{client._who()} answered without logprobs: this engine does not provide token "
                          "probabilities (vLLM: --max-logprobs; Ollama: version 0.12.11 or later).", "no-logprobs")
    return topk_of(tokens[:asked], int(k), asked < int(k))
