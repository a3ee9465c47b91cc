"""Grammar engines on Gemma 3's 262,144-token vocabulary, printed as one JSON document
(`python bench/bench_grammar.py [--libraries ...] [--repeats 3] [--walks 5] [--generation]`).

For each library (llguidance, xgrammar, outlines-core) and each constraint kind (a small JSON schema,
a regular expression, a choice list): the time to build the library's tokenizer view once, the
compile time of the constraint (best of `--repeats`), and the time of each step's token mask
(the library's bitmask for the next token, unpacked to the vocabulary and counted) while the
walk consumes a valid text token by token: median and p95 in milliseconds (target <= 5 ms median).
The walk at each step takes the longest allowed token that continues the target text, so every
library walks a text of the same bytes. `--generation` adds the 64-token constrained generation
on the real model against the unconstrained one in the same run (`playground.constraints`).
What it leaves out: GBNF (each library spells grammars differently), batching of matchers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import write_report  # noqa: E402
from playground import models, token_text  # noqa: E402

MODEL = "gemma-3-270m"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 24},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
REGEX = r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
CHOICES = ["Paris", "London", "Berlin", "Rome"]
TARGETS = {"json_schema": ['{"name":"Ada Lovelace","age":36}', '{"name": "Ada Lovelace", "age": 36}'],
           "regex": ["1969-07-20"], "choices": ["Berlin"]}


def unpack(bitmask: torch.Tensor, vocab: int) -> torch.Tensor:
    """A library's int32 bitmask (bit i of word i // 32 allows token i) as a bool vector."""
    bits = np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[:vocab]
    return torch.from_numpy(bits).bool()


def walk(step_mask, consume, table, target: bytes, max_steps: int = 64) -> tuple[list[float], int]:
    """Consume `target` token by token (the longest allowed token that continues it): each step's
    mask milliseconds and the number of tokens consumed."""
    times, done, rest = [], 0, target
    while rest and done < max_steps:
        start = time.perf_counter()
        allowed = step_mask()
        times.append((time.perf_counter() - start) * 1000)
        ids = torch.nonzero(allowed).flatten().tolist()
        best = max((i for i in ids if table[i] and rest.startswith(table[i])),
                   key=lambda i: len(table[i]), default=None)
        if best is None:
            return times, -1
        consume(best)
        rest, done = rest[len(table[best]):], done + 1
    return times, done


class Llguidance:
    name = "llguidance"

    def __init__(self, hf, vocab):
        import llguidance
        import llguidance.hf
        import llguidance.torch
        self.lib, self.lt, self.vocab = llguidance, llguidance.torch, vocab
        self.tok = llguidance.hf.from_tokenizer(hf, n_vocab=vocab)
        self.version = llguidance.__version__

    def compile(self, kind, spec):
        M = self.lib.LLMatcher
        grammar = {"json_schema": lambda: M.grammar_from_json_schema(spec),
                   "regex": lambda: M.grammar_from_regex(spec),
                   "choices": lambda: M.grammar_from_lark("start: " + " | ".join(json.dumps(c) for c in spec))}[kind]()
        matcher = M(self.tok, grammar)
        assert not matcher.is_error(), matcher.get_error()
        return matcher

    def stepper(self, compiled):
        matcher = compiled.deep_copy()  # the compiled matcher stays at the start
        bitmask = self.lt.allocate_token_bitmask(1, self.vocab)

        def mask():
            self.lt.fill_next_token_bitmask(matcher, bitmask)
            return unpack(bitmask[0], self.vocab)
        return mask, lambda t: matcher.consume_token(t)


