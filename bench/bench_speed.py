"""Lecture-scale speed: ours against plain transformers, on the CPU or a CUDA GPU, in one run.

Prints one JSON document with, per model:
- `next_token_ms`: median latency of one next-token distribution for a 32-token prompt. Peer:
  `model(ids).logits[0, -1].softmax(-1)`. Ours: the app's path (`batching.next_token_logits`, which
  on CUDA replays a captured static-cache graph for a lone request).
- `generate_tokens_per_s`: greedy generation of N tokens. Peer: `model.generate(do_sample=False,
  output_scores=True, return_dict_in_generate=True)`. Ours: `decoding.Stepper` recording the full
  probability vector (on the CPU) at every step. Both must give the same tokens.
- `requests_per_s`: next-token requests per second with 1, 8, 32, 64 concurrent clients (threads,
  32-token prompts, each client sends the same number of requests). Peer: each client calls the
  model itself. Ours: the cross-session batcher.
- `operators_per_decode_step`: operators (not views) dispatched for one decode step: ours (the
  fused Llama pass when the model qualifies), transformers' model over a static cache (what the
  graphs replayed before), transformers' plain dynamic-cache call. On a GPU each is a kernel launch.
- on the CPU, `dtype`: bf16 against fp32 (latency, tokens/s, max |p_bf16 - p_fp32| over prompts).

Models: the packaged ones when installed; random weights of the same shapes otherwise (a GPU
machine has no packaged weights). Usage:
`.venv/bin/python bench/bench_speed.py [--models ID ...] [--new-tokens N] [--clients 1 8 32 64]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import timing  # noqa: E402  (bench/ is on sys.path)
from playground import batching, decoding, models  # noqa: E402
from playground.opcount import count_operators  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, device, repeats: int) -> float:
    """`timing.median_ms` of `fn` with the device synchronised after each call."""
    def synced():
        fn()
        sync(device)
    return timing.median_ms(synced, repeats, digits=3)


def prompt(loaded, length: int, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(100, min(loaded.vocab_size, 20000), (length,), generator=generator).tolist()


@torch.inference_mode()
def peer_next_token(loaded, ids):
    return loaded.model(input_ids=torch.tensor([ids], device=loaded.device)).logits[0, -1].float().softmax(-1)


def ours_next_token(loaded, ids):
    return batching.next_token_logits(loaded, ids).softmax(-1)


def next_token(loaded, repeats) -> dict:
    ids = prompt(loaded, 32)
    diff = (peer_next_token(loaded, ids).cpu() - ours_next_token(loaded, ids)).abs().max().item()
    peer = median_ms(lambda: peer_next_token(loaded, ids), loaded.device, repeats)
    ours = median_ms(lambda: ours_next_token(loaded, ids), loaded.device, repeats)
    return {"transformers_ms": peer, "ours_ms": ours, "speedup": round(peer / ours, 2), "max_prob_diff": diff}


def generation(loaded, new_tokens: int) -> dict:
    ids = prompt(loaded, 32, seed=1)
    eos = None  # generate exactly new_tokens in both

    @torch.inference_mode()
    def peer():
        out = loaded.model.generate(
            input_ids=torch.tensor([ids], device=loaded.device), attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=loaded.device),
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, output_scores=True,
            return_dict_in_generate=True, eos_token_id=eos, pad_token_id=0,
        )
        return out.sequences[0, len(ids):].tolist()

    def ours():
        tokens, recorded = [], []
        with decoding.Stepper(loaded, ids) as stepper:
            logits = stepper.logits
            for _ in range(new_tokens):
                recorded.append(logits.softmax(-1))  # the full distribution at every step, on the CPU
                tokens.append(int(logits.argmax()))
                logits = stepper.append(tokens[-1])
        return tokens

    from playground import fastpath

    runs = {"transformers": peer, "ours_stepper": ours}
    pool = fastpath.pool_for(loaded)
    if pool is not None and loaded.device.type == "cuda":
        def ours_device():
            decoder = pool.acquire()
            try:
                return fastpath.generate_on_device(decoder, ids, new_tokens)[0]
            finally:
                pool.release(decoder)
        runs["ours_device_loop"] = ours_device
    tokens = {name: fn() for name, fn in runs.items()}  # warm-up, and the tokens to compare
    sync(loaded.device)
    timings = {}
    for name, fn in runs.items():
        start = time.perf_counter()
        for _ in range(2):
            fn()
        sync(loaded.device)
        timings[name] = round(2 * new_tokens / (time.perf_counter() - start), 1)
    best = max((name for name in runs if name != "transformers"), key=timings.get)
    return {"transformers_tokens_per_s": timings["transformers"], "ours_tokens_per_s": timings[best],
            "ours_path": best, "all_tokens_per_s": timings,
            "speedup": round(timings[best] / timings["transformers"], 2),
            "same_tokens": all(t == tokens["transformers"] for t in tokens.values()), "new_tokens": new_tokens,
            "tokens_before_first_difference": {name: _common_prefix(t, tokens["transformers"]) for name, t in tokens.items()}}


def _common_prefix(a: list[int], b: list[int]) -> int:
    """How many greedy tokens agree before the first difference (bf16 near-ties can flip one)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def operators_per_decode_step(loaded) -> dict:
    from playground import fastpath, fused_llama

    ids = prompt(loaded, 32, seed=2)
    steps = {}
    if fastpath.StaticDecoder.supported(loaded):
        for name, fused in (("ours_fused_llama", True), ("transformers_static_cache", False)):
            if fused and not fused_llama.supports(loaded.model):
                continue
            decoder = fastpath.StaticDecoder(loaded, max_len=256, use_graphs=False, fused=fused)
            decoder.prefill(ids)
            steps[name] = lambda decoder=decoder: decoder.step(5)
    _, cache = decoding.forward(loaded, torch.tensor([ids]))
    steps["transformers_dynamic_cache"] = lambda: decoding.forward(loaded, torch.tensor([[5]]), cache)
    return {name: count_operators(step) for name, step in steps.items()}


