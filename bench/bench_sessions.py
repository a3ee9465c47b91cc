"""Sessions bench: what idle sampling-lab sessions cost the server (issue 13, item 1), on loopback.

Starts the real app on a free 127.0.0.1 port (or uses `--url`, loopback only), loads both packaged
models with one request each (`/sampling_distribution` on `gemma-3-270m`, then on
`smollm2-135m-instruct`) and takes the server's RSS as the baseline. Then `--sessions` gradio
sessions (raw HTTP, each its own session_hash, `--concurrency` at a time; see `hall_http`) each run
`/sampling_distribution` (the two models alternate, every prompt differs) and a `--tokens`-token
`/sampling_generate`, and go idle: the server keeps their `gr.State` as for an open tab. It prints
the server's RSS after every 50 sessions, its peak (sampled every 0.2 s), the final RSS above the
baseline (after `--idle-seconds` of quiet) and the growth per idle session: the least-squares
slope of RSS against sessions over the second half of the run.

The peer, in the same run: what the old lab held per session, with plain transformers in this
process: both models loaded (`AutoModelForCausalLM` from the playground's safetensors cache), and per
session one DynamicCache after the prompt and `--tokens` sampled tokens, the last logits, their
softmax and the top-1000 candidates (the old `LabState.decoder` and `.ranked`). `--peer-sessions`
(30) of them, then per-session cost = RSS slope (and the exact tensor bytes), extrapolated to
`--sessions`. Both are printed side by side with their ratio.

Targets (issue 13): at most 1.5 GB above the baseline after 300 sessions, <= 1 MB per idle session.
Bounded: no session starts after `--max-seconds` (default 1500; the peer runs only if time is left)
and every request has a client-side timeout; the JSON then says how many sessions finished.

Usage: `.venv/bin/python bench/bench_sessions.py [--sessions 300] [--concurrency 4] [--json-out F]`.
What it leaves out: browser rendering, the client's own memory, memory that is only reclaimed when
Gradio drops a session (hours later).
"""

from __future__ import annotations

import argparse
import threading
import time

from hall_http import (Api, Session, command_line, http_client, log_report, mb, outcome_summary, rss_bytes,
                       RssSampler, served_app, slope, write_report)

MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):", "My favourite colour is",
           "The weather today", "In 1492 Columbus", "Water boils at", "The quick brown fox"]
LOG_NAME = "bench-sessions.log"


def prompt_for(index: int) -> str:
    return f"{PROMPTS[index % len(PROMPTS)]} (student {index})"


def request_timeout(deadline: float, cap: float = 180.0) -> float:
    """A request's client-side timeout: `cap`, cut so that the run ends soon after its deadline."""
    return max(5.0, min(cap, deadline - time.monotonic() + 30.0))


def run_ours(args, deadline: float) -> dict:
    with served_app(args.url, log_name=LOG_NAME) as (url, pid):
        api = Api(url)
        api.require("/sampling_distribution", "/sampling_generate")
        http = http_client(args.concurrency)
        loading = [Session(url, api, http).call("/sampling_distribution", 600, model_id=model, prompt="Hello")
                   for model in MODELS]
        if not all(o.ok for o in loading):
            raise SystemExit(f"loading the models failed: {[o.error for o in loading]}")
        time.sleep(2.0)
        baseline = rss_bytes(pid)
        sampler = RssSampler(pid)
        outcomes: dict[str, list] = {"/sampling_distribution": [], "/sampling_generate": []}
        points: list[tuple[int, int]] = [(0, baseline)]  # (sessions done, RSS)
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "complete": 0}

        def worker() -> None:
            while True:
                with lock:
                    index = state["next"]
                    if index >= args.sessions or time.monotonic() > deadline:
                        return
                    state["next"] += 1
                session = Session(url, api, http)
                shown = session.call("/sampling_distribution", request_timeout(deadline),
                                     model_id=MODELS[index % 2], prompt=prompt_for(index))
                generated = session.call("/sampling_generate", request_timeout(deadline), n=args.tokens,
                                         seed=index) if shown.ok else None
                with lock:
                    outcomes["/sampling_distribution"].append(shown)
                    if generated is not None:
                        outcomes["/sampling_generate"].append(generated)
                    state["done"] += 1
                    state["complete"] += bool(generated is not None and generated.ok)
                    if state["done"] % 10 == 0:
                        points.append((state["done"], rss_bytes(pid)))

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(args.idle_seconds)
        final = rss_bytes(pid)
        sampler.stop()
        done = state["done"]
        half = [(n, rss) for n, rss in points if n >= done / 2]
        per_session = slope(half)
        return {
            "sessions_requested": args.sessions, "sessions_done": done,
            "sessions_complete": state["complete"], "seconds": round(elapsed, 1),
            "baseline_mb": mb(baseline), "peak_mb": mb(max(sampler.peak, final)),
            "final_mb": mb(final), "final_above_baseline_mb": mb(final - baseline),
            "peak_above_baseline_mb": mb(max(sampler.peak, final) - baseline),
            "rss_every_50_mb": {n: mb(rss) for n, rss in points if n % 50 == 0},
            "rss_points_mb": [[n, mb(rss)] for n, rss in points],
            "growth_per_idle_session_mb": round(per_session / 2**20, 3) if per_session is not None else None,
            "growth_fit": f"least squares over {len(half)} points, sessions {half[0][0]}-{half[-1][0]}"
            if half else None,
            "endpoints": {name: outcome_summary(found) for name, found in outcomes.items()},
            "server_log": log_report(LOG_NAME) if not args.url else None,
        }