class Xgrammar:
    name = "xgrammar"

    def __init__(self, hf, vocab):
        import xgrammar
        self.xgr, self.vocab = xgrammar, vocab
        self.info = xgrammar.TokenizerInfo.from_huggingface(hf, vocab_size=vocab)
        self.version = __import__("importlib.metadata").metadata.version("xgrammar")

    def compile(self, kind, spec):
        compiler = self.xgr.GrammarCompiler(self.info, cache_enabled=False)
        if kind == "json_schema":
            return compiler.compile_json_schema(json.dumps(spec))
        if kind == "regex":
            return compiler.compile_regex(spec)
        return compiler.compile_grammar("root ::= " + " | ".join(json.dumps(c) for c in spec))

    def stepper(self, compiled):
        matcher = self.xgr.GrammarMatcher(compiled)
        bitmask = self.xgr.allocate_token_bitmask(1, self.vocab)

        def mask():
            matcher.fill_next_token_bitmask(bitmask)
            return unpack(bitmask[0], self.vocab)
        return mask, lambda t: matcher.accept_token(t)


class OutlinesCore:
    name = "outlines-core"

    def __init__(self, hf, vocab):
        import outlines_core
        self.oc, self.vocab = outlines_core, vocab
        table = token_text.bytes_table(hf)
        special = set(table.special) | set(hf.all_special_ids)
        mapping: dict[bytes, list[int]] = {}
        for i in range(len(table)):
            if i not in special and table[i]:
                mapping.setdefault(table[i], []).append(i)
        self.vocabulary = outlines_core.Vocabulary(hf.eos_token_id, mapping)
        self.version = __import__("importlib.metadata").metadata.version("outlines-core")

    def compile(self, kind, spec):
        import re
        regex = {"json_schema": lambda: self.oc.json_schema.build_regex_from_schema(json.dumps(spec)),
                 "regex": lambda: spec,
                 "choices": lambda: "(" + "|".join(re.escape(c) for c in spec) + ")"}[kind]()
        return self.oc.Index(regex, self.vocabulary)

    def stepper(self, index):
        guide = self.oc.Guide(index)

        def mask():
            allowed = torch.zeros(self.vocab, dtype=torch.bool)
            allowed[guide.get_tokens()] = True
            return allowed
        return mask, lambda t: guide.advance(t)


LIBRARIES = {"llguidance": Llguidance, "xgrammar": Xgrammar, "outlines-core": OutlinesCore}


def bench_library(cls, hf, vocab, repeats: int, walks: int) -> dict:
    start = time.perf_counter()
    lib = cls(hf, vocab)
    out = {"version": lib.version, "tokenizer_seconds": round(time.perf_counter() - start, 3), "kinds": {}}
    table = token_text.bytes_table(hf).table
    for kind, spec in (("json_schema", SCHEMA), ("regex", REGEX), ("choices", CHOICES)):
        compile_times = []
        for _ in range(repeats):
            start = time.perf_counter()
            compiled = lib.compile(kind, spec)
            compile_times.append(time.perf_counter() - start)
        row = {"compile_ms": round(min(compile_times) * 1000, 2)}
        for target in TARGETS[kind]:
            times, steps = [], 0
            for _ in range(walks):  # the same walk again on a fresh matcher: more steps to take a median of
                mask, consume = lib.stepper(compiled)
                more, steps = walk(mask, consume, table, target.encode())
                times += more
            if steps > 0:
                row.update(target=target, steps=steps, timed_steps=len(times),
                           mask_ms_median=round(statistics.median(times), 3),
                           mask_ms_p95=round(sorted(times)[int(0.95 * (len(times) - 1))], 3),
                           mask_ms_first=round(times[0], 3))
                break
        else:
            row["walk"] = "no target text was accepted"
        out["kinds"][kind] = row
    return out


GENERATION_PROMPT = "Write a short story about a lighthouse keeper, as JSON:"
GENERATION_SCHEMA = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 40},
                                                      "story": {"type": "string", "minLength": 2000}},
                     "required": ["title", "story"], "additionalProperties": False}


