"""Low-bit weights (playground.lowbit and its kernel, lowbit_mm.cpp): the GGUF's blocks in float32
arithmetic, on random blocks and a small random model.

The blocks are made by gguf's own quantizers (Q4_1, Q5_0, Q8_0) or are random bytes (Q4_K), the
reference is gguf's own dequantizer, and the model is transformers' Llama whose Q/K rows transformers'
own GGUF reader permutes; nothing of ours is replaced by a stand-in.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

gguf = pytest.importorskip("gguf")

from playground import fused_llama, lowbit  # noqa: E402

pytestmark = pytest.mark.skipif(not lowbit.kernel_available(), reason="the low-bit kernel did not build here")

FLOAT32_SUMS = 1e-5  # relative: float32 sums of a few hundred products in another order


def _blocks(kind: str, rows: int, columns: int, seed: int = 0) -> np.ndarray:
    """Raw GGUF blocks [rows, bytes per row] of a random weight."""
    rng = np.random.default_rng(seed)
    qtype = gguf.GGMLQuantizationType[kind]
    if kind == "Q4_K":  # gguf has no Q4_K quantizer: random bytes with sane fp16 d and dmin
        supers = rows * columns // 256
        raw = rng.integers(0, 256, size=(supers, 144), dtype=np.uint8)
        raw[:, 0:2] = np.full((supers, 1), 0.002, dtype=np.float16).view(np.uint8)
        raw[:, 2:4] = (rng.uniform(0.001, 0.003, size=(supers, 1))).astype(np.float16).view(np.uint8)
        return raw.reshape(rows, -1)
    weight = rng.standard_normal((rows, columns)).astype(np.float32) * 0.05
    return gguf.quants.quantize(weight, qtype)


def _reference(kind: str, blocks: np.ndarray, rows: int, columns: int) -> np.ndarray:
    return gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType[kind]).reshape(rows, columns)


@pytest.mark.parametrize("kind", ["Q4_1", "Q4_K", "Q5_0", "Q8_0"])
def test_codes_are_the_block_math_exactly(kind):
    rows, columns = 64, 512
    blocks = _blocks(kind, rows, columns)
    codes = lowbit.codes_from_blocks(kind, blocks, rows, columns)
    assert codes.code.max() < 2 ** codes.bits
    assert np.array_equal(codes.dequantize().astype(np.float32), _reference(kind, blocks, rows, columns))


def test_other_formats_are_not_planes():
    assert lowbit.codes_from_blocks("Q6_K", np.zeros((64, 210), np.uint8), 64, 256) is None
    assert lowbit.codes_from_blocks("F16", np.zeros((64, 64), np.uint8), 64, 32) is None


def _module(kind: str, rows: int, columns: int, seed: int) -> tuple[lowbit.LowBitLinear, torch.Tensor]:
    blocks = _blocks(kind, rows, columns, seed=seed)
    reference = torch.from_numpy(_reference(kind, blocks, rows, columns))
    module = lowbit.LowBitLinear(torch.nn.Parameter(reference.clone()), None,
                                 lowbit.codes_from_blocks(kind, blocks, rows, columns))
    return module, reference


@pytest.mark.parametrize("kind", ["Q4_1", "Q4_K", "Q5_0", "Q8_0"])
def test_the_rebuilt_weights_are_the_files_bit_for_bit(kind):
    module, reference = _module(kind, 128, 512, seed=1)
    assert module.bits == {"Q4_1": 4, "Q4_K": 4, "Q5_0": 5, "Q8_0": 8}[kind]
    # the file's float16 scales stay float16 (a step reads the file's bytes); Q4_K's products need float32
    assert module.scale.dtype == (torch.float32 if kind == "Q4_K" else torch.float16)
    assert torch.equal(module.rebuilt(), reference)
    assert torch.equal(module.rebuilt(100, 28), reference[100:])


@pytest.mark.parametrize("kind", ["Q4_1", "Q4_K", "Q5_0", "Q8_0"])
@pytest.mark.parametrize("positions", [1, 3, 4, 5, 40])
def test_the_kernel_computes_the_float32_product(kind, positions):
    """Up to FEW_ROWS positions from the codes, more from the float32 weight: either way x W^T in
    float32, to float32 summation error (nothing rounded to a narrower type)."""
    module, reference = _module(kind, 192, 512, seed=2)
    x = torch.randn(positions, 512)
    expected = (x.double() @ reference.double().t()).float()
    got = module(x)
    assert got.dtype == torch.float32 and got.shape == (positions, 192)
    scale = (x.abs().double() @ reference.abs().double().t()).float()  # the size of the sum's terms
    assert ((got - expected).abs() <= FLOAT32_SUMS * scale + 1e-7).all()
    if positions > lowbit.FEW_ROWS:
        assert torch.equal(got, x @ reference.t())  # the float32 matmul itself


def test_a_gradient_through_the_layer_takes_the_float32_path():
    """Attribution differentiates through every layer; the codes kernel has no backward."""
    module, reference = _module("Q4_K", 64, 256, seed=5)
    x = torch.randn(2, 256, requires_grad=True)
    module(x).sum().backward()
    assert torch.allclose(x.grad, reference.sum(0).expand(2, -1), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(module(x), x @ reference.t(), rtol=1e-5, atol=1e-5)


def test_a_bias_and_leading_dimensions_pass_through():
    module, reference = _module("Q4_1", 64, 256, seed=3)
    module.bias = torch.nn.Parameter(torch.randn(64))
    x = torch.randn(2, 1, 256)
    assert torch.allclose(module(x), x @ reference.t() + module.bias, rtol=1e-5, atol=1e-5)


def test_the_kernel_refuses_malformed_tensors_in_words():
    module, _ = _module("Q8_0", 64, 256, seed=4)
    with pytest.raises(RuntimeError, match="K must be 32 x the groups"):
        torch.ops.playground_lowbit.mm(torch.randn(1, 128), module.codes, module.scale, module.minimum, 8)
    with pytest.raises(RuntimeError, match="32 at 8"):
        torch.ops.playground_lowbit.mm(torch.randn(1, 256), module.codes, module.scale, module.minimum, 5)
    with pytest.raises(RuntimeError, match="bits: 4, 5 or 8"):
        torch.ops.playground_lowbit.mm(torch.randn(1, 256), module.codes, module.scale, module.minimum, 6)


# ---------------------------------------------------------------------------------------------
# A whole (small) model from a GGUF file


CONFIG = dict(model_type="llama", vocab_size=512, hidden_size=256, intermediate_size=512,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=256, tie_word_embeddings=True, rms_norm_eps=1e-5)
KINDS = {"attn_q": "Q4_1", "attn_k": "Q4_1", "attn_v": "Q8_0", "attn_output": "Q4_K",
         "ffn_gate": "Q5_0", "ffn_up": "Q5_0", "ffn_down": "Q4_K"}
MODULES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
           "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
           "ffn_down": "mlp.down_proj"}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A random Llama whose weights are a GGUF file's blocks (Q/K rows in llama.cpp's order)."""
    config = AutoConfig.for_model(**CONFIG)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    processor = LlamaTensorProcessor(config=CONFIG)
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    tensors = {"token_embd.weight": ("Q8_0", model.model.embed_tokens.weight)}
    for index in range(config.num_hidden_layers):
        layer = model.model.layers[index]
        for short, module in MODULES.items():
            tensors[f"blk.{index}.{short}.weight"] = (KINDS[short], layer.get_submodule(module).weight)
    for seed, (name, (kind, parameter)) in enumerate(sorted(tensors.items())):
        rows, columns = parameter.shape
        blocks = _blocks(kind, rows, columns, seed=seed)
        writer.add_tensor(name, blocks, raw_dtype=gguf.GGMLQuantizationType[kind])
        # what transformers loads from this tensor (its Llama reader permutes Q and K rows)
        loaded = processor.process(_reference(kind, blocks, rows, columns), name).weights
        with torch.no_grad():
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(loaded)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model, path


