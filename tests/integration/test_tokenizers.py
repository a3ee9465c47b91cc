"""The packaged tokenizers: known ids, exact spans, split UTF-8, decoding, models' own tokenizers, CLI.

Known ids were checked against published values (GPT-2 "Hello world" = [15496, 995], cl100k_base
"hello world" = [15339, 1917], the lecture slide's 33 Llama 3 ids); the rest pin today's output of
the shipped rank files, whose sha256 tiktoken itself verifies.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from playground import tokenizer_registry
from playground.errors import PlaygroundError, UnknownIdError
from playground.ui.tokenizer_presets import LECTURE_CAT, LECTURE_CAT_IDS

ROOT = Path(__file__).resolve().parents[2]
FISH = "🐟"

KNOWN_IDS = {
    "r50k_base": {"hello world": [31373, 995], "Hello world": [15496, 995], "  ": [220, 220],
                  "strawberry": [301, 1831, 8396]},
    "p50k_base": {"hello world": [31373, 995], "  ": [50257], "    x": [50258, 2124]},
    "cl100k_base": {"hello world": [15339, 1917], "Hello world": [9906, 1917], "strawberry": [496, 675, 15717],
                    "12345678": [4513, 10961, 2495], FISH: [9468, 238, 253]},
    "o200k_base": {"hello world": [24912, 2375], "Hello world": [13225, 2375], "strawberry": [302, 1618, 19772]},
    "llama-3": {"hello world": [15339, 1917], LECTURE_CAT: LECTURE_CAT_IDS},
}
MULTILINGUAL = [
    "A cat was climbing a tree.", "Die Katze klettert auf den Baum.", "Le chat grimpe à l'arbre.",
    "Кошка лезет на дерево.", "一隻貓正在爬樹。", "猫が木に登っています。", "고양이가 나무에 오르고 있다.",
    "बिल्ली पेड़ पर चढ़ रही है।", "القطة تتسلق الشجرة.", "I ❤️ 🐈 👍🏽 🇺🇸 👩‍👩‍👧‍👦", "tabs\tand\r\nnewlines\n\n  ",
]
PACKAGED = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base", "llama-3", "bytes"]
MODELS = ["gemma-3-270m", "smollm2-135m-instruct"]


@pytest.mark.parametrize("tokenizer_id, text, ids",
                         [(t, text, ids) for t, cases in KNOWN_IDS.items() for text, ids in cases.items()])
def test_known_ids(tokenizer_id, text, ids):
    assert tokenizer_registry.tokenize(tokenizer_id, text).ids == ids


def test_gpt2_is_an_alias_of_r50k_base():
    assert tokenizer_registry.get_tokenizer("gpt2") is tokenizer_registry.get_tokenizer("r50k_base")


def test_lecture_example_has_33_llama3_tokens_and_bos_when_asked():
    assert len(LECTURE_CAT_IDS) == 33
    with_bos = tokenizer_registry.tokenize("llama-3", LECTURE_CAT, add_special_tokens=True)
    assert with_bos.ids == [128000, *LECTURE_CAT_IDS]
    assert with_bos.tokens[0].special and with_bos.tokens[0].start == with_bos.tokens[0].end == 0


@pytest.mark.parametrize("name", ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"])
def test_rank_files_match_the_hash_tiktoken_expects(name):
    params, expected = tokenizer_registry.tiktoken_params(name)
    data = (tokenizer_registry.TIKTOKEN_DIR / f"{name}.tiktoken").read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected
    from tiktoken_ext import openai_public

    assert expected in openai_public.ENCODING_CONSTRUCTORS[name].__code__.co_consts  # tiktoken's own hash
    assert params["name"] == name
    if name in ("r50k_base", "p50k_base"):
        assert params["pat_str"] == openai_public.r50k_pat_str
    assert "<|endoftext|>" in params["special_tokens"]


def test_a_corrupt_rank_file_is_refused(tmp_path, monkeypatch):
    shutil.copy(tokenizer_registry.TIKTOKEN_DIR / "r50k_base.tiktoken", tmp_path / "r50k_base.tiktoken")
    with open(tmp_path / "r50k_base.tiktoken", "ab") as handle:
        handle.write(b"ISE= 50257\n")
    monkeypatch.setattr(tokenizer_registry, "TIKTOKEN_DIR", tmp_path)
    with pytest.raises(PlaygroundError, match="sha256"):
        tokenizer_registry.tiktoken_params("r50k_base")


def test_special_tokens_toggle():
    text = "a<|endoftext|>b"
    assert tokenizer_registry.tokenize("cl100k_base", text, add_special_tokens=True).ids == [64, 100257, 65]
    plain = tokenizer_registry.tokenize("cl100k_base", text).ids
    assert 100257 not in plain and tokenizer_registry.get_tokenizer("cl100k_base").decode(plain) == text
    assert tokenizer_registry.tokenize("gemma-3-270m", "hi", add_special_tokens=True).ids[0] == 2  # <bos>


@pytest.mark.parametrize("tokenizer_id", PACKAGED + MODELS)
@pytest.mark.parametrize("special", [False, True])
def test_spans_cover_the_text_exactly_in_order(tokenizer_id, special):
    for text in MULTILINGUAL + [LECTURE_CAT, "", "x"]:
        result = tokenizer_registry.tokenize(tokenizer_id, text, add_special_tokens=special)
        assert "".join(text[t.start:t.end] for t in result.tokens) == text
        assert all(a.end == b.start for a, b in zip(result.tokens, result.tokens[1:]))
        assert [t.id for t in result.tokens] == result.ids
        assert all("\ufffd" not in t.text for t in result.tokens)


def test_split_character_spans_and_byte_display():
    result = tokenizer_registry.tokenize("cl100k_base", f"a {FISH}b")
    fish = [t for t in result.tokens if t.partial]
    assert [t.text for t in fish] == [" <0xF0><0x9F>", "<0x90>", "<0x9F>"]
    assert [(t.start, t.end) for t in fish] == [(1, 3), (3, 3), (3, 3)]  # the token with the first byte owns it
    assert len({t.group for t in fish}) == 1
    assert b"".join(t.bytes for t in fish) == f" {FISH}".encode()
    assert not result.tokens[-1].partial and result.tokens[-1].text == "b"


def test_byte_tokenizer_splits_every_character():
    result = tokenizer_registry.tokenize("bytes", "é一")
    assert result.ids == [0xC3, 0xA9, 0xE4, 0xB8, 0x80]
    assert [(t.start, t.end) for t in result.tokens] == [(0, 1), (1, 1), (1, 2), (2, 2), (2, 2)]
    assert [t.group for t in result.tokens] == [0, 0, 2, 2, 2]


@pytest.mark.parametrize("tokenizer_id", ["llama-3", "cl100k_base", "o200k_base"] + MODELS)
def test_round_trips_multilingual_text(tokenizer_id):
    tokenizer = tokenizer_registry.get_tokenizer(tokenizer_id)
    for text in MULTILINGUAL:
        assert tokenizer.decode(tokenizer.encode(text)) == text


@pytest.mark.parametrize("tokenizer_id", PACKAGED + MODELS)
def test_other_id_sequences_decode_to_the_same_text(tokenizer_id):
    text = "A tree-climbing cat 一隻貓 🐟"
    alternatives = tokenizer_registry.alternative_encodings(tokenizer_id, text)
    if tokenizer_id == "bytes":
        assert alternatives == []
        return
    assert {a.method for a in alternatives} == {"characters", "bytes"}
    canonical = tokenizer_registry.get_tokenizer(tokenizer_id).encode(text)
    for alternative in alternatives:
        assert alternative.same_text and alternative.ids != canonical


def test_decode_ids_with_pieces():
    result = tokenizer_registry.decode_ids("llama-3", ", ".join(map(str, LECTURE_CAT_IDS)))
    assert result.text == LECTURE_CAT
    assert [p.text for p in result.pieces[:3]] == ["A", " cat", " was"]
    assert tokenizer_registry.decode_ids("cl100k_base", [9468, 238]).text == "<0xF0><0x9F><0x90>"


@pytest.mark.parametrize("bad", ["1, two", "-5", "1.5"])
def test_decode_rejects_non_ids(bad):
    with pytest.raises(PlaygroundError):
        tokenizer_registry.decode_ids("cl100k_base", bad)


def test_decode_rejects_ids_outside_the_vocabulary():
    with pytest.raises(PlaygroundError, match="outside the vocabulary"):
        tokenizer_registry.decode_ids("r50k_base", [50257])


def test_models_own_tokenizers():
    gemma = tokenizer_registry.get_tokenizer("gemma-3-270m")
    assert gemma.vocab_size >= 262144 and gemma.bos_id == 2
    smol = tokenizer_registry.get_tokenizer("smollm2-135m-instruct")
    assert smol.vocab_size == 49152
    assert smol.encode("hello world") == [28120, 905]
    assert tokenizer_registry.tokenize("smollm2-135m-instruct", "<|im_start|>user").tokens[0].special


def test_unknown_id_lists_the_valid_ids():
    with pytest.raises(UnknownIdError) as info:
        tokenizer_registry.get_tokenizer("gpt-5")
    assert "cl100k_base" in str(info.value) and "llama-3" in str(info.value)


def test_hub_ids_fail_clearly_offline():
    from playground import models

    if models.hub_reachable()[0]:
        pytest.skip("the hub is reachable here")
    with pytest.raises(PlaygroundError, match="hub"):
        tokenizer_registry.get_tokenizer("HuggingFaceTB/SmolLM2-135M")
    infos = {i.id: i for i in tokenizer_registry.list_tokenizers()}
    assert not infos["smollm2-135m"].available and infos["smollm2-135m"].reason


def test_registry_lists_every_packaged_tokenizer():
    infos = {i.id: i for i in tokenizer_registry.list_tokenizers()}
    for name in PACKAGED + MODELS:
        assert infos[name].available
    assert infos["r50k_base"].aliases == ("gpt2",)


def cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real command line in a subprocess (slow: it imports the whole backend)."""
    return subprocess.run([sys.executable, "-m", "playground", "--json", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """The CLI's main() in this process: (exit status, stdout, stderr)."""
    import io

    from playground.__main__ import main

    def run(*args, stdin: str = ""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        status = main(["--json", *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_cli_tokenize_in_a_subprocess_reads_stdin():
    done = cli("tokenize", "--tokenizer", "llama-3", "-", stdin=LECTURE_CAT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ids"] == LECTURE_CAT_IDS


def test_cli_tokenize(run_cli):
    status, out, _ = run_cli("tokenize", "--tokenizer", "cl100k_base", "hello world")
    assert status == 0
    out = json.loads(out)
    assert out["ids"] == [15339, 1917]
    assert out["tokens"][1] == {"id": 1917, "text": " world", "bytes": "20776f726c64", "start": 5, "end": 11,
                                "special": False, "partial": False}


def test_cli_lists_tokenizers(run_cli):
    listed = json.loads(run_cli("tokenizers")[1])
    entry = next(t for t in listed if t["id"] == "cl100k_base")
    assert entry["available"] is True and entry["aliases"] == []
    assert {t["id"] for t in listed} >= set(PACKAGED)


def test_cli_unknown_tokenizer_exits_2_with_the_valid_ids(run_cli):
    status, _, err = run_cli("tokenize", "--tokenizer", "nope", "x")
    assert status == 2 and "cl100k_base" in err and "Traceback" not in err


def test_cli_bpe_train(run_cli):
    status, out, _ = run_cli("bpe-train", "--merges", "3", "--pattern", "none", "-", stdin="aaabdaaabac")
    out = json.loads(out)
    assert out["merges"] == [{"pair": [97, 97], "new_id": 256, "count": 4, "bytes": "6161"},
                             {"pair": [256, 97], "new_id": 257, "count": 2, "bytes": "616161"},
                             {"pair": [257, 98], "new_id": 258, "count": 2, "bytes": "61616162"}]
    assert out["lengths"] == [11, 9, 7, 5]
    status, out, _ = run_cli("bpe-train", "--merges", "20", "--pattern", "gpt4",
                             str(ROOT / "assets/corpus/pride-and-prejudice-ch1-9.txt"))
    assert len(json.loads(out)["merges"]) == 20
    assert run_cli("bpe-train", "--merges", "3", "/no/such/file")[0] == 2
