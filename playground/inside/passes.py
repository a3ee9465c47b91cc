"""The one forward pass behind every view of the "Inside the model" tab, cached per (model, text).

Attention weights exist only in transformers' eager attention: the other tabs run SDPA (faster,
and it never materialises the weights). Switching the shared model back and forth would race
with them (a mask built for one implementation, attention run by the other), so this module keeps
an *eager twin* on the model's runtime (`loaded.runtime.part("inside-eager-twin")`): a shallow
copy of the module tree whose parameters and buffers are the very same tensors (no memory), with
its own config set to eager. Only this tab's pass runs it, for the attention weights alone; the
shared model keeps SDPA and gives every other number of the pass (hidden states, distributions,
the cache), so they equal the other tabs' to the last digit even where low-bit weights round the
activations (eager and SDPA attention differ in the last bits, which bf16 activations amplify).

`inside_pass(model_id, text)` reads the text as every tab does (`playground.start_tokens`: the
start tokens, then the text's own tokens), runs the twin once inside `model_call` (time limit, faults,
`loaded.forward_calls`), and keeps on the CPU: every layer's attention weights, every hidden state
(the embeddings first, the last after the final norm), each position's log-probability of the
actual next token and its top candidates, the distribution after the whole text, and the size of
the real KV cache the pass built. The result is cached per text on the model's runtime (a byte-
bounded LRU), so switching layer or head, the lens, teacher forcing and the KV view never re-run
the model; `cached_pass` returns it without ever running anything.

What it leaves out: slicing the result into views (`attention`, `lens`, `forcing`, `kv`), drawing.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

import torch

from playground import start_tokens
from playground.errors import PlaygroundError
from playground.lru import BoundedLRU
from playground.model_call import model_call
from playground.models import LoadedModel, is_loaded, load_model
from playground.token_text import token_label

MAX_TOKENS = 128  # start tokens included: [layers, heads, T, T] weights stay a few MB
PASS_CACHE_ENTRIES = 32  # texts per model (a short text's entry is well under 1 MB)
PASS_CACHE_MB = 384  # a 128-token SmolLM2 entry is about 27 MB
TOP_K = 3  # candidates kept per position (what the model expected instead)
CHUNK = 32  # positions per output-layer chunk (Gemma's vocabulary is 262,144 wide)


@dataclass(frozen=True)
class EagerTwin:
    model: torch.nn.Module  # the same weights as loaded.model, eager attention
    lock: threading.Lock  # one pass at a time through the twin (its output hooks install lazily)


def _build_twin(loaded: LoadedModel) -> EagerTwin:
    original = loaded.model
    shared = {id(tensor): tensor for tensor in [*original.parameters(), *original.buffers()]}
    twin = copy.deepcopy(original, shared)  # modules and config copied; every tensor shared
    twin.set_attn_implementation("eager")  # on the copied config: the model itself keeps its own
    return EagerTwin(twin.eval(), threading.Lock())


def eager_twin(loaded: LoadedModel) -> EagerTwin:
    return loaded.runtime.part("inside-eager-twin", lambda: _build_twin(loaded))


@dataclass(frozen=True)
class InsidePass:
    model_id: str
    text: str
    ids: tuple[int, ...]
    start: int  # how many start tokens come before the text's own tokens
    labels: tuple[str, ...]  # each token as shown (visible whitespace; escape before HTML)
    attentions: torch.Tensor  # float32 CPU [layers, heads, T, T]; row = query, column = key
    hidden: torch.Tensor  # float32 CPU [layers + 1, T, hidden]: embeddings, ..., last (after the final norm)
    next_logprobs: torch.Tensor  # float32 CPU [T - 1]: log P(ids[i + 1] | ids[: i + 1])
    top_ids: torch.Tensor  # int64 CPU [T, TOP_K]: the most probable next tokens at each position
    top_probs: torch.Tensor  # float32 CPU [T, TOP_K]
    last_logits: torch.Tensor  # float32 CPU [vocab]: the distribution after the whole text
    cache_bytes: int  # the real KV cache the pass built (keys and values of every layer)
    cache_tokens: tuple[int, ...]  # tokens each layer's cache holds (a sliding window keeps fewer)
    seconds: float

    @property
    def tokens(self) -> int:
        return len(self.ids)

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.attentions, self.hidden, self.next_logprobs,
                                                           self.top_ids, self.top_probs, self.last_logits))


def text_ids(loaded: LoadedModel, text: str) -> tuple[list[int], int]:
    """(ids, number of start tokens): the start tokens, then the text (`playground.start_tokens`, as
    every tab reads a text)."""
    tokenizer = loaded.tokenizer
    if tokenizer is None:
        raise PlaygroundError(f"Model {loaded.id} has no tokenizer on this machine.")
    if not text:
        raise PlaygroundError("Type a text to look inside.")
    read = start_tokens.text_ids(tokenizer, text)
    start, own = list(read.start), list(read.text)
    limit = min(MAX_TOKENS, loaded.context_length)
    if len(start) + len(own) > limit:
        raise PlaygroundError(f"This view reads at most {limit} tokens (start token included); the text has "
                              f"{len(start) + len(own)}. Shorten it.")
    return start + own, len(start)


def output_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """The output layer on (already normed) hidden states: float32 logits, with the model's final
    soft-capping where it has one (Gemma 2's; Gemma 3 has none)."""
    logits = model.lm_head(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def cache_size(cache) -> tuple[int, tuple[int, ...]]:
    """(bytes, tokens per layer) of a transformers KV cache: its key and value tensors."""
    total, tokens = 0, []
    for layer in getattr(cache, "layers", []):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if keys is None or values is None or keys.numel() == 0:
            tokens.append(0)
            continue
        total += keys.numel() * keys.element_size() + values.numel() * values.element_size()
        tokens.append(int(keys.shape[-2]))
    return total, tuple(tokens)


@torch.inference_mode()
def run_pass(loaded: LoadedModel, text: str) -> InsidePass:
    """One eager forward pass of `text`, everything the views need kept (uncached)."""
    ids, start = text_ids(loaded, text)
    holder = eager_twin(loaded)
    twin = holder.model
    began = time.perf_counter()
    input_ids = torch.tensor([ids], device=loaded.device)
    with model_call(loaded), holder.lock:
        # the numbers (hidden states, distributions, the cache) from the model every tab runs, so the
        # lens and teacher forcing agree with the lab to the last digit; the weights from the twin
        out = loaded.model.model(input_ids=input_ids, use_cache=True, output_hidden_states=True)
        attentions = twin.model(input_ids=input_ids, use_cache=False, output_attentions=True).attentions
        final = out.last_hidden_state[0]
        targets = input_ids[0, 1:]
        picked, top_ids, top_probs = [], [], []
        for first in range(0, len(ids), CHUNK):  # the output layer in chunks: never [T, vocab] at once
            logprobs = torch.log_softmax(output_logits(loaded.model, final[first:first + CHUNK]), dim=-1)
            upto = min(first + CHUNK, len(ids) - 1)
            if upto > first:
                picked.append(logprobs[: upto - first].gather(1, targets[first:upto, None])[:, 0])
            best = logprobs.topk(min(TOP_K, logprobs.shape[-1]), dim=-1)
            top_ids.append(best.indices)
            top_probs.append(best.values.exp())
        last_logits = output_logits(loaded.model, final[-1:])[0]
        attentions = torch.stack([a[0] for a in attentions]).float().cpu()
        hidden = torch.stack([h[0] for h in out.hidden_states]).float().cpu()
        cache_bytes, cache_tokens = cache_size(out.cache)
    tokenizer = loaded.tokenizer
    return InsidePass(
        model_id=loaded.id, text=text, ids=tuple(ids), start=start,
        labels=tuple(token_label(tokenizer, i) for i in ids), attentions=attentions, hidden=hidden,
        next_logprobs=(torch.cat(picked) if picked else torch.zeros(0)).float().cpu(),
        top_ids=torch.cat(top_ids).cpu(), top_probs=torch.cat(top_probs).float().cpu(),
        last_logits=last_logits.float().cpu(), cache_bytes=cache_bytes, cache_tokens=cache_tokens,
        seconds=time.perf_counter() - began,
    )


def _pass_cache(loaded: LoadedModel) -> BoundedLRU:
    return loaded.runtime.part("inside-passes", lambda: BoundedLRU(PASS_CACHE_ENTRIES, PASS_CACHE_MB * 2**20))


def inside_pass(model_id: str, text: str) -> InsidePass:
    """The pass of `text` on `model_id` (cached: the model runs once per text)."""
    loaded = load_model(model_id)
    cache = _pass_cache(loaded)
    key = (start_tokens.mode_or_default(), text)
    hit = cache.get(key)
    if hit is not None:
        return hit
    result = run_pass(loaded, text)
    cache.put(key, result, nbytes=result.nbytes)
    return result


def cached_pass(model_id: str, text: str) -> InsidePass | None:
    """The cached pass, or None (the model not loaded, or this text not run yet); never runs anything."""
    if not is_loaded(model_id):
        return None
    return _pass_cache(load_model(model_id)).get((start_tokens.mode_or_default(), text))


def forget_passes(loaded: LoadedModel) -> None:
    """Empty the model's pass cache (tests that count model calls start from nothing)."""
    loaded.runtime.drop("inside-passes")
    loaded.runtime.drop("inside-lens")
