"""The operator's model list: entries from a TOML file and --model flags, refused one by one with the field named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground import model_list, models
from playground.errors import PlaygroundError

ROOT = Path(__file__).resolve().parents[2]

MODELS_TOML = """
[[models]]
id = "qwen3"
role = "chat"
label = "Qwen3 0.6B"
hub = "Qwen/Qwen3-0.6B"

[[models]]
id = "local-small"
role = "base"
path = "weights/small"

[[models]]
id = "local-gguf"
role = "chat"
gguf = "/nowhere/model.gguf"

[[models]]
id = "llama-smol"
role = "chat"
engine = "llama.cpp"
base_url = "http://127.0.0.1:8080/v1"
tokenizer = "smollm2-135m-instruct"
top_logprobs = 50

[[models]]
id = "bad-role"
role = "instruct"
hub = "a/b"

[[models]]
id = "remote-code"
role = "chat"
hub = "a/b"
trust_remote_code = true

[[models]]
id = "two-sources"
role = "chat"
hub = "a/b"
path = "/x"

[[models]]
id = "engine-no-url"
role = "chat"
engine = "vllm"

[[models]]
id = "bad-cap"
role = "chat"
engine = "ollama"
base_url = "http://h:11434"
top_logprobs = "many"

[[models]]
id = "gemma-3-270m"
role = "base"
hub = "a/b"
"""


@pytest.fixture
def restore_registry():
    yield
    models.configure_model_list("", ())


def read(tmp_path, text=MODELS_TOML, flags=()):
    path = tmp_path / "models.toml"
    path.write_text(text)
    return model_list.read_model_list(path, flags, taken_ids=models._BUILT_IN)


def test_good_entries_load_and_each_bad_one_names_entry_and_field(tmp_path):
    result = read(tmp_path)
    assert [spec.id for spec in result.specs] == ["qwen3", "local-small", "local-gguf", "llama-smol"]
    problems = {p.entry_id: p for p in result.problems}
    assert problems["bad-role"].field == "role" and "must be base or chat" in problems["bad-role"].message
    assert problems["remote-code"].field == "trust_remote_code" and "never used" in str(problems["remote-code"])
    assert "exactly one source" in problems["two-sources"].message
    assert problems["engine-no-url"].field == "base_url"
    assert problems["bad-cap"].field == "top_logprobs"
    assert problems["gemma-3-270m"].field == "id" and "already used" in problems["gemma-3-270m"].message
    assert str(problems["bad-role"]).startswith("models.toml entry 5 (id 'bad-role'), field 'role':")


def test_entry_fields_and_relative_paths(tmp_path):
    specs = {spec.id: spec for spec in read(tmp_path).specs}
    assert specs["qwen3"].hub_repo == "Qwen/Qwen3-0.6B" and specs["qwen3"].label == "Qwen3 0.6B"
    assert specs["local-small"].path == str(tmp_path / "weights" / "small")
    assert specs["local-small"].label == "local-small" and specs["local-small"].origin == "models.toml entry 2"
    engine = specs["llama-smol"].engine
    assert (engine.kind, engine.base_url, engine.top_logprobs, engine.token_prompts) == (
        "llama.cpp", "http://127.0.0.1:8080", 50, True)
    assert specs["llama-smol"].tokenizer_from == "smollm2-135m-instruct"


def test_flags_are_typed_like_file_entries(tmp_path):
    result = model_list.read_model_list(None, [
        "id=qwen3,role=chat,hub=Qwen/Qwen3-0.6B",
        "id=v,role=base,engine=vllm,base_url=http://h:8000,model=meta-llama/Llama-3.1-8B,top_logprobs=200,tokenize=no",
        "id=x,role=chat,engine=ollama,base_url=http://h,token_prompts=maybe",
        "role=chat,hub=a/b",
        "no equals sign",
    ])
    assert [spec.id for spec in result.specs] == ["qwen3", "v"]
    assert result.specs[1].engine.top_logprobs == 200 and result.specs[1].engine.tokenize is False
    assert [(p.where, p.field) for p in result.problems] == [
        ("--model 3", "token_prompts"), ("--model 4", "id"), ("--model 5", "")]


def test_unreadable_and_invalid_files_are_one_problem_each(tmp_path):
    assert "cannot be read" in str(model_list.read_model_list(tmp_path / "missing.toml").problems[0])
    result = read(tmp_path, "[[models]\nid = ")
    assert not result.specs and "is not valid TOML" in str(result.problems[0])
    result = read(tmp_path, "[model]\nid = 'x'\n")
    assert result.problems[0].field == "model" and "[[models]] tables" in result.problems[0].message


def test_registry_lists_operator_entries_with_reasons(tmp_path, restore_registry, monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: (False, "the Hugging Face hub is not reachable (test)"))
    path = tmp_path / "models.toml"
    path.write_text(MODELS_TOML)
    problems = models.configure_model_list(str(path), ["id=flagged,role=base,hub=org/flagged"])
    assert len(problems) == 6 and models.model_list_problems() == problems
    infos = {info.id: info for info in models.list_models()}
    assert {"gemma-3-270m", "qwen3", "local-small", "llama-smol", "flagged"} <= set(infos)
    assert not infos["qwen3"].available and "not reachable" in infos["qwen3"].reason
    assert infos["qwen3"].label == "Qwen3 0.6B" and infos["qwen3"].where == "hub Qwen/Qwen3-0.6B"
    assert "no config.json" in infos["local-small"].reason
    assert "file not found" in infos["local-gguf"].reason
    assert not infos["llama-smol"].available and "llama.cpp at http://127.0.0.1:8080" in infos["llama-smol"].reason
    assert infos["flagged"].origin == "--model 1"
    with pytest.raises(PlaygroundError, match="llama-smol is not available: served by llama.cpp"):
        models.load_model("llama-smol")
    models.configure_model_list("", ())
    assert "qwen3" not in {info.id for info in models.list_models()}


def test_the_status_line_counts_engine_models_as_usable(tmp_path, restore_registry, monkeypatch):
    """An engine model is usable in the tabs that run engines: the header counts it apart from the
    models that cannot be used here, and the Models panel says where it is served, not 'unavailable'."""
    from playground.ui import common

    monkeypatch.setattr(models, "hub_reachable", lambda: (False, "the Hugging Face hub is not reachable (test)"))
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nid = "smol-engine"\nrole = "chat"\nengine = "llama.cpp"\n'
                    'base_url = "http://127.0.0.1:8080"\n\n[[models]]\nid = "qwen3"\nrole = "chat"\nhub = "Qwen/Qwen3-0.6B"\n')
    assert models.configure_model_list(str(path), ()) == ()
    line = common.status_markdown()
    unusable = sum(1 for i in models.list_models(include_hidden=False) if not i.available and i.source != "engine")
    assert "1 on engine" in line and f"{unusable} not usable here" in line
    details = common.status_details()
    engine_line = next(line for line in details.splitlines() if "smol-engine" in line)
    assert "served by llama.cpp at http://127.0.0.1:8080" in engine_line and "unavailable" not in engine_line
    assert "Sampling lab" in engine_line and "needs the Hugging Face hub" in details


def test_models_file_from_the_environment(tmp_path, restore_registry, monkeypatch):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nid = "from-env"\nrole = "base"\nhub = "org/name"\n')
    monkeypatch.setenv("PLAYGROUND_MODELS_FILE", str(path))
    models._MODEL_LIST["configured"] = None  # as in a fresh process
    assert models.get_spec("from-env").hub_repo == "org/name"


def test_a_local_safetensors_directory_loads(tmp_path, restore_registry):
    tiny = models.load_model("tiny-random")
    directory = tmp_path / "tiny-local"
    tiny.model.save_pretrained(directory)
    tiny.tokenizer.save_pretrained(directory)
    models.configure_model_list("", [f"id=tiny-local,role=chat,path={directory}"])
    loaded = models.load_model("tiny-local")
    try:
        assert loaded.loaded_from == "local" and loaded.vocab_size == tiny.vocab_size
        assert models.load_tokenizer("tiny-local").encode("hello") == tiny.tokenizer.encode("hello")
    finally:
        models._LOADED.pop("tiny-local", None)


def test_hub_pair_is_the_default_pair_where_the_hub_is_reachable(monkeypatch, restore_registry):
    from playground.ui import chat_tab

    monkeypatch.setattr(models, "hub_reachable", lambda: (True, ""))
    assert chat_tab.default_models() == chat_tab.HUB_PAIR == ("smollm2-135m", "smollm2-135m-instruct-hub")
    monkeypatch.setattr(models, "hub_reachable", lambda: (False, "offline"))
    assert chat_tab.default_models() == chat_tab.OFFLINE_PAIR


def test_hub_models_load_from_their_repository_without_remote_code(monkeypatch):
    """The Space path: a hub id goes to from_pretrained with trust_remote_code=False (hub faked)."""
    tiny = models.load_model("tiny-random")
    calls = []
    monkeypatch.setattr(models, "hub_reachable", lambda: (True, ""))
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained",
                        lambda repo, **kwargs: calls.append(("model", repo, kwargs)) or tiny.model)
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained",
                        lambda repo, **kwargs: calls.append(("tokenizer", repo, kwargs)) or tiny.tokenizer)
    models._LOADED.pop("smollm2-135m", None)
    try:
        loaded = models.load_model("smollm2-135m")
        assert loaded.loaded_from == "hub"
        assert [(kind, repo) for kind, repo, _ in calls] == [("model", "HuggingFaceTB/SmolLM2-135M"),
                                                             ("tokenizer", "HuggingFaceTB/SmolLM2-135M")]
        assert all(kwargs["trust_remote_code"] is False for _, _, kwargs in calls)
    finally:
        models._LOADED.pop("smollm2-135m", None)


def test_cli_models_shows_entries_and_refused_ones_on_stderr(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nid = "q"\nrole = "chat"\nhub = "Qwen/Qwen3-0.6B"\n'
                    '[[models]]\nid = "broken"\nrole = "chat"\n')
    result = subprocess.run([sys.executable, "-m", "playground", "models", "--json", "--models-file", str(path),
                             "--model", "id=e,role=chat,engine=ollama,base_url=http://127.0.0.1:9,model=qwen3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**{k: v for k, v in os.environ.items() if k != "PLAYGROUND_MODELS_FILE"},
                                 "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "model entry refused: models.toml entry 2 (id 'broken'): needs exactly one source" in result.stderr
    assert "Traceback" not in result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["q"]["where"] == "hub Qwen/Qwen3-0.6B" and rows["e"]["where"] == "ollama at http://127.0.0.1:9"


@pytest.mark.parametrize("name", ["vllm.toml", "vllm-tensor-parallel.toml", "ollama.toml", "llama-cpp.toml"])
def test_the_example_models_files_read_without_problems(name):
    """The README's "Serving a large class" models files (examples/models/) are valid as shipped."""
    path = Path(__file__).resolve().parents[2] / "examples" / "models" / name
    found = model_list.read_model_list(path, (), taken_ids=models._BUILT_IN)
    kind = {"vllm": "vllm", "ollama": "ollama", "llama": "llama.cpp"}[name.split(".")[0].split("-")[0]]
    assert found.problems == ()
    assert len(found.specs) == 2 and {s.role for s in found.specs} == {"base", "chat"}
    assert all(s.source == "engine" and s.engine.kind == kind for s in found.specs)
