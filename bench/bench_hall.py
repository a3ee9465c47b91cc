"""Hall bench: N simulated students follow the lecture script against one app, on loopback
(issue 13, item 7).

Starts the real app on a free 127.0.0.1 port (or uses `--url`, loopback only) and warms it up
(both models loaded, every endpoint called once). Then, for each N in `--students` (run 1 first:
one student alone is the reference), N students (threads, each its own gradio session over raw
HTTP, see `hall_http`) start within `--ramp` seconds and follow the script, with a think time of
0.5-3 s (seeded) before each step:

  open the page (GET /), tokenize (`/tokenize`), show a distribution (`/sampling_distribution`, the
  two models alternate, every prompt differs), move sliders (`/sampling_refilter` x3), next token
  (`/sampling_next_token`), Generate 20 (`/sampling_generate`), a beam preset (`/beam_search` with
  the values of one of `playground.beam.PRESETS`, as its button sets them), a side-by-side preset
  (`/preset_poem` or `/preset_apples`, the chat tab's lecture buttons).

A student whose distribution failed skips the three steps that need it (counted as `skipped`).
Parameters are looked up by name in `view_api()`; the rest take their defaults. Per run and per
endpoint it prints p50/p95/p99 of the successful requests (ms), errors with their distinct
messages, requests cut by the server's time limit ("time limit" in the message), refused as busy
("The server is busy ..."), cut by the client-side timeout, and the server's RSS at the start,
peak (sampled every 0.2 s) and final; beside each N > 1 the ratio of its p50/p95 to one student's.

`--paths in-process engine` runs the same script twice in one invocation, side by side: first
against the app running the packaged models in-process, then against an app whose models are
llama.cpp `llama-server` engines (`playground.engines`; one server per packaged GGUF, `--slots`
parallel slots each, built by `make llama-server`), entered in a models file: every step names the
engine models instead (`ENGINE_IDS`; tokenize uses the engine's /tokenize, the beam and
side-by-side presets run on the engines). The engines' own RSS is reported next to the app's.

Bounded: no request starts after `--max-seconds` per run; each has a client-side timeout
(`--request-timeout`, cut so a run ends at most 30 s after its bound).
Usage: `.venv/bin/python bench/bench_hall.py --students 1 20 50 100 [--seed 0] [--paths in-process engine]
[--json-out F]`.
What it leaves out: browser rendering and the page's assets beyond GET / (a browser's heartbeat
and static files), the students' own typing.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path

from hall_http import (Api, Outcome, RssSampler, Session, command_line, http_client, log_report, mb,
                       outcome_summary, rss_bytes, served_app, write_report)

MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
# The engine path's models: the packaged GGUFs served by llama-server, the in-process model's tokenizer named.
ENGINE_IDS = {"gemma-3-270m": "gemma-engine", "smollm2-135m-instruct": "smol-engine"}
TEXTS = ["A cat was climbing a tree.", "Tokenizers split text into pieces.", "Üben macht den Meister.",
         "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)", "一隻貓正在爬樹。"]
PROMPTS = ["The capital of France is", "Once upon a time", "My favourite colour is", "Water boils at",
           "The quick brown fox", "In 1492 Columbus", "The best way to learn is", "Yesterday I saw"]
SLIDER_MOVES = [{"temperature": 0.7}, {"temperature": 0.7, "top_k": 50},
                {"temperature": 0.7, "top_k": 50, "top_p": 0.9}]
LAB_STATEFUL = ("/sampling_refilter", "/sampling_next_token", "/sampling_generate")
ENDPOINTS = ("GET /", "/tokenize", "/sampling_distribution", "/sampling_refilter", "/sampling_next_token",
             "/sampling_generate", "/beam_search", "/preset_poem", "/preset_apples")
PATHS = ("in-process", "engine")
WARM_UP = 1_000_000  # the warm-up's student numbers (also its seeds: >= 0)


def beam_presets() -> list[dict]:
    """The beam tab's preset buttons as `/beam_search` values by parameter name."""
    from playground.beam import PRESETS

    presets = []
    for p in PRESETS:
        s = p.settings
        early = s.early_stopping if isinstance(s.early_stopping, str) else str(s.early_stopping).lower()
        presets.append({"prompt": p.prompt, "model_id": p.model_id, "chat_template": p.chat_template,
                        "num_beams": s.num_beams, "max_new_tokens": s.max_new_tokens,
                        "length_penalty": s.length_penalty, "early_stopping": early,
                        "num_return": s.num_return_sequences, "compare_greedy": p.compare_greedy,
                        "compare_sampled": p.sample_seed is not None,
                        "seed": p.sample_seed if p.sample_seed is not None else 42, "collapse": p.collapse_pruned})
    return presets


