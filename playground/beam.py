"""Beam search that records its whole tree, with transformers' exact semantics.

The lecture's one-liner: "keep k-best samples around; expand all, filter according to prob". Here is
the version `model.generate(num_beams=...)` runs (transformers 5.24, `GenerationMixin._beam_search`),
step by step, for one prompt; each step of the loop is one function here:

1. Feed the prompt once per beam (all beams start as copies; only the first one counts at step 1,
   the others start at -1e9 so the first step does not pick the same token several times).
2. Each step, one batched forward over the live beams (KV-cached; the cache is reordered to follow
   the beams). Log-softmax in float32, added to each beam's running sum of log-probabilities.
3. `expand_and_score`: take the top K continuations over all beams and the whole vocabulary, where
   K = max(2, 1 + number of EOS ids) * num_beams: enough that num_beams of them can go on even if
   the best ones all end with EOS. The best num_beams candidates that do not end (an EOS id, or the
   length limit) become the next live beams; the rest are pruned.
4. `FinishedHypotheses.update`: a candidate that ends may join the finished hypotheses, but only if
   it is among the first num_beams of the K: its score is
   sum of log-probabilities / generated_length ** length_penalty, and the finished list keeps the
   num_beams best scores.
5. `record_step` adds the step's K candidates to the tree; `stop_rule` ends the search when no
   candidate can continue (max length), or per `early_stopping`: True stops as soon as num_beams
   hypotheses are finished; False stops when the best live beam, scored at its current length,
   cannot beat the worst finished one; "never" scores it at max length instead when
   length_penalty > 0 (the canonical beam search).
6. Return the num_return_sequences best finished hypotheses, best first, with their scores
   (`sequences_scores` in transformers).

Every candidate considered at step 3 becomes a node of the tree: parent, token, step log-probability,
cumulative log-probability, normalized score, rank among its siblings and its fate:

- `kept`: it became a live beam for the next step;
- `pruned`: it was considered but dropped (not among the best live continuations, or it ended but
  was not good enough, or not early enough, to join the finished hypotheses);
- `finished`: it ended and joined the finished hypotheses, but is not among those returned (it was
  pushed out later or ranks below num_return_sequences);
- `returned`: the last token of a returned sequence.

`BeamSettings` is checked once, when it is built (an invalid one cannot exist). The end-of-sequence
ids are the loaded model's (`LoadedModel.eos_token_ids`: the generation config's, the model
config's and the tokenizer's), unless the caller names others. `beam_search(..., on_step=...)`
calls back after every step with the result so far (its nodes, `steps`), for progress bars.

`run_beam_search` loads an in-process model, fits the prompt, runs the search and decodes the
comparison paths; the tab and the CLI reach it through the model's backend (`playground.backends`),
which on an engine model runs `engine_search` instead: the same steps (`search_steps`) on rows from the engine's top-K (`playground.engines.beam`: exact,
given the engine's numbers), without the comparison paths. `decode_path` decodes them (greedy, or one
sample at temperature 1) with the sampling lab's own random-number scheme
(`generation.choose_token`: a draw depends on the seed and the position only), so "seed 42" here
draws the tokens `generation.generate(..., seed=42)` draws in the sampling lab.

What it leaves out: logits processors (repetition penalty, temperature, ...), sampling beams
(`do_sample=True` with beams), group/constrained beam search, batches of several prompts, and models
without a reorderable KV cache. With num_beams=1 this is beam search with one beam (two candidates
per step), which matches greedy decoding until an EOS id is among the candidates; transformers runs
plain greedy decoding instead when num_beams=1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from playground import batching
from playground.engines import beam as engine_beam
from playground.errors import PlaygroundError
from playground.generation import Decoder, choose_token
from playground.model_call import forward
from playground.model_spec import ModelSpec
from playground.models import LoadedModel, get_spec, load_model
from playground.prompts import fit_prompt
from playground.sampling import RankedLogits, SamplingSettings
from playground.token_text import token_label

MAX_BEAMS = 8
MAX_NEW_TOKENS = 40
MAX_PROMPT_TOKENS = 256  # each beam re-reads the prompt once: 8 x 256 tokens is a CPU's second or two
NEG_INF = -1.0e9  # transformers' stand-in for "impossible"
DEAD = -1.0e8  # a running score below this carries a NEG_INF: not a real beam
GREEDY = SamplingSettings(temperature=0.0)  # the greedy comparison path
SAMPLED = SamplingSettings(temperature=1.0)  # the sampled one: plain sampling, no filter


@dataclass(frozen=True)
class BeamSettings:
    """transformers' beam-search settings, checked and normalized when built (PlaygroundError for
    anything out of range; early_stopping also from the strings true, false, never)."""

    num_beams: int = 4
    max_new_tokens: int = 20
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1

    def __post_init__(self):
        try:
            num_beams = int(self.num_beams)
            max_new_tokens = int(self.max_new_tokens)
            num_return = int(self.num_return_sequences)
            length_penalty = float(self.length_penalty)
        except (TypeError, ValueError) as exc:
            raise PlaygroundError(f"Beam search settings must be numbers: {exc}") from None
        if not 1 <= num_beams <= MAX_BEAMS:
            raise PlaygroundError(f"Number of beams must be between 1 and {MAX_BEAMS}, not {num_beams}.")
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
            raise PlaygroundError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS}, not {max_new_tokens}.")
        if not 1 <= num_return <= num_beams:
            raise PlaygroundError(f"Number of returned sequences must be between 1 and the number of beams "
                                  f"({num_beams}), not {num_return}.")
        if not math.isfinite(length_penalty) or abs(length_penalty) > 10:
            raise PlaygroundError(f"Length penalty must be a number between -10 and 10, not {self.length_penalty!r}.")
        for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens),
                            ("length_penalty", length_penalty),
                            ("early_stopping", parse_early_stopping(self.early_stopping)),
                            ("num_return_sequences", num_return)):
            object.__setattr__(self, name, value)


@dataclass
class BeamNode:
    id: int
    parent: int | None  # None only for the root (the prompt)
    step: int  # 0 for the root; n for the n-th generated token
    token_id: int | None
    label: str  # the token's text with visible whitespace (not HTML-escaped)
    logprob: float  # log p(token | the parent's sequence)
    cumulative: float  # sum of the log-probabilities from the root to here
    score: float  # cumulative / step ** length_penalty, the score a hypothesis ending here gets
    rank: int  # 1 = the most probable of the candidates with the same parent at this step
    vocab_rank: int  # 1 + how many vocabulary tokens the model found strictly more probable
    order: int  # position among this step's K candidates, best cumulative first
    status: str  # root, kept, pruned, finished, returned
    ended: bool = False  # hit a stopping criterion: an EOS id or the length limit
    eos: bool = False  # the token is an EOS id


@dataclass
class BeamSequence:
    node: int  # the tree node of its last token (-1 only if fewer hypotheses finished than returned)
    ids: list[int]  # generated ids only (the prompt is left out)
    text: str
    score: float  # transformers' `sequences_scores`: cumulative / length ** length_penalty
    cumulative: float
    length: int


@dataclass
class PathRecord:
    """One decoded sequence outside the beam search (greedy or sampled), for comparison."""

    kind: str  # "greedy" or "sampled"
    ids: list[int]
    labels: list[str]
    logprobs: list[float]
    cumulative: float
    score: float  # normalized like the beams: cumulative / length ** length_penalty
    text: str
    node_ids: list[int | None]  # the beam tree's node for each prefix, None once it leaves the tree
    seed: int | None = None


@dataclass
class BeamResult:
    model_id: str
    prompt_ids: list[int]
    prompt_text: str
    settings: BeamSettings
    eos_token_ids: list[int]
    candidates_per_step: int
    nodes: list[BeamNode]
    sequences: list[BeamSequence]  # empty until the search is over
    steps: int  # how many steps ran (so far, in an `on_step` callback)
    stop_reason: str  # "running" until the search is over
    forward_calls: int
    seconds: float
    greedy: PathRecord | None = None
    sampled: PathRecord | None = None
    prompt_note: str | None = None  # set when the prompt was cut to MAX_PROMPT_TOKENS
    engine_note: str | None = None  # set when it ran on an inference engine (`playground.engines.beam`)
    user_prompt: str | None = None  # the message the user typed, where the chat template wrapped it

    def to_dict(self) -> dict:
        return asdict(self)


StepCallback = Callable[[int, BeamResult], None]  # (step just done, the result so far)


def parse_early_stopping(value) -> bool | str:
    """True / False / "never" from a bool or the strings true, false, never (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    if text == "never":
        return "never"
    raise PlaygroundError(f"early_stopping must be true, false or never, not {value!r}.")


# ---------------------------------------------------------------------------------------------
# The steps of the search. Tensors of candidates are [1, K] (one prompt), in transformers' shapes.


@dataclass
class StepCandidates:
    """One step's top K continuations over all live beams, best cumulative log-probability first."""

    log_probs: torch.Tensor  # [num_beams, vocab]: this step's log-softmax after each live beam
    cumulative: torch.Tensor  # the candidates' sums of log-probabilities
    parent_slots: torch.Tensor  # the live beam each one extends
    token_ids: torch.Tensor
    ended: torch.Tensor  # bool: an EOS id, or the length limit
    scores: torch.Tensor  # cumulative / generated_length ** length_penalty
    next_indices: torch.Tensor  # [1, num_beams]: the candidates that become the live beams ...
    next_scores: torch.Tensor  # ... and their running scores (below DEAD: an ended one, not a beam)


def expand_and_score(logits: torch.Tensor, running_scores: torch.Tensor, k: int, eos: torch.Tensor | None,
                     length: int, at_max_length: bool, length_penalty: float,
                     normalized: bool = False) -> StepCandidates:
    """Steps 2 and 3: every live beam's continuations scored, the best K kept, the next beams picked.

    `normalized`: the rows are log-probabilities already (an engine's, -inf where unknown), not logits.
    """
    num_beams = running_scores.shape[1]
    log_probs = logits.to(torch.float32)
    if not normalized:
        log_probs = torch.nn.functional.log_softmax(log_probs, dim=-1)
    vocab_size = log_probs.shape[-1]
    accumulated = (log_probs[None] + running_scores[:, :, None]).reshape(1, -1)
    cumulative, indices = torch.topk(accumulated, k=k)
    token_ids = indices % vocab_size
    ended = torch.full_like(token_ids, at_max_length, dtype=torch.bool)
    if eos is not None:
        ended |= torch.isin(token_ids, eos)
    running = cumulative + ended.to(torch.float32) * NEG_INF
    next_indices = torch.topk(running, k=num_beams)[1]
    return StepCandidates(
        log_probs=log_probs, cumulative=cumulative, parent_slots=indices // vocab_size, token_ids=token_ids,
        ended=ended, scores=cumulative / (length ** length_penalty), next_indices=next_indices,
        next_scores=torch.take_along_dim(running, next_indices, dim=1),
    )


@dataclass
class FinishedHypotheses:
    """Step 4: the num_beams best finished hypotheses so far (scores, filled slots, tree nodes)."""

    scores: torch.Tensor  # [1, num_beams], NEG_INF in an empty slot
    filled: torch.Tensor  # [1, num_beams] bool
    nodes: list[int | None]

    @classmethod
    def empty(cls, num_beams: int, device) -> FinishedHypotheses:
        return cls(torch.full((1, num_beams), NEG_INF, dtype=torch.float, device=device),
                   torch.zeros((1, num_beams), dtype=torch.bool, device=device), [None] * num_beams)

    @property
    def full(self) -> bool:
        return bool(torch.all(self.filled))

    def update(self, candidates: StepCandidates, first_node: int, early_stopping: bool | str,
               open_: torch.Tensor) -> list[int]:
        """Merge the ended candidates among the first num_beams; returns the tree nodes that joined.

        `first_node` is the node id the step's first candidate gets; `open_` is the stop rule's
        "a live beam can still beat the finished ones" ([1, 1] bool) as of the previous step.
        """
        num_beams = self.scores.shape[1]
        first = torch.arange(candidates.token_ids.shape[1], device=self.scores.device) < num_beams
        did_finish = candidates.ended & first[None, :]
        beams_full = torch.all(self.filled, dim=-1, keepdim=True) & (early_stopping is True)
        finish_scores = candidates.scores + beams_full.to(torch.float32) * NEG_INF
        finish_scores += (~open_).to(torch.float32) * NEG_INF
        finish_scores += (~did_finish) * NEG_INF
        merged_scores = torch.cat((self.scores, finish_scores), dim=1)
        merged_filled = torch.cat((self.filled, did_finish), dim=1)
        keep = torch.topk(merged_scores, k=num_beams)[1]
        self.scores = torch.take_along_dim(merged_scores, keep, dim=1)
        self.filled = torch.take_along_dim(merged_filled, keep, dim=1)
        nodes, joined = [], []
        for slot, filled in zip(keep[0].tolist(), self.filled[0].tolist()):
            if slot < num_beams:
                nodes.append(self.nodes[slot])
            else:
                node_id = first_node + slot - num_beams if filled else None
                if node_id is not None:
                    joined.append(node_id)
                nodes.append(node_id)
        self.nodes = nodes
        return joined


def record_step(nodes: list[BeamNode], step: int, candidates: StepCandidates, beam_nodes: Sequence[int],
                joined: Sequence[int], eos: Sequence[int], label: Callable[[int], str]) -> None:
    """Add the step's candidates to the tree (`beam_nodes`: the node each live beam ends at)."""
    slots = candidates.parent_slots[0]
    token_ids = candidates.token_ids[0]
    step_log_probs = candidates.log_probs[slots, token_ids]
    vocab_ranks = (candidates.log_probs[slots] > step_log_probs[:, None]).sum(dim=1).add(1).tolist()
    kept = {i for i, score in zip(candidates.next_indices[0].tolist(), candidates.next_scores[0].tolist())
            if score > DEAD}
    first_id = len(nodes)
    siblings: dict[int, int] = {}
    for order, (slot, token, logprob, cumulative, score, ended) in enumerate(zip(
            slots.tolist(), token_ids.tolist(), step_log_probs.tolist(), candidates.cumulative[0].tolist(),
            candidates.scores[0].tolist(), candidates.ended[0].tolist())):
        parent = beam_nodes[slot]
        siblings[parent] = siblings.get(parent, 0) + 1
        nodes.append(BeamNode(
            id=first_id + order, parent=parent, step=step, token_id=token, label=label(token), logprob=logprob,
            cumulative=cumulative, score=score, rank=siblings[parent], vocab_rank=vocab_ranks[order], order=order,
            status="kept" if order in kept else "pruned", ended=ended, eos=token in eos,
        ))
    for node_id in joined:
        nodes[node_id].status = "finished"


def stop_rule(candidates: StepCandidates, finished: FinishedHypotheses, running_scores: torch.Tensor,
              open_: torch.Tensor, settings: BeamSettings, length: int) -> tuple[str | None, torch.Tensor]:
    """Step 5: why the search ends after this step (None: it goes on), and the updated `open_`.

    `open_` stays True while the best live beam, scored at its best possible length, beats the
    worst finished hypothesis (transformers' `_check_early_stop_heuristic`).
    """
    if settings.early_stopping == "never" and settings.length_penalty > 0.0:
        best_length = settings.max_new_tokens
    else:
        best_length = length
    best_possible = running_scores[:, :1] / (best_length ** settings.length_penalty)
    worst_finished = torch.where(finished.filled, torch.min(finished.scores, dim=1, keepdim=True)[0], NEG_INF)
    open_ = open_ & torch.any(best_possible > worst_finished, dim=-1, keepdim=True)
    if torch.all(candidates.ended):
        return "max_new_tokens", open_
    if finished.full and settings.early_stopping is True:
        return "early_stopping: num_beams hypotheses finished", open_
    if not bool(torch.any(open_)):
        return "no live beam can beat the finished hypotheses", open_
    return None, open_


def _reorder(cache, beam_idx: torch.Tensor) -> None:
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(beam_idx)
    else:  # pragma: no cover - every cache transformers 5.24 builds for our models has it
        raise PlaygroundError("This model's KV cache cannot be reordered, so beam search cannot run on it.")


def _decode(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=False) if tokenizer is not None else ""


def _labeller(tokenizer) -> Callable[[int], str]:
    return (lambda token: token_label(tokenizer, token)) if tokenizer is not None else str


def _check_prompt(loaded: LoadedModel, input_ids: Sequence[int], settings: BeamSettings) -> list[int]:
    if not isinstance(settings, BeamSettings):
        raise PlaygroundError("settings must be a BeamSettings.")
    ids = [int(i) for i in input_ids]
    if not ids:
        raise PlaygroundError("The prompt has no tokens.")
    if len(ids) + settings.max_new_tokens > loaded.context_length:
        raise PlaygroundError(
            f"Prompt ({len(ids)} tokens) plus {settings.max_new_tokens} new tokens exceeds the model's "
            f"context length ({loaded.context_length})."
        )
    return ids


# (the live beams' parent slots, their new tokens) -> the next-token logits of the live beams
FollowBeams = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def new_result(model_id: str, input_ids: list[int], prompt_text: str, settings: BeamSettings,
               eos: list[int]) -> BeamResult:
    """A search's result before its first step: the root only."""
    return BeamResult(
        model_id=model_id, prompt_ids=input_ids, prompt_text=prompt_text, settings=settings, eos_token_ids=eos,
        candidates_per_step=max(2, 1 + len(eos)) * settings.num_beams,  # candidates considered per step
        nodes=[BeamNode(0, None, 0, None, "prompt", 0.0, 0.0, 0.0, 1, 1, 0, "root")], sequences=[], steps=0,
        stop_reason="running", forward_calls=1, seconds=0.0,  # calls counted here: the model's counter is shared
    )


@torch.inference_mode()
def beam_search(loaded: LoadedModel, input_ids: Sequence[int], settings: BeamSettings,
                eos_token_ids: Sequence[int] | None = None, on_step: StepCallback | None = None) -> BeamResult:
    """Run transformers' beam search on one prompt and record every candidate it considered."""
    input_ids = _check_prompt(loaded, input_ids, settings)
    eos = [int(e) for e in (eos_token_ids if eos_token_ids is not None else loaded.eos_token_ids)]
    started = time.perf_counter()
    logits, cache = forward(loaded, torch.tensor([input_ids] * settings.num_beams))
    result = new_result(loaded.id, input_ids, _decode(loaded.tokenizer, input_ids), settings, eos)

    def follow(slots: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        # the live beams' caches move with them; one decode step per live beam, grouped with other
        # sessions' steps (the cache in place)
        _reorder(cache, slots)
        result.forward_calls += 1
        return batching.decode_step(loaded, cache, tokens[:, None])

    finished = search_steps(result, logits, follow, _labeller(loaded.tokenizer), on_step)
    result.sequences = returned_sequences(result, finished, loaded.tokenizer)
    result.seconds = time.perf_counter() - started
    return result


def search_steps(result: BeamResult, logits: torch.Tensor, follow: FollowBeams, label: Callable[[int], str],
                 on_step: StepCallback | None = None, normalized: bool = False) -> FinishedHypotheses:
    """Steps 2 to 5 until the stop rule ends the search; returns the finished hypotheses.

    `logits` are the first step's rows (one per beam, all after the prompt); `follow(slots, tokens)`
    gives the next rows once the live beams follow `slots` with `tokens` (in-process: a decode step
    over the reordered cache; on an engine: one request per live beam). `normalized`: the rows are
    log-probabilities already (see `expand_and_score`).
    """
    settings, eos = result.settings, result.eos_token_ids
    num_beams, k = settings.num_beams, result.candidates_per_step
    device = logits.device  # the search runs where the logits are, as in transformers
    eos_tensor = torch.tensor(eos, dtype=torch.long, device=device) if eos else None
    beam_nodes = [0] * num_beams  # the tree node each live beam ends at
    running_scores = torch.zeros((1, num_beams), dtype=torch.float, device=device)
    running_scores[:, 1:] = NEG_INF
    finished = FinishedHypotheses.empty(num_beams, device)
    open_ = torch.ones((1, 1), dtype=torch.bool, device=device)
    for step in range(1, settings.max_new_tokens + 1):  # step = generated length of this step's candidates
        candidates = expand_and_score(logits, running_scores, k, eos_tensor, step, step >= settings.max_new_tokens,
                                      settings.length_penalty, normalized)
        first_id = len(result.nodes)
        joined = finished.update(candidates, first_id, settings.early_stopping, open_)
        record_step(result.nodes, step, candidates, beam_nodes, joined, eos, label)
        beam_nodes = [first_id + i for i in candidates.next_indices[0].tolist()]
        running_scores = candidates.next_scores
        result.steps = step
        if on_step is not None:
            on_step(step, result)
        reason, open_ = stop_rule(candidates, finished, running_scores, open_, settings, step)
        if reason is not None:
            result.stop_reason = reason
            break
        # Follow the live beams: their tokens are the next input.
        next_slots = candidates.next_indices[0]
        logits = follow(candidates.parent_slots[0, next_slots], candidates.token_ids[0, next_slots])
    return finished


def returned_sequences(result: BeamResult, finished: FinishedHypotheses, tokenizer) -> list[BeamSequence]:
    """Step 6: the num_return_sequences best finished hypotheses, best first (marked `returned`)."""
    sequences = []
    for rank in range(result.settings.num_return_sequences):
        node_id = finished.nodes[rank]
        score = float(finished.scores[0, rank])
        if node_id is None:
            sequences.append(BeamSequence(-1, [], "", score, NEG_INF, 0))
            continue
        result.nodes[node_id].status = "returned"
        ids = path_ids(result.nodes, node_id)
        sequences.append(BeamSequence(node_id, ids, _decode(tokenizer, ids), score,
                                      result.nodes[node_id].cumulative, len(ids)))
    return sequences


def path_ids(nodes: Sequence[BeamNode], node_id: int) -> list[int]:
    """Token ids from the root (exclusive) to `node_id` (inclusive)."""
    ids = []
    node = nodes[node_id]
    while node.parent is not None:
        ids.append(node.token_id)
        node = nodes[node.parent]
    return ids[::-1]


# ---------------------------------------------------------------------------------------------
# Comparison paths and the one call the tab and the CLI make


def _tree_nodes_along(result: BeamResult, ids: Sequence[int]) -> list[int | None]:
    """For each prefix of `ids`, the tree node holding it (None from where the path leaves the tree)."""
    by_token = {}
    for node in result.nodes[1:]:
        by_token.setdefault((node.parent, node.token_id), node.id)
    found, current = [], 0
    for token in ids:
        current = by_token.get((current, token)) if current is not None else None
        found.append(current)
    return found


@torch.inference_mode()
def decode_path(loaded: LoadedModel, input_ids: Sequence[int], max_new_tokens: int, eos_token_ids: Sequence[int],
                length_penalty: float = 1.0, seed: int | None = None) -> PathRecord:
    """Greedy decoding (seed None) or plain sampling at temperature 1 (seeded), KV-cached, with log-probs.

    The tokens are chosen as the sampling lab chooses them (`generation.choose_token` with `GREEDY`
    or `SAMPLED`), so a seed draws the same tokens as `generation.generate(..., seed=seed)`.
    """
    settings = GREEDY if seed is None else SAMPLED
    decoder = Decoder(loaded, input_ids)
    ids, logprobs = [], []
    try:
        for position in range(max_new_tokens):
            ranked = RankedLogits(decoder.logits)
            _, token = choose_token(ranked, settings, 0 if seed is None else seed, position)
            ids.append(token)
            logprobs.append(float(torch.log_softmax(ranked.logits, dim=-1)[token]))
            if token in eos_token_ids or position == max_new_tokens - 1:
                break
            decoder.push(token)
    finally:
        decoder.stepper.close()
    cumulative = float(sum(logprobs))
    label = _labeller(loaded.tokenizer)
    return PathRecord(
        kind="greedy" if seed is None else "sampled", ids=ids, labels=[label(t) for t in ids], logprobs=logprobs,
        cumulative=cumulative, score=cumulative / (len(ids) ** length_penalty), text=_decode(loaded.tokenizer, ids),
        node_ids=[], seed=seed,
    )


def add_comparisons(loaded: LoadedModel, result: BeamResult, greedy: bool = True,
                    sample_seed: int | None = None) -> BeamResult:
    """Attach the greedy path and/or one sampled path, each mapped onto the tree where it follows it."""
    settings = result.settings
    for kind, wanted, seed in (("greedy", greedy, None), ("sampled", sample_seed is not None, sample_seed)):
        if wanted:
            path = decode_path(loaded, result.prompt_ids, settings.max_new_tokens, result.eos_token_ids,
                               settings.length_penalty, seed=seed)
            path.node_ids = _tree_nodes_along(result, path.ids)
            setattr(result, kind, path)
    return result


def run_beam_search(model_id: str, prompt: str, settings: BeamSettings, chat_template: bool = False,
                    compare_greedy: bool = False, sample_seed: int | None = None,
                    eos_token_ids: Sequence[int] | None = None, on_step: StepCallback | None = None) -> BeamResult:
    """Load the model, tokenize the prompt, run the recorded beam search and the asked-for comparisons.

    One call gives everything the tab draws: the tree, the returned sequences, and the greedy path
    (`compare_greedy`) and the sampled one (`sample_seed`). `on_step` is called after every search
    step (see `beam_search`). A prompt longer than MAX_PROMPT_TOKENS is cut from the left
    (`result.prompt_note` says so). An in-process model's search; the tab and the CLI call the
    model's backend (`backends.backend_for(model_id).beam_search`), which runs this or, on an engine
    model, `engine_search` (the same steps on the engine's top-K, without the comparison paths;
    `result.engine_note` says so).
    """
    if prompt is not None and not isinstance(prompt, str):
        raise PlaygroundError("The prompt must be text.")
    loaded = load_model(model_id)
    fitted = fit_prompt(loaded, prompt, chat_template, MAX_PROMPT_TOKENS)
    result = beam_search(loaded, fitted.ids, settings, eos_token_ids=eos_token_ids, on_step=on_step)
    result.prompt_note = fitted.note
    result.user_prompt = prompt if chat_template else None
    return add_comparisons(loaded, result, greedy=compare_greedy, sample_seed=sample_seed)


def engine_search(spec: ModelSpec, prompt: str | None, settings: BeamSettings, chat_template: bool = False,
                  compare: bool = False, eos_token_ids: Sequence[int] | None = None,
                  on_step: StepCallback | None = None) -> BeamResult:
    """`run_beam_search` on an engine model: the same steps (`search_steps`) on each live beam's row
    from the engine (`engines.beam.EngineBeams`: its top K, -inf elsewhere, which is exact: see
    there); `compare`: comparison paths were asked for, which engines leave out (the note says so)."""
    if not isinstance(settings, BeamSettings):
        raise PlaygroundError("settings must be a BeamSettings.")
    started = time.perf_counter()
    beams = engine_beam.open_beams(spec, prompt, chat_template, MAX_PROMPT_TOKENS, eos_token_ids)
    result = new_result(spec.id, beams.ids, beams.prompt_text, settings, beams.eos)
    rows = beams.first_rows(settings.num_beams, result.candidates_per_step)

    def follow(slots: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        result.forward_calls += 1  # one step over the live beams (one engine request each)
        return beams.follow(slots, tokens)

    finished = search_steps(result, rows, follow, beams.label, on_step, normalized=True)
    result.sequences = returned_sequences(result, finished, beams)
    result.prompt_note, result.engine_note = beams.prompt_note, beams.note(compare)
    result.user_prompt = prompt if chat_template else None
    result.seconds = time.perf_counter() - started
    return result


@dataclass(frozen=True)
class BeamPreset:
    """One click in the lecture: a prompt, a model and beam settings that show one point."""

    name: str
    model_id: str
    prompt: str
    chat_template: bool
    settings: BeamSettings
    compare_greedy: bool = True
    sample_seed: int | None = None
    collapse_pruned: bool = False
    note: str = ""


PRESETS = (
    BeamPreset(
        "Greedy vs beam", "gemma-3-270m", "The best thing about living in a small town is", False,
        BeamSettings(4, 12, 1.0, False, 4), compare_greedy=True,
        note="Greedy takes the most probable token each step; beam search keeps 4 candidates and can find "
             "a sequence with a higher total log-probability.",
    ),
    BeamPreset(
        "Chat answer ends with EOS", "smollm2-135m-instruct", "What is the capital of France?", True,
        BeamSettings(3, 24, 1.0, True, 3), compare_greedy=True,
        note="Hypotheses that emit <|im_end|> finish (diamonds); early stopping ends the search once 3 are done.",
    ),
    BeamPreset(
        "Short answers win (length penalty -1)", "smollm2-135m-instruct", "What is the capital of France?", True,
        BeamSettings(4, 20, -1.0, False, 4), compare_greedy=True,
        note="score = log p / length ** -1 = log p x length: longer hypotheses are punished twice.",
    ),
    BeamPreset(
        "Long answers win (length penalty 2)", "smollm2-135m-instruct", "What is the capital of France?", True,
        BeamSettings(4, 20, 2.0, "never", 4), compare_greedy=True,
        note="score = log p / length ** 2: each extra token divides the (negative) score, favouring long answers.",
    ),
    BeamPreset(
        "Greedy, beam and a sample", "gemma-3-270m", "Once upon a time, there was a", False,
        BeamSettings(4, 16, 1.0, False, 2), compare_greedy=True, sample_seed=42,
        note="A random sample at temperature 1 usually has a much lower log-probability than either search.",
    ),
    BeamPreset(
        "Big tree: 8 beams x 40 tokens", "gemma-3-270m", "The three most important inventions in history are", False,
        BeamSettings(8, 40, 1.0, "never", 8), compare_greedy=True, collapse_pruned=True,
        note="16 candidates per step; collapse the pruned ones to follow the live beams, zoom in to read.",
    ),
)
