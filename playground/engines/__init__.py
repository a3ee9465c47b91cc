"""Inference engines reached over HTTP: llama.cpp's `llama-server`, vLLM, Ollama (OpenAI-compatible).

- an engine entry (kind, base URL, model name, API key variable) and its capabilities are
  `playground.engine_config`'s (a `ModelSpec` holds one);
- `client`: the HTTP client (httpx): timeouts, retries where safe, streaming, clear messages.
- `topk`: the engine's next-token top-K with the remaining probability mass.
- `server`: start a `llama-server` on a free loopback port (tests, benchmarks).
- `build`: build `llama-server` once from source into the cache.
- `lab`, `beam`, `stream`, `tokenizer`, `forcing`, `probe`: what the tabs need of an engine model,
  which `playground.backends.EngineBackend` calls (the tabs never call these themselves).

What it leaves out: running models in-process (`playground.models`, `playground.decoding`) and
choosing between an engine and an in-process model (`playground.backends`).
"""
