"""The backend core: prompts to ids, one counted forward pass, next-token distributions, stepping.

- `prompt_ids` tokenizes a prompt as the model would (BOS where its tokenizer adds one), optionally
  through the chat template as a single user message. An empty prompt gives the distribution after
  BOS (or after EOS for tokenizers without a BOS token).
- `forward` is the only place that calls a model; it counts calls on the LoadedModel, so tests can
  prove that re-filtering a distribution never re-runs the model.
- `next_token_distribution` returns the full-vocabulary logits for a prompt, LRU-cached per
  (model, prompt, template) and shared by all sessions.
- `Stepper` is KV-cached incremental decoding of one sequence; generation and the sampling lab's
  token-by-token mode are built on it.
- `forward_all` is the same counted call returning every position's logits (teacher forcing).

What it leaves out: sampling rules (`playground.sampling`), generation loops and stop reasons
(`playground.generation`), beam search (`playground.beam`), batching across sessions.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from playground import batching, fastpath, limits
from playground.errors import PlaygroundError
from playground.models import LoadedModel, load_model

DISTRIBUTION_CACHE_SIZE = 64


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
        ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if not ids:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else loaded.eos_token_ids[0]
        ids = [int(start)]
    limit = loaded.context_length - 1
    return ids[-limit:] if len(ids) > limit else ids


@torch.inference_mode()
def forward(loaded: LoadedModel, input_ids: torch.Tensor, cache=None, attention_mask=None,
            position_ids=None):
    """One model call: (logits of the last position as float32 [batch, vocab], the KV cache)."""
    limits.check_deadline()
    limits.maybe_inject_fault("forward")
    loaded.forward_calls += 1
    with compute_slot(loaded):
        out = loaded.model(
            input_ids=input_ids.to(loaded.device),
            cache=cache,
            attention_mask=None if attention_mask is None else attention_mask.to(loaded.device),
            position_ids=None if position_ids is None else position_ids.to(loaded.device),
            use_cache=True,
            logits_to_keep=1,
        )
    return out.logits[:, -1, :].float(), out.cache


_CPU_COMPUTE = threading.Lock()


def compute_slot(loaded: LoadedModel):
    """On the CPU, one model call at a time in this process.

    Every call already uses all cores (torch's intra-op threads); two concurrent calls from two
    request threads each start their own thread team and oversubscribe the cores, which measured
    up to 8x slower per call on a 2-core machine. Serialising them keeps each call fast and the
    total throughput the same. On a GPU, kernels queue on the device anyway: no lock.
    """
    return _CPU_COMPUTE if loaded.device.type == "cpu" else contextlib.nullcontext()


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


_DIST_CACHE: OrderedDict[tuple, NextTokenDistribution] = OrderedDict()
_DIST_LOCK = threading.Lock()


def next_token_distribution(model_id: str, prompt: str, chat_template: bool = False) -> NextTokenDistribution:
    """The full next-token distribution after `prompt` (cached: the model runs once per prompt)."""
    key = (model_id, prompt, bool(chat_template))
    with _DIST_LOCK:
        hit = _DIST_CACHE.get(key)
        if hit is not None:
            _DIST_CACHE.move_to_end(key)
            return hit
    loaded = load_model(model_id)
    ids = prompt_ids(loaded, prompt, chat_template)
    logits = batching.next_token_logits(loaded, ids)  # grouped with other sessions' requests
    result = NextTokenDistribution(model_id, prompt, bool(chat_template), tuple(ids), logits)
    with _DIST_LOCK:
        _DIST_CACHE[key] = result
        while len(_DIST_CACHE) > DISTRIBUTION_CACHE_SIZE:
            _DIST_CACHE.popitem(last=False)
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
                else:
                    logits, self.cache = forward(self.loaded, torch.tensor([[int(token_id)]]), self.cache)
            except BaseException:
                self._repair_cache()
                raise
        self.ids = ids
        self.logits = logits[0].cpu()
        return self.logits

    def _repair_cache(self) -> None:
        """After a failed model call: crop KV entries it may have added, or drop the cache (re-encode)."""
        try:
            if self.cache is not None and self.cache.get_seq_length() != len(self.ids):
                self.cache.crop(len(self.ids))
                if self.cache.get_seq_length() != len(self.ids):
                    raise ValueError("crop did not reach the length")
        except Exception:  # noqa: BLE001 - e.g. a sliding-window cache: encode the sequence again next time
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


@torch.inference_mode()
def forward_all(loaded: LoadedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """One counted model call returning the logits of every position ([batch, seq, vocab], on the
    model's device, in its dtype): teacher forcing scores a whole text with it."""
    limits.check_deadline()
    limits.maybe_inject_fault("forward")
    loaded.forward_calls += 1
    with compute_slot(loaded):
        out = loaded.model(input_ids=input_ids.to(loaded.device), use_cache=False)
    return out.logits
