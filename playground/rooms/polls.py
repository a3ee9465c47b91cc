"""The class's polls and their scoring: pure functions from a poll and its answers to a result.

Three kinds:
- `next_token`: "guess the next token" on a prompt. The model's distribution is computed once, when
  the poll starts (`next_token_poll`), and kept as float16 log-probabilities over the vocabulary
  (the poll's blob). Each guess becomes the model's token by tokenization only (`map_guess`): the
  guess as the text would continue, a leading space added before a word when the prompt does not
  end in white space (the lecture: BPE attaches white space to the next word), and its first token
  is the one counted; a guess of several tokens says so. A phone may tap a chip instead of typing:
  the model's most probable words in alphabetical order (`chip_options`), each mapping back to its token.
  Reveal (`score_next_token`): the rows are the model's top tokens and every token the class picked,
  in the model's order, each with the model's probability and rank and the class's share; the share
  of the class that picked the model's top token; the class's average surprisal
  `mean_i(-log2 p(t_i))` against the model's entropy `H = -sum_t p(t) log2 p(t)`.
- `count`: "how many tokens?" on a text; each answer is a whole number; the reveal counts the
  guesses and gives the real count per tokenizer (computed when the poll starts).
- `chat`: "which one is the chat model?" between two columns (A left, B right); the reveal counts
  the votes and names each column's model.

Answers are at most `MAX_ANSWER_CHARS` characters; an answer hidden by the presenter (by its label:
the token, the number, the column) is left out of the result. What it leaves out: where polls and
answers are kept and who may start or reveal them (`playground.rooms.room`), drawing the result
(`playground.html.class_room`, `playground.plots.class_room`).
"""

from __future__ import annotations

import math
import re
import secrets
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from playground import start_tokens
from playground.errors import PlaygroundError
from playground.token_text import token_label

KINDS = ("next_token", "count", "chat")
MAX_ANSWER_CHARS = 40
TOP_SHOWN = 10  # the model's top tokens always shown at the reveal
MAX_ROWS = 25  # tokens in the reveal's table and chart at most
MAX_COUNT = 100_000
WORD_START = re.compile(r"\w", re.UNICODE)


CHIPS = 6  # answer chips of a next-token poll


def new_id() -> str:
    return secrets.token_hex(4)


def clean_answer(text) -> str:
    """The answer as typed (trailing white space dropped), or a message: empty, too long, not text."""
    if not isinstance(text, str):
        raise PlaygroundError("An answer is a short text.")
    text = text.replace("\x00", "").rstrip()
    if not text.strip():
        raise PlaygroundError("Type an answer first.")
    if len(text) > MAX_ANSWER_CHARS:
        raise PlaygroundError(f"An answer has at most {MAX_ANSWER_CHARS} characters ({len(text)} given).")
    return text


# --- guess the next token ------------------------------------------------------------------------

@dataclass(frozen=True)
class Guess:
    text: str  # as typed
    continuation: str  # what the text would continue with
    token_id: int  # the first token of the continuation: the one counted
    label: str  # that token, white space visible
    n_tokens: int  # tokens of the continuation

    @property
    def note(self) -> str:
        if self.n_tokens == 1:
            return f"counted as the token “{self.label}”"
        return (f"“{self.continuation.strip()}” is {self.n_tokens} tokens for this model; "
                f"its first, “{self.label}”, is counted")


def continuation(prompt: str, guess: str) -> str:
    """The guess as the prompt would continue: a word after a non-space gets its leading space."""
    if guess[:1].isspace() or not prompt or prompt[-1:].isspace() or not WORD_START.match(guess):
        return guess
    return " " + guess


def map_guess(tokenizer, prompt: str, prompt_ids, guess: str) -> Guess:
    """The model's token for `guess` after `prompt` (tokenization only, no model call).

    The text `prompt + continuation` is tokenized; when its ids start with the prompt's own, the
    tokens after them are the guess's; otherwise (a merge across the boundary) the continuation is
    tokenized alone."""
    guess = clean_answer(guess)
    text = continuation(prompt, guess)
    prompt_ids = list(prompt_ids)
    whole = start_tokens.text_ids(tokenizer, prompt + text).ids
    rest = whole[len(prompt_ids):] if whole[:len(prompt_ids)] == prompt_ids else []
    if not rest:
        rest = start_tokens.own_ids(tokenizer, text)
    if not rest:
        raise PlaygroundError("This answer has no token for the model.")
    return Guess(guess, text, int(rest[0]), token_label(tokenizer, int(rest[0])), len(rest))


def logprob_blob(logits: torch.Tensor) -> bytes:
    """The distribution kept with a poll: float16 log-probabilities (2 bytes a token)."""
    return torch.log_softmax(logits.float(), dim=-1).to(torch.float16).numpy().tobytes()


def logprobs_of(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)


def entropy_bits(logprobs: np.ndarray) -> float:
    """H = -sum_t p(t) log2 p(t)."""
    p = np.exp(logprobs)
    return float(-(p * logprobs).sum() / math.log(2))


def next_token_poll(model_id: str, prompt: str) -> tuple[dict, bytes]:
    """A new next-token poll on `prompt`: (the poll, its distribution blob). The one model call."""
    from playground.decoding import next_token_distribution  # the model's side, imported when used
    if not isinstance(prompt, str) or not prompt.strip():
        raise PlaygroundError("A next-token poll needs a prompt: type one in the Sampling lab.")
    from playground.models import load_tokenizer

    distribution = next_token_distribution(model_id, prompt)
    ids = list(distribution.input_ids)
    poll = {"id": new_id(), "kind": "next_token", "model": model_id, "prompt": prompt[-600:], "prompt_ids": ids,
            "question": "Which token comes next?", "revealed": False, "hidden": [],
            "options": chip_options(load_tokenizer(model_id), prompt, ids, distribution.logits)}
    return poll, logprob_blob(distribution.logits)


