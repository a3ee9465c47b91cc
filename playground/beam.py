"""Beam search that records its whole tree, with transformers' exact semantics.

The lecture's one-liner: "keep k-best samples around; expand all, filter according to prob". Here is
the version `model.generate(num_beams=...)` runs (transformers 5.24, `GenerationMixin._beam_search`),
step by step, for one prompt:

1. Feed the prompt once per beam (all beams start as copies; only the first one counts at step 1,
   the others start at -1e9 so the first step does not pick the same token several times).
2. Each step, one batched forward over the live beams (KV-cached; the cache is reordered to follow
   the beams). Log-softmax in float32, added to each beam's running sum of log-probabilities.
3. Take the top K continuations over all beams and the whole vocabulary, where
   K = max(2, 1 + number of EOS ids) * num_beams: enough that num_beams of them can go on even if
   the best ones all end with EOS.
4. A candidate that ends (its token is an EOS id, or it reaches max length) may join the finished
   hypotheses, but only if it is among the first num_beams of the K: its score is
   sum of log-probabilities / generated_length ** length_penalty, and the finished list keeps the
   num_beams best scores. The best num_beams candidates that did not end become the next live beams;
   the rest are pruned.
5. Stop when no candidate can continue (max length), or per `early_stopping`: True stops as soon as
   num_beams hypotheses are finished; False stops when the best live beam, scored at its current
   length, cannot beat the worst finished one; "never" scores it at max length instead when
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

`greedy_path` and `sampled_path` decode one sequence each for comparison, with their log-probs.

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
from dataclasses import asdict, dataclass, field

import torch

from playground.core import forward
from playground.errors import PlaygroundError
from playground.models import LoadedModel, load_model
from playground.prompts import fit_prompt
from playground.token_text import token_label

MAX_BEAMS = 8
MAX_NEW_TOKENS = 40
MAX_PROMPT_TOKENS = 256  # each beam re-reads the prompt once: 8 x 256 tokens is a CPU's second or two
NEG_INF = -1.0e9  # transformers' stand-in for "impossible"
DEAD = -1.0e8  # a running score below this carries a NEG_INF: not a real beam

StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class BeamSettings:
    num_beams: int = 4
    max_new_tokens: int = 20
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1


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
    sequences: list[BeamSequence]
    steps: int  # how many steps ran
    stop_reason: str
    forward_calls: int
    seconds: float
    greedy: PathRecord | None = None
    sampled: PathRecord | None = None
    prompt_note: str | None = None  # set when the prompt was cut to MAX_PROMPT_TOKENS
    children: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("children")
        return data


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


def validate_settings(settings: BeamSettings) -> BeamSettings:
    """The settings with early_stopping normalized; PlaygroundError for anything out of range."""
    try:
        num_beams = int(settings.num_beams)
        max_new_tokens = int(settings.max_new_tokens)
        num_return = int(settings.num_return_sequences)
        length_penalty = float(settings.length_penalty)
    except (TypeError, ValueError) as exc:
        raise PlaygroundError(f"Beam search settings must be numbers: {exc}") from None
    if not 1 <= num_beams <= MAX_BEAMS:
        raise PlaygroundError(f"Number of beams must be between 1 and {MAX_BEAMS}, not {num_beams}.")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise PlaygroundError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS}, not {max_new_tokens}.")
    if not 1 <= num_return <= num_beams:
        raise PlaygroundError(
            f"Number of returned sequences must be between 1 and the number of beams ({num_beams}), not {num_return}."
        )
    if not math.isfinite(length_penalty) or abs(length_penalty) > 10:
        raise PlaygroundError(f"Length penalty must be a number between -10 and 10, not {settings.length_penalty!r}.")
    return BeamSettings(num_beams, max_new_tokens, length_penalty, parse_early_stopping(settings.early_stopping),
                        num_return)


def generation_eos_ids(loaded: LoadedModel) -> list[int]:
    """The EOS ids `model.generate` stops at: the model's generation config, else the loaded ones."""
    eos = getattr(loaded.model.generation_config, "eos_token_id", None)
    if eos is None:
        return list(loaded.eos_token_ids)
    return [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]


