"""Byte-pair encoding, trained the way the lecture's slide does it, and fast enough to watch live.

The slide's algorithm: start from the 256 single bytes; repeatedly count every pair of neighbouring
tokens, take the most frequent, give it a new id, and replace it everywhere (left to right, so
`a a a` becomes `aa a`). Optionally the text is first split with a GPT-2 or GPT-4 regex into chunks
(words with their leading space, numbers, punctuation runs), and pairs never span two chunks.

Tie-breaking (deterministic): among pairs with the same count, the one that occurs first in the
current sequence wins. That is exactly what the slide's `Counter(...).most_common(1)` does, since a
Counter keeps first-seen order and `most_common` is stable; `reference_train` is the slide verbatim
and the tests check that `train` makes the same merges in the same order.

`train` does not recount all pairs after each merge. It keeps the sequence as a linked list
(`next`/`prev` arrays over positions), a `pair -> set of positions` index and `count -> pairs`
buckets, and updates only the pairs around each replaced occurrence. Each merge records the pair,
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


def train(text: str, num_merges: int, pattern: str = "none") -> BPETraining:
    """Learn up to `num_merges` merges on `text` (fewer if no pair is left)."""
    _check(text, num_merges)
    # Initialize single byte vocab and tokenize: one node per byte, linked within its chunk
    tokens: list[int] = []
    nxt: list[int] = []
    for chunk in split_chunks(text, pattern):
        start = len(tokens)
        tokens.extend(chunk)
        nxt.extend(range(start + 1, start + len(chunk)))
        nxt.append(-1)
    prv = [i - 1 for i in range(len(tokens))]
    for i, n in enumerate(nxt):
        if n == -1 and i + 1 < len(tokens):
            prv[i + 1] = -1
    if tokens:
        prv[0] = -1
    vocab = {i: bytes([i]) for i in range(256)}

    # Count all pairs once: pair -> positions of its left token, and count -> pairs
    positions: dict[tuple[int, int], set[int]] = {}
    for i, n in enumerate(nxt):
        if n != -1:
            positions.setdefault((tokens[i], tokens[n]), set()).add(i)
    buckets: dict[int, set[tuple[int, int]]] = {}
    for pair, where in positions.items():
        buckets.setdefault(len(where), set()).add(pair)
    top = max(buckets, default=0)

    def move(pair: tuple[int, int], old: int, new: int) -> None:
        if old:
            bucket = buckets[old]
            bucket.discard(pair)
            if not bucket:
                del buckets[old]
        if new:
            buckets.setdefault(new, set()).add(pair)

    def remove(i: int) -> None:  # the pair starting at position i is gone
        if i == -1 or nxt[i] == -1:
            return
        pair = (tokens[i], tokens[nxt[i]])
        where = positions[pair]
        where.discard(i)
        move(pair, len(where) + 1, len(where))
        if not where:
            del positions[pair]

    def add(i: int) -> None:  # a pair now starts at position i
        if i == -1 or nxt[i] == -1:
            return
        pair = (tokens[i], tokens[nxt[i]])
        where = positions.setdefault(pair, set())
        where.add(i)
        move(pair, len(where) - 1, len(where))

    merges: list[Merge] = []
    lengths = [len(tokens)]
    length = len(tokens)
    while len(merges) < num_merges and positions:
        check_deadline()  # a request's time limit (RequestTimeout); no limit outside a request
        # Find most frequent pair of tokens; ties: the pair that occurs first
        while top not in buckets:
            top -= 1
        candidates = buckets[top]
        pair = min(candidates, key=lambda p: min(positions[p])) if len(candidates) > 1 else next(iter(candidates))
        a, b = pair
        # Add a new token
        new_id = 256 + len(merges)
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append(Merge(pair, new_id, top, vocab[new_id]))
        # Update the dataset, left to right, touching only the neighbours of each occurrence
        for i in sorted(positions[pair]):
            n = nxt[i]
            if n == -1 or tokens[i] != a or tokens[n] != b:
                continue  # consumed by the previous occurrence (a == b, as in "a a a")
            p = prv[i]
            remove(p)
            remove(i)
            remove(n)
            tokens[i] = new_id
            nn = nxt[n]
            nxt[i] = nn
            if nn != -1:
                prv[nn] = i
            nxt[n] = prv[n] = -1
            add(p)
            add(i)
            length -= 1
        lengths.append(length)
    return BPETraining(pattern, merges, lengths, vocab, num_bytes=len(tokens))


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
