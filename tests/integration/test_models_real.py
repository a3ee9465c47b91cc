"""The packaged models: offline loading, the safetensors cache (and its repair), real distributions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from playground import decoding, models
from tests.conftest import ROOT

PACKAGED = ["gemma-3-270m", "smollm2-135m-instruct"]


@pytest.mark.parametrize("model_id", PACKAGED)
def test_packaged_model_distribution_sums_to_one(model_id):
    loaded = models.load_model(model_id)
    dist = decoding.next_token_distribution(model_id, "The capital of France is")
    assert dist.logits.shape[0] == loaded.vocab_size == len(loaded.tokenizer)
    # float32 softmax over up to 262,144 entries: the sum is 1 within float32 accumulation error
    assert abs(float(dist.probs.double().sum()) - 1.0) < 1e-4
    assert abs(float(dist.logits.double().softmax(-1).sum()) - 1.0) < 1e-9


def test_chat_model_knows_paris():
    loaded = models.load_model("smollm2-135m-instruct")
    dist = decoding.next_token_distribution("smollm2-135m-instruct", "The capital of France is")
    top3 = [loaded.tokenizer.decode([i]) for i in dist.probs.topk(3).indices.tolist()]
    assert " Paris" in top3


def test_base_model_continues_english():
    loaded = models.load_model("gemma-3-270m")
    dist = decoding.next_token_distribution("gemma-3-270m", "The capital of France is")
    top10 = [loaded.tokenizer.decode([i]) for i in dist.probs.topk(10).indices.tolist()]
    assert " Paris" in top10 and dist.input_ids[0] == loaded.tokenizer.bos_token_id


def _copy_cache(model_id, tmp_path, monkeypatch):
    source = models.cache_dir(models.get_spec(model_id))
    models.load_model(model_id)  # make sure the real cache exists
    monkeypatch.setenv("PLAYGROUND_CACHE_DIR", str(tmp_path))
    target = models.cache_dir(models.get_spec(model_id))
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("damage", ["truncate", "corrupt-header", "no-manifest"])
def test_damaged_cache_is_detected_and_rebuilt(damage, tmp_path, monkeypatch):
    target = _copy_cache("smollm2-135m-instruct", tmp_path, monkeypatch)
    weights = target / "model.safetensors"
    if damage == "truncate":
        with weights.open("r+b") as handle:
            handle.truncate(weights.stat().st_size // 2)
    elif damage == "corrupt-header":
        with weights.open("r+b") as handle:
            handle.write(b"\xff" * 64)
    else:
        (target / "manifest.json").unlink()
    saved = dict(models._LOADED)
    models._LOADED.clear()
    try:
        loaded = models.load_model("smollm2-135m-instruct")
        assert loaded.loaded_from == "gguf"
        assert models._manifest_ok(target)
        dist = decoding.forward(loaded, __import__("torch").tensor([[1, 2, 3]]))[0]
        models._LOADED.clear()
        assert models.load_model("smollm2-135m-instruct").loaded_from == "cache"
        again = decoding.forward(models.load_model("smollm2-135m-instruct"), __import__("torch").tensor([[1, 2, 3]]))[0]
        assert (dist - again).abs().max() < 1e-4
    finally:
        models._LOADED.clear()
        models._LOADED.update(saved)


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "playground", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_cli_models_json():
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["gemma-3-270m"]["available"] is True and rows["gemma-3-270m"]["role"] == "base"
    assert rows["smollm2-135m-instruct"]["role"] == "chat"
    assert set(rows["smollm2-135m"]) >= {"id", "role", "source", "available", "reason"}


def test_cli_unknown_id_exits_2_with_valid_ids():
    result = run_cli("--json", "next-token", "--model", "nope", "Hello")
    assert result.returncode == 2
    assert "nope" in result.stderr and "smollm2-135m-instruct" in result.stderr
    assert "Traceback" not in result.stderr


def _assert_same_distribution(loaded, got, expected) -> None:
    """The same logits to 1e-3, on float32 weights and on the GGUF's blocks (float32 arithmetic)."""
    assert (got - expected).abs().max() < 1e-3


@pytest.mark.parametrize("model_id", PACKAGED)
def test_static_batched_path_matches_plain_on_packaged_models(model_id):
    """Gemma's sliding-window layers and SmolLM2's full attention both take the static path."""
    import torch

    from playground import fastpath

    loaded = models.load_model(model_id)
    static = fastpath.BatchedNextToken(loaded, use_graphs=False)
    sequences = [loaded.tokenizer(p)["input_ids"] for p in ["The capital of France is", "One two", "x y z " * 30]]
    for row, ids in zip(static.logits(sequences), sequences):
        alone, _ = decoding.forward(loaded, torch.tensor([ids]))
        _assert_same_distribution(loaded, row, alone[0])


def test_fused_llama_decoder_follows_transformers_on_smollm2():
    """The few-kernel Llama pass gives transformers' logits and greedy tokens on the real model."""
    import torch

    from playground import fastpath

    loaded = models.load_model("smollm2-135m-instruct")
    ids = decoding.prompt_ids(loaded, "Write a haiku about the sea.", chat_template=True)
    decoder = fastpath.StaticDecoder(loaded, max_len=256, fused=True)
    assert decoder.fused is not None
    decoder.check_against_model()  # the pool's guard accepts a correct pass
    logits = decoder.prefill(ids)
    with decoding.Stepper(loaded, ids) as plain:
        for _ in range(16):
            _assert_same_distribution(loaded, logits, plain.logits)
            token = int(plain.logits.argmax())
            assert int(logits.argmax()) == token
            logits = decoder.step(token)
            plain.append(token)


LOAD_BOTH_AT_ONCE = """
import threading
from playground.models import load_model
errors = []
def load(model_id):
    try:
        load_model(model_id).model(**load_model(model_id).tokenizer("Hello", return_tensors="pt"))
    except Exception as exc:
        errors.append(f"{model_id}: {type(exc).__name__}: {exc}")
threads = [threading.Thread(target=load, args=(m,)) for m in ("smollm2-135m-instruct", "gemma-3-270m")]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
"""


def test_two_models_loaded_at_once_both_load():
    """A fresh process, two threads loading the two packaged models at the same moment (two students
    on two tabs of a new server): both load and run. Without one load at a time, transformers' meta
    device switch left both with meta tensors ("Cannot copy out of meta tensor")."""
    result = subprocess.run([sys.executable, "-c", LOAD_BOTH_AT_ONCE], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout[-2000:]
