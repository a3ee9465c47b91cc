"""The operator's settings: one object built from the command-line flags and the environment.

Every `PLAYGROUND_*` variable the playground reads is a field of `Settings`, with its default and
what it does (`FIELDS`, which the README's table follows; a test checks they agree). `current()`
returns the settings in force: built once from the environment and the flags `app.py` (or the
CLI) passed to `apply_flags`, and built again only when one of those variables changes (tests and
drills switch fault injection or batching on and off inside one process). What it leaves out:
Gradio's own variables (`GRADIO_SERVER_NAME`, ...) and Hugging Face's (`HF_HUB_OFFLINE`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path

from playground.errors import PlaygroundError

# field: (environment variable, default, what it does) - the README's table in code
FIELDS: dict[str, tuple[str, object, str]] = {
    "device": ("PLAYGROUND_DEVICE", "auto", "where models run: auto (cuda > mps > cpu), cuda, mps, cpu (flag --device)"),
    "dtype": ("PLAYGROUND_DTYPE", "", "force a dtype: float32, bfloat16, float16 (default: bf16 on CUDA, else fp32)"),
    "cache_dir": ("PLAYGROUND_CACHE_DIR", "", "the converted-model cache (default ~/.cache/llm-playground)"),
    "offline": ("PLAYGROUND_OFFLINE", False, "never try the Hugging Face hub"),
    "allow_hub_ids": ("PLAYGROUND_ALLOW_HUB_IDS", False, "the tokenizer tab loads any hub tokenizer id (flag --allow-hub-ids)"),
    "request_timeout": ("PLAYGROUND_REQUEST_TIMEOUT", 120.0, "seconds a request may run once started"),
    "queue_wait": ("PLAYGROUND_QUEUE_WAIT", 45.0, "seconds a request may wait in the queue; beyond, 'the server is busy'"),
    "queue_max_size": ("PLAYGROUND_QUEUE_MAX_SIZE", 256, "requests waiting at most, all groups together"),
    "heavy_concurrency": ("PLAYGROUND_HEAVY_CONCURRENCY", 2, "long requests (generations, beams, BPE training) at once"),
    "client_heavy": ("PLAYGROUND_CLIENT_HEAVY", 2, "heavy requests one session may have queued or running; more are refused at once"),
    "address_heavy": ("PLAYGROUND_ADDRESS_HEAVY", 0, "the same for one network address (0: no limit; a hall behind one proxy or NAT shares one)"),
    "max_request_kb": ("PLAYGROUND_MAX_REQUEST_KB", 4096, "KB one API request body may carry; larger ones are refused (413)"),
    "frame_ancestors": ("PLAYGROUND_FRAME_ANCESTORS", "'self' https://huggingface.co https://*.hf.space", "pages that may embed the app in a frame (CSP frame-ancestors)"),
    "max_sessions": ("PLAYGROUND_MAX_SESSIONS", 2000, "sessions whose state is kept (least recently used dropped)"),
    "session_ttl": ("PLAYGROUND_SESSION_TTL", 7200.0, "seconds a session's state lives after its last update"),
    "lab_decoders": ("PLAYGROUND_LAB_DECODERS", 8, "KV-cached decoders kept per model for the sampling lab (LRU)"),
    "distribution_cache_mb": ("PLAYGROUND_DISTRIBUTION_CACHE_MB", 192.0, "MB of next-token distributions cached per model"),
    "batching": ("PLAYGROUND_BATCHING", True, "group concurrent model calls of different sessions into one forward"),
    "batch_window_ms": ("PLAYGROUND_BATCH_WINDOW_MS", 0.0, "how long a batch waits for more requests (0: none)"),
    "max_batch": ("PLAYGROUND_MAX_BATCH", 64, "rows in one batched forward at most"),
    "fastpath": ("PLAYGROUND_FASTPATH", "auto", "static cache and CUDA graphs: auto (CUDA only), 1 (forced), 0 (off)"),
    "weights": ("PLAYGROUND_WEIGHTS", "gguf", "CPU weights of GGUF models: gguf (the file's own 4-8 bit blocks, float32 arithmetic: the float32 model's numbers up to the order of summation, read at a quarter of the bytes), fp32 (dequantized: the reference)"),
    "memory_budget_mb": ("PLAYGROUND_MEMORY_BUDGET_MB", 0.0, "the server's memory budget in MB: caches are emptied near it, then new heavy requests refused (0: 2.5x its memory with the models loaded)"),
    "plot_interval": ("PLAYGROUND_PLOT_INTERVAL", 1.0, "seconds between charts while the sampling lab streams"),
    "start_token": ("PLAYGROUND_START_TOKEN", "model", "start tokens before a plain text: model (its tokenizer's and llama.cpp's), always, none"),
    "fault_injection": ("PLAYGROUND_FAULT_INJECTION", "", "drills: forward:every=N fails every Nth model call as out of memory"),
    "models_file": ("PLAYGROUND_MODELS_FILE", "", "a TOML file of models added to the built-in ones (flag --models-file)"),
    "llama_server": ("PLAYGROUND_LLAMA_SERVER", "", "a llama-server binary for the engine tests (default: the cached build)"),
    "engine_timeout": ("PLAYGROUND_ENGINE_TIMEOUT", 30.0, "seconds an engine model may take to answer one HTTP request"),
    "room_store": ("PLAYGROUND_ROOM_STORE", "", "where class rooms live: empty (this process) or redis://host:port/db (shared by several app processes)"),
    "room_ttl": ("PLAYGROUND_ROOM_TTL", 14400.0, "seconds a class room lives after it was started"),
    "max_rooms": ("PLAYGROUND_MAX_ROOMS", 64, "class rooms live at once at most"),
    "answer_rate": ("PLAYGROUND_ANSWER_RATE", 5, "answers one student may send per 10 seconds (more are refused)"),
    "class_starts": ("PLAYGROUND_CLASS_STARTS", 20, "classes one network address may start per hour (more are refused; 0: no limit)"),
}


@dataclass(frozen=True)
class Settings:
    device: str = "auto"
    dtype: str = ""
    cache_dir: str = ""
    offline: bool = False
    allow_hub_ids: bool = False
    request_timeout: float = 120.0
    queue_wait: float = 45.0
    queue_max_size: int = 256
    heavy_concurrency: int = 2
    client_heavy: int = 2
    address_heavy: int = 0
    max_request_kb: int = 4096
    frame_ancestors: str = "'self' https://huggingface.co https://*.hf.space"
    max_sessions: int = 2000
    session_ttl: float = 7200.0
    lab_decoders: int = 8
    distribution_cache_mb: float = 192.0
    batching: bool = True
    batch_window_ms: float = 0.0
    max_batch: int = 64
    fastpath: str = "auto"
    weights: str = "gguf"
    memory_budget_mb: float = 0.0
    plot_interval: float = 1.0
    start_token: str = "model"
    fault_injection: str = ""
    models_file: str = ""
    llama_server: str = ""
    engine_timeout: float = 30.0
    room_store: str = ""
    room_ttl: float = 14400.0
    max_rooms: int = 64
    answer_rate: int = 5
    class_starts: int = 20

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path.home() / ".cache" / "llm-playground"

    @classmethod
    def from_environment(cls, environ=None, **flags) -> "Settings":
        """The defaults, overridden by the environment, overridden by flags (None flags are ignored)."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, (variable, default, _) in FIELDS.items():
            raw = environ.get(variable)
            if raw not in (None, ""):
                values[name] = _parse(variable, raw, default)
        values.update({name: value for name, value in flags.items() if value is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        return replace(cls(), **values)


def _parse(variable: str, raw: str, default):
    try:
        if isinstance(default, bool):
            return raw.strip().lower() not in ("0", "false", "no", "off")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise PlaygroundError(f"{variable}={raw!r} is not a valid value (default {default!r}).") from None
    return raw.strip()


_flags: dict = {}
_built: tuple[tuple, Settings] | None = None
_lock = threading.Lock()


def apply_flags(**flags) -> Settings:
    """Command-line flags (`device=`, `allow_hub_ids=`): they win over the environment."""
    global _built
    with _lock:
        _flags.update({k: v for k, v in flags.items() if v is not None})
        _built = None
    return current()


def current() -> Settings:
    """The settings in force (rebuilt only when a PLAYGROUND_* variable or a flag changed)."""
    global _built
    snapshot = tuple(os.environ.get(variable) for variable, _, _ in FIELDS.values())
    built = _built
    if built is not None and built[0] == snapshot:
        return built[1]
    with _lock:
        settings = Settings.from_environment(**_flags)
        _built = (snapshot, settings)
        return settings
