"""The operator's model list: entries from a TOML models file and `--model` flags, checked one by one.

A models file (`--models-file PATH` / `PLAYGROUND_MODELS_FILE`) holds `[[models]]` tables; a
`--model` flag holds one entry as `key=value` pairs separated by commas
(`--model id=qwen3,role=chat,hub=Qwen/Qwen3-0.6B`). Every entry has an `id`, a `role` (`base` or
`chat`), an optional `label` and `description`, an optional `fim = true` (the model was trained for
fill-in-the-middle, e.g. a StarCoder2 or Qwen2.5-Coder GGUF: the Base vs chat tab's FIM section
runs it live; default false), and exactly one source:

- `hub = "org/name"`: a Hugging Face hub repository (listed as unavailable where the hub is not);
- `path = "DIR"`: a local safetensors directory (config.json, weights, tokenizer);
- `gguf = "FILE"`: a local GGUF file (dequantized and cached like the packaged models);
- `engine = "llama.cpp" | "vllm" | "ollama" | "openai"`: a model served by an inference engine over
  the OpenAI-compatible HTTP API, with `base_url`, `model` (the engine's name for it),
  `api_key_env` (the variable holding the key), the capabilities `top_logprobs`, `token_prompts`,
  `prompt_logprobs`, `tokenize` (defaults per kind, `engine_config.KIND_DEFAULTS`), and
  `tokenizer` (a registry model id whose tokenizer the engine uses, optional).

Relative paths in a models file are relative to the file. A bad entry becomes an `EntryProblem`
naming the entry and the field; the other entries still load. `trust_remote_code` is refused (it is
never used). `read_model_list` returns specs and problems and never raises for a bad entry.
What it leaves out: whether a path exists or an engine answers (`models.availability`), loading.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from playground.engine_config import CAPABILITIES, KINDS, engine_config
from playground.model_spec import ModelSpec

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
HUB_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SOURCES = ("hub", "path", "gguf", "engine")
LOADED_HERE = ("hub", "path", "gguf")  # the entry sources loaded in this process (engine fields refused there)
ENGINE_FIELDS = ("base_url", "model", "api_key_env", "tokenizer", *CAPABILITIES)
TEXT_FIELDS = ("id", "role", "label", "description", "hub", "path", "gguf", "engine",
               "base_url", "model", "api_key_env", "tokenizer")
INT_FIELDS = ("top_logprobs",)
BOOL_FIELDS = ("token_prompts", "prompt_logprobs", "tokenize", "fim")
KNOWN_FIELDS = (*TEXT_FIELDS, *INT_FIELDS, *BOOL_FIELDS)


@dataclass(frozen=True)
class EntryProblem:
    where: str  # "models.toml entry 2" or "--model 1"
    entry_id: str  # "" when the entry has no usable id
    field: str  # "" when the problem is the whole entry or file
    message: str

    def __str__(self) -> str:
        named = f" (id {self.entry_id!r})" if self.entry_id else ""
        field = f", field {self.field!r}" if self.field else ""
        return f"{self.where}{named}{field}: {self.message}"


@dataclass(frozen=True)
class ModelList:
    specs: tuple[ModelSpec, ...]
    problems: tuple[EntryProblem, ...]


class _Bad(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def parse_flag(text: str) -> dict:
    """`id=x,role=chat,hub=org/name` -> a dict of strings (typed later, like a file entry)."""
    entry = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise _Bad("", f"expected key=value pairs separated by commas, got {part!r}")
        entry[key.strip()] = value.strip()
    return entry


def _typed(entry: dict, from_text: bool) -> dict:
    """Each field checked for its type; flag values (text) converted first."""
    typed = {}
    for key, value in entry.items():
        if key == "trust_remote_code":
            raise _Bad(key, "is never used by the playground; remove the field")
        if key not in KNOWN_FIELDS:
            raise _Bad(key, f"unknown field; known fields: {', '.join(KNOWN_FIELDS)}")
        if key in INT_FIELDS:
            if from_text and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _Bad(key, f"must be a whole number >= 0, got {value!r}")
        elif key in BOOL_FIELDS:
            if from_text and isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                value = value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise _Bad(key, f"must be true or false, got {value!r}")
        elif not isinstance(value, str) or not value.strip():
            raise _Bad(key, f"must be a non-empty string, got {value!r}")
        typed[key] = value.strip() if isinstance(value, str) else value
    return typed


def _spec(entry: dict, base_dir: Path | None, origin: str) -> ModelSpec:
    model_id = entry.get("id")
    if model_id is None:
        raise _Bad("id", "is missing")
    if not ID_PATTERN.match(model_id):
        raise _Bad("id", "must be 1-64 letters, digits or . _ : - (starting with a letter or digit)")
    role = entry.get("role")
    if role not in ("base", "chat"):
        raise _Bad("role", f"must be base or chat, got {role!r}" if role else "is missing (base or chat)")
    sources = [name for name in SOURCES if name in entry]
    if len(sources) != 1:
        raise _Bad(sources[1] if sources else "", "needs exactly one source: hub, path, gguf or engine"
                   + (f" (got {', '.join(sources)})" if sources else ""))
    source = sources[0]
    stray = [name for name in ENGINE_FIELDS if name in entry and source in LOADED_HERE and name != "tokenizer"]
    if stray:
        raise _Bad(stray[0], "belongs to engine entries only")
    label = entry.get("label", model_id)
    common = dict(id=model_id, role=role, label=label, origin=origin, fim=entry.get("fim", False))
    if source == "hub":
        if not HUB_PATTERN.match(entry["hub"]):
            raise _Bad("hub", f"must be a hub repository id org/name, got {entry['hub']!r}")
        return ModelSpec(source="hub", hub_repo=entry["hub"],
                         description=entry.get("description", f"{label} (from the Hugging Face hub: {entry['hub']})"),
                         **common)
    if source in ("path", "gguf"):
        path = Path(entry[source]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if source == "gguf" and path.suffix.lower() != ".gguf":
            raise _Bad("gguf", f"must name a .gguf file, got {entry['gguf']!r}")
        kind = "local" if source == "path" else "gguf"
        what = "local safetensors directory" if source == "path" else "local GGUF file, dequantized"
        return ModelSpec(source=kind, path=str(path), description=entry.get("description", f"{label} ({what} {path})"),
                         **common)
    if entry["engine"] not in KINDS:
        raise _Bad("engine", f"must be one of {', '.join(KINDS)}, got {entry['engine']!r}")
    if "base_url" not in entry:
        raise _Bad("base_url", "is missing (the engine's URL, e.g. http://127.0.0.1:8080)")
    try:
        config = engine_config(entry["engine"], entry["base_url"], entry.get("model", ""),
                               entry.get("api_key_env", ""), **{k: entry.get(k) for k in CAPABILITIES})
    except ValueError as exc:
        raise _Bad("base_url", str(exc)) from None
    return ModelSpec(source="engine", engine=config, tokenizer_from=entry.get("tokenizer"),
                     description=entry.get("description", f"{label} (served by {config.where})"), **common)


def _entries_of_file(path: Path) -> tuple[list[tuple[str, object]], list[EntryProblem]]:
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return [], [EntryProblem(f"models file {path}", "", "", f"cannot be read ({exc.strerror or exc})")]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return [], [EntryProblem(f"models file {path}", "", "", f"is not valid TOML ({exc})")]
    problems = [EntryProblem(f"models file {path}", "", key, "unknown top-level key; entries go in [[models]] tables")
                for key in data if key != "models"]
    tables = data.get("models", [])
    if not isinstance(tables, list):
        return [], [*problems, EntryProblem(f"models file {path}", "", "models", "must be [[models]] tables")]
    return [(f"{name} entry {number}", table) for number, table in enumerate(tables, start=1)], problems


def read_model_list(models_file: str | Path | None = None, flag_entries=(), taken_ids=()) -> ModelList:
    """The operator's entries (file first, then flags), each checked; ids in `taken_ids` are refused."""
    raw: list[tuple[str, object, Path | None, bool]] = []
    problems: list[EntryProblem] = []
    if models_file:
        path = Path(models_file).expanduser()
        entries, file_problems = _entries_of_file(path)
        problems += file_problems
        raw += [(where, table, path.parent, False) for where, table in entries]
    raw += [(f"--model {number}", text, None, True) for number, text in enumerate(flag_entries, start=1)]
    specs: list[ModelSpec] = []
    seen = set(taken_ids)
    for where, entry, base_dir, from_flag in raw:
        entry_id = ""
        try:
            if from_flag:
                entry = parse_flag(entry)
            if not isinstance(entry, dict):
                raise _Bad("", "must be a table of fields")
            entry_id = entry.get("id") if isinstance(entry.get("id"), str) else ""
            spec = _spec(_typed(entry, from_flag), base_dir, where)
            if spec.id in seen:
                raise _Bad("id", "is already used by another model (built-in or earlier entry)")
        except _Bad as bad:
            problems.append(EntryProblem(where, entry_id, bad.field, bad.message))
            continue
        seen.add(spec.id)
        specs.append(spec)
    return ModelList(tuple(specs), tuple(problems))
