"""Byte-pair encoding, trained the way the lecture's slide does it, and fast enough to watch live.

The slide's algorithm: start from the 256 single bytes; repeatedly count every pair of neighbouring
tokens, take the most frequent, give it a new id, and replace it everywhere (left to right, so
`a a a` becomes `aa a`). Optionally the text is first split with a GPT-2 or GPT-4 regex into chunks
(words with their leading space, numbers, punctuation runs), and pairs never span two chunks.

Tie-breaking (deterministic): among pairs with the same count, the one that occurs first in the
current sequence wins. That is exactly what the slide's `Counter(...).most_common(1)` does, since a
Counter keeps first-seen order and `most_common` is stable; `reference_train` is the slide verbatim
and the tests check that `train` makes the same merges in the same order.

`train` is that loop, but it does not recount all pairs after each merge: a `PairIndex` keeps the
sequence as a linked list (`nxt`/`prv` arrays over positions), a `pair -> set of positions` index
and `count -> pairs` buckets, and updates only the pairs around each replaced occurrence. Each merge records the pair,
the new id, its count, the new token's bytes and the sequence length after it.

`encode` tokenizes new text with the learned merges (lowest merge rank first, as GPT-2 does);
`decode` joins the tokens' bytes. Both loops check the request's time limit
(`playground.limits.check_deadline`): in the app a runaway training or encoding stops with a
`RequestTimeout`; outside a request there is no limit. Encoding one long chunk (pattern "none") is
quadratic, like the slide's loop; the UI caps the text it encodes. What it leaves out: special tokens, saving/loading vocabularies,
byte shuffling (GPT-4) and the dedup-chunks-with-counts speed-up (it would hide the sequence length).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import regex

from playground.errors import PlaygroundError
from playground.limits import check_deadline

# The split patterns of GPT-2 and of GPT-4 (cl100k_base), as published with tiktoken.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
PATTERNS = {"none": None, "gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}
MAX_TRAIN_BYTES = 2_000_000
MAX_MERGES = 5_000


@dataclass(frozen=True)
class Merge:
    pair: tuple[int, int]
    new_id: int
    count: int  # occurrences of the pair (overlapping ones included) when it was chosen
    token: bytes  # the new token's bytes


@dataclass
class BPETraining:
    pattern: str  # "none", "gpt2" or "gpt4"
    merges: list[Merge]
    lengths: list[int]  # sequence length after 0, 1, ..., len(merges) merges
    vocab: dict[int, bytes] = field(repr=False)
    num_bytes: int = 0

    def merges_upto(self, k: int) -> list[Merge]:
        return self.merges[:k]


def split_chunks(text: str, pattern: str = "none") -> list[bytes]:
    """The text's UTF-8 bytes, split into the chunks that merges never cross."""
    if pattern not in PATTERNS:
        raise PlaygroundError(f"Unknown split pattern {pattern!r}; choose one of {', '.join(PATTERNS)}.")
    if PATTERNS[pattern] is None:
        return [text.encode("utf-8")] if text else []
    return [chunk.encode("utf-8") for chunk in regex.findall(PATTERNS[pattern], text)]


def _check(text: str, num_merges: int) -> None:
    if num_merges < 0 or num_merges > MAX_MERGES:
        raise PlaygroundError(f"The number of merges must be between 0 and {MAX_MERGES}.")
    if len(text) > MAX_TRAIN_BYTES:
        raise PlaygroundError(f"Training text is limited to {MAX_TRAIN_BYTES:,} characters; got {len(text):,}.")


def reference_train(text: str, num_merges: int, pattern: str = "none") -> list[tuple[tuple[int, int], int]]:
    """The lecture's slide, literally: recount every pair after each merge. Slow; for tests and bench.

    Returns [(pair, count), ...] in merge order.
    """
    chunks = [list(chunk) for chunk in split_chunks(text, pattern)]
    merges, next_id = [], 256
    for _ in range(num_merges):
        # Find most frequent pair of tokens
        cnt = Counter((d[i], d[i + 1]) for d in chunks for i in range(len(d) - 1))
        if not cnt:
            break
        (a, b), count = cnt.most_common(1)[0]
        # Add a new token
        new, next_id = next_id, next_id + 1
        merges.append(((a, b), count))
        # Update the dataset
        updated = []
        for d in chunks:
            d_update: list[int] = []
            for x in d:
                if d_update and d_update[-1] == a and x == b:
                    d_update[-1] = new
                else:
                    d_update.append(x)
            updated.append(d_update)
        chunks = updated
    return merges