def side_presets() -> list[tuple[str, dict]]:
    """The chat tab's side-by-side buttons: (endpoint, values); each button first sets the prompt."""
    try:
        from playground.ui.chat_tab import PRESETS
        return [("/preset_poem", {"prompt": PRESETS["poem"][1]}), ("/preset_apples", {"prompt": PRESETS["apples"][1]})]
    except Exception:  # noqa: BLE001 - the tab is being edited: its defaults are the poem's prompt
        return [("/preset_poem", {})]


def lecture_script(index: int, engine: bool = False) -> list[tuple[str, dict]]:
    """Student `index`'s requests, in order: (endpoint, values by parameter name); `engine`: on the
    engine models (`ENGINE_IDS`) instead of the in-process ones."""
    model = MODELS[index % 2]
    named = (lambda m: ENGINE_IDS.get(m, m)) if engine else (lambda m: m)
    sliders = SLIDER_MOVES[-1]
    text = {"text": f"{TEXTS[index % len(TEXTS)]} ({index})"}
    steps = [("GET /", {}), ("/tokenize", {**text, "tokenizer_id": named(model)} if engine else text),
             ("/sampling_distribution", {"model_id": named(model),
                                         "prompt": f"{PROMPTS[index % len(PROMPTS)]} ({index})"})]
    steps += [("/sampling_refilter", move) for move in SLIDER_MOVES]
    steps += [("/sampling_next_token", {**sliders, "seed": index}),
              ("/sampling_generate", {"n": 20, **sliders, "seed": index})]
    beams = beam_presets()
    endpoint, values = side_presets()[index % len(side_presets())]
    beam = beams[index % len(beams)]
    steps.append(("/beam_search", {**beam, "model_id": named(beam["model_id"])}))
    if engine:
        values = {**values, "base_model": ENGINE_IDS["gemma-3-270m"], "chat_model": ENGINE_IDS["smollm2-135m-instruct"]}
    steps.append((endpoint, values))
    return steps


def run_students(url: str, api: Api, students: int, args, first: int, rounds: int = 1,
                 engine: bool = False) -> tuple[dict, dict, float]:
    """Run `students` students `rounds` times through the script: ({endpoint: [Outcome]}, skipped
    counts, seconds). Student numbers start at `first`: every run's prompts are new to the caches."""
    outcomes: dict[str, list[Outcome]] = defaultdict(list)
    skipped: Counter = Counter()
    lock = threading.Lock()
    http = http_client(students)
    start = time.monotonic()
    deadline = start + args.max_seconds

    def student(number: int) -> None:
        rng = random.Random(args.seed * 100_003 + first + number)
        time.sleep(rng.uniform(0, args.ramp) if students > 1 else 0.0)
        for round_ in range(rounds):
            if not follow_script(rng, first + number + round_ * students):
                return

    def follow_script(rng: random.Random, index: int) -> bool:
        session = Session(url, api, http)
        lab_ok = True
        for endpoint, values in lecture_script(index, engine):
            time.sleep(rng.uniform(0.5, 3.0))
            if time.monotonic() > deadline:
                return False
            if endpoint in LAB_STATEFUL and not lab_ok:
                with lock:
                    skipped[endpoint] += 1
                continue
            timeout = max(5.0, min(args.request_timeout, deadline - time.monotonic() + 30.0))
            outcome = session.get("", timeout) if endpoint == "GET /" else session.call(endpoint, timeout, **values)
            if endpoint == "/sampling_distribution":
                lab_ok = outcome.ok
            with lock:
                outcomes[endpoint].append(outcome)
        return True

    threads = [threading.Thread(target=student, args=(i,), daemon=True) for i in range(students)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline + args.request_timeout + 60 - time.monotonic()))
    http.close()
    return outcomes, dict(skipped), time.monotonic() - start


def warm_up(url: str, api: Api, engine: bool = False) -> None:
    """Every endpoint of the script once per model, so that one student alone is not a model load."""
    http = http_client(1)
    for index in (WARM_UP, WARM_UP + 1):  # numbers no student has: the students' prompts stay uncached
        session = Session(url, api, http)
        for endpoint, values in lecture_script(index, engine):
            if endpoint != "GET /":
                session.call(endpoint, 600, **values)
    http.close()


def ratio(value: float, alone: float) -> float | None:
    return round(value / alone, 2) if alone else None


@contextmanager
def engines(slots: int):
    """Yield (extra app environment, [llama-server pids]): one llama-server per packaged GGUF and a
    models file naming them as `ENGINE_IDS` (each with its in-process model's tokenizer)."""
    from playground import models
    from playground.engines.server import LlamaServer

    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        entries, pids = [], []
        for model_id, engine_id in ENGINE_IDS.items():
            spec = models.get_spec(model_id)
            server = stack.enter_context(LlamaServer(models.gguf_path(spec), context=1024 * slots, slots=slots))
            pids.append(server.process.pid)
            entries.append(f'[[models]]\nid = "{engine_id}"\nrole = "{spec.role}"\nengine = "llama.cpp"\n'
                           f'base_url = "{server.base_url}"\ntokenizer = "{model_id}"\n')
        path = Path(folder) / "models.toml"
        path.write_text("\n".join(entries))
        yield {"PLAYGROUND_MODELS_FILE": str(path)}, pids


