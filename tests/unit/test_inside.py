"""The "Inside the model" backend on the tiny random model (and a tiny random Gemma 3 built here).

Attention rows sum to 1 and are zero above the diagonal; query heads read the key/value head
transformers' `repeat_kv` gives them (recomputed from the weights); the logit lens's last layer is
the model's next-token distribution; the KV formula equals a real cache (sliding windows included);
the parameter formula equals the counted weights and GPT-3's 175B within 1%; teacher forcing equals
the `score` command; one pass serves every view (forward calls counted); the shared model keeps
SDPA; the charts escape tokens and leave the masked triangle empty; the CLI commands.
"""

from __future__ import annotations

import html

import re

import base64
import json
import threading

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from playground import chat, decoding
from playground.__main__ import main as cli_main
from playground.errors import PlaygroundError
from playground.html import inside as text_views
from playground.inside import arch, attention, forcing, kv, lens, passes
from playground.models import REGISTRY, LoadedModel, load_model
from playground.plots import inside as plots

MODEL = "tiny-random"
TEXT = "The cat sat on the mat. The dog sat on the log."


@pytest.fixture
def fresh():
    loaded = load_model(MODEL)
    passes.forget_passes(loaded)
    return loaded


def _decode(z: dict) -> np.ndarray:
    shape = tuple(int(n) for n in z["shape"].split(","))
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.float32).reshape(shape)


def test_attention_rows_sum_to_one_and_nothing_above_the_diagonal(fresh):
    result = passes.inside_pass(MODEL, TEXT)
    weights = result.attentions
    layers, heads, size, _ = weights.shape
    assert (layers, heads) == (2, 4) and size == result.tokens == len(result.ids)
    assert torch.allclose(weights.sum(-1), torch.ones(layers, heads, size), atol=1e-5)
    assert torch.triu(weights, diagonal=1).abs().max().item() == 0.0
    assert (weights[..., 0, 0] == 1).all()  # the first token can only look at itself


