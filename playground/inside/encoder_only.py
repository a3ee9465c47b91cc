"""Encoder-only models (BERT), the lecture's "Encoder-only" slides, on a real WordPiece tokenizer.

The slide's input: "[CLS] my dog is cute [SEP] he likes play ##ing [SEP]", where each token's input
vector is the sum of three learned rows: its token embedding, its segment embedding (E_A for the
first sentence, E_B for the second) and its position embedding (E_0, E_1, ...). And the attention of
an encoder is bidirectional: every token sees every token, where a decoder's is causal.

- `wordpiece()`: a WordPiece tokenizer (BERT's algorithm: `tokenizers`' WordPiece model and trainer,
  BERT's normaliser (lower case) and pre-tokeniser, its special tokens, [CLS] A [SEP] B [SEP] with
  segment ids), trained on the bundled Pride and Prejudice chapters 1-9 with 1,500 entries: no BERT
  vocabulary ships with the packages this app installs, so it is trained here (0.1 s) and the page says
  so. Its pieces are the slide's where the book has the words ("play ##ing"); words the book lacks
  are spelled in smaller pieces ("do ##g").
- `encode_pair(first, second)`: the pair as the model reads it: tokens, ids, segment ids, positions.
- `masks(n)`: who may attend to whom, bidirectional (an encoder) and causal (a decoder).

What it leaves out: BERT's weights (none ship offline: the table names the three rows that are summed,
not their numbers), masked-language-model predictions and next-sentence prediction (named on the page
in the slide's words), the drawing (`playground.plots.inside`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from playground.errors import PlaygroundError

CORPUS = Path(__file__).resolve().parents[2] / "assets" / "corpus" / "pride-and-prejudice-ch1-9.txt"
VOCAB_SIZE = 1500
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS = 120  # per sentence: the table is one screen wide
SLIDE_PAIR = ("my dog is cute", "he likes playing")


@functools.lru_cache(maxsize=1)
def wordpiece():
    """BERT's WordPiece, trained on the bundled book (a `tokenizers.Tokenizer`, shared and read-only)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL), show_progress=False)
    tokenizer.train_from_iterator([CORPUS.read_text(encoding="utf-8")], trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer


@dataclass(frozen=True)
class EncodedPair:
    """A sentence pair as an encoder reads it: token i's input vector is
    E_token[ids[i]] + E_segment[segments[i]] + E_position[i]."""

    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    segments: tuple[int, ...]  # 0 = sentence A (and [CLS], the first [SEP]), 1 = sentence B
    vocab_size: int

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(range(len(self.tokens)))

    @property
    def continued(self) -> tuple[str, ...]:
        """The pieces that continue a word (WordPiece writes them with ##)."""
        return tuple(t for t in self.tokens if t.startswith("##"))


def encode_pair(first: str, second: str) -> EncodedPair:
    """[CLS] first [SEP] second [SEP], with segment ids; PlaygroundError for an empty or long sentence."""
    first, second = " ".join(str(first or "").split()), " ".join(str(second or "").split())
    if not first or not second:
        raise PlaygroundError("Type two sentences: an encoder reads a pair as [CLS] A [SEP] B [SEP].")
    if len(first) > MAX_CHARS or len(second) > MAX_CHARS:
        raise PlaygroundError(f"Each sentence may have at most {MAX_CHARS} characters (the table is one screen wide).")
    tokenizer = wordpiece()
    encoding = tokenizer.encode(first, second)
    return EncodedPair(tuple(encoding.tokens), tuple(encoding.ids), tuple(encoding.type_ids),
                       tokenizer.get_vocab_size())


@dataclass(frozen=True)
class Masks:
    """allowed[i, j] = 1 where token i may attend to token j."""

    bidirectional: torch.Tensor  # [n, n] all ones: an encoder
    causal: torch.Tensor  # [n, n] lower-triangular: a decoder


def masks(n: int) -> Masks:
    ones = torch.ones((n, n), dtype=torch.int64)
    return Masks(ones, torch.tril(ones))
