"""The "Inside the model" views on both packaged models.

The parameter formula gives each model's counted total exactly (group by group); the card reads the
real configuration (Gemma 3's 15 sliding-window layers, SmolLM2's 3 key/value heads); attention
rows sum to 1 with nothing above the diagonal; the logit lens's last layer is the model's own
next-token distribution; teacher forcing equals `score` token for token; the KV formula equals the
real cache after the pass and after a prompt longer than Gemma's window; one pass serves all views
and the shared model keeps SDPA.
"""

from __future__ import annotations

import pytest
import torch

from playground import chat, decoding
from playground.inside import arch, attention, forcing, kv, lens, passes
from playground.models import load_model

MODELS = ["gemma-3-270m", "smollm2-135m-instruct"]
TEXT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(params=MODELS)
def model_id(request):
    passes.forget_passes(load_model(request.param))
    return request.param


def test_formula_equals_the_counted_weights(model_id):
    card = arch.architecture(model_id)
    assert card.formula_exact and card.counted == card.formula and card.counted.other == 0
    assert card.counted.total == sum(p.numel() for p in load_model(model_id).model.parameters())
    assert arch.model_row(card).check.startswith("✓")


def test_the_cards_read_the_real_configuration():
    gemma, smol = arch.architecture("gemma-3-270m"), arch.architecture("smollm2-135m-instruct")
    assert (gemma.layers, gemma.heads, gemma.kv_heads, gemma.head_dim, gemma.vocab) == (18, 4, 1, 256, 262144)
    assert gemma.sliding_layers == (0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16) and gemma.sliding_window == 512
    assert gemma.rope_theta == {"full_attention": 1e6, "sliding_attention": 1e4} and gemma.tied_embeddings
    assert (smol.layers, smol.heads, smol.kv_heads, smol.group_size, smol.ffn) == (30, 9, 3, 3, 1536)
    assert smol.sliding_layers == () and smol.rope_theta == {"all": 1e5}
    assert round(gemma.counted.total / 1e6) == 268 and round(smol.counted.total / 1e6) == 135


def test_attention_rows_and_the_causal_triangle(model_id):
    result = passes.inside_pass(model_id, TEXT)
    weights = result.attentions
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-4)
    assert torch.triu(weights, diagonal=1).abs().max().item() == 0.0
    config = load_model(model_id).model.config
    for layer in range(result.layers):
        info = attention.layer_info(model_id, layer)
        assert info.sliding == (model_id == "gemma-3-270m" and layer % 6 != 5)
    heads = attention.layer_heads(result, 0)
    assert len(heads.groups) == config.num_key_value_heads
    assert sum(len(g) for g in heads.groups) == config.num_attention_heads


def test_logit_lens_last_layer_is_the_real_distribution(model_id):
    loaded = load_model(model_id)
    grid = lens.logit_lens(model_id, TEXT, positions=4)
    result = passes.cached_pass(model_id, TEXT)
    probs = torch.softmax(decoding.ranked_after(loaded, list(result.ids)).logits.float(), dim=-1)
    best = probs.topk(lens.TOP_K)
    assert grid.top_ids[-1, -1].tolist() == best.indices.tolist()
    assert torch.allclose(grid.top_probs[-1, -1], best.values, atol=1e-3)
    assert grid.top_labels[-1][-1][0] in ("␣Berlin",)  # the model knows it
    assert len(grid.rows) == result.layers + 1


def test_teacher_forcing_equals_the_score_command(model_id):
    forced = forcing.teacher_forcing(passes.inside_pass(model_id, TEXT))
    scored = chat.score_text(model_id, TEXT)
    assert [t.id for t in forced.tokens] == [t.id for t in scored.tokens]
    # eager against SDPA attention: the same numbers up to float rounding
    assert [t.logprob for t in forced.tokens] == pytest.approx([t.logprob for t in scored.tokens], abs=2e-3)
    assert forced.total_bits == pytest.approx(scored.total_bits, abs=1e-2)


def test_kv_formula_equals_the_real_cache(model_id):
    report = kv.kv_from_pass(passes.inside_pass(model_id, TEXT))
    assert report.matches and report.measured_bytes == report.tokens * report.shape.per_token_bytes
    long = kv.kv_report(model_id, 600)  # past Gemma's window of 512
    assert long.matches
    if model_id == "gemma-3-270m":
        assert long.measured_bytes < 600 * long.shape.per_token_bytes
        assert set(long.measured_layer_tokens) == {511, 600} and long.shape.saving == 4
    else:
        assert long.measured_bytes == 600 * long.shape.per_token_bytes and long.shape.saving == 3


def test_one_pass_serves_every_view_and_the_model_keeps_sdpa(model_id):
    from playground.ui import inside_tab

    loaded = load_model(model_id)
    before = loaded.forward_calls
    looked = inside_tab.look_inside(TEXT, model_id, 0, 0)[0]
    for layer in (0, 3, 5):
        for head in range(3):
            inside_tab.show_attention(looked, layer, head)
    assert loaded.forward_calls == before + 1
    assert loaded.model.config._attn_implementation == "sdpa"
    assert passes.eager_twin(loaded).model.config._attn_implementation == "eager"
