"""Low-bit weights in-process: a model's linear layers run on the GGUF file's own blocks, in float32.

A decode step on a CPU is bound by memory bandwidth. Dequantized to float32, each step reads 4 bytes
per weight; llama.cpp reads the GGUF's 4-8 bit blocks. This module reads the blocks of the GGUF a
model was loaded from and replaces each `nn.Linear` of the transformers model (the output layer
included) by a `LowBitLinear` that keeps the blocks' integer codes and runs the playground's own
kernel (`lowbit_mm.cpp`, built by `playground.lowbit_kernel`): the codes are read, the arithmetic is
float32 (activations are never rounded to a narrower type).

Every supported block format is an affine map of an unsigned integer code per group of 32:
w = scale * code + minimum, with the scale and minimum exact in float32 (fp16 numbers times small
integers).

- Q4_1 (w = d * q + m per 32) and Q4_K (w = d * sc * q - dmin * mn per sub-block of 32): 4-bit codes,
  two per byte.
- Q5_0 (w = d * (q - 16), q of 5 bits): 4-bit codes plus a word of fifth bits, as the file keeps them.
- Q8_0 (w = d * q, q of 8 bits signed, code q + 128): one byte per code.
- Anything else (Q6_K's sub-blocks of 16, F16, F32): the float32 `nn.Linear` stays.

Scales and minimums are kept as float16 where the file's are (Q4_1, Q5_0, Q8_0), so a step reads
about the file's bytes (Q4_1: 5 bits per weight, Q5_0 6, Q8_0 9; Q4_K 6 against the file's 4.5).

What is exact: the codes, scales and minimums are the file's, and the weights they make are the
float32 weights transformers dequantized (checked row by row at conversion: `reproduces`). Up to
FEW_ROWS positions (a decode step, a few beams) are computed from the codes as sum over groups of
scale * (codes . x) + minimum * sum(x), in float32; more positions (a prompt), and any pass that
needs a gradient, multiply by the float32 weight itself. Either way the result is the float32
model's up to the order of summation (about 1e-6 relative), the freedom any two float32 matmul
kernels have, so every tab's numbers agree as they do on float32 weights. Nothing is rounded; the
price is memory: the codes are kept beside the float32 weights.

Each replaced module keeps the float32 weight it replaces as its `weight` parameter (the same tensor:
tied embeddings stay tied, the embedding lookup stays exact, parameter counts and code that reads
`.weight` see the model unchanged); only the forward pass reads the codes. Rows of a GGUF tensor are
matched to the loaded weight (transformers permutes Llama's Q and K rows when it reads a GGUF); a
tensor whose blocks do not reproduce the loaded weight is left in float32 and reported.
What it leaves out: GPUs (the kernel is a CPU one), quantizing weights that were not quantized in
the file, caching the codes on disk (they are rebuilt at load, a few seconds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from playground import lowbit_kernel

GROUP = 32  # the kernel's group along the input dimension; every supported GGUF block is 32 wide
CHECK_ROWS = 8192  # rows compared at a time when checking that codes reproduce a weight
FEW_ROWS = 4  # up to this many positions the kernel reads the codes; more: a float32 matmul
REBUILT_ROWS = 4096  # rows rebuilt at a time for a joined module's matmul (it keeps no float32 weight)

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def kernel_available() -> bool:
    """Whether the low-bit kernel is built and loaded here (`lowbit_kernel.available` says why not)."""
    return lowbit_kernel.available()[0]


# ---------------------------------------------------------------------------------------------
# GGUF blocks as affine integer codes per group of 32


@dataclass
class Codes:
    """w[n, g*32 + j] = scale[n, g] * code[n, g, j] + minimum[n, g]; codes of `bits` bits."""

    code: np.ndarray  # uint8 [N, G, 32]
    scale: np.ndarray  # float64 [N, G]
    minimum: np.ndarray  # float64 [N, G]
    bits: int
    kind: str  # the GGUF type name

    def dequantize(self) -> np.ndarray:
        """The weight in float64 (exact: fp16 scales times small integers)."""
        w = self.scale[..., None] * self.code + self.minimum[..., None]
        return w.reshape(w.shape[0], -1)

    def rows(self, order: np.ndarray) -> "Codes":
        return Codes(self.code[order], self.scale[order], self.minimum[order], self.bits, self.kind)


def _fp16(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw).view(np.float16).astype(np.float64)[..., 0]


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """16 bytes per block -> 32 codes: element j is byte j's low nibble, element j + 16 its high one."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def codes_from_blocks(kind: str, data: np.ndarray, rows: int, columns: int) -> Codes | None:
    """The codes of a GGUF tensor's raw blocks ([rows, bytes per row] uint8), or None if `kind` is
    not one of the affine 32-wide formats (Q4_1, Q4_K, Q5_0, Q8_0)."""
    if columns % 256 and kind == "Q4_K" or columns % GROUP:
        return None
    groups = columns // GROUP
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(rows, -1)
    if kind == "Q4_1":  # 20 bytes: d, m (fp16), 16 bytes of nibbles
        blocks = data.reshape(rows, groups, 20)
        d, m = _fp16(blocks[..., 0:2]), _fp16(blocks[..., 2:4])
        return Codes(_nibbles(blocks[..., 4:]), d, m, 4, kind)
    if kind == "Q5_0":  # 22 bytes: d (fp16), 32 high bits, 16 bytes of low nibbles; w = d * (q - 16)
        blocks = data.reshape(rows, groups, 22)
        d = _fp16(blocks[..., 0:2])
        high = np.ascontiguousarray(blocks[..., 2:6]).view(np.uint32)  # [rows, groups, 1]
        high = ((high >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)
        return Codes(_nibbles(blocks[..., 6:]) | (high << 4), d, -16.0 * d, 5, kind)
    if kind == "Q8_0":  # 34 bytes: d (fp16), 32 signed bytes; w = d * q, code = q + 128
        blocks = data.reshape(rows, groups, 34)
        d = _fp16(blocks[..., 0:2])
        q = np.ascontiguousarray(blocks[..., 2:]).view(np.int8).astype(np.int16) + 128
        return Codes(q.astype(np.uint8), d, -128.0 * d, 8, kind)
    if kind == "Q4_K":  # 144 bytes per 256: d, dmin (fp16), 12 bytes of 6-bit scales/mins, 128 bytes
        supers = columns // 256
        blocks = data.reshape(rows, supers, 144)
        d, dmin = _fp16(blocks[..., 0:2]), _fp16(blocks[..., 2:4])
        s = blocks[..., 4:16].reshape(rows, supers, 3, 4)
        sc = np.concatenate([s[..., 0, :] & 0x3F, (s[..., 2, :] & 0x0F) | ((s[..., 0, :] >> 2) & 0x30)], axis=-1)
        mn = np.concatenate([s[..., 1, :] & 0x3F, (s[..., 2, :] >> 4) | ((s[..., 1, :] >> 2) & 0x30)], axis=-1)
        qs = blocks[..., 16:].reshape(rows, supers, 4, 1, 32)  # 4 chunks of 64: low nibbles, then high
        code = ((qs >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 1, 2, 1)) & 0x0F).reshape(rows, groups, 32)
        scale = (d[..., None] * sc).reshape(rows, groups)
        minimum = -(dmin[..., None] * mn).reshape(rows, groups)
        return Codes(code, scale, minimum, 4, kind)
    return None


