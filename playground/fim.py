"""Fill-in-the-middle (FIM): the lecture's "Instruction tuning: Code completion" slide, as data.

A document is cut at two character positions (`cut`), or at a span marked `<MID>...</MID>`
(`cut_marked`), into prefix / middle / suffix (`FIMExample`). `psm` lays it out in PSM order
(prefix, suffix, middle) between sentinel tokens, the way a FIM-trained model sees it in training:
`[pre] prefix [post] suffix [mid] middle [eot]`. The prompt a FIM model completes is that string up
to and including the middle sentinel; the model writes the middle and ends it with its end token.

Sentinels (`sentinels_for`): a tokenizer's own, when it has one of the known sets as special tokens
(`KNOWN_SENTINELS`: StarCoder's `<fim_prefix>`/`<fim_suffix>`/`<fim_middle>`, the `<|fim_...|>` of
Qwen2.5-Coder, CodeGemma and OpenAI's cl100k_base, DeepSeek-Coder's `<｜fim▁begin｜>`...), each one
id; otherwise the lecture's notation `[bot][pre] ... [post] ... [mid] ... [eot]`, which such a
tokenizer reads as plain text (several tokens each). None of the packaged models has FIM tokens:
SmolLM2's tokenizer keeps StarCoder's code tokens (`<file_sep>`, `<repo_name>`) but not its FIM ones.

`encode_psm` tokenizes the PSM string the way FIM training does: each part on its own, each own
sentinel as its one id, and says which part every token belongs to. `complete_middle` runs a model
marked FIM-trained (`ModelSpec.fim`, `fim = true` in the models file) live: greedy decoding of the
prompt until its end-of-text token or a sentinel, returned as the middle.

What it leaves out: SPM order and character-level FIM rates (training-time choices), infilling
over an engine's HTTP API (an engine model is refused with a message), any gradio import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from playground import models, tokenizer_registry
from playground.errors import PlaygroundError

MARK_START, MARK_END = "<MID>", "</MID>"
MAX_MIDDLE_TOKENS = 96

NOT_FIM_MODEL = ("Run live needs a FIM-trained model, e.g. a StarCoder2 or Qwen2.5-Coder GGUF in the models "
                 "file (with fim = true). {model} was not trained to fill in the middle: whatever it wrote "
                 "after the middle sentinel would be a guess at what follows, not a completion.")

# (who uses them, prefix, suffix, middle): each must be one special token of the tokenizer.
KNOWN_SENTINELS = (
    ("StarCoder / StarCoder2 / SantaCoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ("Qwen2.5-Coder / CodeGemma / OpenAI cl100k_base", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ("DeepSeek-Coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
)
# Special tokens besides end-of-text that also end a generated middle, where the tokenizer has them.
STOP_TOKENS = ("<fim_pad>", "<|fim_pad|>", "<file_sep>", "<|file_sep|>", "<|endoftext|>")

Part = Literal["sentinel", "prefix", "suffix", "middle"]


@dataclass(frozen=True)
class FIMExample:
    """A document cut in three; `prefix + middle + suffix` is the document."""

    prefix: str
    middle: str
    suffix: str

    @property
    def document(self) -> str:
        return self.prefix + self.middle + self.suffix

    @property
    def start(self) -> int:
        return len(self.prefix)

    @property
    def end(self) -> int:
        return len(self.prefix) + len(self.middle)


def cut(document: str, start: int, end: int) -> FIMExample:
    """`document` cut at character positions `start` <= `end`: [0, start) [start, end) [end, ...)."""
    if not isinstance(document, str):
        raise PlaygroundError("The document must be text.")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlaygroundError(f"The cut's {name} must be a whole number, got {value!r}.")
    if not 0 <= start <= end <= len(document):
        raise PlaygroundError(f"The cut must satisfy 0 <= start <= end <= {len(document)} (the document's "
                              f"length); got start {start}, end {end}.")
    return FIMExample(document[:start], document[start:end], document[end:])


def cut_marked(text: str, start_mark: str = MARK_START, end_mark: str = MARK_END) -> FIMExample:
    """The text with one span marked `<MID>...</MID>`: the marks removed, the span is the middle."""
    if not isinstance(text, str):
        raise PlaygroundError("The code must be text.")
    opened, closed = text.count(start_mark), text.count(end_mark)
    if opened != 1 or closed != 1:
        raise PlaygroundError(f"Mark the middle once: {start_mark} where it starts and {end_mark} where it ends "
                              f"(the text has {opened} {start_mark} and {closed} {end_mark}).")
    start = text.index(start_mark)
    end = text.index(end_mark)
    if end < start:
        raise PlaygroundError(f"{end_mark} comes before {start_mark}: mark the middle as {start_mark}...{end_mark}.")
    return FIMExample(text[:start], text[start + len(start_mark):end], text[end + len(end_mark):])


@dataclass(frozen=True)
class Sentinels:
    prefix: str
    suffix: str
    middle: str
    begin: str = ""  # before the prefix sentinel (the lecture's [bot]); "" for none
    end: str = ""  # after the middle in a training string (the end-of-text token); "" for none
    own: bool = False  # the tokenizer's own special tokens; False: the lecture's notation, plain text
    family: str = "the lecture's notation"


LECTURE_SENTINELS = Sentinels("[pre]", "[post]", "[mid]", begin="[bot]", end="[eot]")


def choose_sentinels(special_tokens: Iterable[str], end: str = "") -> Sentinels:
    """The first of `KNOWN_SENTINELS` whose three tokens are all in `special_tokens` (with `end` as
    the end token), else `LECTURE_SENTINELS`."""
    have = set(special_tokens)
    for family, prefix, suffix, middle in KNOWN_SENTINELS:
        if {prefix, suffix, middle} <= have:
            return Sentinels(prefix, suffix, middle, end=end if end in have else "", own=True, family=family)
    return LECTURE_SENTINELS


def special_tokens(tokenizer: tokenizer_registry.Tokenizer) -> dict[str, int]:
    """Every special token of `tokenizer` by its text."""
    found = {}
    for token_id in sorted(tokenizer.special_ids):
        data = tokenizer.token_bytes(token_id)
        found.setdefault(data.decode("utf-8", errors="replace"), token_id)
    return found


def sentinels_for(tokenizer: tokenizer_registry.Tokenizer) -> Sentinels:
    """The tokenizer's own FIM tokens (its end-of-text token as the end), or the lecture's notation."""
    end = "" if tokenizer.eos_id is None else tokenizer.token_bytes(tokenizer.eos_id).decode("utf-8", "replace")
    return choose_sentinels(special_tokens(tokenizer), end)


@dataclass(frozen=True)
class Segment:
    part: Part
    text: str


@dataclass(frozen=True)
class PSM:
    """The example in PSM order between sentinels: the training string and the prompt."""

    example: FIMExample
    sentinels: Sentinels
    segments: tuple[Segment, ...]
    prompt_segments: int  # how many segments the prompt has (up to and including the middle sentinel)

    @property
    def training(self) -> str:
        return "".join(s.text for s in self.segments)

    @property
    def prompt(self) -> str:
        return "".join(s.text for s in self.segments[:self.prompt_segments])


def psm(example: FIMExample, sentinels: Sentinels = LECTURE_SENTINELS) -> PSM:
    """`begin pre prefix post suffix mid middle end`, begin and end left out where empty."""
    s = sentinels
    head = [Segment("sentinel", s.begin)] if s.begin else []
    segments = [*head, Segment("sentinel", s.prefix), Segment("prefix", example.prefix),
                Segment("sentinel", s.suffix), Segment("suffix", example.suffix), Segment("sentinel", s.middle)]
    prompt_segments = len(segments)
    segments.append(Segment("middle", example.middle))
    if s.end:
        segments.append(Segment("sentinel", s.end))
    return PSM(example, sentinels, tuple(segments), prompt_segments)


@dataclass(frozen=True)
class EncodedPSM:
    psm: PSM
    result: tokenizer_registry.TokenizationResult  # of the training string: ids, exact token spans
    parts: tuple[Part, ...]  # the part of every token
    prompt_length: int  # tokens of the prompt (up to and including the middle sentinel)

    @property
    def prompt_ids(self) -> list[int]:
        return self.result.ids[:self.prompt_length]


def encode_psm(tokenizer: tokenizer_registry.Tokenizer, layout: PSM) -> EncodedPSM:
    """Each segment tokenized on its own (as FIM training does); an own sentinel is its one id."""
    own = special_tokens(tokenizer) if layout.sentinels.own else {}
    ids: list[int] = []
    parts: list[Part] = []
    prompt_length = 0
    for index, segment in enumerate(layout.segments):
        if index == layout.prompt_segments:
            prompt_length = len(ids)
        piece = [own[segment.text]] if segment.part == "sentinel" and segment.text in own else (
            tokenizer.encode(segment.text) if segment.text else [])
        ids += piece
        parts += [segment.part] * len(piece)
    if prompt_length == 0:
        prompt_length = len(ids)
    result = tokenizer_registry.build_result(tokenizer.id, layout.training, ids, tokenizer.tokens_bytes(ids),
                                     tokenizer.special_ids)
    return EncodedPSM(layout, result, tuple(parts), prompt_length)


def layout_for(model_id: str, example: FIMExample) -> EncodedPSM:
    """The example laid out and tokenized for `model_id`'s own tokenizer and sentinels."""
    tokenizer = tokenizer_registry.get_tokenizer(model_id)
    return encode_psm(tokenizer, psm(example, sentinels_for(tokenizer)))


