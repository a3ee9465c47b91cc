"""Teacher forcing read from the one pass: P(text) = P(t1 | start) · P(t2 | t1) · … in one forward.

The pass feeds the ground-truth tokens and its output at position i is the distribution of token
i + 1, so one forward scores every token of the text (the lecture's pre-training slide: "feed in
ground truth tokens, supervised shifted ground truth"). The tokens are the `score` command's (the
start tokens, then the text: `playground.start_tokens`), so each log-probability equals
`chat.score_text`'s; a model that reads no start token has its first token as context. The
text's probability is the product, its log the sum; bits and perplexity follow from the sum.

What it leaves out: the forward pass (`passes`), drawing (`playground.plots.inside`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from playground.inside.passes import InsidePass
from playground.models import load_model
from playground.token_text import token_label


@dataclass(frozen=True)
class ForcedToken:
    index: int  # position in the text's tokens (0 = the first token after the start tokens)
    id: int
    label: str
    logprob: float  # natural log of P(token | everything before it)
    expected: tuple[tuple[str, float], ...]  # what the model found most probable there, with probabilities

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)


@dataclass(frozen=True)
class TeacherForcing:
    model_id: str
    text: str
    context: tuple[str, ...]  # the start tokens the text is scored after
    tokens: tuple[ForcedToken, ...]

    @property
    def total_logprob(self) -> float:
        """log P(text): the sum of the tokens' log-probabilities."""
        return sum(t.logprob for t in self.tokens)

    @property
    def probability(self) -> float:
        """P(text): the product of the tokens' probabilities (underflows to 0 for long texts)."""
        return math.exp(self.total_logprob)

    @property
    def total_bits(self) -> float:
        return -self.total_logprob / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(-self.total_logprob / max(1, len(self.tokens)))


def teacher_forcing(result: InsidePass) -> TeacherForcing:
    """Each text token's probability given the ones before it, from the pass's shifted outputs."""
    logprobs = result.next_logprobs.tolist()
    top_ids, top_probs = result.top_ids.tolist(), result.top_probs.tolist()
    tokenizer = load_model(result.model_id).tokenizer
    tokens = []
    first = max(result.start, 1)  # without a start token the text's first token is context, not scored
    for index, position in enumerate(range(first, result.tokens)):
        before = position - 1  # the output that predicted this token
        expected = tuple((token_label(tokenizer, i), p) for i, p in zip(top_ids[before], top_probs[before]))
        tokens.append(ForcedToken(index, result.ids[position], result.labels[position], logprobs[before], expected))
    return TeacherForcing(result.model_id, result.text, result.labels[:first], tuple(tokens))