# ---------------------------------------------------------------------------------------------
# A GGUF file's tensors (gguf.GGUFReader parses every metadata value, the whole vocabulary
# included: 7 s for SmolLM2's; only the tensor index is read here, metadata values are skipped)

_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value types
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    kind: str  # the GGML type's name: Q4_1, Q8_0, ...
    shape: tuple[int, ...]  # GGUF order: the fastest-varying dimension first ([columns, rows])
    data: np.ndarray  # the raw bytes, uint8 [rows, bytes per row] (a view of the memory-mapped file)


def read_tensors(path: str | Path) -> dict[str, GGUFTensor]:
    """The tensors of a GGUF file (version 2 or 3) by name, memory-mapped."""
    import struct

    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    raw = np.memmap(path, dtype=np.uint8, mode="r")
    buffer = memoryview(raw)
    if bytes(buffer[:4]) != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file")
    version, tensor_count, kv_count = struct.unpack_from("<IQQ", buffer, 4)
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    position = 24

    def string() -> str:
        nonlocal position
        (length,) = struct.unpack_from("<Q", buffer, position)
        position += 8 + length
        return bytes(buffer[position - length:position]).decode("utf-8", errors="replace")

    def skip(value_type: int) -> None:
        nonlocal position
        if value_type == _STRING:
            string()
        elif value_type == _ARRAY:
            item_type, count = struct.unpack_from("<IQ", buffer, position)
            position += 12
            if item_type in _SCALAR_BYTES:
                position += count * _SCALAR_BYTES[item_type]
            else:
                for _ in range(count):
                    skip(item_type)
        else:
            position += _SCALAR_BYTES[value_type]

    alignment = 32
    for _ in range(kv_count):
        key = string()
        (value_type,) = struct.unpack_from("<I", buffer, position)
        position += 4
        if key == "general.alignment" and value_type == 4:
            (alignment,) = struct.unpack_from("<I", buffer, position)
        skip(value_type)
    infos = []
    for _ in range(tensor_count):
        name = string()
        (dims,) = struct.unpack_from("<I", buffer, position)
        shape = struct.unpack_from(f"<{dims}Q", buffer, position + 4)
        kind, offset = struct.unpack_from("<IQ", buffer, position + 4 + 8 * dims)
        position += 4 + 8 * dims + 12
        infos.append((name, GGMLQuantizationType(kind), tuple(int(d) for d in shape), offset))
    start = -(-position // alignment) * alignment
    tensors = {}
    for name, kind, shape, offset in infos:
        block, size = GGML_QUANT_SIZES[kind]
        rows = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        row_bytes = shape[0] // block * size
        data = raw[start + offset:start + offset + rows * row_bytes].reshape(rows, row_bytes)
        tensors[name] = GGUFTensor(name, kind.name, shape, data)
    return tensors


# ---------------------------------------------------------------------------------------------
# The modules


def _exact_dtype(*arrays: np.ndarray):
    """float16 when every number survives the round trip (the file's own fp16 scales), else float32."""
    for dtype in (np.float16, np.float32):
        with np.errstate(over="ignore"):
            if all(np.array_equal(a.astype(dtype).astype(np.float64), a) for a in arrays):
                return dtype
    raise ValueError("scales that float32 cannot hold exactly")


def kernel_tensors(codes: Codes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(codes [N, G, bytes] uint8, scale [N, G], minimum [N, G], bits 4, 5 or 8) in the kernel's layout:
    elements j and j + 16 share byte j's low and high nibble (as GGUF's Q4 blocks); 5-bit codes add
    their fifth bits as one 32-bit word per group (as Q5_0); wider codes take a byte each. Scales and
    minimums are float16 where that is exact (Q4_1, Q5_0, Q8_0 store float16), else float32 (Q4_K's
    products of two numbers)."""
    if codes.bits <= 5:
        low = codes.code & 0x0F
        nibbles = low[..., :16] | (low[..., 16:] << 4)
        if codes.bits <= 4:
            stored, bits = nibbles, 4
        else:
            fifth = ((codes.code >> 4) & 1).astype(np.uint32) << np.arange(32, dtype=np.uint32)
            words = fifth.sum(axis=-1, dtype=np.uint32).astype("<u4")[..., None].view(np.uint8)  # [N, G, 4]
            stored, bits = np.concatenate([nibbles, words], axis=-1), 5
    else:
        stored, bits = codes.code, 8
    dtype = _exact_dtype(codes.scale, codes.minimum)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))  # noqa: E731
    return torch.from_numpy(np.ascontiguousarray(stored, dtype=np.uint8)), as_tensor(codes.scale), \
        as_tensor(codes.minimum), bits


class LowBitLinear(nn.Module):
    """y = x W^T in float32: from the GGUF's codes (`lowbit_mm.cpp`) for up to FEW_ROWS positions
    (a decode step, where reading the weights is the cost), from `weight` for more (a prompt, where
    the arithmetic is: a float32 matmul is faster, and `weight` holds the same numbers, bit for bit).
    `weight` is the float32 weight it stands for (also kept for the embedding lookup and for code
    that reads `.weight`; None for a joined module, which rebuilds rows instead); `kind` the GGUF type."""

    def __init__(self, weight: nn.Parameter | None, bias, codes: Codes | None, kind: str = ""):
        super().__init__()
        self.weight = weight
        self.bias = bias
        if codes is not None:
            self.kind = codes.kind
            self.set_codes(*kernel_tensors(codes))
        else:
            self.kind = kind

    def set_codes(self, codes: torch.Tensor, scale: torch.Tensor, minimum: torch.Tensor, bits: int) -> None:
        self.out_features, self.in_features = codes.shape[0], codes.shape[1] * GROUP
        self.bits = bits
        self.register_buffer("codes", codes, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("minimum", minimum, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, self.in_features).to(torch.float32).contiguous()
        if flat.shape[0] <= FEW_ROWS and not (flat.requires_grad and torch.is_grad_enabled()):
            # bound by the bytes of the weights: read the codes (the kernel has no backward: a gradient
            # through this layer, e.g. attribution's, takes the float32 path, the same numbers)
            y = torch.ops.playground_lowbit.mm(flat, self.codes, self.scale, self.minimum, self.bits)
        elif self.weight is not None:  # bound by arithmetic: the same numbers as float32 (bit for bit)
            y = flat @ self.weight.T
        else:
            y = torch.cat([flat @ self.rebuilt(start, min(REBUILT_ROWS, self.out_features - start)).T
                           for start in range(0, self.out_features, REBUILT_ROWS)], dim=-1)
        y = y.to(x.dtype).reshape(*shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def rebuilt(self, start: int = 0, count: int | None = None) -> torch.Tensor:
        """Rows [start, start + count) of the weight, float32, as the GGUF's dequantization rounds them."""
        count = self.out_features - start if count is None else count
        return torch.ops.playground_lowbit.dequantize(self.codes, self.scale, self.minimum, self.bits, start, count)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, {self.kind} as {self.bits}-bit codes"


def is_low_bit(module) -> bool:
    return isinstance(module, LowBitLinear)


def linear(x: torch.Tensor, weight) -> torch.Tensor:
    """x W^T for a float weight tensor or a low-bit module (the fused decode path's matmul)."""
    return F.linear(x, weight) if isinstance(weight, torch.Tensor) else weight(x)


def concatenated(modules: list) -> nn.Module | None:
    """One LowBitLinear computing the outputs of `modules` side by side (Q/K/V, gate/up), or None
    when they cannot be joined (codes of different widths, float32 layers, a bias)."""
    if not all(isinstance(m, LowBitLinear) for m in modules):
        return None
    first = modules[0]
    if any(m.bits != first.bits or m.in_features != first.in_features or m.bias is not None for m in modules):
        return None
    joined = LowBitLinear(None, None, None, kind="+".join(sorted({m.kind for m in modules})))
    joined.set_codes(torch.cat([m.codes for m in modules]), torch.cat([m.scale for m in modules]),
                     torch.cat([m.minimum for m in modules]), first.bits)
    return joined


class SideBySide(nn.Module):
    """The outputs of several modules over one input, concatenated (projections that cannot share
    one low-bit module: different formats)."""

    def __init__(self, modules: list):
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=-1)