def _reorder(cache, beam_idx: torch.Tensor) -> None:
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(beam_idx)
    else:  # pragma: no cover - every cache transformers 5.24 builds for our models has it
        raise PlaygroundError("This model's KV cache cannot be reordered, so beam search cannot run on it.")


@torch.inference_mode()
def beam_search(loaded: LoadedModel, input_ids: Sequence[int], settings: BeamSettings,
                eos_token_ids: Sequence[int] | None = None, on_step: StepCallback | None = None) -> BeamResult:
    """Run transformers' beam search on one prompt and record every candidate it considered."""
    settings = validate_settings(settings)
    input_ids = [int(i) for i in input_ids]
    if not input_ids:
        raise PlaygroundError("The prompt has no tokens.")
    eos = list(eos_token_ids) if eos_token_ids is not None else generation_eos_ids(loaded)
    num_beams, length_penalty, early_stopping = settings.num_beams, settings.length_penalty, settings.early_stopping
    prompt_len = len(input_ids)
    max_length = prompt_len + settings.max_new_tokens
    if max_length > loaded.context_length:
        raise PlaygroundError(
            f"Prompt ({prompt_len} tokens) plus {settings.max_new_tokens} new tokens exceeds the model's "
            f"context length ({loaded.context_length})."
        )
    started = time.perf_counter()
    tokenizer = loaded.tokenizer

    logits, cache = forward(loaded, torch.tensor([input_ids] * num_beams))
    calls = 1  # counted here: the model's own counter also counts other sessions' calls
    device = logits.device  # the search runs where the logits are, as in transformers
    k = max(2, 1 + len(eos)) * num_beams  # candidates considered per step
    top_num_beam_mask = torch.cat((torch.ones(num_beams, dtype=torch.bool),
                                   torch.zeros(k - num_beams, dtype=torch.bool))).to(device)
    eos_tensor = torch.tensor(eos, dtype=torch.long, device=device) if eos else None

    nodes = [BeamNode(0, None, 0, None, "prompt", 0.0, 0.0, 0.0, 1, 1, 0, "root")]
    children: dict[int, list[int]] = {0: []}
    running_nodes = [0] * num_beams  # the tree node each live beam ends at
    running_scores = torch.zeros((1, num_beams), dtype=torch.float, device=device)
    running_scores[:, 1:] = NEG_INF
    finished_scores = torch.full((1, num_beams), NEG_INF, dtype=torch.float, device=device)
    finished_nodes: list[int | None] = [None] * num_beams
    is_sent_finished = torch.zeros((1, num_beams), dtype=torch.bool, device=device)
    heuristic_unsatisfied = torch.ones((1, 1), dtype=torch.bool, device=device)

    cur_len, step, stop_reason = prompt_len, 0, "max_new_tokens"
    while True:
        step += 1
        log_probs = torch.nn.functional.log_softmax(logits.to(torch.float32), dim=-1)  # [num_beams, vocab]
        vocab_size = log_probs.shape[-1]
        accumulated = (log_probs[None] + running_scores[:, :, None]).reshape(1, -1)
        topk_log_probs, topk_indices = torch.topk(accumulated, k=k)
        parent_slots = topk_indices // vocab_size
        topk_ids = topk_indices % vocab_size

        # Which candidates end here: an EOS id, or the length limit.
        hits = torch.full_like(topk_ids, cur_len + 1 >= max_length, dtype=torch.bool)
        if eos_tensor is not None:
            hits |= torch.isin(topk_ids, eos_tensor)

        # The best num_beams candidates that go on become the live beams.
        topk_running_log_probs = topk_log_probs + hits.to(torch.float32) * NEG_INF
        next_indices = torch.topk(topk_running_log_probs, k=num_beams)[1]
        new_running_scores = torch.take_along_dim(topk_running_log_probs, next_indices, dim=1)

        # Ended candidates among the first num_beams may join the finished hypotheses.
        did_finish = hits & top_num_beam_mask[None, :]
        candidate_scores = topk_log_probs / ((cur_len + 1 - prompt_len) ** length_penalty)
        beams_full = torch.all(is_sent_finished, dim=-1, keepdim=True) & (early_stopping is True)
        finish_scores = candidate_scores + beams_full.to(torch.float32) * NEG_INF
        finish_scores += (~heuristic_unsatisfied).to(torch.float32) * NEG_INF
        finish_scores += (~did_finish) * NEG_INF
        merged_scores = torch.cat((finished_scores, finish_scores), dim=1)
        merged_finished = torch.cat((is_sent_finished, did_finish), dim=1)
        keep_finished = torch.topk(merged_scores, k=num_beams)[1]
        finished_scores = torch.take_along_dim(merged_scores, keep_finished, dim=1)
        is_sent_finished = torch.take_along_dim(merged_finished, keep_finished, dim=1)

        # Record the step's candidates as tree nodes.
        slots = parent_slots[0].tolist()
        token_list = topk_ids[0].tolist()
        cumulative_list = topk_log_probs[0].tolist()
        score_list = candidate_scores[0].tolist()
        step_log_probs = log_probs[parent_slots[0], topk_ids[0]]
        vocab_ranks = (log_probs[parent_slots[0]] > step_log_probs[:, None]).sum(dim=1).add(1).tolist()
        step_log_probs = step_log_probs.tolist()
        hit_list = hits[0].tolist()
        kept = {i for i, score in zip(next_indices[0].tolist(), new_running_scores[0].tolist()) if score > DEAD}
        first_id = len(nodes)
        sibling_count: dict[int, int] = {}
        for order in range(k):
            parent = running_nodes[slots[order]]
            sibling_count[parent] = sibling_count.get(parent, 0) + 1
            token = token_list[order]
            node = BeamNode(
                id=first_id + order, parent=parent, step=step, token_id=token,
                label=token_label(tokenizer, token) if tokenizer is not None else str(token),
                logprob=step_log_probs[order], cumulative=cumulative_list[order], score=score_list[order],
                rank=sibling_count[parent], vocab_rank=vocab_ranks[order], order=order,
                status="kept" if order in kept else "pruned", ended=hit_list[order], eos=token in eos,
            )
            nodes.append(node)
            children.setdefault(parent, []).append(node.id)
            children[node.id] = []
        new_finished_nodes = []
        for slot, finished in zip(keep_finished[0].tolist(), is_sent_finished[0].tolist()):
            if slot < num_beams:
                new_finished_nodes.append(finished_nodes[slot])
            else:
                node_id = first_id + slot - num_beams if finished else None
                if node_id is not None:
                    nodes[node_id].status = "finished"
                new_finished_nodes.append(node_id)
        finished_nodes = new_finished_nodes

        # Follow the live beams: their tokens are the next input, their caches move with them.
        next_list = next_indices[0].tolist()
        running_nodes = [first_id + i for i in next_list]
        running_scores = new_running_scores
        cur_len += 1
        if on_step is not None:
            on_step(step, settings.max_new_tokens)

        # transformers' stopping rules for the search as a whole.
        if early_stopping == "never" and length_penalty > 0.0:
            best_hypothetical_length = max_length - prompt_len
        else:
            best_hypothetical_length = cur_len - prompt_len
        best_possible = running_scores[:, :1] / (best_hypothetical_length ** length_penalty)
        worst_finished = torch.where(is_sent_finished, torch.min(finished_scores, dim=1, keepdim=True)[0], NEG_INF)
        heuristic_unsatisfied = heuristic_unsatisfied & torch.any(best_possible > worst_finished, dim=-1, keepdim=True)
        if torch.all(hits):
            stop_reason = "max_new_tokens"
            break
        if bool(torch.all(is_sent_finished)) and early_stopping is True:
            stop_reason = "early_stopping: num_beams hypotheses finished"
            break
        if not bool(torch.any(heuristic_unsatisfied)):
            stop_reason = "no live beam can beat the finished hypotheses"
            break
        beam_idx = parent_slots[0, next_indices[0]]
        _reorder(cache, beam_idx)
        logits, cache = forward(loaded, topk_ids[0, next_indices[0]][:, None], cache)
        calls += 1

    sequences = []
    for rank in range(settings.num_return_sequences):
        node_id = finished_nodes[rank]
        ids = path_ids(nodes, node_id) if node_id is not None else []
        if node_id is not None:
            nodes[node_id].status = "returned"
        cumulative = nodes[node_id].cumulative if node_id is not None else NEG_INF
        sequences.append(BeamSequence(
            node=node_id if node_id is not None else -1, ids=ids,
            text=tokenizer.decode(ids, skip_special_tokens=False) if tokenizer is not None else "",
            score=float(finished_scores[0, rank]), cumulative=cumulative, length=len(ids),
        ))
    return BeamResult(
        model_id=loaded.id, prompt_ids=input_ids,
        prompt_text=tokenizer.decode(input_ids, skip_special_tokens=False) if tokenizer is not None else "",
        settings=settings, eos_token_ids=eos, candidates_per_step=k, nodes=nodes, sequences=sequences,
        steps=step, stop_reason=stop_reason, forward_calls=calls,
        seconds=time.perf_counter() - started, children=children,
    )