def run_path(name: str, args, report: dict) -> dict:
    """The whole series of runs (`args.students`) against one app: in-process models, or engines."""
    engine = name == "engine"
    counts = args.students if args.students[0] == 1 else [1, *args.students]
    path_report: dict = {"runs": {}}
    with ExitStack() as stack:
        extra_env, engine_pids = stack.enter_context(engines(args.slots)) if engine else ({}, [])
        url, pid = stack.enter_context(served_app(args.url if not engine else None, extra_env=extra_env,
                                                  log_name=f"bench-hall-{name}.log"))
        api = Api(url)
        api.require(*(e for e in ENDPOINTS if e.startswith("/")))
        warm_up(url, api, engine)
        sampler = RssSampler(pid)
        path_report["server_rss_after_warm_up_mb"] = mb(sampler.reset())
        if engine_pids:
            path_report["engines_rss_after_warm_up_mb"] = mb(sum(rss_bytes(p) for p in engine_pids))
        alone, first = None, 0
        for students in counts:
            start_rss = sampler.reset()
            rounds = args.alone_rounds if students == 1 else 1
            outcomes, skipped, seconds = run_students(url, api, students, args, first, rounds, engine)
            first += students * rounds
            time.sleep(3.0)
            final = rss_bytes(pid) if pid else 0
            endpoints = {e: {**outcome_summary(outcomes[e]), "skipped": skipped.get(e, 0)}
                         for e in ENDPOINTS if e in outcomes or e in skipped}
            everything = [o for found in outcomes.values() for o in found]
            run = {"students": students, "rounds": rounds, "seconds": round(seconds, 1), "requests": len(everything),
                   "totals": {k: v for k, v in outcome_summary(everything).items() if not k.endswith("_ms")},
                   "server_rss_mb": {"start": mb(start_rss), "peak": mb(max(sampler.peak, final)), "final": mb(final)},
                   "endpoints": endpoints}
            if engine_pids:
                run["engines_rss_mb_final"] = mb(sum(rss_bytes(p) for p in engine_pids))
            if alone is None:
                alone = endpoints
            else:
                run["vs_one_student"] = {e: {"p50_x": ratio(v["p50_ms"], alone.get(e, {}).get("p50_ms", 0)),
                                             "p95_x": ratio(v["p95_ms"], alone.get(e, {}).get("p95_ms", 0))}
                                         for e, v in endpoints.items()}
            path_report["runs"][str(students)] = run
            print(json.dumps({"path": name, "students": students, "seconds": run["seconds"], "totals": run["totals"],
                              "server_rss_mb": run["server_rss_mb"]}), flush=True)
            write_report(report, args.json_out, echo=False)  # after every run: a cut invocation keeps what finished
        sampler.stop()
    if not args.url or engine:
        path_report["server_log"] = log_report(f"bench-hall-{name}.log")
    path_report["table"] = {n: {e: [r["endpoints"][e]["p50_ms"], r["endpoints"][e]["p95_ms"]]
                                for e in ENDPOINTS if e in r["endpoints"]}
                            for n, r in path_report["runs"].items()}
    return path_report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="a running app (loopback only) for the in-process path; default: start one")
    parser.add_argument("--students", type=int, nargs="+", default=[1, 20, 50, 100])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ramp", type=float, default=20.0, help="students start within this many seconds")
    parser.add_argument("--max-seconds", type=float, default=600, help="per run: no request starts after this")
    parser.add_argument("--request-timeout", type=float, default=200.0, help="client-side, per request")
    parser.add_argument("--alone-rounds", type=int, default=3, help="times the one student runs the script")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=["in-process"],
                        help="in-process models, llama.cpp engines, or both side by side")
    parser.add_argument("--slots", type=int, default=4, help="the engine path: parallel slots per llama-server")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report = {"command": command_line(), "script": [endpoint for endpoint, _ in lecture_script(0)],
              "think_seconds": [0.5, 3.0], "ramp_seconds": args.ramp, "seed": args.seed, "paths": {}}
    for name in args.paths:
        report["paths"][name] = {}
        report["paths"][name] = run_path(name, args, report)
        write_report(report, args.json_out, echo=False)
    if len(args.paths) == 2:  # engine over in-process, per run and endpoint: p50 and p95 ratios
        ours, theirs = report["paths"]["in-process"]["runs"], report["paths"]["engine"]["runs"]
        report["engine_vs_in_process"] = {
            n: {e: {"p50_x": ratio(v["p50_ms"], ours[n]["endpoints"].get(e, {}).get("p50_ms", 0)),
                    "p95_x": ratio(v["p95_ms"], ours[n]["endpoints"].get(e, {}).get("p95_ms", 0))}
                for e, v in theirs[n]["endpoints"].items()}
            for n in theirs if n in ours}
    write_report(report, args.json_out)


if __name__ == "__main__":
    main()
