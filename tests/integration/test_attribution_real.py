"""Prompt attribution on both packaged models, on a short prompt.

The target is the lab's most probable next token with the lab's probability; occlusion's score of
the last token equals re-running the model without it; integrated gradients report the completeness
error as sum(scores) - (f(input) - f(baseline)), f(baseline) the model's own on the neutral tokens;
the attention row is labelled not an attribution; each method gives one finite score per text token.
"""

from __future__ import annotations

import math

import pytest
import torch

from playground import attribution, decoding
from playground.models import load_model

MODELS = ["gemma-3-270m", "smollm2-135m-instruct"]
TEXT = "The capital of France is"


@pytest.mark.parametrize("model_id", MODELS)
def test_every_method_on_a_packaged_model(model_id):
    loaded = load_model(model_id)
    result = attribution.attribute(model_id, TEXT, steps=8)
    lab = decoding.next_token_distribution(model_id, TEXT)
    assert list(lab.input_ids) == [t.id for t in result.tokens]
    assert result.target_id == int(lab.probs.argmax())
    assert result.target_prob == pytest.approx(float(lab.probs.max()), abs=1e-4)

    start, own = attribution.prompt_ids(loaded, TEXT)
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([start + own[:-1]])).logits[0, -1].float()
    without_last = float(torch.log_softmax(logits, -1)[result.target_id])
    removed = result.method("occlusion-removed")
    assert removed.scores[-1] == pytest.approx(result.target_logprob - without_last, abs=1e-3)

    ig = result.method("integrated-gradients")
    neutral = [attribution.neutral_token(loaded.tokenizer)] * len(own)
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([start + neutral])).logits[0, -1].float()
    assert ig.f_baseline == pytest.approx(float(torch.log_softmax(logits, -1)[result.target_id]), abs=1e-2)
    assert ig.completeness_error == pytest.approx(ig.total - (ig.f_input - ig.f_baseline), abs=1e-3)
    assert ig.f_input == pytest.approx(result.target_logprob, abs=1e-3)
    assert not result.method("attention").is_attribution
    for row in result.methods:
        assert row.scores[: len(start)] == (None,) * len(start)
        assert all(math.isfinite(v) for v in row.scores[len(start):]), row.key