class PairIndex:
    """The token sequence as a linked list (`nxt`/`prv` over positions; -1 ends a chunk) with every
    pair of neighbours indexed: `positions` (pair -> positions of its left token) and `buckets`
    (count -> pairs), so a merge updates only the pairs around each replaced occurrence."""

    def __init__(self, chunks: list[bytes]):
        self.tokens: list[int] = []
        self.nxt: list[int] = []
        for chunk in chunks:
            start = len(self.tokens)
            self.tokens.extend(chunk)
            self.nxt.extend([*range(start + 1, start + len(chunk)), -1])
        self.prv = [-1] * len(self.tokens)
        for i, n in enumerate(self.nxt):
            if n != -1:
                self.prv[n] = i
        self.length = len(self.tokens)
        self.positions: dict[tuple[int, int], set[int]] = {}
        self.buckets: dict[int, set[tuple[int, int]]] = {}
        for i in range(len(self.tokens)):
            self._add(i)
        self.top = max(self.buckets, default=0)

    def has_pairs(self) -> bool:
        return bool(self.positions)

    def most_common(self) -> tuple[tuple[int, int], int]:
        """The most frequent pair and its count; ties: the pair that occurs first."""
        while self.top not in self.buckets:
            self.top -= 1
        candidates = self.buckets[self.top]
        pair = min(candidates, key=lambda p: min(self.positions[p])) if len(candidates) > 1 else next(iter(candidates))
        return pair, self.top

    def replace(self, pair: tuple[int, int], new_id: int) -> None:
        """Every occurrence of `pair` becomes `new_id`, left to right (`a a a` becomes `aa a`)."""
        a, b = pair
        tokens, nxt, prv = self.tokens, self.nxt, self.prv
        for i in sorted(self.positions[pair]):
            n = nxt[i]
            if n == -1 or tokens[i] != a or tokens[n] != b:
                continue  # consumed by the previous occurrence (a == b, as in "a a a")
            p = prv[i]
            for gone in (p, i, n):
                self._remove(gone)
            tokens[i], nxt[i] = new_id, nxt[n]
            if nxt[i] != -1:
                prv[nxt[i]] = i
            nxt[n] = prv[n] = -1
            self._add(p)
            self._add(i)
            self.length -= 1

    def _move(self, pair: tuple[int, int], old: int, new: int) -> None:
        if old:
            bucket = self.buckets[old]
            bucket.discard(pair)
            if not bucket:
                del self.buckets[old]
        if new:
            self.buckets.setdefault(new, set()).add(pair)

    def _remove(self, i: int) -> None:  # the pair starting at position i is gone
        if i == -1 or self.nxt[i] == -1:
            return
        pair = (self.tokens[i], self.tokens[self.nxt[i]])
        where = self.positions[pair]
        where.discard(i)
        self._move(pair, len(where) + 1, len(where))
        if not where:
            del self.positions[pair]

    def _add(self, i: int) -> None:  # a pair now starts at position i
        if i == -1 or self.nxt[i] == -1:
            return
        pair = (self.tokens[i], self.tokens[self.nxt[i]])
        where = self.positions.setdefault(pair, set())
        where.add(i)
        self._move(pair, len(where) - 1, len(where))


def train(text: str, num_merges: int, pattern: str = "none") -> BPETraining:
    """Learn up to `num_merges` merges on `text` (fewer if no pair is left): `reference_train`'s
    loop, with the pair counts kept up to date (`PairIndex`) instead of recounted."""
    _check(text, num_merges)
    # Initialize single byte vocab and tokenize (pairs never span two chunks)
    data = PairIndex(split_chunks(text, pattern))
    vocab = {i: bytes([i]) for i in range(256)}
    merges: list[Merge] = []
    lengths = [data.length]
    while len(merges) < num_merges and data.has_pairs():
        check_deadline()  # a request's time limit (RequestTimeout); no limit outside a request
        # Find most frequent pair of tokens
        pair, count = data.most_common()
        # Add a new token
        new_id = 256 + len(merges)
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        merges.append(Merge(pair, new_id, count, vocab[new_id]))
        # Update the dataset
        data.replace(pair, new_id)
        lengths.append(data.length)
    return BPETraining(pattern, merges, lengths, vocab, num_bytes=len(data.tokens))


def encode(text: str, merges: list[Merge], pattern: str = "none") -> list[int]:
    """Tokenize new text with learned merges: in each chunk, apply the lowest-ranked merge present."""
    rank = {m.pair: index for index, m in enumerate(merges)}
    new_ids = {m.pair: m.new_id for m in merges}
    ids: list[int] = []
    done: dict[bytes, list[int]] = {}  # repeated chunks (words) are encoded once
    for chunk in split_chunks(text, pattern):
        if chunk in done:
            ids.extend(done[chunk])
            continue
        seq = list(chunk)
        while len(seq) > 1:
            check_deadline()
            pair = min(zip(seq, seq[1:]), key=lambda p: rank.get(p, len(rank)))
            if pair not in rank:
                break
            a, b = pair
            merged: list[int] = []
            i = 0
            while i < len(seq):
                if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
                    merged.append(new_ids[pair])
                    i += 2
                else:
                    merged.append(seq[i])
                    i += 1
            seq = merged
        if pattern != "none":
            done[chunk] = seq
        ids.extend(seq)
    return ids


def vocabulary(merges: list[Merge]) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for m in merges:
        vocab[m.new_id] = vocab[m.pair[0]] + vocab[m.pair[1]]
    return vocab


def decode(ids: list[int], merges: list[Merge]) -> bytes:
    """The bytes of `ids` (decode with errors="replace", or token_text.display_text, to show them)."""
    vocab = vocabulary(merges)
    try:
        return b"".join(vocab[i] for i in ids)
    except KeyError as exc:
        raise PlaygroundError(f"Token id {exc.args[0]} is not in the learned vocabulary (0 to {255 + len(merges)}).") from None
