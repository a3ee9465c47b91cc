"""Teacher forcing on an engine model: P(actual token) at every position of a text, from the engine.

The text's tokens are the engine's own (`engines.tokenizer`, its /tokenize), after the start tokens
the in-process view scores it after (`playground.start_tokens`, asked of the engine's tokenizer),
at most `MAX_TOKENS` in all. Two ways, by what the
engine's entry says it has:

- `prompt_logprobs = true` (vLLM's `prompt_logprobs`; other OpenAI-compatible servers: `echo` with
  `logprobs`): one request gives the log-probability of every prompt token, exact.
- otherwise (llama.cpp, which returns no prompt logprobs): one request per position, the prefix
  sent as token ids with `logprobs = K` (the entry's `top_logprobs`, at most `MAX_K`): the actual
  token's probability is exact where it is inside the engine's top K, and known only to be below
  p_K (the K-th listed probability) where it is not; such a token's `logprob` is log p_K, an upper
  bound, and `in_top_k` is False. The sum is then an upper bound on log P(text).

The numbers are the engine's (llama.cpp: the quantized GGUF weights, 8-bit activations), so they
differ from the in-process model's by the two runtimes' numeric differences. Every request checks
the request's time limit (`limits.check_deadline`) and the engine timeout bounds each. The result is `EngineTeacherForcing`, with what is
exact said on it (`describe`); `chat.score_text` turns it into the Base vs chat tab's scoring.
What it leaves out: the Inside the model views (they need the weights in this process), drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from playground import limits, start_tokens
from playground.engines.client import EngineError
from playground.engines.topk import TopK, TopToken, next_token_topk, parse_top_logprobs, topk_of
from playground.errors import PlaygroundError
from playground.token_text import display_text, token_label, visible_whitespace

MAX_TOKENS = 512  # start tokens included; one request per token on llama.cpp, the time limit bounds it too
TOP_K = 3  # alternatives kept per position (what the engine expected instead)
MAX_K = 100  # alternatives asked per position (capped by the entry's top_logprobs)
UTF8_TOKENS = 4  # a UTF-8 character has at most 4 bytes: tokens enough to complete one
PROMPT_LOGPROBS = "prompt logprobs"
TOP_K_PER_POSITION = "top-K per position"


@dataclass(frozen=True)
class EngineForcedToken:
    index: int  # position in the text's tokens (0 = the first token after the start tokens)
    id: int
    label: str
    logprob: float  # natural log of P(token | everything before it), or log p_K where not in_top_k
    expected: tuple[tuple[str, float], ...]  # the engine's most probable tokens there, with probabilities
    in_top_k: bool = True  # False: P(token) is below p_K, and `logprob` is log p_K (an upper bound)


@dataclass(frozen=True)
class EngineTeacherForcing:
    model_id: str
    text: str
    context_ids: tuple[int, ...]  # what the text is scored after: the start tokens (or its first token)
    tokens: tuple[EngineForcedToken, ...]
    text_context: int = 0  # how many of the text's own tokens are context (1 without a start token)
    where: str = ""  # "llama.cpp at http://..."
    method: str = ""  # PROMPT_LOGPROBS or TOP_K_PER_POSITION
    k: int = 0  # the top K asked per position (TOP_K_PER_POSITION)
    requests: int = 0

    @property
    def outside(self) -> int:
        """How many tokens were not in the engine's top K (their probability is only bounded)."""
        return sum(1 for t in self.tokens if not t.in_top_k)

    @property
    def exact(self) -> bool:
        return self.outside == 0


def text_ids(tokenizer, text: str) -> tuple[list[int], int, int]:
    """(ids, number of context ids, how many of those are the text's own) as every tab reads a text (`playground.start_tokens`), at most
    `MAX_TOKENS` in all; without a start token the text's first token is context, not scored."""
    if not text:
        raise PlaygroundError("Type a text to score.")
    read = start_tokens.text_ids(tokenizer, text)
    if len(read.ids) > MAX_TOKENS:
        raise PlaygroundError(f"Teacher forcing reads at most {MAX_TOKENS} tokens (start token included); the "
                              f"text has {len(read.ids)}. Shorten it.")
    if len(read.ids) < 2:
        raise PlaygroundError("A one-token text read without a start token has nothing to be scored after: "
                              "type a longer text.")
    context = max(1, len(read.start))
    return read.ids, context, context - len(read.start)


