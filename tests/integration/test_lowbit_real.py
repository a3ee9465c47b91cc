"""The packaged models on their own GGUF blocks (the default weights), against their float32 weights.

The loaded model (whatever PLAYGROUND_WEIGHTS says) gives both: the float32 reference is the model
with every low-bit module swapped back for a plain `nn.Linear` over the float32 weight it keeps
(the GGUF dequantized by transformers), and the low-bit model is that reference converted by
`lowbit.convert` from the packaged GGUF (the same code `models.load_model` runs by default).
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from playground import decoding, lecture, lowbit, models
from playground.model_call import forward_all

PACKAGED = ["smollm2-135m-instruct", "gemma-3-270m"]

pytestmark = pytest.mark.skipif(not lowbit.kernel_available(), reason="the low-bit kernel did not build here")


def _float_twin(model):
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    twin = copy.deepcopy(model, shared)
    for name, module in list(twin.named_modules()):
        if lowbit.is_low_bit(module):
            plain = torch.nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
            plain.weight, plain.bias = module.weight, module.bias
            parent, _, leaf = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, leaf, plain)
    return twin


def _prompts() -> list[str]:
    return [d.query["prompt"] for d in lecture.DEMOS if d.tab in ("sampling", "chat") and "prompt" in d.query]


@pytest.fixture(scope="module")
def twins():
    built = {}

    def get(model_id):
        if model_id not in built:
            loaded = models.load_model(model_id)
            reference = _float_twin(loaded.model)
            shared = {id(t): t for t in [*reference.parameters(), *reference.buffers()]}
            low = copy.deepcopy(reference, shared)
            report = lowbit.convert(low, models.gguf_path(loaded.spec))
            built[model_id] = (loaded, reference, dataclasses.replace(
                loaded, model=low, weights="gguf", weights_note=report.summary(), runtime=models.ModelRuntime()), report)
        return built[model_id]

    return get


@pytest.mark.parametrize("model_id", PACKAGED)
def test_every_block_layer_runs_the_files_codes(model_id, twins):
    """Every 32-wide block format becomes codes; Gemma's Q6_K layers (16-wide) stay float32, said."""
    _, _, low, report = twins(model_id)
    assert report.layers > 0
    kept = [n for n, m in low.model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert len(kept) == len(report.kept) and all("Q6_K" in k for k in report.kept)
    assert (len(kept) > 0) == (model_id == "gemma-3-270m")
    assert low.model.lm_head.weight is low.model.model.embed_tokens.weight  # tied, lookup exact
    assert isinstance(low.model.lm_head, lowbit.LowBitLinear)


@pytest.mark.parametrize("model_id", PACKAGED)
def test_the_files_blocks_give_the_float32_distributions(model_id, twins):
    """On every lecture prompt, each position (a prompt: the float32 matmul) and each decode step
    (the codes, one position at a time): the float32 model's distribution to float32 summation error."""
    loaded, reference, low, _ = twins(model_id)
    for text in _prompts():
        ids = decoding.prompt_ids(loaded, text)
        with torch.inference_mode():
            p = reference(input_ids=torch.tensor([ids])).logits[0].float().softmax(-1)
            q = forward_all(low, torch.tensor([ids]))[0].float().softmax(-1)
            assert (p - q).abs().max() < 1e-5
            stepper = decoding.Stepper(low, ids[:1])
            for position, token in enumerate(ids[1:], start=1):
                assert (stepper.append(token).softmax(-1) - p[position]).abs().max() < 2e-5


@pytest.mark.parametrize("setting", ["gguf", "int4"])  # int4: the setting's earlier name
def test_the_setting_loads_the_files_blocks(monkeypatch, setting):
    """PLAYGROUND_WEIGHTS=gguf (the default): load_model converts, and the Models panel's text says so."""
    from playground.backends import backend_for

    monkeypatch.setenv("PLAYGROUND_WEIGHTS", setting)
    saved = dict(models._LOADED)
    models._LOADED.pop("smollm2-135m-instruct", None)
    try:
        loaded = models.load_model("smollm2-135m-instruct")
        assert loaded.weights == "gguf" and "Q4_1 4-bit" in loaded.weights_note
        assert backend_for(loaded.id).state(True, "", loaded).startswith("loaded (GGUF blocks")  # Models panel
        assert backend_for(loaded.id).weights() == "gguf"  # the CLI's timing object
    finally:
        models._LOADED.clear()
        models._LOADED.update(saved)
