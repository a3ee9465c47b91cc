"""Prompt attribution: which tokens of a prompt made the model predict a target token, by four methods.

`attribute(model_id, text, methods, target, steps)` reads the text as every tab does
(`playground.start_tokens`: the start tokens, then the text's own tokens; at most `MAX_TOKENS`),
picks the target (the most probable next token by default, or any one token given as its text or
`#id`), and scores each of the text's own tokens by f = log p(target | prompt), the log-probability
of the target after the last prompt token. The start tokens stay in place, unscored (context).

- occlusion, removed: score_i = f(prompt) - f(prompt without token i). Exact: one model call per
  variant for every token at once (all the shortened prompts have one length, so they batch).
- occlusion, replaced: score_i = f(prompt) - f(prompt with token i replaced by a neutral token:
  the tokenizer's padding token, or its unknown / end token where padding is the end token).
- gradient x input: score_i = sum over the embedding's dimensions of x_i * df/dx_i (x_i: token i's
  input embedding), a first-order estimate of what zeroing x_i would change (Captum `InputXGradient`).
- integrated gradients: score_i = sum_d (x_i - x'_i) * (mean over the straight path from the
  baseline x' (the neutral token's embedding in every place) to x of df/dx_i), Gauss-Legendre in
  `steps` points (Captum `IntegratedGradients`, at most `MAX_STEPS`). Completeness: the scores add up to f(x) - f(x'); the
  difference (Captum's convergence delta) is reported as the completeness error.
- attention rollout (NOT an attribution): per layer, the heads' mean attention A, then
  (A + I) / 2 with rows renormalised, multiplied over the layers; the last position's row. It says
  where information could flow, not how much a token changed the prediction. The weights come from
  the Inside tab's cached pass (`playground.inside.passes`: an eager twin sharing the weights).

Every model call goes through `playground.model_call` (time limit, faults, `forward_calls`, the CPU
compute slot held for the forward and backward passes); a batch of shortened prompts or of path
points is bounded so that a request stops near its time limit. Engine models are refused in the
backend's words (`backends` capability "attribution": the gradients need the weights).

What it leaves out: attributing a token inside a generation or teacher forcing (the prompt is the
text before the target), chat templates, attention-based methods other than rollout, drawing
(`playground.html.attribution`), exports (`playground.exports`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from playground import limits, start_tokens
from playground.errors import PlaygroundError
from playground.model_call import compute_slot, model_call
from playground.models import LoadedModel, load_model
from playground.token_text import token_label

MAX_TOKENS = limits.ATTRIBUTION_TOKENS  # start tokens included
MAX_STEPS = 64  # integrated gradients' path points
DEFAULT_STEPS = 32
TOKENS_PER_CALL = 1024  # prompt tokens per batched model call (occlusion rows, IG path points)
METHODS = ("occlusion", "gradient", "integrated-gradients", "attention")

FORMULAS = {
    "occlusion-removed": ("Occlusion (token removed)",
                          "log p(target | prompt) − log p(target | the prompt without this token): the model re-run, "
                          "exact."),
    "occlusion-replaced": ("Occlusion (token replaced by {neutral})",
                           "log p(target | prompt) − log p(target | this token replaced by {neutral}): exact, the "
                           "other tokens keep their places."),
    "gradient": ("Gradient × input",
                 "Σ embedding × ∂ log p(target) / ∂ embedding: one backward pass, a straight-line guess of "
                 "what removing the token would change."),
    "integrated-gradients": ("Integrated gradients",
                             "(embedding − baseline) × the gradient averaged on the path from {neutral} to the "
                             "prompt ({steps} points); the scores add up to log p(target | prompt) − "
                             "log p(target | baseline)."),
    "attention": ("Attention rollout (NOT an attribution)",
                  "the last row of the product over layers of (the heads' mean attention + I) / 2: where "
                  "information could flow, not what changed the prediction."),
}


@dataclass(frozen=True)
class PromptToken:
    position: int
    id: int
    text: str  # as shown (visible whitespace); escape before HTML
    start: bool  # a start token: context, not scored


@dataclass(frozen=True)
class MethodScores:
    key: str  # a key of FORMULAS
    title: str
    formula: str  # in the lecture's words
    scores: tuple[float | None, ...]  # one per prompt token; None for start tokens
    is_attribution: bool
    seconds: float
    f_input: float | None = None  # integrated gradients: log p(target | prompt)
    f_baseline: float | None = None  # integrated gradients: log p(target | baseline)
    completeness_error: float | None = None  # sum(scores) - (f_input - f_baseline)
    steps: int | None = None

    @property
    def total(self) -> float:
        return float(sum(s for s in self.scores if s is not None))


@dataclass(frozen=True)
class Attribution:
    model_id: str
    text: str
    tokens: tuple[PromptToken, ...]
    target_id: int
    target_text: str
    target_prob: float
    target_logprob: float
    target_rank: int  # 1 = the most probable next token
    top_id: int  # the most probable next token
    top_text: str
    top_prob: float
    methods: tuple[MethodScores, ...]

    def method(self, key: str) -> MethodScores:
        for row in self.methods:
            if row.key == key:
                return row
        raise KeyError(key)


def check_methods(methods) -> tuple[str, ...]:
    """The methods asked for, in METHODS' order; a message naming the valid ones for anything else."""
    chosen = tuple(dict.fromkeys(m.strip().lower() for m in methods if m and m.strip()))
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise PlaygroundError(f"Unknown attribution method {', '.join(unknown) or '(none)'}: choose among "
                              f"{', '.join(METHODS)}.")
    return tuple(m for m in METHODS if m in chosen)


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise PlaygroundError(f"Integrated gradients takes 1 to {MAX_STEPS} steps, not {steps!r}.")
    return steps


