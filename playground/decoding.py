"""Decoding primitives: prompts to ids, next-token distributions, KV-cached stepping.

- `prompt_ids` tokenizes a prompt as every tab does (`playground.start_tokens`: the start tokens,
  then the text), or through the chat template as a single user message. An empty prompt gives
  the distribution after the document start token.
- `ranked_after(loaded, ids)` is the distribution after a sequence as `sampling.RankedLogits`,
  cached per model by the ids (an LRU bounded in bytes on the model's runtime, shared by all
  sessions): a session keeps its ids, never its logits, and re-filtering never re-runs the model
  while the entry is cached. A miss runs the model once through the cross-session batcher
  (`playground.batching`). Decoders store what they compute with `remember`.
- `next_token_distribution` is the same for a prompt text (cached per (model, prompt, template)).
- `Stepper` is KV-cached incremental decoding of one sequence; generation and the sampling lab's
  token-by-token mode are built on it.
- `forward` and `forward_all` are `playground.model_call`'s, re-exported for callers of this module.

What it leaves out: calling the model (`playground.model_call`), sampling rules
(`playground.sampling`), generation loops and stop reasons (`playground.generation`), beam search
(`playground.beam`), sessions (`playground.lab`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground import batching, fastpath, settings, start_tokens
from playground.errors import PlaygroundError
from playground.lru import BoundedLRU
from playground.model_call import compute_slot, forward, forward_all  # noqa: F401 - re-exported
from playground.models import LoadedModel, load_model
from playground.sampling import RankedLogits

DISTRIBUTION_CACHE_SIZE = 64  # prompt texts per model
DISTRIBUTION_CACHE_MB = settings.current().distribution_cache_mb  # per model


def prompt_ids(loaded: LoadedModel, prompt: str, chat_template: bool = False) -> list[int]:
    """Token ids the model sees for `prompt` (truncated from the left to the context length)."""
    tokenizer = loaded.tokenizer
    if tokenizer is None:
        raise PlaygroundError(f"Model {loaded.id} has no tokenizer on this machine.")
    if chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise PlaygroundError(f"Model {loaded.id} has no chat template.")
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True,
            return_dict=False,
        )
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        ids = list(ids)
    else:
        ids = start_tokens.text_ids(tokenizer, prompt).ids
    limit = loaded.context_length - 1
    return ids[-limit:] if len(ids) > limit else ids


@dataclass(frozen=True)
class NextTokenDistribution:
    model_id: str
    prompt: str
    chat_template: bool
    input_ids: tuple[int, ...]
    logits: torch.Tensor  # float32, CPU, shape [vocab]

    @property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)


def _ranked_cache(loaded: LoadedModel) -> BoundedLRU:
    return loaded.runtime.part("ranked-by-ids", lambda: BoundedLRU(
        max_entries=100_000, max_bytes=int(DISTRIBUTION_CACHE_MB * 2**20)))


def _prompt_cache(loaded: LoadedModel) -> BoundedLRU:
    return loaded.runtime.part("distributions-by-prompt", lambda: BoundedLRU(DISTRIBUTION_CACHE_SIZE))


def remember(loaded: LoadedModel, ids, ranked: RankedLogits) -> RankedLogits:
    """Keep `ranked` as the distribution after `ids` (a decoder computed it); returns it."""
    # what it holds at most once filtered: the logits and probabilities (float32), the full
    # descending order (float32 values, int64 ids) when a rule needed every token, and the latest
    # filter's processed probabilities (float32): 24 bytes a token
    _ranked_cache(loaded).put(tuple(ids), ranked, nbytes=24 * ranked.vocab_size)
    return ranked


def cached_ranked(loaded: LoadedModel, ids) -> RankedLogits | None:
    """The cached distribution after `ids`, or None; never runs the model."""
    return _ranked_cache(loaded).get(tuple(ids))


def ranked_after(loaded: LoadedModel, ids) -> RankedLogits:
    """The distribution after `ids` (cached; a miss is one batched model call)."""
    hit = cached_ranked(loaded, ids)
    if hit is not None:
        return hit
    logits = batching.next_token_logits(loaded, list(ids))  # grouped with other sessions' requests
    return remember(loaded, ids, RankedLogits(logits))


def forget_distributions(loaded: LoadedModel) -> None:
    """Empty the model's distribution caches (tests that count model calls start from nothing)."""
    loaded.runtime.drop("ranked-by-ids")
    loaded.runtime.drop("distributions-by-prompt")


