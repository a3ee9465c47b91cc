"""Asks an engine whether it serves and gives logprobs (`python -m playground models --check`).

`probe(config)` makes two small requests (the served models, then one token with two logprobs)
and returns an `EngineProbe` with what it found and, when something is wrong, the message the
playground would show. What it leaves out: checking the capabilities beyond logprobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from playground.engines.client import EngineClient, EngineError
from playground.engine_config import EngineConfig
from playground.engines.topk import next_token_topk


@dataclass(frozen=True)
class EngineProbe:
    reachable: bool
    served_models: tuple[str, ...]
    logprobs: bool
    message: str  # "" when all is well


def probe(config: EngineConfig, timeout: float = 10.0) -> EngineProbe:
    with EngineClient(config, timeout=timeout, retries=0) as client:
        try:
            served = tuple(client.served_models())
        except EngineError as exc:
            return EngineProbe(exc.reason not in ("down", "slow"), (), False, str(exc))
        try:
            next_token_topk(client, "Hello", 2)
        except EngineError as exc:
            return EngineProbe(True, served, False, str(exc))
    return EngineProbe(True, served, True, "")
