"""Low-bit weights in-process: a model's linear layers run on PyTorch's CPU int4 kernel with the
GGUF file's own blocks.

A decode step on a CPU is bound by memory bandwidth. Dequantized to float32, each step reads 4 bytes
per weight; llama.cpp reads the GGUF's 4-8 bit blocks. This module reads the blocks of the GGUF a
model was loaded from (`gguf.GGUFReader`) and replaces each `nn.Linear` of the transformers model
(the output layer included) by a `LowBitLinear` that runs `torch.ops.aten._weight_int4pack_mm_for_cpu`
(groups of 32 along the input dimension, weight = (q - 8) * scale + zero per group, q in 0..15,
bfloat16 activations, scales and zeros; found by experiment on torch 2.13: float32 activations are
accepted but take a slow path, 18x slower).

Every supported block format is an affine map of an unsigned integer code per group of 32:
w = scale * code + minimum. A code of B bits is cut into ceil(B / 4) four-bit planes
(code = sum_p 16^p * plane_p), each plane one int4 weight with scale * 16^p; the planes lie side
by side along the input dimension and the input is repeated once per plane, so one kernel call sums
them (in float32, inside the kernel).

- Q4_1 (w = d * q + m per 32): one plane, scale d, minimum m.
- Q4_K (w = d * sc * q - dmin * mn per sub-block of 32): one plane.
- Q5_0 (w = d * (q - 16), q of 5 bits): two planes. Q8_0 (w = d * q, q of 8 bits signed): two planes.
- Anything else (Q6_K's sub-blocks of 16, F16, F32): a `DenseLinear` of the dequantized weight in
  bfloat16 (`dense="bf16"`, the default) or left in float32 (`dense="fp32"`).

What is exact and what is rounded: the codes are the file's; the planes' sum, in exact arithmetic,
is the file's weight (the unit tests check it against `gguf.quants.dequantize`). The kernel takes the
scale and zero (= minimum + 8 * scale) in bfloat16 (8 significant bits: relative error up to 2^-9 of
each, per group) and rounds the activations to bfloat16 and its output to bfloat16. Those roundings are
the whole price; `bench/bench_cpu_peer.py` measures it as KL divergence against the float32 weights.
Rounding the logits to bfloat16 (steps of 1/16 to 1/8 at 10-30) is half of it, and it makes equal
logits in the tail (a top-k of 1000 would keep 1,037 tokens), so the output layer recomputes its
1,024 largest logits per position in float32 from the float32 rows (`refine`: 2.6 MB read for
Gemma, against 168 MB of blocks). Below the 1,024th the logits keep the kernel's rounding.

Each replaced module keeps the float32 weight it replaces as its `weight` parameter (the same tensor:
tied embeddings stay tied, the embedding lookup stays exact, parameter counts and code that reads
`.weight` see the model unchanged); only the forward pass reads the low-bit buffers. Rows of a GGUF
tensor are matched to the loaded weight (transformers permutes Llama's Q and K rows when it reads a
GGUF); a tensor whose blocks do not reproduce the loaded weight is left in float32 and reported.
What it leaves out: GPUs (the kernel is the CPU one), quantizing weights that were not quantized in
the file, caching the packed weights on disk (they are rebuilt at load, a few seconds).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

GROUP = 32  # the kernel's group along the input dimension; every supported GGUF block is 32 wide
PACK_ROWS = 8192  # rows packed at a time (a multiple of 64: the packed layout is separable there)
REFINE_TOP = 1024  # outputs of the output layer recomputed in float32 per position (see LowBitLinear)
REFINE_ROWS = 8  # positions refined at a time (8 x 1024 gathered rows of the output matrix)

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


@functools.lru_cache(maxsize=1)
def kernel_available() -> bool:
    """Whether this torch build has the CPU int4 kernel (and it runs)."""
    try:
        codes = torch.zeros((64, 64), dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
        scale_zero = torch.ones((2, 64, 2), dtype=torch.bfloat16)
        torch.ops.aten._weight_int4pack_mm_for_cpu(torch.ones((1, 64), dtype=torch.bfloat16), packed, GROUP, scale_zero)
        return True
    except (AttributeError, RuntimeError):
        return False


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


def pack(codes: Codes) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(packed int4 weight [N, P*K/2] uint8, scale-and-zero [P*G, N, 2] bfloat16, planes P).

    Plane p holds bits 4p.. of the code with scale * 16^p. The kernel's zero is rounded to
    bfloat16 (relative error 2^-9 of it, on every weight of the group), so it is kept small: the
    top plane of a code narrower than 4 bits (Q5_0's fifth bit) is shifted inside 0..15 so that
    the shifts and the minimum cancel, and the one remaining zero (at most about 8 steps of the
    lowest plane plus half a step of the top one) goes to plane 0; the other planes' zeros are 0.
    """
    rows, groups, _ = codes.code.shape
    planes = (codes.bits + 3) // 4
    top_range = (1 << (codes.bits - 4 * (planes - 1))) - 1  # the top plane's codes lie in 0..top_range
    plane_scale = [codes.scale * 16.0 ** p for p in range(planes)]
    # sum over planes of scale_p * (q_p - 8) + zero_p = w; lower planes hold their bits as they are
    constant = codes.minimum + 8.0 * sum(plane_scale[:-1])
    top_scale = plane_scale[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(top_scale != 0, np.rint(constant / np.where(top_scale != 0, top_scale, 1) + 8), 0)
    shift = np.clip(shift, 0, 15 - top_range) if planes > 1 else np.zeros_like(shift)
    zero = constant - top_scale * (shift - 8)  # what is left for plane 0's zero
    plane_codes = [(codes.code >> (4 * p)) & 0x0F for p in range(planes)]
    plane_codes[-1] = plane_codes[-1] + shift.astype(np.uint8)[..., None]
    wide = np.concatenate([c.reshape(rows, groups * GROUP) for c in plane_codes], axis=1)
    packed = torch.cat([
        torch.ops.aten._convert_weight_to_int4pack_for_cpu(torch.from_numpy(wide[start:start + PACK_ROWS].astype(np.int32)), 1)
        for start in range(0, rows, PACK_ROWS)
    ])
    zeros = [zero] + [np.zeros_like(zero)] * (planes - 1)
    scale = torch.from_numpy(np.concatenate(plane_scale, axis=1).T.astype(np.float32))  # [P*G, N]
    zero = torch.from_numpy(np.concatenate(zeros, axis=1).T.astype(np.float32))
    return packed, torch.stack([scale, zero], dim=-1).to(torch.bfloat16).contiguous(), planes


class LowBitLinear(nn.Module):
    """y = x W^T on the int4 kernel (the input rounded to bfloat16, the output returned in the
    input's dtype). `weight` is the float32 weight it stands for (kept; forward reads it only for
    `refine`); `kind` the GGUF type.

    `refine = R` (the output layer): the R largest outputs of each row are computed again in
    float32 from the rows of `weight` (R dot products: R rows read), so the head of the next-token
    distribution carries no bfloat16 rounding (and no ties made by it); the rest of the vocabulary
    keeps the kernel's values.
    """

    def __init__(self, weight: nn.Parameter, bias, codes: Codes, refine: int = 0):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.weight = weight
        self.bias = bias
        self.kind = codes.kind
        self.refine = min(int(refine), self.out_features)
        packed, scale_zero, self.planes = pack(codes)
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("scale_zero", scale_zero, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, self.in_features)
        low = flat.to(torch.bfloat16)
        if self.planes > 1:
            low = low.repeat(1, self.planes)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(low, self.packed, GROUP, self.scale_zero).to(x.dtype)
        for start in range(0, flat.shape[0] if self.refine else 0, REFINE_ROWS):
            rows, inputs = y[start:start + REFINE_ROWS], flat[start:start + REFINE_ROWS]
            top = rows.topk(self.refine, dim=-1, sorted=False).indices  # [rows, R]
            rows.scatter_(1, top, torch.bmm(self.weight[top].to(x.dtype), inputs[:, :, None])[..., 0])
        y = y.reshape(*shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def dequantized(self) -> torch.Tensor:
        """The weight the kernel multiplies by, float32 [N, K]: the kernel's float32 path on the
        identity (slow, for tests on small layers), planes summed."""
        eye = torch.eye(self.in_features, dtype=torch.float32).repeat(1, self.planes)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(eye, self.packed, GROUP, self.scale_zero.float()).t()

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, {self.kind} as {self.planes} int4 plane(s)"
                + (f", top {self.refine} in float32" if self.refine else ""))


class DenseLinear(nn.Module):
    """y = x W^T with W in bfloat16 (formats that are not affine 32-wide blocks, e.g. Q6_K)."""

    def __init__(self, weight: nn.Parameter, bias, kind: str):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.weight = weight
        self.bias = bias
        self.kind = kind
        self.register_buffer("weight_bf16", weight.detach().to(torch.bfloat16), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x.to(torch.bfloat16), self.weight_bf16).to(x.dtype)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, {self.kind} as bfloat16"


def is_low_bit(module) -> bool:
    return isinstance(module, (LowBitLinear, DenseLinear))


def linear(x: torch.Tensor, weight) -> torch.Tensor:
    """x W^T for a float weight tensor or a low-bit module (the fused decode path's matmul)."""
    return F.linear(x, weight) if isinstance(weight, torch.Tensor) else weight(x)


def concatenated(modules: list) -> nn.Module | None:
    """One LowBitLinear computing the outputs of `modules` side by side (Q/K/V, gate/up), or None
    when they cannot be joined (different planes or dense modules, rows not multiples of 64)."""
    if not all(isinstance(m, LowBitLinear) for m in modules):
        return None
    first = modules[0]
    if any(m.planes != first.planes or m.in_features != first.in_features or m.bias is not None
           or m.out_features % 64 for m in modules):
        return None
    joined = LowBitLinear.__new__(LowBitLinear)
    nn.Module.__init__(joined)
    joined.in_features, joined.out_features = first.in_features, sum(m.out_features for m in modules)
    joined.weight, joined.bias, joined.planes, joined.refine = None, None, first.planes, 0
    joined.kind = "+".join(sorted({m.kind for m in modules}))
    joined.register_buffer("packed", torch.cat([m.packed for m in modules]), persistent=False)
    joined.register_buffer("scale_zero", torch.cat([m.scale_zero for m in modules], dim=1).contiguous(), persistent=False)
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

    converted: dict[str, int] = field(default_factory=dict)  # "Q4_1 int4" / "Q6_K bf16" -> count
    kept: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        return sum(self.converted.values())

    def summary(self) -> str:
        parts = [f"{count} {name}" for name, count in sorted(self.converted.items())]
        text = "int4 kernel, GGUF blocks: " + ", ".join(parts) if parts else "no layer converted"
        return text + (f"; {len(self.kept)} left in float32" if self.kept else "")


def _llama_rows(rows: int, heads: int) -> np.ndarray:
    """transformers' reverse permutation of Llama's Q/K rows when it reads a GGUF, as row indices."""
    return np.arange(rows).reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(rows)


def reproduces(codes: Codes, weight: torch.Tensor, rows: int = PACK_ROWS) -> bool:
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


def convert(model: nn.Module, gguf_file: str | Path, dense: str = "bf16") -> Report:
    """Replace `model`'s linear layers by low-bit modules built from `gguf_file`'s blocks, in place.

    `dense`: what the tensors that are not affine 32-wide blocks become ("bf16" or "fp32": kept)."""
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
            replacement = LowBitLinear(module.weight, module.bias, codes,
                                       refine=REFINE_TOP if module_name == "lm_head" else 0)
            label = f"{kind} int4" + (f" x{replacement.planes}" if replacement.planes > 1 else "")
        elif dense == "bf16":
            replacement, label = DenseLinear(module.weight, module.bias, kind), f"{kind} bf16"
        else:
            report.kept.append(f"{module_name} ({kind})")
            continue
        replacements[module_name] = replacement
        report.converted[label] = report.converted.get(label, 0) + 1
    for module_name, replacement in replacements.items():  # all or nothing: set once every one is built
        parent_name, _, leaf = module_name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, leaf, replacement)
    return report