def throughput(loaded, clients: int, requests_per_client: int, fn) -> float:
    prompts = [[prompt(loaded, 32, seed=100 * c + r) for r in range(requests_per_client)] for c in range(clients)]

    def client(index):
        for ids in prompts[index]:
            fn(loaded, ids)
        sync(loaded.device)

    _, seconds = timing.in_threads(client, clients)
    return round(clients * requests_per_client / seconds, 1)


def requests_per_second(loaded, client_counts, budget_requests: int) -> dict:
    report = {}
    for clients in client_counts:
        per_client = max(2, budget_requests // clients)
        throughput(loaded, clients, 1, peer_next_token)  # warm-up
        peer = throughput(loaded, clients, per_client, peer_next_token)
        ours = throughput(loaded, clients, per_client, lambda m, ids: ours_next_token(m, ids))
        report[f"{clients}_clients"] = {"transformers": peer, "ours": ours, "speedup": round(ours / peer, 2)}
    return report


def cpu_dtypes(model_id: str, new_tokens: int) -> dict:
    """bf16 against fp32 on the CPU, same prompts: speed and the largest probability difference."""
    report = {}
    texts = ["The capital of France is", "Once upon a time", "def fibonacci(n):", "1, 2, 3, 4,"]
    probs = {}
    for dtype in ("float32", "bfloat16"):
        os.environ["PLAYGROUND_DTYPE"] = dtype
        models._LOADED.pop(model_id, None)
        loaded = models.load_model(model_id)
        probs[dtype] = [peer_next_token(loaded, loaded.tokenizer(t)["input_ids"]).cpu() for t in texts]
        ids = prompt(loaded, 32)
        report[dtype] = {"next_token_ms": median_ms(lambda: peer_next_token(loaded, ids), loaded.device, 5),
                         "generate_tokens_per_s": generation(loaded, new_tokens)["ours_tokens_per_s"]}
    os.environ.pop("PLAYGROUND_DTYPE")
    models._LOADED.pop(model_id, None)
    report["max_abs_prob_diff"] = max((a - b).abs().max().item() for a, b in zip(probs["float32"], probs["bfloat16"]))
    report["bf16_within_1e-3"] = report["max_abs_prob_diff"] <= 1e-3
    report["bf16_faster"] = report["bfloat16"]["next_token_ms"] < report["float32"]["next_token_ms"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 8, 32, 64])
    parser.add_argument("--requests", type=int, default=None, help="requests per client count")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-dtype", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    packaged = ["smollm2-135m-instruct", "gemma-3-270m"]
    chosen = args.models or [m if models.availability(models.get_spec(m))[0] and device.type == "cpu" else f"random:{m.removesuffix('-instruct')}"
                             for m in packaged]
    budget = args.requests or (640 if device.type == "cuda" else 32)
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
              "torch": torch.__version__, "models": {}}
    for model_id in chosen:
        loaded = models.load_model(model_id)
        entry = {"dtype": str(loaded.dtype).replace("torch.", ""), "load_seconds": round(loaded.load_seconds, 2)}
        entry["next_token_ms"] = next_token(loaded, args.repeats)
        entry["generate"] = generation(loaded, args.new_tokens)
        entry["operators_per_decode_step"] = operators_per_decode_step(loaded)
        entry["requests_per_s"] = requests_per_second(loaded, args.clients, budget)
        entry["fast_path"] = {"decoder_pool": bool(loaded.runtime.peek("decoder-pool")),
                              "static_batched": bool(loaded.runtime.peek("static-batched")),
                              "errors": dict(loaded.runtime.failures)}
        report["models"][model_id] = entry
        print(json.dumps({model_id: entry}), file=sys.stderr, flush=True)
    if device.type == "cpu" and not args.skip_dtype:
        report["cpu_dtype"] = {m: cpu_dtypes(m, 16) for m in chosen if m in packaged}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
