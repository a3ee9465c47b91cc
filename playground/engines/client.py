"""The HTTP client for engine models: OpenAI-compatible requests over httpx, with clear failures.

`EngineClient(config)` sends completions and chat completions (whole or streamed as server-sent
events), and the tokenizer endpoints where the engine has them. Every request has a time limit
(`PLAYGROUND_ENGINE_TIMEOUT`, connecting within 5 s); a request is retried, with a short backoff,
only where retrying is safe: the connection could not be made, or the engine answered 503 (busy or
still loading its model), and for a stream only before its first byte. Every failure becomes an
`EngineError` (a PlaygroundError) saying which engine and what happened: down, too slow, an HTTP
error with the engine's own message, or an answer that is not what the API promises.
What it leaves out: reading logprobs (`engines.topk`), starting engines (`engines.server`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from playground import settings
from playground.engine_config import EngineConfig
from playground.errors import PlaygroundError

RETRY_STATUS = (503,)
CONNECT_SECONDS = 5.0
MAX_MESSAGE_CHARS = 300


class EngineError(PlaygroundError):
    """An engine that is down, slow, answered an error, or gave an answer without what was asked."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # "down", "slow", "http", "no-logprobs", "unsupported", "bad-answer"


def _engine_message(response: httpx.Response) -> str:
    """The engine's own error text: OpenAI's {"error": {"message"}}, {"error": "..."}, vLLM's {"detail"}."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:MAX_MESSAGE_CHARS] or response.reason_phrase
    error = body.get("error", body.get("detail", body)) if isinstance(body, dict) else body
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:MAX_MESSAGE_CHARS]


class EngineClient:
    def __init__(self, config: EngineConfig, timeout: float | None = None, retries: int = 2,
                 backoff: float = 0.25, transport: httpx.BaseTransport | None = None, name: str = ""):
        self.config = config
        self.retries = retries
        self.backoff = backoff
        self.timeout = float(timeout if timeout is not None else settings.current().engine_timeout)
        self.name = name or config.model or config.kind
        headers = {"Authorization": f"Bearer {config.api_key()}"} if config.api_key() else {}
        self._http = httpx.Client(base_url=config.base_url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_SECONDS, self.timeout)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- failures --------------------------------------------------------------------------------

    def _who(self) -> str:
        return f"The engine for model {self.name!r} ({self.config.where})"

    def _failure(self, exc: Exception) -> EngineError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return EngineError(f"{self._who()} did not answer within {self.timeout:g} s; it may be overloaded "
                               "(PLAYGROUND_ENGINE_TIMEOUT sets the limit).", "slow")
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return EngineError(f"{self._who()} is not reachable ({exc.__class__.__name__}: {exc}); "
                               "is the server running?", "down")
        return EngineError(f"{self._who()} failed: {exc.__class__.__name__}: {exc}", "down")

    def _http_error(self, response: httpx.Response) -> EngineError:
        return EngineError(f"{self._who()} answered HTTP {response.status_code}: {_engine_message(response)}", "http")

    # -- requests --------------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: dict | None = None, stream: bool = False) -> httpx.Response:
        """One response with a good status (a stream: still open), retried where safe."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                request = self._http.build_request(method, path, json=body)
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise self._failure(exc) from None
            except httpx.HTTPError as exc:
                raise self._failure(exc) from None
            else:
                if response.status_code < 400:
                    return response
                if stream:
                    response.read()
                    response.close()
                if response.status_code not in RETRY_STATUS or last:
                    raise self._http_error(response)
            time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict:
        return self._json(self._send("GET", path))

    def post(self, path: str, body: dict) -> dict:
        return self._json(self._send("POST", path, body))

    def _json(self, response: httpx.Response) -> dict:
        try:
            return response.json()
        except ValueError:
            raise EngineError(f"{self._who()} answered something that is not JSON: "
                              f"{response.text[:MAX_MESSAGE_CHARS]!r}", "bad-answer") from None

    def stream(self, path: str, body: dict) -> Iterator[dict]:
        """The events of a streamed request (server-sent events `data: {...}` until `[DONE]`)."""
        response = self._send("POST", path, {**body, "stream": True}, stream=True)
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise EngineError(f"{self._who()} streamed an event that is not JSON: {data[:80]!r}",
                                      "bad-answer") from None
                if isinstance(event, dict) and "error" in event:
                    raise EngineError(f"{self._who()} reported an error while streaming: "
                                      f"{str(event['error'])[:MAX_MESSAGE_CHARS]}", "http")
                yield event
        except httpx.HTTPError as exc:
            raise self._failure(exc) from None
        finally:
            response.close()

    # -- the API ---------------------------------------------------------------------------------

    def _prompt(self, prompt: str | list[int]):
        if isinstance(prompt, str):
            return prompt
        if not self.config.token_prompts:
            raise EngineError(f"{self._who()} does not take prompts as token ids (token_prompts = false).",
                              "unsupported")
        return [int(token_id) for token_id in prompt]

    def completion_body(self, prompt: str | list[int], max_tokens: int = 1, **options) -> dict:
        body = {"prompt": self._prompt(prompt), "max_tokens": int(max_tokens), **options}
        if self.config.model:
            body["model"] = self.config.model
        return body

    def completion(self, prompt: str | list[int], max_tokens: int = 1, **options) -> dict:
        """POST /v1/completions: a raw-text (or token-id) completion; options as the API names them."""
        return self.post("/v1/completions", self.completion_body(prompt, max_tokens, **options))

    def stream_completion(self, prompt: str | list[int], max_tokens: int = 16, **options) -> Iterator[dict]:
        return self.stream("/v1/completions", self.completion_body(prompt, max_tokens, **options))

    def chat_body(self, messages: list[dict], max_tokens: int = 16, **options) -> dict:
        body = {"messages": list(messages), "max_tokens": int(max_tokens), **options}
        if self.config.model:
            body["model"] = self.config.model
        return body

    def chat(self, messages: list[dict], max_tokens: int = 16, **options) -> dict:
        """POST /v1/chat/completions (the engine applies its chat template)."""
        return self.post("/v1/chat/completions", self.chat_body(messages, max_tokens, **options))

    def stream_chat(self, messages: list[dict], max_tokens: int = 16, **options) -> Iterator[dict]:
        return self.stream("/v1/chat/completions", self.chat_body(messages, max_tokens, **options))

    def _needs_tokenizer(self, what: str) -> None:
        if not self.config.tokenize:
            raise EngineError(f"{self._who()} does not provide {what} (tokenize = false).", "unsupported")

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        """POST /tokenize (llama.cpp, vLLM): the engine's own token ids for `text`."""
        self._needs_tokenizer("/tokenize")
        body = {"content": text, "prompt": text, "add_special": add_special, "add_special_tokens": add_special}
        if self.config.model:
            body["model"] = self.config.model
        answer = self.post("/tokenize", body)
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise EngineError(f"{self._who()} answered /tokenize without a token list.", "bad-answer")
        return [int(t["id"] if isinstance(t, dict) else t) for t in tokens]

    def detokenize(self, token_ids: list[int]) -> str:
        """POST /detokenize (llama.cpp, vLLM): the text of `token_ids`."""
        self._needs_tokenizer("/detokenize")
        body = {"tokens": [int(t) for t in token_ids]}
        if self.config.model:
            body["model"] = self.config.model
        answer = self.post("/detokenize", body)
        text = answer.get("content", answer.get("prompt")) if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise EngineError(f"{self._who()} answered /detokenize without a text.", "bad-answer")
        return text

    def served_models(self) -> list[str]:
        """GET /v1/models: the names the engine serves."""
        answer = self.get("/v1/models")
        data = answer.get("data", []) if isinstance(answer, dict) else []
        return [str(item.get("id")) for item in data if isinstance(item, dict)]
