"""Inference engines reached over HTTP: llama.cpp's `llama-server`, vLLM, Ollama (OpenAI-compatible).

- `config`: an engine entry (kind, base URL, model name, API key variable) and its capabilities.
- `client`: the HTTP client (httpx): timeouts, retries where safe, streaming, clear messages.
- `topk`: the engine's next-token top-K with the remaining probability mass.
- `server`: start a `llama-server` on a free loopback port (tests, benchmarks).
- `build`: build `llama-server` once from source into the cache.

What it leaves out: running models in-process (`playground.models`, `playground.core`) and the
tabs' use of engine models.
"""
