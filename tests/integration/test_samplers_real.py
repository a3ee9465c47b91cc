"""The sampler chain's units equal transformers' processors on both packaged models' real next-token
logits (Gemma 3: 262,144 tokens; SmolLM2: 49,152), with the prompt as the history (issue 25.3)."""

from __future__ import annotations

import pytest

from playground import decoding, models
from tests.unit.test_samplers import CASES, _ours, _same, _theirs

PROMPT = "The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is"


@pytest.fixture(scope="module", params=["gemma-3-270m", "smollm2-135m-instruct"])
def distribution(request):
    loaded = models.load_model(request.param)
    ids = decoding.prompt_ids(loaded, PROMPT)
    return decoding.ranked_after(loaded, ids).logits, ids


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_each_unit_equals_transformers_on_real_logits(distribution, name, ours, theirs):
    logits, ids = distribution
    _same(_ours(ours(), logits, ids), _theirs(theirs(), logits, ids))