def path_ids(nodes: Sequence[BeamNode], node_id: int) -> list[int]:
    """Token ids from the root (exclusive) to `node_id` (inclusive)."""
    ids = []
    node = nodes[node_id]
    while node.parent is not None:
        ids.append(node.token_id)
        node = nodes[node.parent]
    return ids[::-1]


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
    """Greedy decoding (seed None) or plain sampling at temperature 1 (seeded), KV-cached, with log-probs."""
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    tokenizer = loaded.tokenizer
    ids, labels, logprobs = [], [], []
    logits, cache = forward(loaded, torch.tensor([list(input_ids)]))
    for position in range(max_new_tokens):
        log_probs = torch.nn.functional.log_softmax(logits[0].to(torch.float32).cpu(), dim=-1)
        if generator is None:
            token = int(torch.argmax(log_probs))
        else:
            token = int(torch.multinomial(log_probs.exp(), 1, generator=generator))
        ids.append(token)
        labels.append(token_label(tokenizer, token) if tokenizer is not None else str(token))
        logprobs.append(float(log_probs[token]))
        if token in eos_token_ids or position == max_new_tokens - 1:
            break
        logits, cache = forward(loaded, torch.tensor([[token]]), cache)
    cumulative = float(sum(logprobs))
    return PathRecord(
        kind="greedy" if seed is None else "sampled", ids=ids, labels=labels, logprobs=logprobs,
        cumulative=cumulative, score=cumulative / (len(ids) ** length_penalty),
        text=tokenizer.decode(ids, skip_special_tokens=False) if tokenizer is not None else "",
        node_ids=[], seed=seed,
    )


