"""The "Inside the model" tab over HTTP: `/inside_view` runs the one pass and answers every view,
`/inside_attention` redraws a layer and head from the session's pass, `/inside_lens` reads the lens.

The numbers are checked against the backend run here, in the test process (the same weights).
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from playground import chat

MODEL = "smollm2-135m-instruct"
TEXT = "The capital of France is Paris. The capital of Germany is"


def _spec(plot_output) -> dict:
    plot = plot_output["plot"] if isinstance(plot_output, dict) else plot_output
    return json.loads(plot) if isinstance(plot, str) else plot


def _z(trace) -> np.ndarray:
    z = trace["z"]
    shape = tuple(int(n) for n in z["shape"].split(","))
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.float32).reshape(shape)


def test_parameters_are_named(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = {endpoint: [p["parameter_name"] for p in api[endpoint]["parameters"]]
             for endpoint in ("/inside_view", "/inside_attention", "/inside_lens")}
    assert names == {"/inside_view": ["text", "model_id", "layer", "head"],
                     "/inside_attention": ["layer", "head"], "/inside_lens": ["positions"]}


def test_view_then_switch_then_lens(app_url):
    client = Client(app_url, verbose=False)  # its own session: the views read that session's pass
    (card, table, layer, head, heatmap, heads, forcing_plot, forcing_note, kv_note,
     kv_plot) = client.predict(TEXT, MODEL, 2, 4, api_name="/inside_view")
    assert "134,515,008" in card and "✓ the formula gives exactly the counted total" in card
    rows = table["data"]
    assert rows[0][0] == MODEL and rows[0][-1].startswith("✓")
    gpt3 = next(r for r in rows if r[0] == "GPT-3")
    assert gpt3[-1].startswith("✓ within 1%") and gpt3[7].startswith("174.6B")
    spec = _spec(heatmap)
    assert "Layer 2, head 4" in spec["layout"]["title"]["text"]
    z = _z(spec["data"][0])
    assert np.isnan(z[np.triu_indices(len(z), 1)]).all()
    assert np.allclose(np.nansum(z, axis=1), 1, atol=2e-3)
    assert len(_spec(heads)["data"]) == 9
    scored = chat.score_text(MODEL, TEXT)
    assert f"{sum(t.logprob for t in scored.tokens):.4f}"[:-1] in forcing_note
    assert "✓ equal" in kv_note and "saves **3×**" in kv_note

    heatmap2, heads2 = client.predict(5, 7, api_name="/inside_attention")
    spec2 = _spec(heatmap2)
    assert "Layer 5, head 7" in spec2["layout"]["title"]["text"]
    assert not np.array_equal(_z(spec2["data"][0]), z, equal_nan=True)
    assert "Layer 5" in _spec(heads2)["layout"]["title"]["text"]

    lens_plot = client.predict(4, api_name="/inside_lens")
    lens = _spec(lens_plot)["data"][0]
    assert len(lens["y"]) == 31 and len(lens["x"]) == 4
    assert lens["text"][-1][-1].startswith("␣Berlin")


def test_switching_before_looking_is_a_message(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="Look inside"):
        client.predict(0, 0, api_name="/inside_attention")
    with pytest.raises(AppError, match="at most 128 tokens"):
        client.predict("word " * 300, MODEL, 0, 0, api_name="/inside_view")
