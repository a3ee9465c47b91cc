"""Fill-in-the-middle (issue 14, item 3): the cut, the PSM string, the sentinels, the live run.

Real tokenizers (SmolLM2's, OpenAI's cl100k_base, which has <|fim_prefix|> ...), and for the live
run a tiny random-weights Llama saved as a local model whose tokenizer (SmolLM2's) gets StarCoder's
FIM tokens added: its greedy middle must equal transformers' own `generate` on the same weights.
"""

from __future__ import annotations

import pytest
import torch

from playground import fim, model_list, models, tokenizer_registry
from playground.errors import PlaygroundError
from playground.ui import fim_section

EXAMPLE = fim.FIMExample("def f(a):\n", "    return a + 1\n", "print(f(2))\n")
MARKED = "def f(a):\n<MID>    return a + 1\n</MID>print(f(2))\n"


def test_cut_at_two_positions_and_at_marks():
    assert fim.cut("abcdef", 2, 4) == fim.FIMExample("ab", "cd", "ef")
    assert fim.cut("abcdef", 0, 6) == fim.FIMExample("", "abcdef", "")
    assert fim.cut("abc", 1, 1) == fim.FIMExample("a", "", "bc")
    assert fim.cut_marked(MARKED) == EXAMPLE
    assert (EXAMPLE.document, EXAMPLE.start, EXAMPLE.end) == (MARKED.replace("<MID>", "").replace("</MID>", ""), 10, 27)
    assert fim.cut(EXAMPLE.document, EXAMPLE.start, EXAMPLE.end) == EXAMPLE
    for start, end in ((3, 2), (-1, 2), (0, 7)):
        with pytest.raises(PlaygroundError, match="0 <= start <= end <= 6"):
            fim.cut("abcdef", start, end)
    with pytest.raises(PlaygroundError, match="whole number"):
        fim.cut("abcdef", 1.5, 2)
    with pytest.raises(PlaygroundError, match=r"has 0 <MID> and 0 </MID>"):
        fim.cut_marked("no marks")
    with pytest.raises(PlaygroundError, match=r"has 2 <MID> and 1 </MID>"):
        fim.cut_marked("<MID>a<MID>b</MID>")
    with pytest.raises(PlaygroundError, match="comes before"):
        fim.cut_marked("a</MID>b<MID>c")


def test_psm_string_in_the_lecture_notation():
    layout = fim.psm(EXAMPLE)
    assert layout.training == "[bot][pre]def f(a):\n[post]print(f(2))\n[mid]    return a + 1\n[eot]"
    assert layout.prompt == "[bot][pre]def f(a):\n[post]print(f(2))\n[mid]"
    assert [s.part for s in layout.segments] == ["sentinel", "sentinel", "prefix", "sentinel", "suffix", "sentinel",
                                                 "middle", "sentinel"]