def prompt_ids(loaded: LoadedModel, text: str) -> tuple[list[int], list[int]]:
    """(start ids, the text's own ids), read as every tab reads a text; bounded to MAX_TOKENS."""
    if loaded.tokenizer is None:
        raise PlaygroundError(f"Model {loaded.id} has no tokenizer on this machine.")
    if not text or not text.strip():
        raise PlaygroundError("Type a prompt to attribute.")
    read = start_tokens.text_ids(loaded.tokenizer, text)
    start, own = list(read.start), list(read.text)
    limit = min(MAX_TOKENS, loaded.context_length)
    if len(start) + len(own) > limit:
        raise PlaygroundError(f"Attribution reads at most {limit} tokens (start tokens included); this prompt has "
                              f"{len(start) + len(own)}. Shorten it.")
    if not own:
        raise PlaygroundError("This prompt has no tokens of its own to attribute.")
    return start, own


def resolve_target(tokenizer, target: str | None, logprobs: torch.Tensor) -> int:
    """The target's id: the most probable next token for None or ""; `#123` an id; otherwise the
    text must be exactly one token of this model (a vocabulary entry, or text that encodes to one)."""
    vocab = int(logprobs.shape[-1])
    if target is None or target == "":
        return int(logprobs.argmax())
    if target.startswith("#") and target[1:].isdigit():
        token_id = int(target[1:])
        if token_id >= vocab:
            raise PlaygroundError(f"Token id {token_id} is outside this model's vocabulary (0 to {vocab - 1}).")
        return token_id
    own = start_tokens.own_ids(tokenizer, target)
    if len(own) == 1:
        return own[0]
    entry = tokenizer.convert_tokens_to_ids(target) if hasattr(tokenizer, "convert_tokens_to_ids") else None
    if isinstance(entry, int) and entry != getattr(tokenizer, "unk_token_id", None) and entry < vocab:
        return entry
    pieces = ", ".join(repr(token_label(tokenizer, i)) for i in own[:6]) or "nothing"
    raise PlaygroundError(f"The target {target!r} is {len(own)} tokens for this model ({pieces}): give one token "
                          "(its first piece, e.g.) or #id.")


