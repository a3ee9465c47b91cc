"""Faults under load, against a real app: real `MemoryError`s while students share batched forwards.

The app runs with `PLAYGROUND_FAULT_INJECTION=forward:every=11,kind=memory`: every 11th model call
of the server (a batched forward of several sessions is one call) raises Python's own
`MemoryError`. Clean results are computed in this process, on the same model, without faults.

1. Exact faults mid-stream. Alone on the server, the model calls can be counted: fresh
   distributions (one model call each) on a probe session until one fails put the next fault
   exactly 11 calls ahead (`sync`); a few more (`pad`) place it in the middle of Generate N, K
   samples, a beam search or a side-by-side stream. The request gets the out-of-memory message;
   the session goes on correctly (Generate N: the tokens so far intact, the greedy continuation
   that of a clean run; the others: the same request again gives the clean result).
2. Six sessions in threads (heavy requests 4 at once, so decode steps and next-token requests
   share forwards): distributions, next tokens, Generate N, K samples and beam searches, each
   retried after an out-of-memory message (Generate N goes on from the tokens it kept). Every
   session's results equal the clean ones: tokens exactly, probabilities within 1e-4.

Each test ends by checking the server still serves with model calls (a fresh distribution and a
next token), and no request ever gets the internal-error text.
"""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from tests.api.test_faults import _json, attempt, expect_oom, until_ok
from tests.conftest import start_app, stop_app

MODEL = "smollm2-135m-instruct"
BASE = "gemma-3-270m"  # the side-by-side tab's base model (its dropdown offers base models only)
EVERY = 11
GREEDY = (0.0, 0, 1.0, 0.0, "transformers")
HOT = (1.0, 20, 1.0, 0.0, "transformers")  # seeded sampling, top-k 20: away from knife-edge draws
SESSIONS = 6
SUBJECTS = ["rivers", "the moon", "tea", "chess", "volcanoes", "honey"]  # 10 greedy tokens, no EOS


@pytest.fixture(scope="module")
def hall_app():
    url, process = start_app({"PLAYGROUND_FAULT_INJECTION": f"forward:every={EVERY},kind=memory",
                              "PLAYGROUND_HEAVY_CONCURRENCY": "4", "PLAYGROUND_PLOT_INTERVAL": "0"},
                             log_name="faults-under-load-app.log")
    yield url
    stop_app(process)


@pytest.fixture(scope="module")
def loaded():
    from playground.models import load_model

    return load_model(MODEL)


# -- clean results, computed here ---------------------------------------------------------------


def clean_tokens(loaded, prompt: str, n: int, rules=GREEDY, seed: int = 1) -> list[int]:
    from playground import decoding, generation
    from playground.ui.controls import settings_from_values

    ids = decoding.prompt_ids(loaded, prompt)
    tokens = generation.generate(loaded, ids, settings_from_values(*rules), n, seed=seed).token_ids
    assert len(tokens) == n, "the clean run ended early (an end-of-sequence token): pick another prompt"
    return tokens


def clean_samples(loaded, prompt: str, k: int, length: int, seed: int) -> list[list[int]]:
    from playground import decoding, generation
    from playground.ui.controls import settings_from_values

    *_, last = generation.iter_samples(loaded, decoding.prompt_ids(loaded, prompt), settings_from_values(*HOT), k,
                                       length, seed)
    return [s.token_ids for s in last.samples]


def clean_top(loaded, prompt: str) -> dict[int, float]:
    from playground import decoding

    ranked = decoding.ranked_after(loaded, decoding.prompt_ids(loaded, prompt))
    _, ids = ranked.top(10)
    return {int(i): float(ranked.raw_probs[i]) for i in ids}


def clean_beam(prompt: str, beams: int, tokens: int) -> list[list]:
    from playground import beam
    from playground.plots.beam import summary_rows

    return summary_rows(beam.run_beam_search(MODEL, prompt, beam.BeamSettings(beams, tokens, 1.0, False, beams)))


# -- requests -----------------------------------------------------------------------------------


def distribution(client, prompt: str, rules=GREEDY):
    return client.predict(MODEL, False, prompt, 10, False, *rules, api_name="/sampling_distribution")


def generated_ids(client, rules=GREEDY) -> list[int]:
    """The session's tokens as the page shows them (a re-filter: no model call)."""
    details = _json(client.predict(10, False, *rules, api_name="/sampling_refilter")[-1])
    return [g["id"] for g in details["generated"]]


def streamed(job, timeout: float = 300):
    """A submitted streaming request to its end: (outputs streamed, ('ok', result) or ('error', message))."""
    outcome = attempt(lambda: job.result(timeout=timeout))
    return job.outputs(), outcome


