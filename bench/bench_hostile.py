"""A hostile client against the real app on loopback (issue 27): one script must not take the hall's
server away. Prints JSON and writes bench/results/hostile-cpu.json (or `--out`).

Phases, each bounded in count and time (every call has a client-side timeout):

1. **bypass**: `--bypass` heavy requests (beam search) posted at once on each of Gradio's direct
   route variants (`/gradio_api/run/<name>`, `/gradio_api/api/<name>/`, `/gradio_api/run/predict`
   with the function's index): the HTTP statuses, and how many ran (none should).
2. **flood**: one client sends `--flood` heavy requests (beam search and side by side, one session
   each) through the queue at once, and `--one-session` more from a single session, while another
   session makes cheap calls one after another (tokenize, and a next-token distribution): the
   flood's outcomes (served, busy, refused as over the client's share, time limit), the longest time
   a refused request waited for its answer, the longest a served one took against
   `PLAYGROUND_QUEUE_WAIT` + `PLAYGROUND_REQUEST_TIMEOUT` + 10 s, and the cheap calls' p50/p95.
3. **garbage**: the protocol garbage of tests/api/test_hostile_routes.py, `--garbage` rounds, and
   links of 70 KB and 1 MB: answers by status (a 5xx or a dropped connection is a finding).
4. **deadlines**: each heavy kind (beam search, K samples, side by side, converse, teacher forcing,
   the inside pass, BPE training) at its largest, one at a time, while another client keeps a heavy
   slot busy: how it ended and whether within the limit + 10 s.
5. **memory**: an adversarial mix (`--sessions` sessions, 100 by default, each with its own
   1,000-token prompt's distribution, every fourth one then drawing 64 samples of 100 tokens, and
   long conversations) against the server's memory budget (`playground.memory_budget`: the setting,
   or 2.5x its RSS with the models loaded, at least 4 GiB): the mix's outcomes, its RSS peak against
   the budget, and the RSS before, at its peak and after everything; a model call after everything
   must still answer, with the numbers it gave before the mix.

The server runs with `PLAYGROUND_REQUEST_TIMEOUT=--limit` (30 s by default, so a run takes minutes),
everything else at its defaults. Loopback only: `--url` must be 127.0.0.1 (or the app is started
here). Usage: `.venv/bin/python bench/bench_hostile.py [--flood 50] [--bypass 50] [--garbage 20]`.
What it leaves out: browsers (raw HTTP only), many addresses (everything comes from 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hall_http import (ROOT, Api, Outcome, RssSampler, Session, command_line, http_client, log_report,  # noqa: E402
                       mb, outcome_summary, percentile, served_app, write_report)

from tests.api.raw_http import PROTOCOL_GARBAGE  # noqa: E402 - the same corpus as the API test

RESULT = ROOT / "bench" / "results" / "hostile-cpu.json"
BEAM = {"prompt": "The best thing about a lecture is", "model_id": "smollm2-135m-instruct", "num_beams": 4,
        "max_new_tokens": 24, "compare_greedy": True}
SIDE = {"prompt": "Write me a poem about large language models", "max_tokens": 96}


def bypass(url: str, api: Api, http, count: int) -> dict:
    """`count` beam searches at once on each direct route variant; statuses and seconds."""
    data = api.data("/beam_search", BEAM)
    index = api.endpoints["/beam_search"].fn_index
    variants = {"/gradio_api/run/beam_search": {"data": data},
                "/gradio_api/api/beam_search/": {"data": data},
                "/gradio_api/run/predict": {"data": data, "fn_index": index}}
    report = {}
    for path, body in variants.items():
        def post(i, path=path, body=body):
            start = time.perf_counter()
            try:
                response = http.post(url.rstrip("/") + path, json={**body, "session_hash": f"bypass{i}"}, timeout=300)
                return str(response.status_code), time.perf_counter() - start
            except Exception as exc:  # noqa: BLE001 - a finding
                return type(exc).__name__, time.perf_counter() - start
        with ThreadPoolExecutor(count) as pool:
            answers = list(pool.map(post, range(count)))
        report[path] = {"statuses": dict(Counter(status for status, _ in answers)),
                        "max_seconds": round(max(s for _, s in answers), 2)}
    return report


def flood(url: str, api: Api, http, count: int, one_session: int, timeout: float, seconds: float) -> dict:
    """The heavy flood through the queue with cheap calls alongside; see the module docstring."""
    cheap_session = Session(url, api, http)
    cheap_session.call("/sampling_distribution", 120, model_id="smollm2-135m-instruct", prompt="Warm up")
    done = threading.Event()
    cheap = []

    def cheap_calls():
        i = 0
        while not done.is_set():
            i += 1
            if i % 2:
                outcome = cheap_session.call("/tokenize", 60, tokenizer_id="llama-3", text=f"Student question {i}")
            else:
                outcome = cheap_session.call("/sampling_distribution", 60, model_id="smollm2-135m-instruct",
                                             prompt=f"The capital of France is{' very' * (i % 7)}")
            cheap.append(outcome)
            time.sleep(0.2)

    heavy = [("/beam_search", BEAM) if i % 2 else ("/side_by_side", SIDE) for i in range(count)]
    jobs = [(Session(url, api, http), name, values) for name, values in heavy]
    watcher = threading.Thread(target=cheap_calls, daemon=True)
    started = time.perf_counter()
    watcher.start()
    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        burst = pool.submit(one_session_burst, url, api, http, one_session, timeout)
        outcomes = list(pool.map(lambda job: job[0].call(job[1], timeout, **job[2]), jobs))
        single = burst.result()
    outcomes += single
    flood_seconds = time.perf_counter() - started
    while time.perf_counter() - started < min(seconds, flood_seconds + 5):
        time.sleep(0.5)
    done.set()
    watcher.join(timeout=90)
    share = [o for o in outcomes if not o.ok and "long request" in (o.error or "")]
    refused = [o for o in outcomes if not o.ok and o.kind == "busy"]
    served = [o for o in outcomes if o.ok or o.kind == "time_limit"]
    cheap_ok = [o.seconds * 1000 for o in cheap if o.ok]
    return {
        "heavy_requests": len(jobs), "from_one_session": one_session,
        "outcomes": outcome_summary(outcomes),
        "refused_over_client_share": len(share),
        "refused_busy": len(refused),
        # the client's clock (from before its join, which a loaded server accepts late) and the server's own
        "longest_wait_for_a_refusal_s": round(max((o.seconds for o in refused + share), default=0.0), 2),
        "longest_server_wait_before_refusal_s": max((int(m.group(1)) for o in refused
                                                     if (m := re.search(r"waited (\d+) s", o.error or ""))), default=0),
        "longest_served_s": round(max((o.seconds for o in served), default=0.0), 2),
        "flood_seconds": round(flood_seconds, 1),
        "one_session": outcome_summary(single),
        "cheap": {"calls": len(cheap), "ok": len(cheap_ok), "p50_ms": percentile(cheap_ok, 0.5),
                  "p95_ms": percentile(cheap_ok, 0.95), "max_ms": round(max(cheap_ok, default=0.0), 1),
                  "errors": dict(Counter((o.error or "")[:120] for o in cheap if not o.ok).most_common(4))},
    }


def one_session_burst(url: str, api: Api, http, count: int, timeout: float) -> list[Outcome]:
    """`count` beam searches joined at once by one session, read from its one event stream (a
    `Session.call` each would open competing streams of the same session)."""
    import httpx

    session = Session(url, api, http)
    body = {"data": api.data("/beam_search", BEAM), "fn_index": api.endpoints["/beam_search"].fn_index,
            "session_hash": session.session_hash}
    start = time.perf_counter()
    pending, outcomes = {}, []
    for _ in range(count):
        joined = http.post(url.rstrip("/") + "/gradio_api/queue/join", json=body, timeout=30)
        if joined.status_code != 200:
            outcomes.append(Outcome(False, time.perf_counter() - start, f"HTTP {joined.status_code} on join"))
            continue
        pending[joined.json()["event_id"]] = True
    deadline = time.monotonic() + timeout
    try:
        read = httpx.Timeout(connect=10.0, read=60.0, write=10.0, pool=10.0)
        with http.stream("GET", url.rstrip("/") + "/gradio_api/queue/data",
                         params={"session_hash": session.session_hash}, timeout=read) as stream:
            for line in stream.iter_lines():
                if not pending or time.monotonic() > deadline:
                    break
                if not line.startswith("data: {\"msg\":\"process_completed\""):
                    continue
                message = json.loads(line[6:])
                if pending.pop(message.get("event_id"), None) is None:
                    continue
                error = None if message.get("success") else str((message.get("output") or {}).get("error"))
                outcomes.append(Outcome(message.get("success", False), time.perf_counter() - start, error))
    except Exception as exc:  # noqa: BLE001 - reported as outcomes
        outcomes += [Outcome(False, time.perf_counter() - start, f"{type(exc).__name__}") for _ in pending]
        pending.clear()
    outcomes += [Outcome(False, time.perf_counter() - start, f"client timeout after {timeout:.1f} s")
                 for _ in pending]
    return outcomes


DEADLINE_KINDS = [  # (label, api name, values, prepared by a distribution first): each as long as its controls allow
    ("beam search", "/beam_search", {**BEAM, "num_beams": 8, "max_new_tokens": 40}, False),
    ("K samples", "/sampling_samples", {"k": 64, "length": 100}, True),
    ("side by side", "/side_by_side", {**SIDE, "max_tokens": 512}, False),
    ("converse", "/converse", {"message": "Tell me a long story about a cat.", "system": "", "max_tokens": 512}, False),
    ("teacher forcing", "/teacher_forcing", {"text": "The cat climbed the tree. " * 160}, False),
    ("inside pass", "/inside_view", {"text": "The cat climbed the tree. " * 18}, False),  # its cap: 128 tokens
    ("BPE training", "/bpe_train", {"source": "My own text", "own_text": "low lower lowest newer wider " * 3400,
                                    "merges": 2000, "pattern": "none"}, False),
]


def deadlines(url: str, api: Api, http, limit: float, queue_wait: float) -> dict:
    """Each heavy kind at its largest, one at a time, while another client keeps a heavy slot busy
    with beam searches: how long it took, and how it ended (served, or stopped by the limit)."""
    done = threading.Event()

    def saturate():
        busy = Session(url, api, http)
        while not done.is_set():
            outcome = busy.call("/beam_search", limit + queue_wait + 60, **{**BEAM, "num_beams": 8, "max_new_tokens": 40})
            if not outcome.ok and outcome.seconds < 1.0:
                time.sleep(1.0)  # refused at once: do not hammer the server

    saturator = threading.Thread(target=saturate, daemon=True)
    saturator.start()
    time.sleep(1.0)
    report = {}
    for label, name, values, prepared in DEADLINE_KINDS:
        if name not in api.endpoints:
            report[label] = {"skipped": f"no endpoint {name}"}
            continue
        session = Session(url, api, http)
        if prepared:
            session.call("/sampling_distribution", 120, model_id="smollm2-135m-instruct", prompt="Once upon a time")
        outcome = session.call(name, limit + queue_wait + 60, **values)
        report[label] = {"ended": outcome.kind, "seconds": round(outcome.seconds, 1),
                         "within_limit_plus_10": outcome.seconds <= limit + 10,
                         "message": (outcome.error or "")[:120]}
    done.set()
    saturator.join(timeout=limit + 30)
    return report


LONG_PROMPT = ("In the lecture hall the students asked how a language model turns text into tokens, and "
               "the instructor answered with an example about lighthouses and ships. ")  # 30 tokens


def memory_mix(url: str, api: Api, http, sessions: int, timeout: float) -> dict:
    """`sessions` sessions with 1,000-token prompts (each its own), K samples, long chats, 8 at a time."""
    def one(i: int) -> list[Outcome]:
        session = Session(url, api, http)
        prompt = f"Session {i}: " + LONG_PROMPT * 33  # about 1,000 tokens, different in every session
        outcomes = [session.call("/sampling_distribution", timeout, model_id="gemma-3-270m" if i % 2 else
                                 "smollm2-135m-instruct", prompt=prompt)]
        if i % 4 == 0:
            outcomes.append(session.call("/sampling_samples", timeout, k=64, length=100))
        if i % 10 == 0:
            outcomes.append(session.call("/converse", timeout, message=LONG_PROMPT * 40, system="",
                                         chat_model="smollm2-135m-instruct", base_model="gemma-3-270m",
                                         base_mode="conversation_text", max_tokens=64))
        return outcomes

    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for batch in pool.map(one, range(sessions)) for o in batch]
    return {"sessions": sessions, "outcomes": outcome_summary(outcomes)}


def _raw_get(url: str, target: str) -> str:
    address = urlparse(url)
    try:
        with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n\r\n".encode())
            answer = sock.recv(200)
        return answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/1.1 ") else f"odd answer {answer[:20]!r}"
    except Exception as exc:  # noqa: BLE001 - a finding
        return type(exc).__name__


def garbage(url: str, http, rounds: int) -> dict:
    statuses: Counter = Counter()
    for _ in range(rounds):
        for method, path, body in PROTOCOL_GARBAGE:
            try:
                response = http.request(method, url.rstrip("/") + path, json=body, timeout=60)
                statuses[str(response.status_code)] += 1
            except Exception as exc:  # noqa: BLE001 - a dropped connection is a finding
                statuses[type(exc).__name__] += 1
    links = {f"{size // 1000} KB": _raw_get(url, "/?prompt=" + "a" * size) for size in (70_000, 1_000_000)}
    return {"calls": rounds * len(PROTOCOL_GARBAGE), "statuses": dict(statuses),
            "server_errors_or_drops": sum(n for s, n in statuses.items() if not s.startswith("4")),
            "links": links}


def server_budget_mb(log_name: str) -> float | None:
    """The automatic budget as the server logged it last ("memory budget N MB"), None if it did not."""
    path = ROOT / "artifacts" / log_name
    found = re.findall(r"memory budget (\d+) MB", path.read_text(errors="replace")) if path.exists() else []
    return float(found[-1]) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a running app on 127.0.0.1 (default: start one)")
    parser.add_argument("--flood", type=int, default=50)
    parser.add_argument("--one-session", type=int, default=10)
    parser.add_argument("--bypass", type=int, default=50)
    parser.add_argument("--garbage", type=int, default=20)
    parser.add_argument("--limit", type=float, default=30.0, help="PLAYGROUND_REQUEST_TIMEOUT for the server")
    parser.add_argument("--seconds", type=float, default=300.0, help="the flood phase's length at most")
    parser.add_argument("--no-deadlines", action="store_true", help="leave out the per-kind deadline phase")
    parser.add_argument("--sessions", type=int, default=100, help="sessions of the memory mix (0: none)")
    parser.add_argument("--only-memory", action="store_true", help="only the memory phase (and the model call after)")
    parser.add_argument("--budget-mb", type=float, default=0.0, help="PLAYGROUND_MEMORY_BUDGET_MB (0: automatic)")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    for name in ("flood", "one_session", "bypass", "garbage"):
        setattr(args, name, max(0, min(getattr(args, name), 200)))  # bounded whatever is asked
    args.sessions = max(0, min(args.sessions, 300))
    env = {"PLAYGROUND_REQUEST_TIMEOUT": str(args.limit), "PLAYGROUND_MEMORY_BUDGET_MB": str(args.budget_mb)}
    from playground import settings

    queue_wait = settings.Settings.from_environment().queue_wait
    report = {"command": command_line(), "request_timeout_s": args.limit, "queue_wait_s": queue_wait,
              "load_average_1min_at_start": os.getloadavg()[0]}
    with served_app(args.url, env, log_name="bench-hostile.log") as (url, pid), http_client(300) as http:
        api = Api(url)
        api.require("/beam_search", "/side_by_side", "/tokenize", "/sampling_distribution")
        rss = RssSampler(pid)
        warm = Session(url, api, http)
        for model in ("smollm2-135m-instruct", "gemma-3-270m"):
            warm.call("/sampling_distribution", 300, model_id=model, prompt="Warm up")
        report["rss_mb_models_loaded"] = mb(rss.reset())
        before = warm.call("/sampling_distribution", 120, model_id="smollm2-135m-instruct",
                           prompt="After all that, the capital of France is")
        budget = args.budget_mb or server_budget_mb("bench-hostile.log")
        report["memory_budget_mb"] = budget and round(budget, 1)
        timeout = queue_wait + args.limit + 60
        if not args.only_memory:
            report["bypass"] = bypass(url, api, http, args.bypass)
            report["flood"] = flood(url, api, http, args.flood, args.one_session, timeout, args.seconds)
            report["flood"]["bound_s"] = queue_wait + args.limit + 10
            report["garbage"] = garbage(url, http, args.garbage)
        if not args.no_deadlines and not args.only_memory:
            report["deadlines"] = deadlines(url, api, http, args.limit, queue_wait)
        if args.sessions:
            rss.reset()
            report["memory"] = memory_mix(url, api, http, args.sessions, queue_wait + args.limit + 60)
            report["memory"]["rss_mb_peak"] = mb(rss.peak)
            report["memory"]["within_budget"] = budget is not None and mb(rss.peak) <= budget
        after = Session(url, api, http).call("/sampling_distribution", 120, model_id="smollm2-135m-instruct",
                                             prompt="After all that, the capital of France is")
        report["served_after"] = after.ok
        # the details JSON (the last output): the tokens and their probabilities
        report["same_numbers_after"] = after.ok and before.ok and after.data[-1] == before.data[-1]
        report["rss_mb_peak"] = mb(rss.peak)
        report["rss_mb_after"] = mb(rss.last)
        rss.stop()
    report["load_average_1min_at_end"] = os.getloadavg()[0]
    report["server_log"] = log_report("bench-hostile.log")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