def add_comparisons(loaded: LoadedModel, result: BeamResult, greedy: bool = True,
                    sample_seed: int | None = None) -> BeamResult:
    """Attach the greedy path and/or one sampled path, each mapped onto the tree where it follows it."""
    settings = result.settings
    if greedy:
        result.greedy = decode_path(loaded, result.prompt_ids, settings.max_new_tokens, result.eos_token_ids,
                                    settings.length_penalty)
        result.greedy.node_ids = _tree_nodes_along(result, result.greedy.ids)
    if sample_seed is not None:
        result.sampled = decode_path(loaded, result.prompt_ids, settings.max_new_tokens, result.eos_token_ids,
                                     settings.length_penalty, seed=sample_seed)
        result.sampled.node_ids = _tree_nodes_along(result, result.sampled.ids)
    return result


def run_beam_search(model_id: str, prompt: str, settings: BeamSettings, chat_template: bool = False,
                    compare_greedy: bool = False, sample_seed: int | None = None,
                    eos_token_ids: Sequence[int] | None = None, on_step: StepCallback | None = None) -> BeamResult:
    """Load the model, tokenize the prompt, run the recorded beam search and the optional comparisons.

    A prompt longer than MAX_PROMPT_TOKENS is cut from the left (`result.prompt_note` says so).
    """
    settings = validate_settings(settings)
    if prompt is not None and not isinstance(prompt, str):
        raise PlaygroundError("The prompt must be text.")
    loaded = load_model(model_id)
    fitted = fit_prompt(loaded, prompt, chat_template, MAX_PROMPT_TOKENS)
    result = beam_search(loaded, fitted.ids, settings, eos_token_ids=eos_token_ids, on_step=on_step)
    result.prompt_note = fitted.note
    if compare_greedy or sample_seed is not None:
        add_comparisons(loaded, result, greedy=compare_greedy, sample_seed=sample_seed)
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
