"""In-process CPU decoding against its real peer, llama.cpp's llama-server, on the packaged GGUFs.

For each packaged model, in one run on this machine (both sides 2 threads, llama-server on loopback
with the same GGUF file the playground loads):

- `next_token_ms`: one next-token distribution after a prompt (the median over repeats): ours, the
  whole vocabulary's logits (`model_call.forward`), fp32 weights and the GGUF's blocks (gguf); llama-server, one
  completion token with 20 probabilities and the prompt cache off (the prompt is computed each time);
- `greedy`: 128 greedy tokens after a prompt (end-of-sequence ignored on both sides): ours through
  `generation.iter_generation` (the lab's loop: the whole distribution ranked and recorded every
  step), fp32 and gguf; llama-server's `/completion` with `n_probs` 20, timed by the wall clock
  (its own `predicted_per_second` beside it);
- `accuracy`: on every position of the lecture's prompts (ours decoded one token at a time, the path
  that reads the codes), KL(fp32 || gguf) of the next-token
  distribution and top-1 agreement of our gguf weights against our fp32 weights (the reference);
  and for llama-server, which returns only its top 20, the same two against fp32 where computable:
  top-1 agreement, and the KL of the distributions coarsened to llama's 20 tokens plus "the rest"
  (a lower bound of the true KL), given for our gguf weights too so the two compare;
- `kernels`: one token through a 262,144 x 640 layer (Gemma's output layer) on each CPU kernel:
  float32 and bfloat16 `linear`, `_weight_int8pack_mm`, `_weight_int4pack_mm_for_cpu` (groups of 32;
  float32 or bfloat16 activations; one plane or two) and the playground's own float32 kernel
  (`lowbit_mm.cpp`, 4- and 8-bit codes: what runs);
- `roofline`: bytes each decode step reads from the weights (fp32, our codes as stored, the GGUF's blocks)
  over this machine's memory bandwidth (a large numpy copy in the same run): the fastest a step
  could be if it did nothing but read its weights.

Ratios are ours over llama-server (tokens/s: ours / llama; latency: ours / llama). Prints JSON and
writes `bench/results/cpu-peer-cpu.json` (`--out` to change). Usage:
`.venv/bin/python bench/bench_cpu_peer.py [--models ...] [--tokens 128] [--repeats 7]`.
What it leaves out: beam search and the lecture's side-by-side poem (bench_hall.py times the demos),
the KV cache and attention in the roofline (small at these lengths).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PLAYGROUND_WEIGHTS"] = "fp32"  # loaded as the reference; the gguf twin is built below

import numpy as np  # noqa: E402
import torch  # noqa: E402

from playground import decoding, generation, lecture, lowbit, models  # noqa: E402
from playground.engines.client import EngineClient  # noqa: E402
from playground.engines.server import LlamaServer  # noqa: E402
from playground.model_call import forward, forward_all  # noqa: E402
from playground.sampling import SamplingSettings  # noqa: E402
from timing import median_ms  # noqa: E402

THREADS = 2
GREEDY = SamplingSettings(temperature=0.0)
PROMPT = "Once upon a time, in a small village by the sea,"
TOP_N = 20


def lecture_prompts() -> list[str]:
    """The prompts of the lecture's model demos (the sampling, chat and inside tabs)."""
    found = []
    for demo in lecture.DEMOS:
        text = demo.query.get("prompt") or demo.query.get("text")
        if text and demo.tab in ("sampling", "chat", "inside") and text not in found:
            found.append(text)
    return found