def neutral_token(tokenizer) -> int:
    """The token occlusion puts in a removed token's place: padding, unless padding is the end token."""
    pad, eos = getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)
    for candidate in (pad if pad != eos else None, getattr(tokenizer, "unk_token_id", None), eos, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _logprobs_rows(loaded: LoadedModel, rows: list[list[int]], target_id: int) -> list[float]:
    """log p(target | row) after each row (rows of one length), batched within TOKENS_PER_CALL."""
    out: list[float] = []
    per_call = max(1, TOKENS_PER_CALL // max(1, len(rows[0])))
    for first in range(0, len(rows), per_call):
        ids = torch.tensor(rows[first:first + per_call], device=loaded.device)
        with torch.inference_mode(), model_call(loaded):
            logits = loaded.model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1].float()
        out.extend(torch.log_softmax(logits, dim=-1)[:, target_id].tolist())
    return out


def _last_logprobs(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode(), model_call(loaded):
        logits = loaded.model(input_ids=torch.tensor([ids], device=loaded.device), use_cache=False,
                              logits_to_keep=1).logits[0, -1].float()
    return torch.log_softmax(logits, dim=-1).cpu()


def _occlusion(loaded, start, own, target_id, f_input, removed: bool) -> tuple[float, ...]:
    if removed:
        rows = [start + own[:i] + own[i + 1:] for i in range(len(own))]
        if not rows[0]:  # one token and no start token: removing it leaves the document start
            rows = [start_tokens.document_start_ids(loaded.tokenizer)]
    else:
        neutral = neutral_token(loaded.tokenizer)
        rows = [start + own[:i] + [neutral] + own[i + 1:] for i in range(len(own))]
    return tuple(f_input - value for value in _logprobs_rows(loaded, rows, target_id))


def _embeddings(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    """The input embeddings the model adds up (Gemma's scaling included), detached: [1, len, hidden]."""
    with torch.no_grad():
        return loaded.model.get_input_embeddings()(torch.tensor([ids], device=loaded.device)).detach()


def _target_function(loaded: LoadedModel, start_embeds: torch.Tensor, target_id: int):
    """f(text embeddings [batch, n, hidden]) = log p(target | start tokens, text) per batch row; one model
    call each (the preamble without the slot: the caller holds it for the forward and backward passes)."""

    def f(text_embeds: torch.Tensor) -> torch.Tensor:
        with model_call(loaded, slot=False):
            embeds = torch.cat([start_embeds.expand(text_embeds.shape[0], -1, -1), text_embeds], dim=1)
            logits = loaded.model(inputs_embeds=embeds, use_cache=False, logits_to_keep=1).logits[:, -1].float()
            return torch.log_softmax(logits, dim=-1)[:, target_id]

    return f


def _gradient_methods(loaded, start, own, target_id, method: str, steps: int, f_input: float):
    """(scores per own token, f(baseline), convergence delta) by Captum; f(baseline) follows from
    Captum's delta = sum(scores) - (f(x) - f(baseline)) and the prompt's own f(x)."""
    from captum.attr import InputXGradient, IntegratedGradients

    start_embeds = _embeddings(loaded, start) if start else _embeddings(loaded, own)[:, :0]
    text_embeds = _embeddings(loaded, own)
    f = _target_function(loaded, start_embeds, target_id)
    with compute_slot(loaded), torch.enable_grad():
        try:
            if method == "gradient":
                attributions = InputXGradient(f).attribute(text_embeds.clone().requires_grad_(True))
                return attributions.sum(-1)[0].tolist(), None, None
            baseline = _embeddings(loaded, [neutral_token(loaded.tokenizer)] * len(own))
            per_call = max(1, TOKENS_PER_CALL // (len(start) + len(own)))
            attributions, delta = IntegratedGradients(f).attribute(
                text_embeds, baselines=baseline, n_steps=steps, method="gausslegendre",
                internal_batch_size=min(steps, per_call), return_convergence_delta=True)
        except RuntimeError as exc:
            if "grad" in str(exc).lower() or "derivative" in str(exc).lower():
                raise PlaygroundError(f"{loaded.id}'s weights ({loaded.weights}) do not support gradients: "
                                      f"occlusion and attention still work. ({str(exc)[:120]})") from None
            raise
    scores, delta = attributions.sum(-1)[0].tolist(), float(delta.reshape(-1)[0])
    return scores, f_input - sum(scores) + delta, delta


def rollout(attentions: torch.Tensor) -> torch.Tensor:
    """Attention rollout (Abnar and Zuidema, 2020) of [layers, heads, T, T] weights: [T, T]."""
    size = attentions.shape[-1]
    eye = torch.eye(size, dtype=torch.float64)
    result = eye
    for layer in attentions.double():
        mixed = (layer.mean(0) + eye) / 2
        mixed = mixed / mixed.sum(-1, keepdim=True)
        result = mixed @ result
    return result.float()


def _attention(model_id: str, text: str, ids: list[int]) -> tuple[float, ...]:
    from playground.inside import passes

    result = passes.inside_pass(model_id, text)
    if list(result.ids) != ids:  # both read the text through start_tokens: a difference is a bug
        raise PlaygroundError("The attention pass read this text differently; try again.")
    return tuple(rollout(result.attentions)[-1].tolist())


def attribute(model_id: str, text: str, methods=METHODS, target: str | None = None,
              steps: int = DEFAULT_STEPS) -> Attribution:
    """Score every prompt token by each method for the target after the prompt (module docstring)."""
    from playground.backends import backend_for

    backend_for(model_id).require("attribution")
    methods, steps = check_methods(methods), check_steps(steps)
    loaded = load_model(model_id)
    start, own = prompt_ids(loaded, text)
    ids = start + own
    tokenizer = loaded.tokenizer
    logprobs = _last_logprobs(loaded, ids)
    target_id = resolve_target(tokenizer, target, logprobs)
    f_input = float(logprobs[target_id])
    top_id = int(logprobs.argmax())
    blank = (None,) * len(start)
    rows: list[MethodScores] = []

    def add(key: str, scores, is_attribution=True, began=0.0, **extra) -> None:
        title, formula = FORMULAS[key]
        neutral = token_label(tokenizer, neutral_token(tokenizer))
        rows.append(MethodScores(key, title.format(neutral=neutral), formula.format(neutral=neutral, steps=steps),
                                 tuple(scores), is_attribution, time.perf_counter() - began, **extra))

    for method in methods:
        began = time.perf_counter()
        if method == "occlusion":
            add("occlusion-removed", blank + _occlusion(loaded, start, own, target_id, f_input, True), began=began)
            began = time.perf_counter()
            add("occlusion-replaced", blank + _occlusion(loaded, start, own, target_id, f_input, False), began=began)
        elif method == "gradient":
            scores = _gradient_methods(loaded, start, own, target_id, method, steps, f_input)[0]
            add("gradient", blank + tuple(scores), began=began)
        elif method == "integrated-gradients":
            scores, f_base, delta = _gradient_methods(loaded, start, own, target_id, method, steps, f_input)
            add("integrated-gradients", blank + tuple(scores), began=began, f_input=f_input, f_baseline=f_base,
                completeness_error=delta, steps=steps)
        else:
            add("attention", blank + _attention(model_id, text, ids)[len(start):], False, began=began)
    tokens = tuple(PromptToken(i, token_id, token_label(tokenizer, token_id), i < len(start))
                   for i, token_id in enumerate(ids))
    return Attribution(
        model_id=model_id, text=text, tokens=tokens, target_id=target_id,
        target_text=token_label(tokenizer, target_id), target_prob=float(torch.exp(logprobs[target_id])),
        target_logprob=f_input, target_rank=int((logprobs > logprobs[target_id]).sum()) + 1, top_id=top_id,
        top_text=token_label(tokenizer, top_id), top_prob=float(torch.exp(logprobs[top_id])), methods=tuple(rows),
    )