def joined(modules: list) -> nn.Module:
    """One module computing `modules`' outputs side by side: joined blocks where they allow it."""
    return concatenated(modules) or SideBySide(modules)


# ---------------------------------------------------------------------------------------------
# Converting a loaded model


@dataclass
class Report:
    """What `convert` did: layers per module kind, and the tensors left in float32 (with why)."""

    converted: dict[str, int] = field(default_factory=dict)  # "Q4_1 4-bit" / "Q8_0 8-bit" -> count
    kept: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        return sum(self.converted.values())

    def summary(self) -> str:
        parts = [f"{count} {name}" for name, count in sorted(self.converted.items())]
        text = "GGUF blocks in float32 arithmetic: " + ", ".join(parts) if parts else "no layer converted"
        return text + (f"; {len(self.kept)} left in float32" if self.kept else "")


def _llama_rows(rows: int, heads: int) -> np.ndarray:
    """transformers' reverse permutation of Llama's Q/K rows when it reads a GGUF, as row indices."""
    return np.arange(rows).reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(rows)


def reproduces(codes: Codes, weight: torch.Tensor, rows: int = CHECK_ROWS) -> bool:
    """Whether the codes' weights equal `weight` (float32) up to float32 rounding, checked in chunks."""
    target = weight.detach().numpy()
    tolerance = 1e-6 * max(float(np.abs(target).max()), 1e-30)
    for start in range(0, target.shape[0], rows):
        chunk = Codes(codes.code[start:start + rows], codes.scale[start:start + rows],
                      codes.minimum[start:start + rows], codes.bits, codes.kind)
        if np.abs(chunk.dequantize() - target[start:start + rows]).max() > tolerance:
            return False
    return True