def test_read_tensors_agrees_with_gguf_reader(small_model):
    _, path = small_model
    ours = lowbit.read_tensors(path)
    theirs = gguf.GGUFReader(str(path)).tensors
    assert set(ours) == {t.name for t in theirs}
    for tensor in theirs:
        assert ours[tensor.name].kind == tensor.tensor_type.name
        assert np.array_equal(ours[tensor.name].data.reshape(-1), np.asarray(tensor.data).view(np.uint8).reshape(-1))


def test_convert_replaces_every_linear_and_keeps_the_model_close(small_model):
    import copy

    reference, path = small_model
    model = copy.deepcopy(reference)
    report = lowbit.convert(model, path)
    assert report.kept == []
    assert report.converted == {"Q4_1 4-bit": 4, "Q4_K 4-bit": 4, "Q5_0 5-bit": 4, "Q8_0 8-bit": 3}
    assert all(not isinstance(m, torch.nn.Linear) for m in model.modules())
    # the float32 weights stay where they were: tied embeddings, parameter counts, exact embeddings
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    for ids in ([[1, 17, 230, 5, 99, 400, 3]], [[1, 17, 230]]):  # the float32 matmul, then the codes
        with torch.inference_mode():
            expected = reference(input_ids=torch.tensor(ids)).logits.softmax(-1)
            got = model(input_ids=torch.tensor(ids)).logits.softmax(-1)
        assert (got - expected).abs().max() < 1e-5


def test_blocks_that_do_not_match_the_weight_stay_in_float32(small_model):
    import copy

    reference, path = small_model
    model = copy.deepcopy(reference)
    with torch.no_grad():
        model.model.layers[1].self_attn.k_proj.weight.add_(0.01)  # no longer the file's numbers
    report = lowbit.convert(model, path)
    assert report.kept == ["model.layers.1.self_attn.k_proj (Q4_1: blocks do not reproduce the loaded weight)"]
    assert isinstance(model.model.layers[1].self_attn.k_proj, torch.nn.Linear)
    assert "left in float32" in report.summary()


def test_the_fused_decode_step_runs_the_low_bit_layers(small_model):
    import copy

    reference, path = small_model
    model = copy.deepcopy(reference)
    lowbit.convert(model, path)
    weights = fused_llama.layer_weights(model)
    assert all(isinstance(layer[1], lowbit.SideBySide) for layer in weights)  # 4-bit, 4-bit, 8-bit codes
    assert all(isinstance(layer[4], lowbit.LowBitLinear) for layer in weights)  # Q5_0 and Q5_0: one module
    fused = fused_llama.FusedLlama(model, 64, weights)
    for ids in ([1, 17, 230, 5, 99, 400, 3], [1, 17, 230]):  # a joined module rebuilds rows, then reads codes
        positions = torch.arange(64)
        mask = (positions[None, :] <= positions[: len(ids), None])[None, None]
        with torch.inference_mode():
            got = fused.forward(torch.tensor([ids]), positions[: len(ids)], mask, torch.tensor([len(ids) - 1]))[0]
            expected = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        assert (got.softmax(-1) - expected.softmax(-1)).abs().max() < 1e-5
