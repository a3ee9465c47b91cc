"""A sampler chain run by the engine itself (issue 25.6): llama.cpp's samplers, order and parameters.

`chain_next_token(spec, prompt, chain)` sends llama-server a /completion request for one token with
the chain as llama.cpp's `samplers` field and parameters (`samplers.chain.llama_cpp_request`),
`n_probs` and `post_sampling_probs`, and returns the engine's distribution after its chain: the
tokens it kept (at most `top`) with their probabilities. The engine does not send its stages, so
there is no funnel here; tests/integration/test_engine_chain.py checks that our chain on the
engine's raw distribution gives the same tokens and probabilities (1e-4).
A sampler llama.cpp lacks (transformers' repetition penalty, no-repeat n-gram, epsilon, eta,
OpenAI's penalties) is refused in words naming it; an engine of another kind (vLLM, Ollama) is
refused in words too.

What it leaves out: vLLM's and Ollama's subsets of samplers, generation with a chain on an engine.
"""

from __future__ import annotations

from playground.engines.lab import engine_for, prompt_ids
from playground.errors import PlaygroundError
from playground.model_spec import ModelSpec
from playground.samplers.chain import Chain, format_chain, llama_cpp_request
from playground.token_text import display_text, token_bytes


def chain_next_token(spec: ModelSpec, prompt: str, chain: Chain, chat_template: bool = False, top: int = 10,
                     seed: int = 0) -> dict:
    if spec.engine.kind != "llama.cpp":
        raise PlaygroundError(f"{spec.id} is served by {spec.engine.where}: the playground sends a sampler chain only "
                              "to llama.cpp engines so far (vLLM and Ollama have subsets of these samplers).")
    fields = llama_cpp_request(chain)
    state = engine_for(spec)
    ids = prompt_ids(state, prompt, chat_template)
    body = {"prompt": ids, "n_predict": 1, "n_probs": max(1, int(top)), "post_sampling_probs": True,
            "seed": int(seed), **fields}
    answer = state.client.post("/completion", body)
    try:
        kept = answer["completion_probabilities"][0]["top_probs"]
    except (KeyError, IndexError, TypeError):
        raise PlaygroundError(f"{spec.id}: the engine's answer has no post-sampling probabilities.") from None

    def text(item) -> str:
        if state.tokenizer is not None:
            return display_text(token_bytes(state.tokenizer, int(item["id"])))
        return display_text(bytes(item["bytes"])) if "bytes" in item else str(item.get("token", ""))

    tokens = [{"id": int(item["id"]), "text": text(item), "prob": float(item["prob"])} for item in kept]
    return {"model": spec.id, "prompt_tokens": len(ids), "chain": format_chain(chain), "ran_on": spec.engine.where,
            "engine_samplers": fields["samplers"] or ["temperature", "mirostat"], "stages": None,
            "note": "The engine ran the chain itself: it sends the final distribution, not each stage's.",
            "tokens": tokens}
