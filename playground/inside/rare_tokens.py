"""Under-trained tokens: vocabulary entries the model saw (almost) never in training.

The lecture's tokenization slide warns of "exploits around tokens with few training examples": a
token the tokenizer has but the training text (almost) never contained gets (almost) no gradient,
so its row of the output matrix stays near where initialisation and weight decay left it, close to
the direction all rows share. Following the published glitch-token studies (Land and Bartolo 2024,
"Fishing for Magikarp"), the indicator here is, for every token, the norm of its output-matrix row
after the mean row is removed: the lowest are the candidates, with the vocabulary's mean and
spread to compare them with (a z-score). For a model with tied embeddings the same matrix is its
input embedding. A candidate is checked by asking the model to repeat it (`repeat_prompt`), which
an under-trained token often makes it fail.

Each candidate also says whether the tokenizer ever produces it: a token whose text encodes as
other ids is unreachable from text, so the model cannot have seen it in training.

`repeat_check` asks the model (through the lab, greedy) to repeat a candidate and, as controls, the
tokens of median norm (a chat model in its chat template, a base model as a few-shot copy); its
verdict never reads more than the answers show.

What it leaves out: the studies' other indicators (the first principal component removed, the
unused-token reference set) and their verification over many prompts; the page
(`playground.ui.rare_section`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch

from playground import lab
from playground.backends import backend_for
from playground.errors import PlaygroundError
from playground.models import LoadedModel, get_spec, load_model
from playground.sampling import PRESETS
from playground.token_text import display_text, token_bytes

TOP = 10


@dataclass(frozen=True)
class RareToken:
    id: int
    text: str  # the token's bytes as display text (`token_text.display_text`)
    norm: float  # of its output-matrix row, the mean row removed
    z: float  # (norm - the vocabulary's mean norm) / their standard deviation
    reachable: bool  # encoding the token's text gives back this one id


@dataclass(frozen=True)
class RareTokens:
    model_id: str
    vocab_size: int  # the rows compared: the tokenizer's ordinary tokens (special tokens left out)
    tied: bool  # input and output embeddings are one matrix
    mean_norm: float
    std_norm: float
    lowest: tuple[RareToken, ...]  # the candidates, lowest norm first
    typical: tuple[RareToken, ...]  # tokens at the median norm, for contrast


CHUNK_ROWS = 16_384  # rows centred at a time: Gemma's 262,144 x 640 matrix is 671 MB in float32


def script_of(text: str) -> str:
    """The writing system of the token's first letter ("Kannada", "Latin", "CJK"; "" without a
    letter), from its Unicode name: it says what a token is where the viewer's fonts lack its glyphs."""
    for char in text:
        if char.isalpha():
            try:
                first = unicodedata.name(char).split()[0]
            except ValueError:
                return ""
            return first if first == "CJK" else first.title()
    return ""


def centred_row_norms(weight: torch.Tensor) -> torch.Tensor:
    """‖W[i] - mean_j W[j]‖ for every row i of the output matrix `weight` (vocab x hidden), a chunk
    of rows at a time (no second copy of the matrix)."""
    with torch.no_grad():
        chunks = weight.split(CHUNK_ROWS)
        mean = sum(chunk.float().sum(dim=0, keepdim=True) for chunk in chunks) / weight.shape[0]
        return torch.cat([(chunk.float() - mean).norm(dim=1) for chunk in chunks])


def _reachable(tokenizer, token_id: int) -> bool:
    text = tokenizer.decode([token_id])
    return tokenizer.encode(text, add_special_tokens=False) == [token_id]


def rare_tokens(loaded: LoadedModel, top: int = TOP) -> RareTokens:
    """The `top` tokens with the lowest centred output-row norm among the tokenizer's ordinary tokens
    (computed once per loaded model)."""
    return loaded.runtime.part(f"rare-tokens-{top}", lambda: _rare_tokens(loaded, top))