def bandwidth_gb_s(megabytes: int = 512, repeats: int = 5) -> float:
    """Memory bandwidth from a large numpy copy (bytes read + bytes written per second)."""
    source = np.ones(megabytes * (1 << 20) // 8)
    target = np.empty_like(source)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return round(2 * source.nbytes / best / 1e9, 2)


def step_bytes(model) -> int:
    """Bytes of weights one decode step reads (linear layers and output layer; one embedding row)."""
    total = 0
    for module in model.modules():
        if isinstance(module, lowbit.LowBitLinear):
            total += module.codes.nbytes + module.scale.nbytes + module.minimum.nbytes
        elif isinstance(module, torch.nn.Linear):
            total += module.weight.nbytes
    return total


def gguf_step_bytes(path) -> int:
    """Bytes of the GGUF's matrices one llama.cpp step reads (every 2-D tensor but the embedding,
    plus the output matrix: the embedding matrix itself when tied)."""
    tensors = lowbit.read_tensors(path)
    total = sum(t.data.nbytes for name, t in tensors.items() if len(t.shape) == 2 and name != "token_embd.weight")
    if "output.weight" not in tensors:
        total += tensors["token_embd.weight"].data.nbytes
    return total


def kernels(rows: int = 262144, columns: int = 640, repeats: int = 7) -> dict:
    """One token through a layer shaped like Gemma's output layer, on each CPU kernel (ms)."""
    x = torch.randn(1, columns)
    weight = torch.randn(rows, columns) * 0.02
    codes = torch.randint(0, 16, (rows, 2 * columns), dtype=torch.int32)
    packed1 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes[:, :columns].contiguous(), 1)
    packed2 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
    scale_zero1 = (torch.rand(columns // 32, rows, 2) * 0.01).bfloat16()
    scale_zero2 = (torch.rand(2 * columns // 32, rows, 2) * 0.01).bfloat16()
    int8 = torch.randint(-128, 127, (rows, columns), dtype=torch.int8)
    scales = torch.rand(rows)
    int4mm = torch.ops.aten._weight_int4pack_mm_for_cpu
    lowbit.kernel_available()  # builds or loads the playground's kernel
    ours4 = (torch.randint(0, 256, (rows, columns // 32, 16), dtype=torch.uint8), torch.rand(rows, columns // 32) * 0.01,
             -torch.rand(rows, columns // 32) * 0.05, 4)
    ours8 = (torch.randint(0, 256, (rows, columns // 32, 32), dtype=torch.uint8), *ours4[1:3], 8)
    cases = {
        "fp32_linear": lambda: torch.nn.functional.linear(x, weight),
        "bf16_linear": (lambda w=weight.bfloat16(): torch.nn.functional.linear(x.bfloat16(), w)),
        "int8pack_mm_fp32_activations": lambda: torch.ops.aten._weight_int8pack_mm(x, int8, scales),
        "int8pack_mm_bf16_activations": (lambda s=scales.bfloat16(): torch.ops.aten._weight_int8pack_mm(x.bfloat16(), int8, s)),
        "int4pack_mm_g32_fp32_activations": (lambda s=scale_zero1.float(): int4mm(x, packed1, 32, s)),
        "int4pack_mm_g32_bf16_one_plane": lambda: int4mm(x.bfloat16(), packed1, 32, scale_zero1),
        "int4pack_mm_g32_bf16_two_planes": lambda: int4mm(x.bfloat16().repeat(1, 2), packed2, 32, scale_zero2),
        "playground_lowbit_4bit_fp32": lambda: torch.ops.playground_lowbit.mm(x, *ours4),
        "playground_lowbit_8bit_fp32": lambda: torch.ops.playground_lowbit.mm(x, *ours8),
    }
    timed = {name: median_ms(fn, repeats, digits=3) for name, fn in cases.items()}
    return {"shape": [rows, columns], "tokens": 1, "ms": timed,
            "note": "torch's int4 kernel: Q4 one plane = 4.5 bits per weight read, Q8_0 as two planes = 9, bfloat16 "
                    "activations; the playground's (lowbit_mm.cpp, what runs): 4-bit codes + float32 scale and "
                    "minimum = 6 bits per weight, 8-bit = 10, float32 activations and sums"}


def gguf_twin(loaded):
    """The same model with gguf weights (the float32 tensors shared, not copied)."""
    shared = {id(t): t for t in [*loaded.model.parameters(), *loaded.model.buffers()]}
    model = copy.deepcopy(loaded.model, shared)
    report = lowbit.convert(model, models.gguf_path(loaded.spec))
    return dataclasses.replace(loaded, model=model, weights="gguf", weights_note=report.summary(),
                               runtime=models.ModelRuntime(), forward_calls=0)


def greedy_ours(loaded, ids: list[int], tokens: int) -> tuple[float, list[int]]:
    endless = dataclasses.replace(loaded, eos_token_ids=())  # 128 tokens whatever comes
    decoder = generation.Decoder(endless, ids)
    start = time.perf_counter()
    records = list(generation.iter_generation(decoder, GREEDY, tokens, seed=0))
    seconds = time.perf_counter() - start
    return seconds, [r.id for r in records]


def greedy_llama(client, ids: list[int], tokens: int) -> tuple[float, dict]:
    start = time.perf_counter()
    answer = client.post("/completion", {"prompt": ids, "n_predict": tokens, "n_probs": TOP_N, "temperature": 0,
                                         "ignore_eos": True, "cache_prompt": False})
    return time.perf_counter() - start, answer


def llama_top(client, ids: list[int]) -> list[tuple[int, float]]:
    """llama-server's top 20 (id, probability) after `ids` (the raw model's, before sampling)."""
    answer = client.post("/completion", {"prompt": ids, "n_predict": 1, "n_probs": TOP_N, "temperature": 0,
                                         "cache_prompt": False})
    first = answer["completion_probabilities"][0]
    items = first.get("top_logprobs") or first.get("probs")
    return [(int(i["id"]), math.exp(i["logprob"]) if "logprob" in i else float(i["prob"])) for i in items]


def coarse_kl(p: torch.Tensor, top: list[tuple[int, float]]) -> float:
    """KL(p || q) over q's listed tokens plus one bucket for the rest (a lower bound of the KL)."""
    ids = torch.tensor([i for i, _ in top])
    q = torch.tensor([prob for _, prob in top], dtype=torch.float64)
    p_top = p[ids].double()
    p_rest, q_rest = max(1.0 - float(p_top.sum()), 1e-12), max(1.0 - float(q.sum()), 1e-12)
    keep = p_top > 0
    return float((p_top[keep] * (p_top[keep] / q[keep]).log()).sum() + p_rest * math.log(p_rest / q_rest))


def accuracy(reference, gguf, client, prompts: list[str], llama_positions: str = "all") -> dict:
    kls, agree, coarse_ours, coarse_llama, agree_llama = [], [], [], [], []
    for text in prompts:
        ids = decoding.prompt_ids(reference, text)
        with torch.inference_mode():
            p_log = torch.log_softmax(forward_all(reference, torch.tensor([ids]))[0].float(), -1)
            # ours one position at a time: the decode path, which reads the codes (a whole prompt
            # at once would take the float32 matmul, bit for bit the reference's)
            stepper = decoding.Stepper(gguf, ids[:1])
            rows = [stepper.logits.clone()] + [stepper.append(token).clone() for token in ids[1:]]
            q_log = torch.log_softmax(torch.stack(rows).float(), -1)
        kls += (p_log.exp() * (p_log - q_log)).sum(-1).tolist()
        agree += (p_log.argmax(-1) == q_log.argmax(-1)).tolist()
        for position in range(len(ids)) if llama_positions == "all" else [len(ids) - 1]:
            top = llama_top(client, ids[: position + 1])
            p = p_log[position].exp()
            coarse_llama.append(coarse_kl(p, top))
            q = q_log[position].exp()
            coarse_ours.append(coarse_kl(p, [(i, float(q[i])) for i, _ in top]))
            agree_llama.append(top[0][0] == int(p_log[position].argmax()))
    return {
        "positions": len(kls), "llama_positions": len(agree_llama),
        "prompts": prompts,
        "gguf_kl_mean": statistics.mean(kls), "gguf_kl_max": max(kls),
        "gguf_top1_agreement": sum(agree) / len(agree),
        "llama_top1_agreement": sum(agree_llama) / len(agree_llama),
        "coarse_kl_note": "KL over llama-server's 20 listed tokens plus one bucket for the rest: a lower bound of the KL",
        "gguf_coarse_kl_mean": statistics.mean(coarse_ours),
        "llama_coarse_kl_mean": statistics.mean(coarse_llama),
    }


def bench_model(model_id: str, tokens: int, repeats: int, bandwidth: float, llama_positions: str = "all") -> dict:
    reference = models.load_model(model_id)
    gguf = gguf_twin(reference)
    path = models.gguf_path(reference.spec)
    ids = decoding.prompt_ids(reference, PROMPT)
    result = {"model": model_id, "gguf": path.name, "gguf_layers": gguf.weights_note, "prompt_tokens": len(ids)}
    with LlamaServer(path, threads=THREADS) as server, EngineClient(server.config(token_prompts=True), timeout=600) as client:
        prompt = torch.tensor([ids])
        ours = {name: median_ms(lambda m=m: forward(m, prompt), repeats) for name, m in (("fp32", reference), ("gguf", gguf))}
        llama = median_ms(lambda: llama_top(client, ids), repeats)
        result["next_token_ms"] = {"ours_fp32": ours["fp32"], "ours_gguf": ours["gguf"], "llama_server": llama,
                                   "ratio_gguf_over_llama": round(ours["gguf"] / llama, 2),
                                   "ratio_fp32_over_llama": round(ours["fp32"] / llama, 2)}
        greedy = {}
        for name, loaded in (("fp32", reference), ("gguf", gguf)):
            greedy_ours(loaded, ids, 4)  # warm-up
            seconds, tokens_out = greedy_ours(loaded, ids, tokens)
            greedy[name] = {"tokens": len(tokens_out), "seconds": round(seconds, 3),
                            "tokens_per_s": round(len(tokens_out) / seconds, 2), "ids": tokens_out}
        greedy_llama(client, ids, 4)
        seconds, answer = greedy_llama(client, ids, tokens)
        llama_ids = [int(p["id"]) for p in answer.get("completion_probabilities", [])]
        greedy["llama_server"] = {"tokens": answer.get("tokens_predicted", tokens), "seconds": round(seconds, 3),
                                  "tokens_per_s": round(answer.get("tokens_predicted", tokens) / seconds, 2),
                                  "predicted_per_second": round(answer.get("timings", {}).get("predicted_per_second", 0), 2),
                                  "ids": llama_ids}
        for name in ("fp32", "gguf"):
            greedy[f"ratio_{name}_over_llama"] = round(greedy[name]["tokens_per_s"] / greedy["llama_server"]["tokens_per_s"], 2)
        same = lambda a, b: next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))  # noqa: E731
        greedy["same_tokens_before_divergence"] = {"gguf_vs_fp32": same(greedy["gguf"]["ids"], greedy["fp32"]["ids"]),
                                                   "llama_vs_fp32": same(llama_ids, greedy["fp32"]["ids"])}
        for entry in ("fp32", "gguf", "llama_server"):
            greedy[entry].pop("ids")
        result["greedy"] = greedy
        result["accuracy"] = accuracy(reference, gguf, client, lecture_prompts(), llama_positions)
    bytes_fp32, bytes_ours, bytes_file = step_bytes(reference.model), step_bytes(gguf.model), gguf_step_bytes(path)
    result["roofline"] = {
        "bandwidth_gb_s": bandwidth,
        "bytes_per_step": {"fp32": bytes_fp32, "gguf": bytes_ours, "llama_gguf": bytes_file},
        "min_ms_per_step": {name: round(b / (bandwidth * 1e9) * 1000, 2) for name, b in
                            (("fp32", bytes_fp32), ("gguf", bytes_ours), ("llama_gguf", bytes_file))},
        "measured_ms_per_step": {"fp32": round(1000 / greedy["fp32"]["tokens_per_s"], 2),
                                 "gguf": round(1000 / greedy["gguf"]["tokens_per_s"], 2),
                                 "llama_server": round(1000 / greedy["llama_server"]["tokens_per_s"], 2)},
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--llama-positions", choices=("all", "last"), default="all",
                        help="ask llama-server after every prefix of each prompt, or after the whole prompt only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu-peer-cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    bandwidth = bandwidth_gb_s()
    results = {"machine": {"cpus": os.cpu_count(), "threads": THREADS, "torch": torch.__version__,
                           "platform": platform.platform(), "bandwidth_gb_s": bandwidth},
               "kernels": kernels(repeats=args.repeats),
               "command": " ".join(["bench/bench_cpu_peer.py", *sys.argv[1:]]),
               "load_average_before": os.getloadavg(),
               "models": [bench_model(m, args.tokens, args.repeats, bandwidth, args.llama_positions) for m in args.models]}
    results["load_average_after"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