def bench_generation(tokens: int, repeats: int) -> dict:
    """`tokens` greedy tokens of Gemma with a JSON schema (`playground.constraints`, llguidance) and
    without (`playground.generation.generate`), alternated `repeats` times in this process: the
    median seconds of each, their ratio (target <= 1.5), and the median mask milliseconds per step
    inside the constrained runs (target <= 5); CPU seconds of the process too (all threads: less
    distorted than wall time when other jobs share the cores). The schema's story is longer than the budget, so
    both runs take every step (the free run is cut at `tokens` too; an early end is reported)."""
    from playground import constraints, decoding, generation  # noqa: PLC0415
    from playground.sampling import SamplingSettings  # noqa: PLC0415

    loaded = models.load_model(MODEL)
    ids = decoding.prompt_ids(loaded, GENERATION_PROMPT)
    constraint = constraints.parse_constraint("json_schema", json.dumps(GENERATION_SCHEMA))
    settings = SamplingSettings(temperature=0.0)
    constraints.ll_tokenizer(loaded)  # built once per model: timed apart
    free_s, constrained_s, free_cpu, constrained_cpu, mask_ms, runs = [], [], [], [], [], {}
    for _ in range(repeats + 1):  # the first round warms both paths up and is not counted
        start, cpu = time.perf_counter(), time.process_time()
        free = generation.generate(loaded, ids, settings, tokens)
        free_s.append(time.perf_counter() - start)
        free_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        run = constraints.constrained_generate(loaded, ids, constraint, settings, tokens)
        constrained_s.append(time.perf_counter() - start)
        constrained_cpu.append(time.process_time() - cpu)
        mask_ms += [s.mask_ms for s in run.steps]
        runs = {"free_tokens": len(free.records), "free_stop": free.stop_reason, "free_text": free.text,
                "constrained_tokens": len(run.steps), "constrained_stop": run.stop, "constrained_text": run.text,
                "compile_ms": round(run.compile_ms, 2)}
    free_med, cons_med = statistics.median(free_s[1:]), statistics.median(constrained_s[1:])
    per_free, per_cons = free_med / max(runs["free_tokens"], 1), cons_med / max(runs["constrained_tokens"], 1)
    return {"model": MODEL, "prompt": GENERATION_PROMPT, "schema": GENERATION_SCHEMA, "tokens": tokens,
            "repeats": repeats, **runs,
            "free_seconds_median": round(free_med, 3), "constrained_seconds_median": round(cons_med, 3),
            "ratio_constrained_over_free": round(cons_med / free_med, 3),
            "ratio_per_token": round(per_cons / per_free, 3), "target_ratio": 1.5,
            "free_cpu_seconds_median": round(statistics.median(free_cpu[1:]), 3),
            "constrained_cpu_seconds_median": round(statistics.median(constrained_cpu[1:]), 3),
            "cpu_ratio_constrained_over_free": round(statistics.median(constrained_cpu[1:])
                                                     / statistics.median(free_cpu[1:]), 3),
            "mask_ms_median": round(statistics.median(mask_ms), 3),
            "mask_ms_p95": round(sorted(mask_ms)[int(0.95 * (len(mask_ms) - 1))], 3), "target_mask_ms": 5.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=list(LIBRARIES))
    parser.add_argument("--repeats", type=int, default=3, help="compiles per constraint (best)")
    parser.add_argument("--walks", type=int, default=5, help="walks per constraint (their steps pooled)")
    parser.add_argument("--generation", action="store_true", help="also the 64-token generation bench")
    parser.add_argument("--tokens", type=int, default=64, help="tokens of the generation bench")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the masks are one thread's work; no intra-op waits on a loaded machine
    hf = models.load_tokenizer(MODEL)
    vocab = len(token_text.bytes_table(hf))
    result = {"command": " ".join(["bench/bench_grammar.py", *sys.argv[1:]]), "model": MODEL,
              "vocab": vocab, "load_average": os.getloadavg(), "libraries": {}}
    for name in args.libraries:
        try:
            result["libraries"][name] = bench_library(LIBRARIES[name], hf, vocab, args.repeats, args.walks)
        except Exception as exc:  # a library that fails to build is a result too
            result["libraries"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    if args.generation:
        torch.set_num_threads(threads)  # the model runs as the app runs it
        result["generation"] = bench_generation(args.tokens, args.repeats)
    result["load_average_after"] = os.getloadavg()
    write_report(result, args.json_out)


if __name__ == "__main__":
    main()