def next_token_distribution(model_id: str, prompt: str, chat_template: bool = False) -> NextTokenDistribution:
    """The full next-token distribution after `prompt` (cached: the model runs once per prompt)."""
    loaded = load_model(model_id)
    key = (prompt, bool(chat_template), start_tokens.mode_or_default())
    cache = _prompt_cache(loaded)
    hit = cache.get(key)
    if hit is not None:
        return hit
    ids = prompt_ids(loaded, prompt, chat_template)
    ranked = ranked_after(loaded, ids)
    result = NextTokenDistribution(model_id, prompt, bool(chat_template), tuple(ids), ranked.logits)
    cache.put(key, result)
    return result


class Stepper:
    """KV-cached decoding of one sequence: feed the prompt once, then one token per call.

    On CUDA it borrows a graph-captured static decoder from the model's pool while the sequence
    fits its cache (`playground.fastpath`), else it uses the plain dynamic cache. Call `close()`
    (or use it as a context manager) to hand the decoder back early; it is also returned when the
    stepper is garbage-collected or the sequence outgrows the static cache.
    """

    def __init__(self, loaded: LoadedModel, input_ids: list[int]):
        if not input_ids:
            raise PlaygroundError("Cannot step an empty sequence.")
        self.loaded = loaded
        self.ids: list[int] = list(input_ids)
        self.cache = None
        self._pool = fastpath.pool_for(loaded)
        self._decoder = self._pool.acquire() if self._pool is not None else None
        if self._decoder is not None and len(self.ids) < self._decoder.max_len:
            self.logits: torch.Tensor = self._decoder.prefill(self.ids).cpu()
        else:
            self.close()
            logits, self.cache = forward(loaded, torch.tensor([self.ids]))
            self.logits = logits[0].cpu()

    def append(self, token_id: int) -> torch.Tensor:
        """Append `token_id` and return the logits for the position after it."""
        if len(self.ids) >= self.loaded.context_length:
            raise PlaygroundError(f"The sequence reached the model's context length ({self.loaded.context_length}).")
        ids = [*self.ids, int(token_id)]
        # A failed step (time limit, out of memory, an injected fault) leaves the sequence as it was:
        # `ids` is committed only after the model call, and a half-updated cache is cropped back.
        if self._decoder is not None and len(ids) > self._decoder.max_len:
            logits, cache = forward(self.loaded, torch.tensor([ids]))  # outgrew the static cache
            self.close()
            self.cache = cache
        elif self._decoder is not None:
            self.logits = self._decoder.step(int(token_id)).cpu()
            self.ids = ids
            return self.logits
        else:
            try:
                if self.cache is None:  # a failed step left a cache that could not be repaired
                    logits, self.cache = forward(self.loaded, torch.tensor([ids]))
                else:  # grouped with other sessions' steps (the cache is updated in place)
                    logits = batching.decode_step(self.loaded, self.cache, [int(token_id)]).cpu()
            except BaseException:
                self._repair_cache()
                raise
        self.ids = ids
        self.logits = logits[0].cpu()
        return self.logits

    def _repair_cache(self) -> None:
        """After a failed model call: cut back what it wrote into the cache, layer by layer (a call
        that failed inside layer k has written layers 0..k only), or drop the cache (re-encode)."""
        length = len(self.ids)
        try:
            if self.cache is None or self.cache.get_seq_length() == length:
                return
            for layer in self.cache.layers:
                if not getattr(layer, "is_initialized", False) or layer.keys.shape[-2] == length:
                    continue
                if layer.keys.shape[-2] != length + 1:
                    raise ValueError("cannot cut this layer back")  # e.g. a sliding window that dropped entries
                layer.keys, layer.values = layer.keys[..., :length, :], layer.values[..., :length, :]
                if hasattr(layer, "cumulative_length"):  # a sliding window not yet full
                    layer.cumulative_length = length
            if self.cache.get_seq_length() != length:
                raise ValueError("the cut did not reach the length")
        except Exception:  # noqa: BLE001 - encode the sequence again next time
            self.cache = None

    def close(self) -> None:
        if getattr(self, "_decoder", None) is not None:
            self._pool.release(self._decoder)
            self._decoder = None

    def __enter__(self) -> "Stepper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
