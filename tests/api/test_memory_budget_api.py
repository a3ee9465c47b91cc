"""An app over its memory budget (`PLAYGROUND_MEMORY_BUDGET_MB=1`: any process is over it): its
caches are emptied, a new heavy request is refused in words, and the light ones are still served
with the same numbers (`playground.memory_budget`)."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.conftest import start_app, stop_app

MODEL = "smollm2-135m-instruct"
RULES = (1.0, 0, 1.0, 0.0, "transformers")


@pytest.fixture(scope="module")
def short_app():
    url, process = start_app({"PLAYGROUND_MEMORY_BUDGET_MB": "1"}, log_name="memory-budget-app.log")
    yield url
    stop_app(process)


def test_over_the_budget_heavy_requests_are_refused_in_words_and_light_ones_served(short_app):
    client = Client(short_app, verbose=False)
    shown = client.predict(MODEL, False, "The capital of France is", 10, False, *RULES,
                           api_name="/sampling_distribution")
    with pytest.raises(AppError) as refused:
        client.predict(5, "", 10, False, *RULES, 1, api_name="/sampling_generate")
    message = str(refused.value)
    assert "short of memory" in message and "budget 1 MB" in message and "try again" in message, message
    # the distribution again (its cache was emptied by the refusal's relief): the same numbers
    again = client.predict(MODEL, False, "The capital of France is", 10, False, *RULES,
                           api_name="/sampling_distribution")
    assert again[-1]["tokens"] == shown[-1]["tokens"]