def test_smollm2_has_no_fim_tokens_so_the_lecture_notation_is_plain_text():
    tokenizer = tokenizer_registry.get_tokenizer("smollm2-135m-instruct")
    own = fim.special_tokens(tokenizer)
    assert "<file_sep>" in own and "<repo_name>" in own  # StarCoder's code tokens are there ...
    assert not {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"} & set(own)  # ... its FIM tokens are not
    assert fim.sentinels_for(tokenizer) == fim.LECTURE_SENTINELS
    encoded = fim.encode_psm(tokenizer, fim.psm(EXAMPLE, fim.sentinels_for(tokenizer)))
    assert encoded.result.ids == (tokenizer.encode("[bot]") + tokenizer.encode("[pre]") + tokenizer.encode(EXAMPLE.prefix)
                                  + tokenizer.encode("[post]") + tokenizer.encode(EXAMPLE.suffix)
                                  + tokenizer.encode("[mid]") + tokenizer.encode(EXAMPLE.middle)
                                  + tokenizer.encode("[eot]"))
    assert len(tokenizer.encode("[pre]")) > 1  # several tokens: not a sentinel to this tokenizer
    assert "".join(t.text for t in encoded.result.tokens) == encoded.psm.training  # the spans spell it
    prompt_tokens = encoded.result.tokens[:encoded.prompt_length]
    assert "".join(t.text for t in prompt_tokens) == encoded.psm.prompt


def test_a_tokenizer_with_fim_tokens_gets_its_own_one_id_each():
    tokenizer = tokenizer_registry.get_tokenizer("cl100k_base")
    sentinels = fim.sentinels_for(tokenizer)
    assert (sentinels.prefix, sentinels.suffix, sentinels.middle, sentinels.begin, sentinels.end, sentinels.own) == (
        "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "", "<|endoftext|>", True)
    encoded = fim.encode_psm(tokenizer, fim.psm(EXAMPLE, sentinels))
    assert encoded.psm.training == ("<|fim_prefix|>def f(a):\n<|fim_suffix|>print(f(2))\n<|fim_middle|>"
                                    "    return a + 1\n<|endoftext|>")
    enc = tokenizer.encode
    assert encoded.prompt_ids == [100258, *enc(EXAMPLE.prefix), 100260, *enc(EXAMPLE.suffix), 100259]
    assert encoded.result.ids == [*encoded.prompt_ids, *enc(EXAMPLE.middle), 100257]
    assert encoded.parts == ("sentinel", *["prefix"] * len(enc(EXAMPLE.prefix)), "sentinel",
                             *["suffix"] * len(enc(EXAMPLE.suffix)), "sentinel",
                             *["middle"] * len(enc(EXAMPLE.middle)), "sentinel")
    assert [t.text for t in encoded.result.tokens if t.special] == [
        "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>"]


def test_sentinel_families():
    starcoder = fim.choose_sentinels(["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"],
                                     "<|endoftext|>")
    assert (starcoder.prefix, starcoder.suffix, starcoder.middle, starcoder.end) == (
        "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>")
    assert fim.choose_sentinels(["<fim_prefix>", "<fim_middle>"]) == fim.LECTURE_SENTINELS  # all three or none
    deepseek = fim.choose_sentinels(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], "<eos>")
    assert (deepseek.prefix, deepseek.suffix, deepseek.middle, deepseek.end) == (
        "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "")


def test_the_packaged_models_are_not_run_live_and_say_why(monkeypatch):
    loads = []  # refused before any weights are read, whatever earlier tests loaded
    monkeypatch.setattr(models, "load_model", lambda *args, **kwargs: loads.append(args))
    for model_id in ("smollm2-135m-instruct", "gemma-3-270m"):
        runs, why = fim.can_run_live(model_id)
        assert not runs and why.startswith("Run live needs a FIM-trained model, e.g. a StarCoder2 or Qwen2.5-Coder GGUF")
        with pytest.raises(PlaygroundError, match="Run live needs a FIM-trained model"):
            fim.complete_middle(model_id, EXAMPLE)
    assert loads == []


def test_the_models_file_flag():
    specs = model_list.read_model_list(None, ["id=coder,role=base,gguf=/m/qwen2.5-coder.gguf,fim=true",
                                              "id=plain,role=base,hub=org/plain", "id=bad,role=base,hub=a/b,fim=maybe"])
    assert [(s.id, s.fim) for s in specs.specs] == [("coder", True), ("plain", False)]
    assert [(p.entry_id, p.field) for p in specs.problems] == [("bad", "fim")]
    assert all(not spec.fim for spec in models.REGISTRY.values())


def test_the_section_view_says_it_plainly():
    parts, psm, notes, button = fim_section.show("smollm2-135m-instruct", fim_section.DEFAULT_CODE)
    assert "Run live needs a FIM-trained model" in notes and "lecture&#x27;s notation" in notes
    assert button.interactive is False
    for part in ("fim-prefix", "fim-middle", "fim-suffix"):
        assert part in parts and part in psm
    assert "[mid]" in psm


def _fim_model(directory, model_id: str, stop_at_once: bool = False) -> str:
    """A local entry marked fim = true: tiny random weights, SmolLM2's tokenizer plus StarCoder's FIM
    tokens; `stop_at_once`: <fim_pad>'s (tied) embedding is 50 times the greedy first token's, so it
    outscores it and ends the middle at once."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tiny = models.load_model("tiny-random")
    tiny.model.save_pretrained(directory)
    tiny.tokenizer.save_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_middle>", "<fim_suffix>",
                                                                "<fim_pad>"]})
    model = AutoModelForCausalLM.from_pretrained(directory)
    model.resize_token_embeddings(len(tokenizer))
    if stop_at_once:
        wrapped = tokenizer_registry.HuggingFaceTokenizer(model_id, tokenizer, "FIM test tokenizer")
        prompt = fim.encode_psm(wrapped, fim.psm(EXAMPLE, fim.sentinels_for(wrapped))).prompt_ids
        embeddings = model.get_input_embeddings().weight
        with torch.no_grad():
            first = int(model(torch.tensor([prompt])).logits[0, -1].argmax())
            embeddings[tokenizer.convert_tokens_to_ids("<fim_pad>")] = 50 * embeddings[first]
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return f"id={model_id},role=base,path={directory},fim=true"


@pytest.fixture(scope="module")
def fim_model(tmp_path_factory):
    entries = [_fim_model(tmp_path_factory.mktemp("tiny-fim"), "tiny-fim"),
               _fim_model(tmp_path_factory.mktemp("tiny-fim-stops"), "tiny-fim-stops", stop_at_once=True)]
    models.configure_model_list("", entries)
    yield "tiny-fim"
    for model_id in ("tiny-fim", "tiny-fim-stops"):
        models._LOADED.pop(model_id, None)
        tokenizer_registry._CACHE.pop(model_id, None)
    models.configure_model_list("", ())


def test_a_fim_model_fills_in_the_middle_like_transformers_greedy(fim_model):
    assert fim.can_run_live(fim_model) == (True, "")
    _, _, notes, button = fim_section.show(fim_model, MARKED)
    assert button.interactive is True and "Run live needs" not in notes and "one token each" in notes
    completion = fim.complete_middle(fim_model, EXAMPLE, max_new_tokens=12)
    encoded = completion.encoded
    assert encoded.psm.sentinels.prefix == "<fim_prefix>" and encoded.psm.sentinels.own
    loaded = models.load_model(fim_model)
    own = fim.special_tokens(tokenizer_registry.get_tokenizer(fim_model))
    assert encoded.prompt_ids[0] == own["<fim_prefix>"] and encoded.prompt_ids[-1] == own["<fim_middle>"]
    stops = sorted({*loaded.eos_token_ids, *(own[t] for t in ("<fim_pad>", "<|endoftext|>", "<fim_prefix>",
                                                               "<fim_suffix>", "<fim_middle>"))})
    with torch.no_grad():
        out = loaded.model.generate(torch.tensor([encoded.prompt_ids]), max_new_tokens=12, do_sample=False,
                                    eos_token_id=stops, pad_token_id=0)
    expected = out[0, len(encoded.prompt_ids):].tolist()
    assert list(completion.ids) == expected
    if expected[-1] in stops:
        assert completion.stop == "end" and completion.middle == loaded.tokenizer.decode(expected[:-1])
    else:
        assert completion.stop == "max_tokens" and completion.middle == loaded.tokenizer.decode(expected)
    assert "filled in the middle" in fim_section.complete(fim_model, MARKED)


def test_a_fim_model_stops_at_its_end_of_middle_token(fim_model):
    completion = fim.complete_middle("tiny-fim-stops", EXAMPLE, max_new_tokens=12)
    pad = fim.special_tokens(tokenizer_registry.get_tokenizer("tiny-fim-stops"))["<fim_pad>"]
    assert (completion.ids, completion.stop, completion.stop_token, completion.middle) == ((pad,), "end", "<fim_pad>", "")
    assert "it ended the middle with &lt;fim_pad&gt;" in fim_section.complete("tiny-fim-stops", MARKED)