def chip_options(tokenizer, prompt: str, prompt_ids, logits: torch.Tensor, count: int = CHIPS) -> list[str]:
    """Answer chips for a phone: the model's `count` most probable words, in alphabetical order (so the
    chips do not give the model's ranking away), each one that a student's tap maps back to the very
    token it came from (`map_guess`); tokens of white space or punctuation only are left to typing."""
    chips = []
    for token_id in logits.topk(min(4 * count, logits.shape[-1])).indices.tolist():
        text = clean_answer(tokenizer.decode([token_id])).strip()
        if not any(c.isalnum() for c in text) or text in chips:
            continue
        try:
            if map_guess(tokenizer, prompt, prompt_ids, text).token_id != token_id:
                continue
        except PlaygroundError:
            continue
        chips.append(text)
        if len(chips) == count:
            break
    return sorted(chips, key=str.lower)


def rank_of(logprobs: np.ndarray, token_id: int) -> int:
    """1 + the number of tokens more probable than `token_id`."""
    return int((logprobs > logprobs[token_id]).sum()) + 1


def score_next_token(poll: dict, answers: list[dict], logprobs: np.ndarray, tokenizer) -> dict:
    """The reveal of a next-token poll (see the module docstring); `answers` are stored answers."""
    hidden = set(poll.get("hidden", []))
    kept = [a for a in answers if a["label"] not in hidden]
    counts = Counter(a["id"] for a in kept)
    top = np.argsort(-logprobs)[:TOP_SHOWN]
    picked = [token for token, _ in counts.most_common(MAX_ROWS - TOP_SHOWN)]
    tokens = sorted({int(t) for t in top} | set(picked), key=lambda t: (-float(logprobs[t]), t))
    n = len(kept)
    rows = [{"id": t, "label": token_label(tokenizer, t), "p": float(math.exp(logprobs[t])),
             "rank": rank_of(logprobs, t), "count": counts.get(t, 0), "share": counts.get(t, 0) / n if n else 0.0}
            for t in tokens]
    surprisals = [-float(logprobs[a["id"]]) / math.log(2) for a in kept]
    entropy = entropy_bits(logprobs)
    average = sum(surprisals) / n if n else None
    if average is None:
        verdict = "No answers yet."
    else:
        verdict = (f"The class was {'more' if average > entropy else 'less'} surprised than the model: "
                   f"{average:.2f} bits on average against the model's entropy of {entropy:.2f} bits.")
    several = sorted({(a["text"], a["n"], a["label"]) for a in kept if a["n"] > 1})[:MAX_ROWS]
    return {"kind": "next_token", "rows": rows, "answers": n, "hidden": len(answers) - n,
            "top_label": token_label(tokenizer, int(top[0])),
            "top_share": counts.get(int(top[0]), 0) / n if n else 0.0,
            "class_surprisal_bits": average, "model_entropy_bits": entropy, "verdict": verdict,
            "several": [{"text": t, "tokens": k, "label": label} for t, k, label in several]}


# --- how many tokens? ----------------------------------------------------------------------------

def count_poll(text: str, counts: dict[str, int]) -> dict:
    """A new "how many tokens?" poll on `text`; `counts`: the real count per tokenizer id."""
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError("A token-count poll needs a text: type one in the Tokenizer tab.")
    return {"id": new_id(), "kind": "count", "text": text[:400], "counts": dict(counts),
            "question": "How many tokens is this text?", "revealed": False, "hidden": []}


def parse_count(text: str) -> int:
    text = clean_answer(text).strip().replace(",", "").replace("_", "")
    if not text.isdigit() or int(text) > MAX_COUNT:
        raise PlaygroundError(f"Answer with a whole number of tokens (0 to {MAX_COUNT:,}).")
    return int(text)


def score_count(poll: dict, answers: list[dict]) -> dict:
    hidden = set(poll.get("hidden", []))
    values = [a["v"] for a in answers if str(a["v"]) not in hidden]
    counts = Counter(values)
    return {"kind": "count", "answers": len(values), "hidden": len(answers) - len(values),
            "guesses": [{"label": str(v), "count": c} for v, c in sorted(counts.items())][:60],
            "median": float(np.median(values)) if values else None, "real": poll["counts"]}


# --- which one is the chat model? -------------------------------------------------------------------

def chat_poll(left_model: str, right_model: str) -> dict:
    return {"id": new_id(), "kind": "chat", "options": ["A", "B"],
            "models": {"A": left_model, "B": right_model},
            "question": "Which column is the chat model: A (left) or B (right)?", "revealed": False, "hidden": []}


def parse_vote(text: str) -> str:
    vote = clean_answer(text).strip().upper()
    if vote not in ("A", "B"):
        raise PlaygroundError("Vote A (the left column) or B (the right column).")
    return vote


def score_chat(poll: dict, answers: list[dict]) -> dict:
    hidden = set(poll.get("hidden", []))
    votes = Counter(a["v"] for a in answers if a["v"] not in hidden)
    n = sum(votes.values())
    return {"kind": "chat", "answers": n, "hidden": len(answers) - n,
            "votes": [{"label": option, "model": poll["models"][option], "count": votes.get(option, 0),
                       "share": votes.get(option, 0) / n if n else 0.0} for option in poll["options"]]}