def _matching(codes: Codes, weight: torch.Tensor, config) -> Codes | None:
    """`codes` with its rows in the loaded weight's order, or None if no order reproduces it."""
    candidates = [None]
    for heads in (getattr(config, "num_attention_heads", None), getattr(config, "num_key_value_heads", None)):
        if heads and codes.code.shape[0] % (2 * heads) == 0:
            candidates.append(_llama_rows(codes.code.shape[0], heads))
    for order in candidates:
        candidate = codes if order is None else codes.rows(order)
        if reproduces(candidate, weight):
            return candidate
    return None


def _gguf_to_module_names(tensors) -> dict[str, str]:
    """GGUF tensor name -> the transformers module it becomes (Llama-style names; Gemma's too)."""
    names = {}
    for name in tensors:
        found = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)
        if found and found.group(2) in _LAYER_NAMES:
            names[name] = f"model.layers.{found.group(1)}.{_LAYER_NAMES[found.group(2)]}"
    if "output.weight" in tensors:
        names["output.weight"] = "lm_head"
    elif "token_embd.weight" in tensors:  # tied: the output layer is the embedding matrix
        names["token_embd.weight"] = "lm_head"
    return names


def convert(model: nn.Module, gguf_file: str | Path) -> Report:
    """Replace `model`'s linear layers by low-bit modules built from `gguf_file`'s blocks, in place.

    Tensors that are not affine 32-wide blocks (Q6_K, F16) keep their float32 layer (reported).
    RuntimeError (saying why) where the kernel cannot be built."""
    built, why = lowbit_kernel.available()
    if not built:
        raise RuntimeError(why)
    tensors = read_tensors(gguf_file)
    report = Report()
    replacements = {}
    modules = dict(model.named_modules())
    for gguf_name, module_name in sorted(_gguf_to_module_names(tensors).items()):
        module = modules.get(module_name)
        if not isinstance(module, nn.Linear):
            continue
        tensor = tensors[gguf_name]
        kind = tensor.kind
        rows, columns = module.weight.shape
        codes = codes_from_blocks(kind, tensor.data, rows, columns)
        if codes is not None:
            codes = _matching(codes, module.weight, model.config)
            if codes is None:
                report.kept.append(f"{module_name} ({kind}: blocks do not reproduce the loaded weight)")
                continue
            replacement = LowBitLinear(module.weight, module.bias, codes)
            label = f"{kind} {replacement.bits}-bit"
        else:
            report.kept.append(f"{module_name} ({kind})")
            continue
        replacements[module_name] = replacement
        report.converted[label] = report.converted.get(label, 0) + 1
    for module_name, replacement in replacements.items():  # all or nothing: set once every one is built
        parent_name, _, leaf = module_name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, leaf, replacement)
    return report