def _label(data: bytes) -> str:
    return visible_whitespace(display_text(data))


def _expected(topk: TopK) -> tuple[tuple[str, float], ...]:
    """The top alternatives as (label, probability): the engine's bytes where it gave them, else its
    text (no request per alternative)."""
    return tuple((_label(t.token_bytes) if t.token_bytes is not None else visible_whitespace(t.text), t.prob)
                 for t in topk.tokens[:TOP_K])


def _from_topk(topk: TopK, actual: int) -> tuple[float, bool]:
    """(logprob, in top K) of `actual`: exact inside the top K, else log p_K (an upper bound)."""
    for token in topk.tokens:
        if token.token_id == actual:
            return token.logprob, True
    if any(token.token_id is None for token in topk.tokens):
        raise EngineError("The engine names its top tokens by text only, without token ids: teacher forcing "
                          "needs ids (llama.cpp gives them).", "unsupported")
    return topk.tokens[-1].logprob, False


def _topk_after(client, ids: list[int], k: int) -> TopK:
    """The engine's top K after `ids`. llama.cpp holds back a generated token that is not valid UTF-8
    on its own (a CJK character's last byte) and then answers one token without logprobs: asked
    again for up to `UTF8_TOKENS` tokens, its first position's logprobs come with the completed
    character."""
    for max_tokens in (1, UTF8_TOKENS):
        answer = client.completion(ids, max_tokens=max_tokens, logprobs=k, temperature=0.0)
        tokens = parse_top_logprobs(answer)
        if tokens:
            return topk_of(tokens[:k], k, False)
    return next_token_topk(client, ids, k)  # its message: this engine gives no logprobs


def _per_position(client, ids: list[int], start: int, k: int) -> list[tuple[float, bool, TopK]]:
    found = []
    for position in range(start, len(ids)):
        limits.check_deadline()
        topk = _topk_after(client, ids[:position], k)
        found.append((*_from_topk(topk, ids[position]), topk))
    return found


def _prompt_logprobs(client, ids: list[int], start: int, k: int) -> list[tuple[float, bool, TopK]]:
    """One request: every prompt token's log-probability (exact), with the top alternatives."""
    limits.check_deadline()
    if client.config.kind == "vllm":
        answer = client.completion(ids, max_tokens=1, prompt_logprobs=k, temperature=0.0)
    else:
        answer = client.completion(ids, max_tokens=1, echo=True, logprobs=k, temperature=0.0)
    return _parse_prompt_logprobs(client, answer, ids, start)