def test_kv_groups_follow_repeat_kv():
    assert attention.kv_groups(9, 3) == ((0, 1, 2), (3, 4, 5), (6, 7, 8))
    assert attention.kv_groups(4, 1) == ((0, 1, 2, 3),)
    assert attention.kv_groups(4, 4) == ((0,), (1,), (2,), (3,))
    assert [attention.kv_head_of(h, 9, 3) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(PlaygroundError):
        attention.kv_groups(9, 2)


@torch.inference_mode()
def test_each_head_reads_the_key_value_head_it_is_grouped_with(fresh):
    """Layer 0's weights recomputed from the weights: head h uses key head h // group_size (and not h % kv)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    result = passes.inside_pass(MODEL, TEXT)
    model = fresh.model.model
    block = model.layers[0]
    x = block.input_layernorm(result.hidden[0][None])
    size, hd = result.tokens, block.self_attn.head_dim
    q = block.self_attn.q_proj(x).view(1, size, -1, hd).transpose(1, 2)
    k = block.self_attn.k_proj(x).view(1, size, -1, hd).transpose(1, 2)
    cos, sin = model.rotary_emb(x, torch.arange(size)[None])
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    causal = torch.full((size, size), float("-inf")).triu(1)
    view = attention.layer_heads(result, 0)
    assert view.groups == ((0, 1), (2, 3))
    for kv_head, group in enumerate(view.groups):
        for head in group:
            mine = torch.softmax(q[0, head] @ k[0, kv_head].T * hd**-0.5 + causal, dim=-1)
            assert torch.allclose(mine, result.attentions[0, head], atol=1e-5)
            other = torch.softmax(q[0, head] @ k[0, 1 - kv_head].T * hd**-0.5 + causal, dim=-1)
            assert not torch.allclose(other, result.attentions[0, head], atol=1e-3)
    amap = attention.attention_map(result, 1, 3)
    assert (amap.kv_head, amap.shares_with) == (1, (2, 3))


def test_logit_lens_last_layer_is_the_next_token_distribution(fresh):
    grid = lens.logit_lens(MODEL, TEXT, positions=3)
    result = passes.cached_pass(MODEL, TEXT)
    assert grid.rows[0] == "embeddings" and grid.rows[-1] == "layer 2 (output)" and len(grid.rows) == 3
    assert grid.positions == tuple(range(result.tokens - 3, result.tokens))
    ranked = decoding.ranked_after(fresh, list(result.ids))
    probs = torch.softmax(ranked.logits.float(), dim=-1)
    best = probs.topk(lens.TOP_K)
    assert grid.top_ids[-1, -1].tolist() == best.indices.tolist()
    assert torch.allclose(grid.top_probs[-1, -1], best.values, rtol=1e-3, atol=1e-7)
    # the last row at every position is the pass's own output there
    assert torch.equal(grid.top_ids[-1, :, 0], result.top_ids[list(grid.positions), 0])
    assert grid.actual_next[-1] is None and grid.actual_next[0] == result.labels[grid.positions[0] + 1]


def test_kv_bytes_formula_equals_the_real_cache(fresh):
    result = passes.inside_pass(MODEL, TEXT)
    report = kv.kv_from_pass(result)
    shape = report.shape
    assert shape.per_token_bytes == 2 * 2 * 2 * 16 * 4  # layers x (K, V) x kv heads x head size x fp32
    assert report.measured_bytes == report.formula_bytes == result.tokens * shape.per_token_bytes
    assert shape.mha_per_token_bytes == 2 * shape.per_token_bytes and shape.saving == 2
    measured = kv.kv_report(MODEL, 300)
    assert measured.matches and measured.measured_bytes == 300 * shape.per_token_bytes
    assert kv.kv_report(MODEL, 300, measure=False).measured_bytes is None
    with pytest.raises(PlaygroundError):
        kv.kv_report(MODEL, 0)


TINY_GEMMA = dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, sliding_window=5, max_position_embeddings=64,
                  layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"])


@pytest.fixture(scope="module")
def tiny_gemma():
    config = AutoConfig.for_model("gemma3_text", **TINY_GEMMA)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    return LoadedModel(spec=REGISTRY[MODEL], model=model, tokenizer=None, device=torch.device("cpu"),
                       dtype=torch.float32, loaded_from="random", load_seconds=0.0, eos_token_ids=(1,))


@torch.inference_mode()
def test_sliding_window_layers_keep_window_minus_one_tokens(tiny_gemma):
    shape = kv.kv_shape(tiny_gemma)
    assert shape.sliding_layers == 3 and shape.window == 5
    for tokens in (3, 4, 5, 12):
        cache = DynamicCache(config=tiny_gemma.model.config)
        tiny_gemma.model(input_ids=torch.arange(tokens)[None] + 3, cache=cache, use_cache=True)
        measured, layer_tokens = passes.cache_size(cache)
        assert layer_tokens == shape.layer_tokens(tokens)
        assert measured == shape.bytes_at(tokens)
    assert shape.bytes_at(12) < 12 * shape.per_token_bytes  # past the window only the full layer grows


def test_gemma_shape_formula_equals_its_counted_weights(tiny_gemma):
    card = arch.card_of(tiny_gemma)
    assert card.formula_exact and card.counted.other == 0
    assert card.counted == card.formula  # group by group
    assert card.sliding_layers == (0, 1, 2) and card.sliding_window == 5 and card.group_size == 2


def test_formula_equals_the_counted_total_and_gpt3_within_one_percent():
    card = arch.architecture(MODEL)
    assert card.formula_exact and card.counted == card.formula and card.counted.other == 0
    assert card.counted.total == sum(p.numel() for p in load_model(MODEL).model.parameters())
    table = {row.name: row for row in arch.lecture_table()}
    assert abs(table["GPT-3"].formula.total / 175e9 - 1) <= 0.01 and table["GPT-3"].check.startswith("✓")
    assert table["Mixtral 8x7B"].formula.active < table["Mixtral 8x7B"].formula.total
    assert {"GPT-1", "Mistral 7B", "Llama 3 8B", "Llama 3 70B", "Llama 3 405B"} <= set(table)
    assert arch.model_row(card).check.startswith("✓")
    assert all(abs(row.ratio - 1) < 0.05 for row in table.values())  # every row near its paper's figure


def test_an_unknown_architecture_is_named_not_guessed():
    with pytest.raises(PlaygroundError, match="does not cover model type 'gpt2'"):
        arch.shape_of(AutoConfig.for_model("gpt2"))


def test_teacher_forcing_equals_the_score_command(fresh):
    forced = forcing.teacher_forcing(passes.inside_pass(MODEL, TEXT))
    scored = chat.score_text(MODEL, TEXT)
    assert [t.id for t in forced.tokens] == [t.id for t in scored.tokens]
    assert [t.logprob for t in forced.tokens] == pytest.approx([t.logprob for t in scored.tokens], abs=1e-4)
    assert forced.total_logprob == pytest.approx(sum(t.logprob for t in scored.tokens), abs=1e-3)
    assert forced.total_bits == pytest.approx(scored.total_bits, abs=1e-3)
    assert len(forced.context) == 1 and forced.context[0] == passes.inside_pass(MODEL, TEXT).labels[0]


def test_one_pass_serves_every_view_and_switching_never_runs_the_model(fresh):
    from playground.ui import inside_tab

    before = fresh.forward_calls
    out = inside_tab.look_inside(TEXT, MODEL, 0, 0)
    assert fresh.forward_calls == before + 1
    looked = out[0]
    for layer in range(2):
        for head in range(4):
            inside_tab.show_attention(looked, layer, head)
    inside_tab.look_inside(TEXT, MODEL, 1, 2)  # the same text again: cached
    assert fresh.forward_calls == before + 1
    inside_tab.show_lens(looked, 4)  # the output layer over the cached hidden states: one call
    inside_tab.show_lens(looked, 4)
    assert fresh.forward_calls == before + 2


def test_the_shared_model_keeps_sdpa_and_the_twin_shares_its_weights(fresh):
    passes.inside_pass(MODEL, TEXT)
    twin = passes.eager_twin(fresh).model
    assert fresh.model.config._attn_implementation == "sdpa"
    assert twin.config._attn_implementation == "eager"
    shared = {p.data_ptr() for p in fresh.model.parameters()}
    assert {p.data_ptr() for p in twin.parameters()} == shared


def test_concurrent_passes_and_sdpa_calls_agree(fresh):
    """The tab's pass and another tab's plain calls at once: each gets its own implementation's result."""
    ids = passes.text_ids(fresh, TEXT)[0]
    expected = decoding.forward(fresh, torch.tensor([ids]))[0][0]
    errors = []

    def plain():
        for _ in range(5):
            got = decoding.forward(fresh, torch.tensor([ids]))[0][0]
            if not torch.allclose(got, expected, atol=1e-5):
                errors.append("sdpa call changed")

    def inside():
        for i in range(5):
            result = passes.run_pass(fresh, TEXT + " " * i)
            if result.attentions.shape[0] != 2:
                errors.append("no attentions")

    threads = [threading.Thread(target=plain), threading.Thread(target=inside)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_messages_for_bad_input(fresh):
    with pytest.raises(PlaygroundError, match="Type a text"):
        passes.inside_pass(MODEL, "")
    with pytest.raises(PlaygroundError, match="at most 128 tokens"):
        passes.inside_pass(MODEL, "word " * 400)
    result = passes.inside_pass(MODEL, TEXT)
    with pytest.raises(PlaygroundError, match="Layer 5 does not exist"):
        attention.attention_map(result, 5, 0)
    with pytest.raises(PlaygroundError, match="Head 4 does not exist"):
        attention.attention_map(result, 0, 4)
    assert passes.cached_pass(MODEL, "never run") is None


def test_ui_handlers_give_messages_not_errors(fresh):
    from playground.ui import inside_tab
    from tests.conftest import handler_outcome

    assert "Look inside" in handler_outcome(inside_tab.show_attention, None, 0, 0)
    assert "Look inside" in handler_outcome(inside_tab.show_lens, None, 4)
    assert "no longer cached" in handler_outcome(inside_tab.show_attention, (MODEL, "not run"), 0, 0)
    assert "Pick a model" in handler_outcome(inside_tab.look_inside, TEXT, None, 0, 0)
    assert "must be a number" in handler_outcome(inside_tab.look_inside, TEXT, MODEL, "abc", 0)
    assert handler_outcome(inside_tab.look_inside, TEXT, MODEL, float("inf"), -3) == "ok"  # clamped


def test_charts_leave_the_mask_empty_and_escape_tokens(fresh):
    result = passes.inside_pass(MODEL, "<b>bold</b> & <script>x</script>")
    spec = plots.attention_spec(attention.attention_map(result, 0, 1))
    trace = spec["data"][0]
    z = _decode(trace["z"])
    assert np.isnan(z[np.triu_indices(result.tokens, 1)]).all()
    assert not np.isnan(z[np.tril_indices(result.tokens)]).any()
    assert "%{x}" in trace["hovertemplate"] and "%{y}" in trace["hovertemplate"] and "%{z" in trace["hovertemplate"]
    text = json.dumps(spec, allow_nan=False)
    assert "<script>" not in text and "<b>bold" not in text and "&lt;" in text
    heads = plots.heads_spec(attention.layer_heads(result, 0))
    assert len(heads["data"]) == 4 and "sharing one key/value head" in heads["layout"]["title"]["text"]
    assert [t["name"] for t in heads["data"]] == ["head 0", "head 1", "head 2", "head 3"]
    grid = lens.logit_lens(MODEL, "<b>bold</b> & <script>x</script>", 2)
    assert "<script>" not in json.dumps(plots.lens_spec(grid))
    forced = forcing.teacher_forcing(result)
    assert "<script>" not in json.dumps(plots.forcing_spec(forced))
    assert "<script>" not in text_views.forcing_markdown(forced)
    kv_spec = plots.kv_spec(kv.kv_from_pass(result))
    assert [t["name"] for t in kv_spec["data"]][-1] == "measured: the real cache"


def test_sliding_layers_are_marked_in_the_chart():
    layer = attention.LayerInfo(3, "sliding_attention", 4)
    weights = torch.tril(torch.ones(6, 6)) / torch.arange(1, 7)[:, None]
    amap = attention.AttentionMap(MODEL, layer, 0, 0, (0,), tuple("abcdef"), weights)
    z = _decode(plots.attention_spec(amap)["data"][0]["z"])
    assert np.isnan(z[5, 0]) and np.isnan(z[4, 0]) and not np.isnan(z[5, 2])  # outside the window of 4: empty
    assert not amap.visible(5, 1) and amap.visible(5, 2)
    assert "sliding window of 4" in plots.attention_spec(amap)["layout"]["title"]["text"]
    # the note in lines of at most NOTE_CHARS (on one line it was cut on both sides), the top margin grown for them
    wide = attention.AttentionMap(MODEL, attention.LayerInfo(3, "sliding_attention", 512), 0, 0, (0,),
                                  tuple("abcdef"), weights)
    spec = plots.attention_spec(wide)
    lines = re.findall(r"<sup>(.*?)</sup>", spec["layout"]["title"]["text"])
    assert len(lines) >= 2 and all(len(html.unescape(line)) <= plots.NOTE_CHARS for line in lines), lines
    assert spec["layout"]["margin"]["t"] == 80 + 30 * len(lines)


def test_card_and_table_text():
    card = arch.architecture(MODEL)
    text = text_views.card_markdown(card)
    assert "grouped-query attention, 2 query heads share each key/value head" in text
    assert f"**{card.counted.total:,}**" in text and "✓" in text
    rows = text_views.table_rows([arch.model_row(card), *arch.lecture_table()])
    assert rows[0][0] == MODEL and rows[3][0] == "GPT-3" and rows[3][-1].startswith("✓")
    assert len(rows[0]) == len(text_views.TABLE_HEADERS)
    assert text_views.count(174_604_259_328) == "174.6B" and text_views.count(134_515_008) == "134.5M"
    assert len(text_views.kv_rows(kv.lecture_shapes())[0]) == len(text_views.KV_HEADERS)


def test_cli_commands(capsys, fresh):
    assert cli_main(["--json", "arch", "--model", MODEL]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["formula_exact"] and out["counted"]["total"] == out["formula"]["total"]
    assert out["table"][3]["name"] == "GPT-3" and out["table"][3]["check"].startswith("✓")

    assert cli_main(["--json", "attention", "--model", MODEL, "--layer", "1", "--head", "3", TEXT]) == 0
    out = json.loads(capsys.readouterr().out)
    weights = out["heads"][0]["weights"]
    assert out["kv_groups"] == [[2, 3]] and len(weights) == len(out["tokens"])
    assert all(abs(sum(row) - 1) < 1e-3 for row in weights) and weights[0][1:] == [0.0] * (len(weights) - 1)

    assert cli_main(["--json", "attention", "--model", MODEL, "--layer", "0", TEXT]) == 0
    assert [h["head"] for h in json.loads(capsys.readouterr().out)["heads"]] == [0, 1, 2, 3]

    assert cli_main(["--json", "logit-lens", "--model", MODEL, "--positions", "2", TEXT]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["rows"]) == 3 and len(out["rows"][0]["positions"]) == 2

    assert cli_main(["--json", "kv-cache", "--model", MODEL, "--tokens", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["matches"] and out["measured_bytes"] == 50 * out["per_token_bytes"] and out["gqa_saving"] == 2

    assert cli_main(["attention", "--model", MODEL, "--layer", "7", TEXT]) == 2
    assert "Layer 7 does not exist" in capsys.readouterr().err


def test_the_capacity_calculator_is_two_bits_per_parameter():
    """The lecture's "up to 2 bits per parameter": bytes = parameters x 2 / 8, for the lecture's
    models and, on the card, the loaded model's counted parameters first."""
    from playground.html.inside import capacity_markdown
    from playground.inside import arch

    rows = {row.name: row for row in arch.capacities()}
    assert rows["GPT-3"].bytes == 175e9 * 2 / 8 and rows["Llama 3 405B"].bytes == 405e9 / 4
    card = arch.architecture("tiny-random")
    mine = arch.capacities(card)[0]
    assert mine.name == "tiny-random" and mine.bytes == card.counted.total / 4
    text = capacity_markdown(card)
    assert "up to 2 bits per parameter" in text and "arXiv:2404.05405" in text
    assert text.index("tiny-random") < text.index("GPT-1") < text.index("Llama 3 405B")
