"""Many students at once: 20 concurrent gradio_client sessions, each with its own prompt.

Each session runs the sampling lab (distribution, re-filter, generate 4 tokens with its own seed)
and a beam search. The same requests are first run alone, one session at a time; every concurrent
session must get exactly its own results back (same generated tokens, same beams; next-token
probabilities equal within the float noise of the cross-session batched forward pass), with zero
errors. Also checks the Stop button: a cancelled long generation frees its slot.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from tests.conftest import CLIENT_HTTP

MODEL = "smollm2-135m-instruct"
SESSIONS = 20
SUBJECTS = ["France", "the ocean", "my cat", "Python", "the moon", "jazz", "a volcano", "winter", "bread", "chess",
            "Mars", "a library", "the rain", "tea", "a dragon", "soccer", "a robot", "Tokyo", "honey", "the desert"]
RULES = (1.0, 0, 1.0, 0.0, "transformers")


def prompt(i: int) -> str:
    return f"Here is one fact about {SUBJECTS[i]}:"


def _json(value):
    return value if isinstance(value, (dict, list)) else json.loads(value)


def session_run(url: str, i: int) -> dict:
    """One student's requests in a fresh session; what they got back."""
    client = Client(url, verbose=False, httpx_kwargs=CLIENT_HTTP)  # 20 joins at once on a loaded machine
    started = time.perf_counter()
    dist = client.predict(MODEL, False, prompt(i), 10, False, *RULES, api_name="/sampling_distribution")
    cut = _json(client.predict(10, False, 1.0, 0, 0.5, 0.0, "transformers", api_name="/sampling_refilter")[-1])
    generated = client.predict(4, "", 10, False, *RULES, 100 + i, api_name="/sampling_generate")
    beam = client.predict(prompt(i), MODEL, False, 2, 3, 1.0, "false", 2, False, False, 1, False,
                          api_name="/beam_search")
    details = _json(generated[-1])
    return {
        "top": {t["id"]: t["raw_prob"] for t in _json(dist[-1])["tokens"]},
        "top1": _json(dist[-1])["tokens"][0]["id"],
        "nucleus_kept": cut["kept_count"],
        "generated": [g["id"] for g in details["generated"]],
        "generated_html": generated[3],  # (plot, numbers, token picker, generated text, details)
        "beam_table": beam[2],  # (tree, replay slider, table, summary): State outputs are not returned
        "beam_summary": beam[3],
        "seconds": time.perf_counter() - started,
    }


def same_up_to_rounding(got, expected, tolerance: float = 2e-3) -> bool:
    """Equal text; every number equal within `tolerance` (JSON values or numbers inside strings)."""
    import re

    number = re.compile(r"-?\d+\.\d+")
    got_text, expected_text = json.dumps(got, sort_keys=True), json.dumps(expected, sort_keys=True)
    if number.sub("#", got_text) != number.sub("#", expected_text):
        return False
    return all(abs(float(x) - float(y)) <= tolerance
               for x, y in zip(number.findall(got_text), number.findall(expected_text)))


def test_twenty_concurrent_sessions_get_their_own_results(app_url):
    alone = [session_run(app_url, i) for i in range(SESSIONS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(SESSIONS) as pool:
        futures = [pool.submit(session_run, app_url, i) for i in range(SESSIONS)]
        together = [f.result(timeout=900) for f in futures]  # any error in any session fails here
    wall = time.perf_counter() - started
    for i, (a, b) in enumerate(zip(alone, together)):
        assert b["generated"] == a["generated"], f"session {i}: generated tokens differ"
        # the same beams; scores within the rounding of a batched forward (its last digit may differ)
        assert same_up_to_rounding(b["beam_table"], a["beam_table"]), f"session {i}: beams"
        assert same_up_to_rounding(b["beam_summary"], a["beam_summary"]), f"session {i}: beams"
        assert b["top1"] == a["top1"] and b["nucleus_kept"] == a["nucleus_kept"], f"session {i}: distribution"
        for token, p in a["top"].items():
            if token in b["top"]:
                assert b["top"][token] == pytest.approx(p, abs=2e-4), f"session {i}: P({token})"
        assert set(b["top"]) & set(a["top"]) and len(set(b["top"]) ^ set(a["top"])) <= 2
        assert f"about {SUBJECTS[i]}" in b["generated_html"], f"session {i} got another session's text"
    assert len({tuple(r["generated"]) for r in together}) > 1  # different prompts and seeds, different text
    alone_total = sum(r["seconds"] for r in alone)
    print(f"\n{SESSIONS} sessions: alone one after another {alone_total:.1f} s, concurrently {wall:.1f} s wall "
          f"(per session p50 {sorted(r['seconds'] for r in together)[SESSIONS // 2]:.1f} s, "
          f"max {max(r['seconds'] for r in together):.1f} s)")


def test_stop_frees_the_slot_and_keeps_the_tokens():
    """With one heavy slot, a stopped 200-token generation lets the next heavy request run at once."""
    from tests.conftest import start_app, stop_app

    url, process = start_app({"PLAYGROUND_HEAVY_CONCURRENCY": "1"}, log_name="stop-app.log")
    try:
        first, second = Client(url, verbose=False, httpx_kwargs=CLIENT_HTTP), Client(url, verbose=False,
                                                                                    httpx_kwargs=CLIENT_HTTP)
        for client in (first, second):
            client.predict(MODEL, False, "Once upon a time", 10, False, *RULES, api_name="/sampling_distribution")
        long_job = first.submit(200, "", 10, False, 1.0, 0, 1.0, 0.0, "transformers", 1, api_name="/sampling_generate")
        deadline = time.monotonic() + 120
        while len(long_job.outputs()) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(long_job.outputs()) >= 3, "the long generation did not start streaming"
        long_job.cancel()
        short = second.predict(2, "", 10, False, *RULES, 1, api_name="/sampling_generate")
        assert len(_json(short[-1])["generated"]) == 2
        # the short one got the single slot once the long run stopped, not after its 200 tokens:
        # `kept < 200` below (no timing: the machine may be loaded)
        after = _json(first.predict(10, False, *RULES, 1, api_name="/sampling_next_token")[-1])
        kept = len(after["generated"]) - 1
        assert 3 <= kept < 200 and after["stop"] is None  # the tokens before Stop stayed; the session works
    finally:
        stop_app(process)