def tensor_bytes(value) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    layers = getattr(value, "layers", None)  # a transformers Cache
    if layers is not None:
        return sum(tensor_bytes([getattr(layer, "keys", None), getattr(layer, "values", None)]) for layer in layers)
    return 0


def run_peer(args, deadline: float) -> dict:
    """The old lab's per-session state with plain transformers, in this process (module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from playground.models import cache_dir, get_spec

    torch.manual_seed(0)
    models = {}
    for model_id in MODELS:
        directory = cache_dir(get_spec(model_id))
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, trust_remote_code=False).eval()
        models[model_id] = (model, AutoTokenizer.from_pretrained(directory, trust_remote_code=False))
    held: list[dict] = []

    def one_session(index: int) -> dict:
        model, tokenizer = models[MODELS[index % 2]]
        ids = torch.tensor([tokenizer(prompt_for(index)).input_ids])
        generator = torch.Generator().manual_seed(index)
        with torch.inference_mode():
            out = model(ids, use_cache=True, logits_to_keep=1)  # transformers 5: `cache`, not past_key_values
            cache, logits = out.cache, out.logits[0, -1].float()
            for _ in range(args.tokens):
                token = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
                out = model(token.view(1, 1), cache=cache, use_cache=True, logits_to_keep=1)
                cache, logits = out.cache, out.logits[0, -1].float().clone()
        probs = torch.softmax(logits, -1)
        return {"cache": cache, "logits": logits, "raw_probs": probs, "top": torch.topk(logits, 1000)}

    one_session(0), one_session(1)  # warm-up: first-call allocations are not a session's
    baseline = rss_bytes()
    points = [(0, baseline)]
    started = time.monotonic()
    for index in range(args.peer_sessions):
        if time.monotonic() > deadline:
            break
        held.append(one_session(index))
        points.append((len(held), rss_bytes()))
    per_session = slope(points)
    exact = sum(tensor_bytes(s) for s in held) / max(1, len(held))
    return {
        "what": "plain transformers in this process, one DynamicCache + last logits + softmax + top-1000 per session",
        "sessions": len(held), "seconds": round(time.monotonic() - started, 1), "baseline_mb": mb(baseline),
        "final_above_baseline_mb": mb(points[-1][1] - baseline),
        "per_session_mb": round(per_session / 2**20, 3) if per_session is not None else None,
        "tensor_bytes_per_session_mb": round(exact / 2**20, 3),
        f"extrapolated_{args.sessions}_sessions_mb": round(per_session * args.sessions / 2**20, 1)
        if per_session is not None else None,
        "rss_points_mb": [[n, mb(rss)] for n, rss in points],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="a running app (loopback only); default: start one")
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=20, help="tokens each session generates")
    parser.add_argument("--peer-sessions", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="quiet time before the final RSS")
    parser.add_argument("--max-seconds", type=float, default=1500)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    report = {"command": command_line(), "targets": {"final_above_baseline_mb": 1536, "per_idle_session_mb": 1.0}}
    report["ours"] = ours = run_ours(args, deadline)
    report["peer"] = peer = run_peer(args, deadline) if time.monotonic() < deadline else {"skipped": "no time left"}
    ours_per, peer_per = ours["growth_per_idle_session_mb"], peer.get("per_session_mb")
    report["side_by_side"] = {
        "per_idle_session_mb": {"ours": ours_per, "peer": peer_per,
                                "peer_over_ours": round(peer_per / ours_per, 1) if ours_per and peer_per else None},
        f"above_baseline_after_{args.sessions}_mb": {
            "ours": ours["final_above_baseline_mb"] if ours["sessions_done"] == args.sessions else None,
            "peer_extrapolated": peer.get(f"extrapolated_{args.sessions}_sessions_mb")},
    }
    report["targets_met"] = {
        "final_above_baseline": ours["sessions_done"] == args.sessions and ours["final_above_baseline_mb"] <= 1536,
        "per_idle_session": ours_per is not None and ours_per <= 1.0,
    }
    if ours["sessions_done"] < args.sessions:
        report["note"] = f"stopped at --max-seconds: {ours['sessions_done']} of {args.sessions} sessions ran"
    write_report(report, args.json_out)


if __name__ == "__main__":
    main()