def sync(url: str) -> None:
    """Make the next fault the EVERY-th model call from now: one-call distributions (fresh prompts)
    on a probe session until one fails."""
    probe = Client(url, verbose=False)
    for _ in range(EVERY + 1):
        if expect_oom(*attempt(lambda: distribution(probe, f"Probe {uuid.uuid4().hex[:10]}"))):
            return
    pytest.fail(f"no fault in {EVERY + 1} model calls")


def pad(url: str, calls: int) -> None:
    probe = Client(url, verbose=False)
    for _ in range(calls):
        distribution(probe, f"Padding {uuid.uuid4().hex[:10]}")  # the fault is further ahead: succeeds


def generate_through_faults(client, n: int, clean: list[int], rules=GREEDY, seed: int = 1) -> int:
    """Generate N until the session has n tokens; after each out-of-memory message its tokens so far
    are intact (a prefix of the clean run's). Returns how many messages there were."""
    failures = 0
    for _ in range(40):
        have = generated_ids(client, rules)
        assert have == clean[: len(have)]
        if len(have) >= n:
            return failures
        outcome = attempt(lambda: client.predict(n - len(have), "", 10, False, *rules, seed,
                                                 api_name="/sampling_generate"))
        failures += expect_oom(*outcome)
    pytest.fail("Generate N never reached its tokens")


def still_serving(url: str) -> None:
    """Model calls, not only the tokenizer: a fresh prompt's distribution and a next token."""
    sync(url)  # the next two calls are clean
    client = Client(url, verbose=False)
    out = distribution(client, f"Still serving? {uuid.uuid4().hex[:8]}")
    assert _json(out[-1])["model"] == MODEL
    after = _json(client.predict(10, False, *GREEDY, 1, api_name="/sampling_next_token")[-1])
    assert len(after["generated"]) == 1


def column_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-id="(\d+)"', html)]


# -- 1. a fault at a known point of each stream ---------------------------------------------------


def test_a_memory_error_mid_generate_n_keeps_the_tokens_and_the_greedy_continuation(hall_app, loaded):
    prompt = "The three primary colours are"
    clean = clean_tokens(loaded, prompt, 12)
    client = Client(hall_app, verbose=False)
    sync(hall_app)
    distribution(client, prompt)  # call 1
    # call 2 reads the prompt into the session's decoder, then one call per token: call 11 fails
    outputs, outcome = streamed(client.submit(12, "", 10, False, *GREEDY, 1, api_name="/sampling_generate"))
    assert expect_oom(*outcome), "the fault did not come"
    streamed_ids = [g["id"] for g in _json(outputs[-1][-1])["generated"]]
    assert 2 <= len(streamed_ids) < 12 and streamed_ids == clean[: len(streamed_ids)]  # mid-stream
    assert generated_ids(client) == streamed_ids  # the session kept what the page showed
    generate_through_faults(client, 12, clean)
    assert generated_ids(client) == clean
    still_serving(hall_app)


def test_a_memory_error_mid_k_samples_and_the_same_request_again(hall_app, loaded):
    prompt = "My favourite animal is"
    clean = clean_samples(loaded, prompt, 3, 8, seed=4)
    client = Client(hall_app, verbose=False)
    sync(hall_app)
    distribution(client, prompt, HOT)  # call 1
    pad(hall_app, 6)  # calls 2-7; the samples' prompt is call 8, their steps 9, 10, 11 (fails)
    request = (3, 8, "", 10, *HOT, 4)
    outputs, outcome = streamed(client.submit(*request, api_name="/sampling_samples"))
    assert expect_oom(*outcome), "the fault did not come"
    assert outputs and "step 3 of 8" in outputs[-1][0]  # it was streaming when the fault came
    summary = _json(until_ok(lambda: client.predict(*request, api_name="/sampling_samples"))[0][-1])
    assert [[t["id"] for t in s["tokens"]] for s in summary["samples"]] == clean
    assert generated_ids(client, HOT) == []  # the session itself is unchanged
    still_serving(hall_app)


def test_a_memory_error_mid_beam_search_and_the_same_search_again(hall_app):
    prompt = "The best way to learn a language is"
    clean = clean_beam(prompt, 2, 8)
    client = Client(hall_app, verbose=False)
    request = (prompt, MODEL, False, 2, 8, 1.0, "false", 2, False, False, 1, False)
    sync(hall_app)
    pad(hall_app, 8)  # calls 1-8; the search reads the prompt (9), one step (10), the next fails (11)
    assert expect_oom(*attempt(lambda: client.predict(*request, api_name="/beam_search")))
    table = until_ok(lambda: client.predict(*request, api_name="/beam_search"))[0][2]
    rows = table["data"] if isinstance(table, dict) else table
    assert [row[:3] for row in rows] == [row[:3] for row in clean]
    assert [n for row in rows for n in row[3:]] == pytest.approx([n for row in clean for n in row[3:]], abs=2e-4)
    still_serving(hall_app)


