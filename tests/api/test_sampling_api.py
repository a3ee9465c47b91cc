"""The Sampling lab over HTTP with gradio_client: distribution, re-filter, token by token, samples."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client

MODEL = "smollm2-135m-instruct"
PROMPT = "The capital of France is"
RANDOM = dict(temperature=1.0, top_k=1000, top_p=1.0, min_p=0.0, order="transformers")


@pytest.fixture
def session(app_url):
    """A fresh client: its own gradio session, so its own lab state."""
    return Client(app_url, verbose=False)


def _details(outputs):
    *_, details = outputs
    return details if isinstance(details, dict) else json.loads(details)


def test_distribution_then_refilter(session):
    out = session.predict(MODEL, False, PROMPT, 10, False, *RANDOM.values(), api_name="/sampling_distribution")
    details = _details(out)
    assert details["model"] == MODEL
    tokens = details["tokens"]
    assert len(tokens) == 10 and " Paris" in [t["text"] for t in tokens[:3]]
    assert details["kept_count"] == 1000
    plot = out[0]
    assert plot["type"] == "plotly" and "Paris" in plot["plot"]

    nucleus = session.predict(10, False, 1.0, 1000, 0.5, 0.0, "transformers", api_name="/sampling_refilter")
    cut = _details(nucleus)
    assert cut["kept_count"] < 1000
    assert [t["raw_prob"] for t in cut["tokens"]] == [t["raw_prob"] for t in tokens]  # same logits
    assert any(not t["kept"] for t in cut["tokens"])
    assert abs(sum(t["prob"] for t in cut["tokens"] if t["kept"]) - 1) < 1e-3 or cut["kept_count"] > 10
    greedy = _details(session.predict(10, True, 0.0, 1000, 1.0, 0.0, "transformers", api_name="/sampling_refilter"))
    assert greedy["kept_count"] == 1 and greedy["tokens"][0]["prob"] == pytest.approx(1.0)


def test_token_by_token_append_undo_generate(session):
    session.predict(MODEL, False, PROMPT, 10, False, *RANDOM.values(), api_name="/sampling_distribution")
    first = _details(session.predict(10, False, *RANDOM.values(), 5, api_name="/sampling_next_token"))
    assert len(first["generated"]) == 1
    paris = 7042  # " Paris" in SmolLM2's vocabulary
    appended = _details(session.predict(paris, 10, False, *RANDOM.values(), api_name="/sampling_append_token"))
    assert [g["chosen"] for g in appended["generated"]] == ["sampled", "forced"]
    assert appended["generated"][1]["id"] == paris
    undone = _details(session.predict(10, False, *RANDOM.values(), api_name="/sampling_undo"))
    assert len(undone["generated"]) == 1
    second = _details(session.predict(10, False, *RANDOM.values(), 5, api_name="/sampling_next_token"))
    session.predict(10, False, *RANDOM.values(), api_name="/sampling_undo")
    again = _details(session.predict(10, False, *RANDOM.values(), 5, api_name="/sampling_next_token"))
    # the draw at a position depends only on seed, rules and distribution: undo + next repeats it
    assert again["generated"][1]["id"] == second["generated"][1]["id"]
    generated = _details(session.predict(6, "", 10, False, *RANDOM.values(), 5, api_name="/sampling_generate"))
    assert len(generated["generated"]) <= 8 and generated["stop"]
    for record in generated["generated"]:
        assert record["rank"] >= 1 and 0 <= record["prob"] <= 1


def test_same_seed_same_tokens_over_the_api(app_url):
    runs = []
    for _ in range(2):
        client = Client(app_url, verbose=False)
        client.predict(MODEL, False, "Once upon a time", 10, False, *RANDOM.values(), api_name="/sampling_distribution")
        out = client.predict(8, "", 10, False, 1.2, 0, 1.0, 0.0, "transformers", 123, api_name="/sampling_generate")
        runs.append([g["id"] for g in _details(out)["generated"]])
    assert runs[0] == runs[1] and len(runs[0]) >= 1


def test_k_samples_histogram(session):
    session.predict(MODEL, False, PROMPT, 10, False, *RANDOM.values(), api_name="/sampling_distribution")
    html, plot, summary = session.predict(6, 3, "", 10, 1.0, 3, 1.0, 0.0, "transformers", 9,
                                          api_name="/sampling_samples")
    summary = summary if isinstance(summary, dict) else json.loads(summary)
    assert summary["finished"] and len(summary["samples"]) == 6
    assert sum(summary["first_token_counts"].values()) == 6
    assert len(summary["first_token_counts"]) <= 3  # top-k 3: only three possible first tokens
    assert plot["type"] == "plotly" and "gen-sample" in html


def test_errors_are_messages(session):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Show a distribution first"):
        session.predict(10, False, *RANDOM.values(), 1, api_name="/sampling_next_token")
    with pytest.raises(AppError, match="minimum"):  # gradio checks the slider range itself
        session.predict(MODEL, False, PROMPT, 10, False, 1.0, 0, 0.0, 0.0, "transformers",
                        api_name="/sampling_distribution")
