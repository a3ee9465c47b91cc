"""What the playground knows about one engine model: where it is served and what the engine offers.

`EngineConfig` is built from a model-list entry (`playground.model_list`): the engine kind
(`llama.cpp`, `vllm`, `ollama`, or `openai` for any other OpenAI-compatible server), the server's
base URL, the model name the engine serves, the environment variable holding its API key, and the
capabilities, each defaulting to what that kind of engine offers (`KIND_DEFAULTS`) and overridable
per entry. It sits beside `playground.model_spec` (a spec holds one), below the engines package,
which reads it. What it leaves out: talking to the engine (`engines.client`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("llama.cpp", "vllm", "ollama", "openai")

# Per kind: top_logprobs (how many alternatives one position returns at most), token_prompts
# (prompts as token ids), prompt_logprobs (logprobs of the prompt's own tokens), tokenize
# (/tokenize and /detokenize). Ollama and OpenAI cap top_logprobs at 20; vLLM returns up to
# --max-logprobs (default 20, -1: the whole vocabulary); llama.cpp's n_probs has no fixed cap.
KIND_DEFAULTS: dict[str, dict[str, object]] = {
    "llama.cpp": dict(top_logprobs=100, token_prompts=True, prompt_logprobs=False, tokenize=True),
    "vllm": dict(top_logprobs=20, token_prompts=True, prompt_logprobs=True, tokenize=True),
    "ollama": dict(top_logprobs=20, token_prompts=False, prompt_logprobs=False, tokenize=False),
    "openai": dict(top_logprobs=20, token_prompts=False, prompt_logprobs=False, tokenize=False),
}
CAPABILITIES = tuple(KIND_DEFAULTS["llama.cpp"])


@dataclass(frozen=True)
class EngineConfig:
    kind: str
    base_url: str  # the server's root, without /v1
    model: str  # the model name sent in requests ("" for a llama-server serving one model)
    api_key_env: str = ""
    top_logprobs: int = 20
    token_prompts: bool = False
    prompt_logprobs: bool = False
    tokenize: bool = False

    @property
    def where(self) -> str:
        return f"{self.kind} at {self.base_url}"

    def api_key(self) -> str | None:
        """The API key from the named environment variable (None when unnamed or unset)."""
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None


def normalise_base_url(url: str) -> str:
    """`http://host:port/v1/` -> `http://host:port`; ValueError for anything not http(s)://host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {url!r}")
    path = parts.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else path
    return f"{parts.scheme}://{parts.netloc}{path}"


def engine_config(kind: str, base_url: str, model: str = "", api_key_env: str = "", **capabilities) -> EngineConfig:
    """An EngineConfig with the kind's default capabilities, overridden by `capabilities`."""
    if kind not in KINDS:
        raise ValueError(f"must be one of {', '.join(KINDS)}, got {kind!r}")
    values = {**KIND_DEFAULTS[kind], **{k: v for k, v in capabilities.items() if v is not None}}
    return EngineConfig(kind, normalise_base_url(base_url), model, api_key_env, **values)
