"""A class room under a hall of students, on loopback: N students join, follow 10 presenter steps and
answer 3 polls; join, follow and answer latency percentiles, errors and the server's RSS growth.

The presenter is one gradio session (`gradio_client`) that starts a class (`/class_start`), shows a
distribution in the Sampling lab and starts the polls (`/class_poll_next_token`, `/class_poll_count`,
`/class_poll_chat`) and reveals them (`/class_reveal`), as the page's buttons do. Its 10 steps are
what the page's 1 s timer sends: the class room's publish function called by its function index in
the presenter's session (`/gradio_api/run/predict`, the page's own route), each with a new link query
(`...&prompt=bench step k`). Each student is a coroutine doing what `assets/class_room.js` does: open
the page (`GET /?join=CODE`), then `GET /class-api/room/CODE?since=V` once a second (random phase),
and `POST /class-api/answer` with its random id when a poll is open.

- join: page plus first room view, per student (ms); students join spread over `--join-seconds`;
- follow: presenter's publish sent -> the student has the step's view or a later one (ms), every
  student, every step;
- answer: the POST's round trip (ms), every student, every poll;
- errors: non-200 answers, client exceptions, and steps a student never saw within 10 s;
- the server's CPU time per student request while following (independent of the machine's load,
  unlike the latencies: 300 students at 1 request a second need 300 x that per second);
- server RSS (after a warm-up class: the model loaded, 5 answers, a reveal): at the hall's start, once
  everyone joined (the pages), after the steps and after the polls; growth over the hall and after
  the joins (the room's own cost, beyond the page loads).

Bounded: `--students` at most 500, each phase has a deadline, the whole run `--max-seconds`.
Loopback only (127.0.0.1). What it leaves out: rendering in a browser (tests/browser/test_class_room.py).

    .venv/bin/python bench/bench_class.py --students 50 150 300 --json-out bench/results/class-cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.hall_http import command_line, mb, percentile, rss_bytes, served_app, write_report  # noqa: E402

MAX_STUDENTS = 500
STEPS = 10
STEP_GAP_S = 2.5
SEEN_WITHIN_S = 10.0
POLL_PERIOD_S = 1.0
MODEL = "gemma-3-270m"
GUESSES = ["the", "a", "Paris", "known", "one", "banana", "not", "home"]


def percentiles(values: list[float]) -> dict:
    return {"count": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99), "max": round(max(values), 1) if values else None}


class Presenter:
    def __init__(self, url: str):
        from gradio_client import Client

        self.url = url
        self.client = Client(url, verbose=False, httpx_kwargs={"timeout": 120})
        outputs = self.client.predict(api_name="/class_start")
        card = next(o for o in outputs if isinstance(o, str) and "class-code" in o)
        self.code = re.search(r'id="class-code">([A-Z0-9]{6})<', card).group(1)
        self.client.predict(model_id=MODEL, prompt="The capital of France is", api_name="/sampling_distribution")
        config = json.loads(__import__("urllib.request").request.urlopen(url + "config", timeout=60).read())
        self.publish = next(d for d in config["dependencies"] if "playgroundClassQuery" in str(d.get("js") or ""))
        values = {c["id"]: (c.get("props") or {}).get("value") for c in config["components"]}
        self.values = [values.get(i) for i in self.publish["inputs"]]  # each control's default, as a page sends

    def step(self, http, k: int) -> None:
        """What the page's timer sends: the lab's tab with a new prompt in the link query."""
        data = list(self.values)
        data[2] = f"tab=sampling&prompt=bench+step+{k}"
        response = http.post(self.url + "gradio_api/run/predict", timeout=60,
                             json={"data": data, "fn_index": self.publish["id"], "session_hash": self.client.session_hash,
                                   "event_data": None, "trigger_id": None})
        response.raise_for_status()

    def poll(self, kind: str) -> None:
        if kind == "next_token":
            self.client.predict(api_name="/class_poll_next_token")
        elif kind == "count":
            self.client.predict("Tokenization is surprisingly tricky.", "gemma-3-270m", ["r50k_base"],
                                api_name="/class_poll_count")
        else:
            self.client.predict(MODEL, "smollm2-135m-instruct", api_name="/class_poll_chat")

    def reveal(self) -> None:
        self.client.predict(api_name="/class_reveal")


async def student(number: int, url: str, code: str, http, record: dict, stop: asyncio.Event,
                  join_at: float) -> None:
    rng = random.Random(number)
    me = f"bench-{number:06d}-{rng.getrandbits(32):08x}"
    await asyncio.sleep(join_at)  # students scan the QR code over a while, not all in one instant
    start = time.perf_counter()
    try:
        page = await http.get(f"{url}?join={code}", timeout=60)
        view = await http.get(f"{url}class-api/room/{code}?since=-1", timeout=60)
        if page.status_code != 200 or view.status_code != 200:
            record["errors"].append(f"join: HTTP {page.status_code}/{view.status_code}")
            return
        record["join"].append(1000 * (time.perf_counter() - start))
        version, html = view.json()["version"], view.json()["html"]
    except Exception as exc:  # noqa: BLE001 - counted
        record["errors"].append(f"join: {type(exc).__name__}")
        return
    answered: set[str] = set()
    seen: set[int] = set()
    await asyncio.sleep(rng.random() * POLL_PERIOD_S)
    while not stop.is_set():
        tick = time.perf_counter()
        try:
            record["requests"] += 1
            response = await http.get(f"{url}class-api/room/{code}?since={version}", timeout=30)
            if response.status_code != 200:
                record["errors"].append(f"follow: HTTP {response.status_code}")
            else:
                data = response.json()
                if "html" in data:
                    version, html = data["version"], data["html"]
                    now = time.perf_counter()
                    shown = re.search(r"bench step (\d+)<", html)
                    for k, sent in list(record["sent"].items()):  # a later step shown: this one was followed
                        if shown and k not in seen and k <= int(shown.group(1)):
                            seen.add(k)
                            record["follow"].append(1000 * (now - sent))
        except Exception as exc:  # noqa: BLE001
            record["errors"].append(f"follow: {type(exc).__name__}")
        poll = re.search(r'class="class-poll" data-open="1" data-poll="([0-9a-f]+)"', html)
        if poll and poll.group(1) not in answered:
            answered.add(poll.group(1))
            kind = "chat" if "Which column" in html else "count" if "How many tokens" in html else "next_token"
            text = rng.choice(["A", "B"]) if kind == "chat" else str(rng.randint(4, 12)) if kind == "count" \
                else rng.choice(GUESSES)
            sent = time.perf_counter()
            try:
                answer = await http.post(f"{url}class-api/answer", json={"code": code, "student": me, "answer": text, "poll": poll.group(1)},
                                         timeout=30)
                record["answer"].append(1000 * (time.perf_counter() - sent))
                if answer.status_code != 200:
                    record["errors"].append(f"answer: HTTP {answer.status_code} {answer.text[:80]}")
                else:
                    record["answers"] += 1
            except Exception as exc:  # noqa: BLE001
                record["errors"].append(f"answer: {type(exc).__name__}")
        await asyncio.sleep(max(0.0, POLL_PERIOD_S - (time.perf_counter() - tick)))
    record["missed"] += sum(1 for k in record["sent"] if k not in seen)


async def hall(url: str, presenter: Presenter, students: int, deadline: float, join_seconds: float = 0.0,
               pid: int | None = None) -> dict:
    import httpx

    record = {"join": [], "follow": [], "answer": [], "errors": [], "sent": {}, "answers": 0, "missed": 0,
              "rss": {"start": rss_bytes(pid) if pid else 0}, "requests": 0}
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=students + 8, max_keepalive_connections=students + 8)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as http:
        tasks = [asyncio.create_task(student(n, url, presenter.code, http, record, stop, join_seconds * n / students))
                 for n in range(students)]
        while len(record["join"]) + len(record["errors"]) < students and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        record["rss"]["joined"] = rss_bytes(pid) if pid else 0
        cpu, requests, wall, client = cpu_seconds(pid), record["requests"], time.perf_counter(), time.process_time()
        sync = __import__("httpx").Client(trust_env=False)
        for k in range(1, STEPS + 1):
            record["sent"][k] = time.perf_counter()
            await asyncio.to_thread(presenter.step, sync, k)
            await asyncio.sleep(STEP_GAP_S)
        record["rss"]["followed"] = rss_bytes(pid) if pid else 0
        if pid:  # the server's CPU per student request while following (the presenter's 10 steps included)
            record["follow_cpu"] = {"server_cpu_s": round(cpu_seconds(pid) - cpu, 2),
                                    "bench_clients_cpu_s": round(time.process_time() - client, 2),
                                    "requests": record["requests"] - requests,
                                    "seconds": round(time.perf_counter() - wall, 1)}
        for kind in ("next_token", "count", "chat"):
            if time.monotonic() > deadline:
                record["errors"].append("the run's deadline came before the polls")
                break
            before = record["answers"]
            await asyncio.to_thread(presenter.poll, kind)
            answer_deadline = time.monotonic() + 20
            while record["answers"] - before < len(record["join"]) and time.monotonic() < answer_deadline:
                await asyncio.sleep(0.2)
            await asyncio.to_thread(presenter.reveal)
        await asyncio.sleep(SEEN_WITHIN_S - STEP_GAP_S)  # the last step's stragglers
        stop.set()
        await asyncio.gather(*tasks)
        sync.close()
    record["rss"]["polled"] = rss_bytes(pid) if pid else 0
    return record


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of the server process so far."""
    import psutil

    if not pid:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def warm_up(url: str) -> None:
    """A class of 5 through every poll, so the model, the tokenizers and the routes are warm."""
    presenter = Presenter(url)
    record = asyncio.run(hall(url, presenter, 5, time.monotonic() + 120))
    if record["errors"]:
        print(json.dumps({"warm_up_errors": record["errors"][:5]}), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--url", help="a running app on 127.0.0.1 (default: start one)")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="per hall")
    parser.add_argument("--join-seconds", type=float, default=20.0, help="students join spread over this long")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if any(n < 1 or n > MAX_STUDENTS for n in args.students):
        sys.exit(f"--students: 1 to {MAX_STUDENTS}")
    report = {"command": command_line(), "model": MODEL, "steps": STEPS, "polls": 3, "join_seconds": args.join_seconds,
              "targets": {"follow_p95_ms": 2000, "answer_p95_ms": 500, "errors": 0, "rss_growth_mb": 30},
              "load_average_start": [round(x, 1) for x in __import__("os").getloadavg()], "halls": []}
    with served_app(args.url, log_name="bench-class.log") as (url, pid):
        warm_up(url)
        for students in args.students:
            presenter = Presenter(url)
            started = time.monotonic()
            record = asyncio.run(hall(url, presenter, students, started + args.max_seconds, args.join_seconds, pid))
            rss = record["rss"]  # the presenter's session and room made before "start": the hall's cost only
            errors = record["errors"] + ["a step not seen within 10 s"] * record["missed"]
            hall_report = {"students": students, "seconds": round(time.monotonic() - started, 1),
                           "join_ms": percentiles(record["join"]), "follow_ms": percentiles(record["follow"]),
                           "answer_ms": percentiles(record["answer"]), "answers": record["answers"],
                           "follow_server_cpu": {**record.get("follow_cpu", {}), "ms_per_request": round(
                               1000 * record["follow_cpu"]["server_cpu_s"] / max(1, record["follow_cpu"]["requests"]), 2)}
                           if "follow_cpu" in record else None,
                           "errors": len(errors), "error_kinds": sorted(set(errors))[:10],
                           "server_rss_mb": {**{phase: mb(value) for phase, value in rss.items()},
                                             "growth": mb(rss["polled"] - rss["start"]),
                                             "growth_after_join": mb(rss["polled"] - rss["joined"])},
                           "load_average_end": [round(x, 1) for x in __import__("os").getloadavg()]}
            report["halls"].append(hall_report)
            print(json.dumps(hall_report), flush=True)
    write_report(report, args.json_out)


if __name__ == "__main__":
    main()
