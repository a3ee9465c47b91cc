"""The sampler chain equals llama.cpp's own, against a real `llama-server` (issue 25.3).

On SmolLM2's GGUF (49,152 tokens), the server's raw distribution is read whole (an empty sampler
chain, `n_probs` = the vocabulary, `post_sampling_probs`); then for each sampler alone and for
llama.cpp's default order the server runs the same samplers, order and parameters
(`llama_cpp_request`) and returns its post-sampling distribution. Our chain on log p_raw (what the
server sent: its logits up to a constant) must keep the same tokens with the same probabilities,
to 1e-4. Left out: `repeat_penalty` (it divides positive logits and multiplies negative ones, so a
constant shift changes it: the server's logits are not sent; frequency/presence penalties are
shift-invariant and are checked), top-k among ties (llama.cpp keeps exactly k). An engine model runs
the chain itself (`engines.chain`): its final tokens are the server's. Skipped when
llama-server is not built (`make llama-server`).
"""

from __future__ import annotations

import httpx
import pytest
import torch

from playground import decoding, models
from playground.engines import chain as engine_chain
from playground.engines.lab import forget_engines
from playground.errors import PlaygroundError
from playground.model_spec import ModelSpec
from playground.engines.build import find_server
from playground.engines.server import LlamaServer
from playground.samplers.ab import token_texts
from playground.samplers.chain import format_chain, llama_cpp_request, parse_chain, preset_chain, run_chain
from playground.samplers.pool import Context

pytestmark = pytest.mark.skipif(find_server() is None, reason="llama-server is not built (make llama-server)")

MODEL = "smollm2-135m-instruct"
PROMPT = "The cat sat on the mat. The cat sat on the mat. The dog sat on the rug. The cat sat on the"
TOLERANCE = 1e-4
ALONE = {
    "top_k": "top_k=40",
    "top_p": "top_p=0.9",
    "min_p": "min_p=0.02",
    "typical_p": "typical_p=0.9",
    "top_n_sigma": "top_n_sigma=2.0",
    "xtc": "xtc_probability=1.0;xtc_threshold=0.05",
    "temperature": "temperature=0.7",
    "dynatemp": "temperature=0.9;dynatemp_range=0.5;dynatemp_exponent=1.5",
    "penalties": "repeat_penalty=1.0;repeat_last_n=64;frequency_penalty=0.4;presence_penalty=0.3",
    "dry": "dry_multiplier=0.8;dry_base=1.75;dry_allowed_length=2;dry_penalty_last_n=64",
    "mirostat": "temperature=1.0;mirostat=2;mirostat_tau=3.0;mirostat_eta=0.1",
}
DEFAULT_ORDER = ("frequency_penalty=0.3;presence_penalty=0.2;dry_multiplier=0.8;top_n_sigma=3.0;top_k=40;typical_p=0.95;"
                 "top_p=0.9;min_p=0.02;xtc_probability=1.0;xtc_threshold=0.05;temperature=0.8")


@pytest.fixture(scope="module")
def served():
    loaded = models.load_model(MODEL)
    ids = decoding.prompt_ids(loaded, PROMPT)
    vocab = int(loaded.model.config.vocab_size)
    gguf = models.gguf_path(models.get_spec(MODEL))
    with LlamaServer(gguf, context=1024) as server:
        def after(fields: dict) -> dict[int, float]:
            body = {"prompt": ids, "n_predict": 1, "n_probs": vocab, "post_sampling_probs": True, "seed": 1,
                    "cache_prompt": False, **fields}
            answer = httpx.post(server.base_url + "/completion", json=body, timeout=300).json()
            return {item["id"]: item["prob"] for item in answer["completion_probabilities"][0]["top_probs"]}

        raw = after({"samplers": [], "temperature": 1.0})
        yield loaded, ids, raw, after, server


def _ours(loaded, ids, raw: dict[int, float], chain_text: str) -> dict[int, float]:
    vocab = max(raw) + 1
    logits = torch.full((vocab,), float("-inf"))
    for token, p in raw.items():
        logits[token] = torch.log(torch.tensor(p, dtype=torch.float64)).float()
    run = run_chain(parse_chain(chain_text), logits, Context.of(ids, token_text=token_texts(loaded)))
    return {token: p for token, p in run.probs_by_id().items() if p > 0}


def _same(ours: dict[int, float], theirs: dict[int, float]) -> None:
    assert set(ours) == set(theirs), (f"kept {len(ours)} vs llama.cpp {len(theirs)}: ours only "
                                      f"{sorted(set(ours) - set(theirs))[:5]}, theirs only {sorted(set(theirs) - set(ours))[:5]}")
    worst = max(abs(ours[t] - theirs[t]) for t in ours)
    assert worst <= TOLERANCE, f"largest probability difference {worst:.2e}"


def test_the_raw_distribution_is_whole(served):
    _loaded, _ids, raw, _after, _server = served
    assert len(raw) > 40_000 and abs(sum(raw.values()) - 1.0) < 1e-3


@pytest.mark.parametrize("name", sorted(ALONE))
def test_each_sampler_alone_equals_llama_cpp(served, name):
    loaded, ids, raw, after, _server = served
    chain = ALONE[name]
    theirs = after(llama_cpp_request(parse_chain(chain)))
    ours = _ours(loaded, ids, raw, chain)
    if name not in ("temperature", "dynatemp", "penalties", "dry"):
        assert len(ours) < len(raw), f"{name} removed nothing on this prompt: the check would be empty"
    changed = max(abs(ours.get(t, 0.0) - p) for t, p in raw.items())
    assert changed > 1e-2, f"{name} left the distribution as it was on this prompt: the check would be empty"
    _same(ours, theirs)


@pytest.mark.parametrize("chain", [DEFAULT_ORDER, "llama.cpp default"])
def test_the_default_order_equals_llama_cpp(served, chain):
    loaded, ids, raw, after, _server = served
    parsed = parse_chain(DEFAULT_ORDER) if chain == DEFAULT_ORDER else preset_chain(chain)
    _same(_ours(loaded, ids, raw, format_chain(parsed)), after(llama_cpp_request(parsed)))


def test_a_llama_cpp_engine_model_runs_the_chain_itself(served):
    """`next-token --chain` on an engine model: the engine applies the chain and sends its final tokens."""
    loaded, ids, raw, after, server = served
    spec = ModelSpec(id="chain-engine", role="base", source="engine", description="llama-server", engine=server.config(),
                     tokenizer_from=MODEL)
    try:
        out = engine_chain.chain_next_token(spec, PROMPT, parse_chain(DEFAULT_ORDER), top=10)
        theirs = after(llama_cpp_request(parse_chain(DEFAULT_ORDER)))
        assert out["prompt_tokens"] == len(ids) and out["stages"] is None
        assert [t["id"] for t in out["tokens"]] == sorted(theirs, key=lambda t: -theirs[t])[:10]
        assert [t["prob"] for t in out["tokens"]] == pytest.approx([theirs[t["id"]] for t in out["tokens"]], abs=1e-6)
        with pytest.raises(PlaygroundError, match="llama.cpp has no eta_cutoff sampler"):
            engine_chain.chain_next_token(spec, PROMPT, parse_chain("top_k=40;eta_cutoff=0.001"))
    finally:
        forget_engines()