def can_run_live(model_id: str) -> tuple[bool, str]:
    """Whether `complete_middle` runs for `model_id`, and if not, why (the words for the page)."""
    spec = models.get_spec(model_id)
    if not spec.fim:
        return False, NOT_FIM_MODEL.format(model=spec.label or spec.id)
    from playground.backends import backend_for

    capabilities = backend_for(spec).capabilities
    if not capabilities.has("fim"):
        return False, capabilities.missing["fim"]
    return True, ""


@dataclass(frozen=True)
class FIMCompletion:
    model_id: str
    encoded: EncodedPSM
    middle: str  # the generated middle, its end token left out
    ids: tuple[int, ...]  # the generated ids, the end token (if any) included
    stop: Literal["end", "max_tokens", "context"]
    stop_token: str  # the token that ended it ("" unless stop == "end")


def complete_middle(model_id: str, example: FIMExample, max_new_tokens: int = MAX_MIDDLE_TOKENS) -> FIMCompletion:
    """Greedy decoding of the PSM prompt on a FIM-trained model until its end or a sentinel."""
    from playground import generation
    from playground.sampling import SamplingSettings

    runs, why = can_run_live(model_id)
    if not runs:
        raise PlaygroundError(why)
    encoded = layout_for(model_id, example)
    if not encoded.psm.sentinels.own:
        raise PlaygroundError(f"{model_id} is marked fim = true, but its tokenizer has none of the known FIM "
                              f"tokens ({', '.join(k[1] for k in KNOWN_SENTINELS)}).")
    loaded = models.load_model(model_id)
    own = special_tokens(tokenizer_registry.get_tokenizer(model_id))
    sentinels = encoded.psm.sentinels
    stop_ids = {*loaded.eos_token_ids, *(own[t] for t in (*STOP_TOKENS, sentinels.prefix, sentinels.suffix,
                                                          sentinels.middle, sentinels.end) if t in own)}
    decoder = generation.Decoder(loaded, encoded.prompt_ids)
    ids: list[int] = []
    stop, stop_token = "context", ""
    try:
        for record in generation.iter_generation(decoder, SamplingSettings(temperature=0.0), max_new_tokens, 0):
            ids.append(record.id)
            if record.id in stop_ids:
                stop, stop_token = "end", record.text
                break
            if record.stop is not None:
                stop = "max_tokens" if record.stop == "max_tokens" else "context"
                break
    finally:
        decoder.close()
    body = ids[:-1] if stop == "end" else ids
    middle = generation.generated_text(loaded.tokenizer, body)
    return FIMCompletion(model_id, encoded, middle, tuple(ids), stop, stop_token)
