"""CLI for the "Inside the model" tab: `arch`, `attention`, `logit-lens`, `kv-cache`.

    python -m playground arch --model gemma-3-270m --json
    python -m playground attention --model smollm2-135m-instruct --layer 3 --head 1 "The cat sat" --json
    python -m playground logit-lens --model gemma-3-270m --positions 4 "The capital of France is" --json
    python -m playground kv-cache --model smollm2-135m-instruct --tokens 512 --json

`arch` prints the configuration card, the parameters counted from the weights and by the formula
(per group, and whether the totals are equal), and the lecture's table. `attention` prints the
tokens, the layer's kind (full or sliding window) and the weights of one head, or of every head of
the layer grouped by key/value head (rows = queries, columns = keys). `logit-lens` prints each
layer's top tokens at the last positions. `kv-cache` prints the bytes per token from the
configuration, the formula's and the real cache's bytes after N tokens of a filler prompt
(`--no-measure` skips the model call), the multi-head-attention figure and the growth curve. TEXT
`-` reads stdin. What it leaves out: the charts.
"""

from __future__ import annotations

from dataclasses import asdict

from playground.cli import read_text_argument
from playground.inside import arch, attention, kv, lens, passes


def _parameters(p: arch.Parameters | None) -> dict | None:
    if p is None:
        return None
    return {"embeddings": p.embeddings, "attention": p.attention, "mlp": p.mlp, "norms": p.norms, "other": p.other,
            "total": p.total, "active": p.active}


def _row(row: arch.TableRow) -> dict:
    return {"name": row.name, "shape": asdict(row.shape),
            "formula": _parameters(row.formula), "lecture_says": row.lecture_says, "reference": row.reference,
            "ratio": row.ratio, "check": row.check, "source": row.source}


def arch_command(args) -> dict:
    card = arch.architecture(args.model)
    fields = {k: v for k, v in asdict(card).items() if k not in ("counted", "formula", "shape")}
    return {**fields, "group_size": card.group_size, "sliding_layers": list(card.sliding_layers),
            "counted": _parameters(card.counted), "formula": _parameters(card.formula),
            "formula_exact": card.formula_exact, "shape": asdict(card.shape),
            "table": [_row(arch.model_row(card)), *(_row(r) for r in arch.lecture_table())]}


def _tokens(result: passes.InsidePass) -> list[dict]:
    return [{"position": i, "id": token_id, "text": text, "start": i < result.start}
            for i, (token_id, text) in enumerate(zip(result.ids, result.labels))]


def _rounded(matrix, digits: int) -> list[list[float]]:
    return [[round(v, digits) for v in row] for row in matrix.tolist()]


def attention_command(args) -> dict:
    result = passes.inside_pass(args.model, read_text_argument(args.text))
    if args.head is None:
        view = attention.layer_heads(result, args.layer)
        heads = [{"head": h, "kv_head": kv_head, "weights": _rounded(view.weights[h], args.digits)}
                 for kv_head, group in enumerate(view.groups) for h in group]
        info, groups = view.layer, [list(g) for g in view.groups]
    else:
        amap = attention.attention_map(result, args.layer, args.head)
        heads = [{"head": amap.head, "kv_head": amap.kv_head, "weights": _rounded(amap.weights, args.digits)}]
        info, groups = amap.layer, [list(amap.shares_with)]
    return {"model": result.model_id, "layer": info.layer, "layer_type": info.kind, "sliding_window": info.window,
            "kv_groups": groups, "tokens": _tokens(result), "heads": heads}


def logit_lens_command(args) -> dict:
    grid = lens.logit_lens(args.model, read_text_argument(args.text), args.positions)
    cells = []
    for r, name in enumerate(grid.rows):
        cells.append({"row": name, "positions": [
            {"position": p, "top": [{"id": i, "text": t, "prob": round(q, 6)} for i, t, q in zip(
                grid.top_ids[r, c].tolist(), grid.top_labels[r][c], grid.top_probs[r, c].tolist())]}
            for c, p in enumerate(grid.positions)]})
    return {"model": grid.model_id, "positions": list(grid.positions), "inputs": list(grid.inputs),
            "actual_next": list(grid.actual_next), "rows": cells}


def kv_cache_command(args) -> dict:
    report = kv.kv_report(args.model, args.tokens, measure=not args.no_measure)
    s = report.shape
    return {"model": report.model_id, "dtype_bytes": s.dtype_bytes, "layers": s.layers, "heads": s.heads,
            "kv_heads": s.kv_heads, "head_dim": s.head_dim, "sliding_layers": s.sliding_layers,
            "sliding_window": s.window, "per_token_bytes": s.per_token_bytes,
            "mha_per_token_bytes": s.mha_per_token_bytes, "gqa_saving": s.saving, "tokens": report.tokens,
            "formula_bytes": report.formula_bytes, "measured_bytes": report.measured_bytes,
            "measured_layer_tokens": list(report.measured_layer_tokens), "matches": report.matches,
            "growth": [asdict(p) for p in report.growth]}


def register(subparsers) -> None:
    parser = subparsers.add_parser("arch", help="a model's configuration, parameters counted and by the formula, "
                                                "and the lecture's table")
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.set_defaults(handler=arch_command)

    parser = subparsers.add_parser("attention", help="attention weights of one layer (one head, or all heads)")
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument("--layer", type=int, required=True, help="layer index, 0 = first")
    parser.add_argument("--head", type=int, default=None, help="head index (default: every head of the layer)")
    parser.add_argument("--digits", type=int, default=4, help="decimals of each weight (default 4)")
    parser.add_argument("text", metavar="TEXT", help=f"the text (at most {passes.MAX_TOKENS} tokens); - reads stdin")
    parser.set_defaults(handler=attention_command)

    parser = subparsers.add_parser("logit-lens", help="the final norm and output layer read at every layer")
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument("--positions", type=int, default=lens.DEFAULT_POSITIONS,
                        help=f"the last N positions (default {lens.DEFAULT_POSITIONS}, at most {lens.MAX_POSITIONS})")
    parser.add_argument("text", metavar="TEXT", help=f"the text (at most {passes.MAX_TOKENS} tokens); - reads stdin")
    parser.set_defaults(handler=logit_lens_command)

    parser = subparsers.add_parser("kv-cache", help="KV cache bytes per token: the formula against a real cache")
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument("--tokens", type=int, required=True, help="context length to size (and measure)")
    parser.add_argument("--no-measure", action="store_true",
                        help=f"formula only (no model call; beyond {kv.MEASURE_MAX_TOKENS} tokens it never measures)")
    parser.set_defaults(handler=kv_cache_command)
