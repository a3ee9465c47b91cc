"""The architecture card and the parameter formula.

- `Shape` is what the formula needs from a configuration (layers, widths, heads, key/value heads,
  MLP kind, embeddings tied or not, learned positions, biases, norms); `shape_of(config)` reads it
  from a transformers config (Llama, Mistral, Mixtral, Gemma 3 text).
- `formula_parameters(shape)` is the one formula, split into embeddings, attention, MLP and norms.
  It gives the lecture's table (`LECTURE_MODELS`: GPT-1, GPT-2, GPT-3, Mistral 7B, Mixtral 8x7B,
  Llama 3 8B/70B/405B from their published configurations) and, on a loaded model, exactly the
  total counted from its weights (`counted_parameters`: every tensor once, tied ones once).
- `architecture(model_id)` is the card of a loaded model: its real configuration, what grouped-query
  attention shares, the sliding-window layers, RoPE theta, and both counts side by side.
- `capacities(card)`: the lecture's "up to 2 bits per parameter" (Allen-Zhu and Li 2024) as bytes
  each model could memorise at most, this model's first.

What it leaves out: running the model (nothing here calls it), drawing, and architectures the
formula does not know (`shape_of` says so: the card then shows the counted figures only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from playground.errors import PlaygroundError
from playground.models import LoadedModel, load_model

GPT3_TOLERANCE = 0.01  # the formula must give GPT-3's 175B within 1%


@dataclass(frozen=True)
class Shape:
    """The numbers the parameter formula reads; defaults are a Llama-style decoder (RMSNorm, no
    biases, gated MLP, RoPE: no position table)."""

    vocab: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    gated_mlp: bool = True  # SwiGLU/GeGLU: gate, up and down matrices; GPT: up and down
    tied: bool = True  # the output layer reuses the embedding matrix
    positions: int = 0  # rows of a learned position table (GPT); 0 for RoPE
    attention_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = False  # LayerNorm (weight and bias) rather than RMSNorm (weight)
    norms_per_layer: int = 2
    final_norm: bool = True
    qk_norm: bool = False  # a norm over each head's queries and keys (Gemma 3)
    experts: int = 1  # mixture of experts: MLPs per layer, plus a router
    active_experts: int = 1


@dataclass(frozen=True)
class Parameters:
    embeddings: int
    attention: int
    mlp: int
    norms: int
    other: int = 0  # counted tensors the four groups do not name (none in the packaged models)
    active_mlp: int | None = None  # mixture of experts: the MLP parameters one token uses

    @property
    def total(self) -> int:
        return self.embeddings + self.attention + self.mlp + self.norms + self.other

    @property
    def active(self) -> int:
        return self.total if self.active_mlp is None else self.total - self.mlp + self.active_mlp


def formula_parameters(shape: Shape) -> Parameters:
    """The parameter count of a decoder-only transformer from its shape."""
    d, s = shape.hidden, shape
    q_width, kv_width = s.heads * s.head_dim, s.kv_heads * s.head_dim
    embeddings = s.vocab * d * (1 if s.tied else 2) + s.positions * d
    attention = d * q_width + 2 * d * kv_width + q_width * d  # W_Q, W_K, W_V, W_O
    if s.attention_bias:
        attention += q_width + 2 * kv_width + d
    one_mlp = (3 if s.gated_mlp else 2) * d * s.ffn
    if s.mlp_bias:
        one_mlp += (2 if s.gated_mlp else 1) * s.ffn + d
    router = d * s.experts if s.experts > 1 else 0
    norm_size = d * (2 if s.norm_bias else 1)
    norms = s.layers * (s.norms_per_layer * norm_size + (2 * s.head_dim if s.qk_norm else 0))
    norms += norm_size if s.final_norm else 0
    return Parameters(
        embeddings=embeddings, attention=s.layers * attention, mlp=s.layers * (s.experts * one_mlp + router),
        norms=norms, active_mlp=s.layers * (s.active_experts * one_mlp + router) if s.experts > 1 else None)


# model_type -> (norms per layer, per-head query/key norms)
_KNOWN_TYPES = {"llama": (2, False), "mistral": (2, False), "mixtral": (2, False), "gemma3_text": (4, True)}


def covered(config) -> None:
    """PlaygroundError naming the architecture when the formula does not know its model type."""
    kind = getattr(config, "model_type", "?")
    if kind not in _KNOWN_TYPES:
        raise PlaygroundError(f"The parameter formula does not cover model type {kind!r} "
                              f"(it knows {', '.join(sorted(_KNOWN_TYPES))}).")


def shape_of(config, strict: bool = True) -> Shape:
    """The formula's shape of a transformers config; PlaygroundError for an architecture it does not
    know (with `strict=False`: its numbers read as a Llama-style decoder's, for the card)."""
    if strict:
        covered(config)
    norms_per_layer, qk_norm = _KNOWN_TYPES.get(getattr(config, "model_type", "?"), (2, False))
    heads = int(config.num_attention_heads)
    experts = int(getattr(config, "num_local_experts", 1) or 1)
    return Shape(
        vocab=int(config.vocab_size), layers=int(config.num_hidden_layers), hidden=int(config.hidden_size),
        heads=heads, kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
        ffn=int(config.intermediate_size), tied=bool(getattr(config, "tie_word_embeddings", False)),
        attention_bias=bool(getattr(config, "attention_bias", False)),
        mlp_bias=bool(getattr(config, "mlp_bias", False)),
        norms_per_layer=norms_per_layer, qk_norm=qk_norm, experts=experts,
        active_experts=int(getattr(config, "num_experts_per_tok", 1) or 1) if experts > 1 else 1,
    )


def _group(name: str) -> str:
    """Which of the four groups a parameter of a transformers decoder belongs to."""
    leaf = name.rsplit(".", 2)[-2] if "." in name else name
    if "norm" in leaf or leaf.startswith("ln"):
        return "norms"
    if "embed" in name or "lm_head" in name or leaf in ("wte", "wpe"):
        return "embeddings"
    if "attn" in name or "attention" in name:
        return "attention"
    if "mlp" in name or "experts" in name or "feed_forward" in name:
        return "mlp"
    return "other"


def counted_parameters(model) -> Parameters:
    """The parameters of a loaded model, counted tensor by tensor (a tied matrix once)."""
    counts = dict(embeddings=0, attention=0, mlp=0, norms=0, other=0)
    seen: set[int] = set()
    for name, tensor in model.named_parameters(remove_duplicate=False):
        if id(tensor) in seen:  # tied: the output layer is the embedding matrix
            continue
        seen.add(id(tensor))
        counts[_group(name)] += tensor.numel()
    return Parameters(**counts)


# ---------------------------------------------------------------------------------------------
# The lecture's models, from their published configurations


@dataclass(frozen=True)
class LectureModel:
    name: str
    shape: Shape
    lecture_says: str  # the figure on the lecture's slide (or the paper's headline)
    published: float | None  # the paper's parameter count, for the check
    source: str


_GPT = dict(gated_mlp=False, tied=True, attention_bias=True, mlp_bias=True, norm_bias=True)
_MISTRAL = Shape(vocab=32000, layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, tied=False)
_LLAMA3 = dict(vocab=128256, kv_heads=8, head_dim=128, tied=False)  # 128,256 in the released configs

LECTURE_MODELS: tuple[LectureModel, ...] = (
    LectureModel("GPT-1", Shape(vocab=40478, layers=12, hidden=768, heads=12, kv_heads=12, head_dim=64, ffn=3072,
                                positions=512, final_norm=False, **_GPT),  # post-norm: no final LayerNorm
                 "0.1B", 117e6, "Radford et al. 2018"),
    LectureModel("GPT-2 (XL)", Shape(vocab=50257, layers=48, hidden=1600, heads=25, kv_heads=25, head_dim=64,
                                     ffn=6400, positions=1024, **_GPT),
                 "1.5B", 1542e6, "Radford et al. 2019"),
    LectureModel("GPT-3", Shape(vocab=50257, layers=96, hidden=12288, heads=96, kv_heads=96, head_dim=128,
                                ffn=49152, positions=2048, **_GPT),
                 "175.0B", 175e9, "Brown et al. 2020"),
    LectureModel("Mistral 7B", _MISTRAL, "7B", 7.3e9, "Jiang et al. 2023"),
    LectureModel("Mixtral 8x7B", replace(_MISTRAL, experts=8, active_experts=2), "47B (13B active)", 46.7e9,
                 "Jiang et al. 2024"),
    LectureModel("Llama 3 8B", Shape(layers=32, hidden=4096, heads=32, ffn=14336, **_LLAMA3), "8B", 8e9,
                 "Dubey et al. 2024"),
    LectureModel("Llama 3 70B", Shape(layers=80, hidden=8192, heads=64, ffn=28672, **_LLAMA3), "70B", 70e9,
                 "Dubey et al. 2024"),
    LectureModel("Llama 3 405B", Shape(layers=126, hidden=16384, heads=128, ffn=53248, **_LLAMA3), "405B", 405e9,
                 "Dubey et al. 2024"),
)


@dataclass(frozen=True)
class TableRow:
    name: str
    shape: Shape
    formula: Parameters
    lecture_says: str
    reference: float | None  # the published (or counted) figure the formula is checked against
    check: str  # what is checked and whether it holds
    source: str

    @property
    def ratio(self) -> float | None:
        return None if not self.reference else self.formula.total / self.reference


def lecture_table() -> list[TableRow]:
    """The lecture's models with their formula counts; GPT-3 is checked to be within 1% of 175B."""
    rows = []
    for entry in LECTURE_MODELS:
        formula = formula_parameters(entry.shape)
        ratio = formula.total / entry.published if entry.published else None
        if entry.name == "GPT-3":
            check = ("✓ within 1% of 175B" if abs(ratio - 1) <= GPT3_TOLERANCE else "✗ more than 1% off 175B")
        else:
            check = f"{ratio:.3f} × the paper's figure" if ratio else ""
        rows.append(TableRow(entry.name, entry.shape, formula, entry.lecture_says, entry.published, check,
                             entry.source))
    return rows


def model_row(card: "ArchitectureCard") -> TableRow:
    """A loaded model as a row of the table, checked against its counted total (exact)."""
    if card.formula is None:
        return TableRow(card.model_id, card.shape, card.counted, "", card.counted.total, "formula: not covered",
                        "counted")
    exact = card.formula.total == card.counted.total
    check = f"✓ equals the {card.counted.total:,} counted" if exact else f"✗ counted {card.counted.total:,}"
    return TableRow(card.model_id, card.shape, card.formula, "", card.counted.total, check, "counted from the weights")


# ---------------------------------------------------------------------------------------------
# Knowledge capacity: "up to 2 bits per parameter"

CAPACITY_BITS_PER_PARAMETER = 2.0
CAPACITY_SOURCE = ("Allen-Zhu and Li 2024, \"Physics of Language Models: Part 3.3, Knowledge Capacity Scaling "
                   "Laws\" (arXiv:2404.05405): language models store at most about 2 bits of knowledge per "
                   "parameter, even quantized to int8")


@dataclass(frozen=True)
class Capacity:
    """What "up to 2 bits per parameter" allows a model of `parameters` parameters to memorise."""

    name: str
    parameters: float
    bits_per_parameter: float = CAPACITY_BITS_PER_PARAMETER

    @property
    def bytes(self) -> float:
        """capacity = parameters x bits per parameter / 8 bits per byte."""
        return self.parameters * self.bits_per_parameter / 8


def capacities(card: "ArchitectureCard | None" = None) -> list[Capacity]:
    """The loaded model's capacity (from its counted parameters), then the lecture's models'."""
    rows = [Capacity(card.model_id, float(card.counted.total))] if card is not None else []
    return rows + [Capacity(entry.name, float(entry.published or formula_parameters(entry.shape).total))
                   for entry in LECTURE_MODELS]


# ---------------------------------------------------------------------------------------------
# The card of a loaded model


@dataclass(frozen=True)
class ArchitectureCard:
    model_id: str
    model_type: str
    dtype: str
    device: str
    shape: Shape  # layers, widths, heads, vocabulary as configured
    activation: str
    context_length: int
    rope_theta: dict[str, float]  # per layer kind ("all" when one theta serves every layer)
    layer_types: tuple[str, ...]  # "full_attention" or "sliding_attention", per layer
    sliding_window: int | None
    tied_embeddings: bool
    counted: Parameters
    formula: Parameters | None  # None when the formula does not cover the architecture
    formula_note: str = ""

    def __getattr__(self, name: str):
        """The configuration's numbers as the card's own: card.layers, card.heads, card.kv_heads, ..."""
        if name in Shape.__dataclass_fields__:
            return getattr(self.shape, name)
        raise AttributeError(name)

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1: multi-head attention, heads: multi-query)."""
        return self.heads // self.kv_heads

    @property
    def sliding_layers(self) -> tuple[int, ...]:
        return tuple(i for i, kind in enumerate(self.layer_types) if kind == "sliding_attention")

    @property
    def formula_exact(self) -> bool:
        return self.formula is not None and self.formula.total == self.counted.total


ACTIVATIONS = {"silu": "SwiGLU (SiLU-gated MLP)", "gelu_pytorch_tanh": "GeGLU (tanh-GELU-gated MLP)",
               "gelu": "GeGLU (GELU-gated MLP)"}


def rope_thetas(config) -> dict[str, float]:
    """RoPE theta of each layer kind (transformers 5 keeps them in `rope_parameters`)."""
    params = getattr(config, "rope_parameters", None) or {}
    if "rope_theta" in params:
        return {"all": float(params["rope_theta"])}
    found = {kind: float(value["rope_theta"]) for kind, value in params.items()
             if isinstance(value, dict) and "rope_theta" in value}
    if not found and getattr(config, "rope_theta", None) is not None:
        found = {"all": float(config.rope_theta)}
    return found


def layer_types(config) -> tuple[str, ...]:
    kinds = getattr(config, "layer_types", None)
    return tuple(kinds) if kinds else ("full_attention",) * int(config.num_hidden_layers)


def card_of(loaded: LoadedModel) -> ArchitectureCard:
    config = loaded.model.config
    shape = shape_of(config, strict=False)
    try:
        covered(config)
        formula, note = formula_parameters(shape), ""
    except PlaygroundError as exc:
        formula, note = None, str(exc)
    kinds = layer_types(config)
    activation = getattr(config, "hidden_act", None) or getattr(config, "hidden_activation", None) or "?"
    return ArchitectureCard(
        model_id=loaded.id, model_type=str(config.model_type), dtype=str(loaded.dtype).replace("torch.", ""),
        device=loaded.device.type, shape=shape, activation=ACTIVATIONS.get(activation, activation),
        context_length=loaded.context_length, rope_theta=rope_thetas(config), layer_types=kinds,
        sliding_window=int(config.sliding_window) if "sliding_attention" in kinds else None,
        tied_embeddings=shape.tied, counted=counted_parameters(loaded.model), formula=formula, formula_note=note,
    )


def architecture(model_id: str) -> ArchitectureCard:
    """The card of `model_id` (loads it; counted once per loaded model)."""
    loaded = load_model(model_id)
    return loaded.runtime.part("inside-architecture", lambda: card_of(loaded))