def _parse_prompt_logprobs(client, answer: dict, ids: list[int], start: int) -> list[tuple[float, bool, TopK]]:
    """Each scored position's (logprob of its own token, True, alternatives), from vLLM's
    `choices[0].prompt_logprobs` ({id: {logprob}} per position, the first None) or an echo's
    `logprobs.token_logprobs` and `top_logprobs` ({text: logprob}); EngineError when neither
    holds every position."""
    try:
        choice = answer["choices"][0]
    except (KeyError, IndexError, TypeError):
        choice = {}
    positions: list[tuple[float, list[tuple[str, int | None, float]]]] = []
    if isinstance(choice.get("prompt_logprobs"), list):  # vLLM: [None, {"id": {"logprob": ...}}, ...]
        for token_id, row in zip(ids, choice["prompt_logprobs"]):
            row = row or {}
            own = row.get(str(token_id), row.get(token_id))
            alternatives = [(str(v.get("decoded_token", "")), int(i), float(v["logprob"]))
                            for i, v in row.items() if isinstance(v, dict) and "logprob" in v]
            positions.append((float(own["logprob"]) if isinstance(own, dict) else math.nan, alternatives))
    elif isinstance(choice.get("logprobs"), dict):  # echo: token_logprobs and top_logprobs ({text: logprob})
        own = choice["logprobs"].get("token_logprobs") or []
        tops = choice["logprobs"].get("top_logprobs") or []
        for index in range(min(len(own), len(ids))):
            top = tops[index] if index < len(tops) and isinstance(tops[index], dict) else {}
            positions.append((math.nan if own[index] is None else float(own[index]),
                              [(str(t), None, float(lp)) for t, lp in top.items()]))
    if len(positions) < len(ids) or any(math.isnan(lp) for lp, _ in positions[start:]):
        raise EngineError(f"{client._who()} answered without the prompt's log-probabilities: this engine does not "
                          "provide prompt logprobs (set prompt_logprobs = false in its entry).", "no-logprobs")
    found = []
    for logprob, alternatives in positions[start:]:
        tokens = sorted((TopToken(text, lp, math.exp(lp), token_id) for text, token_id, lp in alternatives),
                        key=lambda t: -t.logprob)
        found.append((logprob, True, topk_of(tokens, len(tokens), False)))
    return found


def engine_teacher_forcing(spec, text: str, tokenizer) -> EngineTeacherForcing:
    """Every token of `text` scored given all tokens before it, by the engine of `spec`.

    `tokenizer`: the engine's (`engines.tokenizer.EngineTokenizer`, whose client sends the requests)."""
    client = tokenizer.client
    config = spec.engine
    k = max(1, min(MAX_K, config.top_logprobs))
    if config.top_logprobs < 1:
        raise EngineError(f"{client._who()} gives no logprobs (top_logprobs = 0 in its entry): teacher forcing "
                          "needs them.", "no-logprobs")
    if not config.token_prompts:
        raise EngineError(f"{client._who()} does not take prompts as token ids (token_prompts = false): teacher "
                          "forcing sends the text's own token ids.", "unsupported")
    ids, start, text_context = text_ids(tokenizer, text)
    if config.prompt_logprobs:
        found, method, requests = _prompt_logprobs(client, ids, start, k), PROMPT_LOGPROBS, 1
    else:
        found, method, requests = _per_position(client, ids, start, k), TOP_K_PER_POSITION, len(ids) - start
    tokens = tuple(
        EngineForcedToken(index, ids[start + index], token_label(tokenizer, ids[start + index]), logprob,
                          _expected(topk), in_top_k)
        for index, (logprob, in_top_k, topk) in enumerate(found)
    )
    return EngineTeacherForcing(spec.id, text, tuple(ids[:start]), tokens, text_context, where=config.where,
                                method=method, k=k, requests=requests)


def describe(forced: EngineTeacherForcing) -> str:
    """One line: who scored the text, how, and what is exact."""
    how = ("its prompt log-probabilities, one request" if forced.method == PROMPT_LOGPROBS else
           f"its top {forced.k} at each position, {forced.requests} requests")
    line = f"{forced.model_id}: scored by {forced.where} ({how})"
    if forced.exact:
        return line + "; every token's probability is the engine's own, exact."
    return (line + f"; {forced.outside} of {len(forced.tokens)} tokens lie outside the engine's top {forced.k}: "
            f"their probability is only known to be below that of its {forced.k}th most probable token, so their "
            "surprisal is a lower bound.")


def require_tokenize(spec) -> None:
    """Teacher forcing needs the engine's own ids: refused, in words, where it has no /tokenize."""
    if not spec.engine.tokenize:
        raise EngineError(f"Model {spec.id} is served by {spec.engine.where}, which does not provide /tokenize: "
                          "teacher forcing needs the engine's own token ids.", "unsupported")


def teacher_forcing(spec, text: str, tokenizer) -> EngineTeacherForcing:
    """Teacher forcing on the engine model `spec`, through its explorer tokenizer (the engine's /tokenize)."""
    require_tokenize(spec)
    return engine_teacher_forcing(spec, text, tokenizer)
