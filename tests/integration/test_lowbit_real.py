"""The packaged models on int4 weights from their own GGUF blocks, against their float32 weights.

The loaded model (whatever PLAYGROUND_WEIGHTS says) gives both: the float32 reference is the model
with every low-bit module swapped back for a plain `nn.Linear` over the float32 weight it keeps
(the GGUF dequantized by transformers), and the int4 model is that reference converted by
`lowbit.convert` from the packaged GGUF (the same code `models.load_model` runs for int4).
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from playground import decoding, lecture, lowbit, models
from playground.model_call import forward_all

PACKAGED = ["smollm2-135m-instruct", "gemma-3-270m"]

pytestmark = pytest.mark.skipif(not lowbit.kernel_available(), reason="no CPU int4 kernel in this torch build")


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
            int4 = copy.deepcopy(reference, shared)
            report = lowbit.convert(int4, models.gguf_path(loaded.spec))
            built[model_id] = (loaded, reference, dataclasses.replace(
                loaded, model=int4, weights="int4", weights_note=report.summary(), runtime=models.ModelRuntime()), report)
        return built[model_id]

    return get


@pytest.mark.parametrize("model_id", PACKAGED)
def test_every_linear_layer_runs_the_files_blocks(model_id, twins):
    _, _, int4, report = twins(model_id)
    assert report.kept == [] and report.layers > 0
    assert [n for n, m in int4.model.named_modules() if isinstance(m, torch.nn.Linear)] == []
    assert int4.model.lm_head.weight is int4.model.model.embed_tokens.weight  # tied, lookup exact
    assert int4.model.lm_head.refine == lowbit.REFINE_TOP


@pytest.mark.parametrize("model_id", PACKAGED)
def test_int4_distributions_stay_close_to_float32(model_id, twins):
    loaded, reference, int4, _ = twins(model_id)
    kls, agree = [], []
    for text in _prompts():
        ids = torch.tensor([decoding.prompt_ids(loaded, text)])
        with torch.inference_mode():
            p = torch.log_softmax(reference(input_ids=ids).logits[0].float(), -1)
            q = torch.log_softmax(forward_all(int4, ids)[0].float(), -1)
        kls += (p.exp() * (p - q)).sum(-1).tolist()
        agree += (p.argmax(-1) == q.argmax(-1)).tolist()
    assert sum(kls) / len(kls) < 1e-3, kls
    assert sum(agree) / len(agree) >= 0.9


def test_the_setting_loads_int4(monkeypatch):
    """PLAYGROUND_WEIGHTS=int4: load_model converts, and the Models panel's text says so."""
    from playground.backends import backend_for

    monkeypatch.setenv("PLAYGROUND_WEIGHTS", "int4")
    saved = dict(models._LOADED)
    models._LOADED.pop("smollm2-135m-instruct", None)
    try:
        loaded = models.load_model("smollm2-135m-instruct")
        assert loaded.weights == "int4" and "Q4_1 int4" in loaded.weights_note
        assert backend_for(loaded.id).state(True, "", loaded).startswith("loaded (int4 weights")  # Models panel
        assert backend_for(loaded.id).weights() == "int4"  # the CLI's timing object
    finally:
        models._LOADED.clear()
        models._LOADED.update(saved)