def test_a_memory_error_mid_side_by_side_and_the_same_request_again(hall_app):
    """The base model is the page's (gemma-3-270m); the clean run is one on this server alone, between faults."""
    prompt = "Tell me about the sea"
    client = Client(hall_app, verbose=False)
    request = (prompt, BASE, MODEL, 4, *HOT, 3)
    sync(hall_app)
    clean = [column_ids(html) for html in client.predict(*request, api_name="/side_by_side")[:2]]  # calls 1-8
    assert [len(ids) for ids in clean] == [4, 4]
    sync(hall_app)
    pad(hall_app, 7)  # calls 1-7; the columns read their prompts (8, 9), round 2 is 10 and 11 (fails)
    outputs, outcome = streamed(client.submit(*request, api_name="/side_by_side"))
    assert expect_oom(*outcome), "the fault did not come"
    views = [[column_ids(html) for html in output[:2]] for output in outputs]
    assert all(ids == full[: len(ids)] for view in views for ids, full in zip(view, clean))
    assert [1, 1] in [[len(ids) for ids in view] for view in views]  # round 1 was shown, then the fault
    assert all(len(ids) < 4 for ids in views[-1])
    final = until_ok(lambda: client.predict(*request, api_name="/side_by_side"))[0]
    assert [column_ids(html) for html in final[:2]] == clean
    still_serving(hall_app)


# -- 2. six students at once -------------------------------------------------------------------


def student(url: str, i: int, clean: list[int]) -> dict:
    """One student's requests in a fresh session, each retried after out-of-memory messages."""
    client = Client(url, verbose=False)
    prompt = f"Here is one fact about {SUBJECTS[i]}:"
    got = {"failures": 0}
    dist, failures = until_ok(lambda: distribution(client, prompt))
    got["top"] = {t["id"]: t["raw_prob"] for t in _json(dist[-1])["tokens"]}
    got["failures"] += failures
    for _ in range(2):
        got["failures"] += until_ok(lambda: client.predict(10, False, *GREEDY, 1,
                                                           api_name="/sampling_next_token"))[1]
    got["failures"] += generate_through_faults(client, 10, clean)
    got["generated"] = generated_ids(client)
    summary, failures = until_ok(lambda: client.predict(2, 4, "", 10, *HOT, 20 + i, api_name="/sampling_samples"))
    got["samples"] = [[t["id"] for t in s["tokens"]] for s in _json(summary[-1])["samples"]]
    got["failures"] += failures
    beam, failures = until_ok(lambda: client.predict(prompt, MODEL, False, 2, 4, 1.0, "false", 2, False, False, 1,
                                                     False, api_name="/beam_search"))
    table = beam[2]
    got["beam"] = table["data"] if isinstance(table, dict) else table
    got["failures"] += failures
    return got


def test_six_sessions_sharing_forwards_through_memory_errors_get_their_own_results(hall_app, loaded):
    from playground import decoding, generation
    from playground.ui.controls import settings_from_values

    prompts = [f"Here is one fact about {s}:" for s in SUBJECTS]
    clean = [clean_tokens(loaded, prompt, 10) for prompt in prompts]
    expected_samples = []
    for i, prompt in enumerate(prompts):  # K samples after the session's 10 greedy tokens
        ids = decoding.prompt_ids(loaded, prompt) + clean[i]
        *_, last = generation.iter_samples(loaded, ids, settings_from_values(*HOT), 2, 4, 20 + i)
        expected_samples.append([s.token_ids for s in last.samples])
    started = time.perf_counter()
    with ThreadPoolExecutor(SESSIONS) as pool:
        together = list(pool.map(lambda i: student(hall_app, i, clean[i]), range(SESSIONS)))
    seconds = time.perf_counter() - started
    for i, (got, prompt) in enumerate(zip(together, prompts)):
        assert got["generated"] == clean[i], f"session {i}: generated tokens"
        assert got["samples"] == expected_samples[i], f"session {i}: samples"
        beam = clean_beam(prompt, 2, 4)
        assert [row[:3] for row in got["beam"]] == [row[:3] for row in beam], f"session {i}: beams"
        top = clean_top(loaded, prompt)
        shared = set(top) & set(got["top"])
        assert len(shared) >= 8, f"session {i}: top tokens"
        for token in shared:
            assert got["top"][token] == pytest.approx(top[token], abs=1e-4), f"session {i}: P({token})"
    failures = sum(got["failures"] for got in together)
    print(f"\nfaults under load: {SESSIONS} sessions in {seconds:.0f} s, {failures} out-of-memory messages "
          f"(per session {[got['failures'] for got in together]}), every result the clean one")
    assert failures >= 2
    still_serving(hall_app)