def _rare_tokens(loaded: LoadedModel, top: int) -> RareTokens:
    tokenizer = loaded.tokenizer
    weight = loaded.model.get_output_embeddings().weight
    usable = min(weight.shape[0], len(tokenizer))
    norms = centred_row_norms(weight[:usable])
    keep = torch.ones(usable, dtype=torch.bool)
    keep[[i for i in getattr(tokenizer, "all_special_ids", ()) if i < usable]] = False
    ordinary = norms[keep]
    mean, std = float(ordinary.mean()), float(ordinary.std())
    ids = torch.arange(usable)[keep]
    order = torch.argsort(ordinary)

    def token(position: int) -> RareToken:
        token_id = int(ids[position])
        norm = float(ordinary[position])
        return RareToken(token_id, display_text(token_bytes(tokenizer, token_id)), norm,
                         (norm - mean) / std if std > 0 else 0.0, _reachable(tokenizer, token_id))

    middle = len(order) // 2
    input_weight = loaded.model.get_input_embeddings().weight
    return RareTokens(
        model_id=loaded.id, vocab_size=int(keep.sum()), tied=input_weight.data_ptr() == weight.data_ptr(),
        mean_norm=mean, std_norm=std,
        lowest=tuple(token(int(p)) for p in order[:top]),
        typical=tuple(token(int(p)) for p in order[middle - 1: middle + 2]),
    )


def for_model(model_id: str, top: int = TOP) -> RareTokens:
    """`rare_tokens` of a model by id (an in-process model: the statistic reads its weights)."""
    backend_for(model_id).require("inside")
    return rare_tokens(load_model(model_id), top)


def repeat_prompt(text: str) -> str:
    """What the model is asked, to check a candidate: repeat the token's text exactly."""
    return f'Please repeat this string back to me exactly, and nothing else: "{text}"'


def base_repeat_prompt(text: str) -> str:
    """The same request for a base model: a text whose natural continuation is the token's text."""
    return f'Copy each string exactly.\nString: "apple"\nCopy: "apple"\nString: " river"\nCopy: " river"\n' \
           f'String: "{text}"\nCopy: "'


REPEAT_TOKENS = 16


@dataclass(frozen=True)
class RepeatAnswer:
    label: str  # "the candidate" or the control
    token_id: int
    prompt: str  # as typed: a chat model reads it in its chat template
    reply: str
    repeated: bool  # the reply contains the token's text


@dataclass(frozen=True)
class RepeatCheck:
    model_id: str
    chat: bool  # asked in the chat template (else as a text to continue)
    candidate: RepeatAnswer
    controls: tuple[RepeatAnswer, ...]  # tokens of median norm

    @property
    def verdict(self) -> str:
        """What the answers show together (a model that repeats no control says nothing about a token)."""
        done, asked = sum(a.repeated for a in self.controls), len(self.controls)
        if self.candidate.repeated:
            return "It repeated the candidate: this check finds nothing wrong with it."
        if asked and 2 * done > asked:
            return (f"It repeated {done} of {asked} median tokens but not the candidate: a sign that it barely "
                    "knows the candidate.")
        return (f"It repeated {done} of {asked} median tokens and not the candidate: this model does not do the "
                "task reliably, so the check says little about the candidate.")


def _ask(model_id: str, label: str, token_id: int, text: str, chat: bool) -> RepeatAnswer:
    """One greedy request through the lab (`playground.lab`), as the Sampling lab would make it."""
    prompt = repeat_prompt(text) if chat else base_repeat_prompt(text)
    session = lab.open_session(model_id, prompt, chat, 512)
    for _step in lab.generate(session, PRESETS["greedy"], REPEAT_TOKENS, 0, ['"\n', "\n\n"]):
        pass
    reply = "".join(r.text for r in session.records)
    return RepeatAnswer(label, token_id, prompt, reply, bool(text.strip()) and text.strip() in reply)


def repeat_check(model_id: str, token_id: int) -> RepeatCheck:
    """Ask the model to repeat token `token_id` and, as controls, the tokens of median norm (greedy, at
    most REPEAT_TOKENS tokens each)."""
    found = for_model(model_id)
    tokenizer = load_model(model_id).tokenizer
    if not isinstance(token_id, int) or not 0 <= token_id < len(tokenizer):
        raise PlaygroundError(f"Pick a token id from 0 to {len(tokenizer) - 1:,}.")
    chat = get_spec(model_id).role == "chat"
    controls = tuple(_ask(model_id, "a control (median norm)", t.id, tokenizer.decode([t.id]), chat)
                     for t in found.typical)
    return RepeatCheck(model_id, chat, _ask(model_id, "the candidate", token_id, tokenizer.decode([token_id]), chat),
                       controls)
