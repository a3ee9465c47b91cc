"""The static-cache fast path and cross-session batching give the plain path's results."""

from __future__ import annotations

import threading

import pytest
import torch

from playground import batching, decoding, fastpath, fused_llama, models
from playground.opcount import count_operators

PROMPTS = ["Hello", "The cat sat on the mat and", "One two three four five six seven eight nine ten",
           "a", "Where is the library? It is", "Numbers: 12345 67890"]


@pytest.fixture
def loaded():
    return models.load_model("tiny-random")


@pytest.mark.parametrize("fused", [True, False], ids=["fused-llama", "transformers-static-cache"])
def test_static_decoder_matches_plain_stepper(loaded, fused):
    ids = loaded.tokenizer("The cat sat on the mat")["input_ids"]
    decoder = fastpath.StaticDecoder(loaded, max_len=128, fused=fused)
    fast = decoder.prefill(ids)
    plain = decoding.Stepper(loaded, ids)
    assert torch.allclose(fast, plain.logits, atol=1e-4)
    fast_tokens, plain_tokens = [], []
    for _ in range(12):  # greedy: identical tokens
        fast_tokens.append(int(fast.argmax()))
        plain_tokens.append(int(plain.logits.argmax()))
        fast = decoder.step(fast_tokens[-1])
        plain.append(plain_tokens[-1])
        assert torch.allclose(fast, plain.logits, atol=1e-4)
    assert fast_tokens == plain_tokens


@pytest.mark.parametrize("fused", [True, False], ids=["fused-llama", "transformers-static-cache"])
def test_static_decoder_reuse_after_longer_sequence(loaded, fused):
    decoder = fastpath.StaticDecoder(loaded, max_len=128, fused=fused)
    decoder.prefill(list(range(10, 60)))  # leaves stale cache slots behind
    for token in range(5):
        decoder.step(100 + token)
    short = [5, 6, 7]
    expected, _ = decoding.forward(loaded, torch.tensor([short]))
    assert torch.allclose(decoder.prefill(short), expected[0], atol=1e-4)


def test_stepper_uses_pool_when_forced(loaded, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_FASTPATH", "1")
    loaded.runtime.drop("decoder-pool")
    ids = [1, 2, 3, 4]
    with decoding.Stepper(loaded, ids) as stepper:
        assert stepper._decoder is not None
        free_while_used = len(loaded.runtime.peek("decoder-pool").free)
        stepper.append(9)
        expected, _ = decoding.forward(loaded, torch.tensor([ids + [9]]))
        assert torch.allclose(stepper.logits, expected[0], atol=1e-4)
    assert len(loaded.runtime.peek("decoder-pool").free) == free_while_used + 1
    loaded.runtime.drop("decoder-pool")


def test_batched_logits_equal_unbatched(loaded):
    sequences = [loaded.tokenizer(p)["input_ids"] for p in PROMPTS]
    batched = batching.batched_last_logits(loaded, sequences)
    for row, ids in zip(batched, sequences):
        alone, _ = decoding.forward(loaded, torch.tensor([ids]))
        assert torch.allclose(row, alone[0], atol=1e-4)


def test_concurrent_requests_are_grouped_and_correct(loaded, monkeypatch):
    monkeypatch.setattr(batching, "WINDOW_SECONDS", 0.05)
    batcher = batching.batcher_for(loaded)
    batcher.batch_sizes.clear()
    sequences = [loaded.tokenizer(p)["input_ids"] for p in PROMPTS]
    results: dict[int, torch.Tensor] = {}
    barrier = threading.Barrier(len(sequences))

    def ask(index):
        barrier.wait()
        results[index] = batching.next_token_logits(loaded, sequences[index])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(sequences))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(batcher.batch_sizes) > 1, batcher.batch_sizes
    for index, ids in enumerate(sequences):
        alone, _ = decoding.forward(loaded, torch.tensor([ids]))
        assert torch.allclose(results[index], alone[0], atol=1e-4)


def test_batcher_reports_failures_to_each_request(loaded):
    future = batching.batcher_for(loaded).submit([loaded.vocab_size + 10])  # id out of range
    with pytest.raises(Exception):
        future.result(timeout=30)
    # and keeps serving
    assert batching.next_token_logits(loaded, [1, 2]).shape == (loaded.vocab_size,)


def test_generate_on_device_matches_plain_greedy(loaded):
    ids = loaded.tokenizer("Once upon a time")["input_ids"]
    tokens, probs = fastpath.generate_on_device(fastpath.StaticDecoder(loaded, max_len=64), ids, 10)
    stepper = decoding.Stepper(loaded, ids)
    for index, token in enumerate(tokens):
        assert torch.allclose(probs[index], stepper.logits.softmax(-1), atol=1e-5)
        assert token == int(stepper.logits.argmax())
        stepper.append(token)
    assert probs.shape == (10, loaded.vocab_size)


def test_static_batched_next_token_matches_unbatched(loaded):
    static = fastpath.BatchedNextToken(loaded, use_graphs=False)
    sequences = [loaded.tokenizer(p)["input_ids"] for p in PROMPTS]
    batched = static.logits(sequences)
    assert batched.shape == (len(sequences), loaded.vocab_size)
    for row, ids in zip(batched, sequences):
        alone, _ = decoding.forward(loaded, torch.tensor([ids]))
        assert torch.allclose(row, alone[0], atol=1e-4)
    assert static.buckets(65, 10) is None and static.buckets(3, 513) is None


def test_fused_step_needs_far_fewer_operators_than_transformers(loaded):
    counts = {}
    for fused in (True, False):
        decoder = fastpath.StaticDecoder(loaded, max_len=64, fused=fused)
        decoder.prefill([1, 2, 3])
        counts[fused] = count_operators(lambda decoder=decoder: decoder.step(4))
    assert counts[True] < 0.75 * counts[False], counts


def test_fused_llama_supports_only_what_it_computes(loaded):
    from types import SimpleNamespace

    assert fused_llama.supports(loaded.model)
    for change in ({"attention_bias": True}, {"mlp_bias": True}, {"hidden_act": "gelu"}, {"model_type": "gemma3_text"}):
        config = loaded.model.config.__class__(**{**loaded.model.config.to_dict(), **change})
        config.model_type = change.get("model_type", config.model_type)
        assert not fused_llama.supports(SimpleNamespace(config=config)), change


def test_operator_count_skips_views():
    x = torch.ones(4, 4)
    assert count_operators(lambda: x.t().reshape(16)[:3]) == 0
    assert count_operators(lambda: (x + 1).sum()) == 2


def test_pool_falls_back_to_transformers_layers_when_the_fused_pass_is_wrong(loaded, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_FASTPATH", "1")
    loaded.runtime.drop("decoder-pool")
    loaded.runtime.failures.clear()
    real = fused_llama.FusedLlama.forward
    monkeypatch.setattr(fused_llama.FusedLlama, "forward", lambda self, *a: real(self, *a).flip(-1))  # a broken pass
    pool = fastpath.pool_for(loaded)
    assert pool is not None and all(decoder.fused is None for decoder in pool.free)
    assert "differ" in loaded.runtime.failures["fused"]
    with decoding.Stepper(loaded, [1, 2, 3]) as stepper:
        expected, _ = decoding.forward(loaded, torch.tensor([[1, 2, 3]]))
        assert torch.allclose(stepper.logits, expected[0], atol=1e-4)
    loaded.runtime.drop("decoder-pool")
    loaded.runtime.failures.clear()


def test_decoders_of_one_model_share_the_fused_weights(loaded):
    first, second = (fastpath.StaticDecoder(loaded, max_len=32, fused=True) for _ in range(2))
    assert first.fused.layers[0][1].data_ptr() == second.fused.layers[0][1].data_ptr()
    assert first.fused.keys.data_ptr() != second.fused.keys.data_ptr()  # each sequence has its own cache
