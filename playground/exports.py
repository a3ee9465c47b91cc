"""The data behind each view as a table, and that table as CSV or JSON text.

One `Table` per view: its columns, one JSON object per row (keyed by column) and a few fields that
describe the whole view (`meta`: the model, the prompt, the settings). The builders:

- `distribution_table`: the sampling lab's next-token distribution: every token the rules leave a
  nonzero probability, plus the model's top N, in the model's order (rank 1 = most probable; ties
  by id), with its raw and processed probability and whether the rules kept it. At most
  `MAX_DISTRIBUTION_ROWS` (or N) rows: rules that keep the whole vocabulary keep the first 20,000
  by rank, and `meta["rows_left_out"]` says how many nonzero tokens were left out.
  `session_distribution` is that for a `lab.LabView`, described by its session.
- `records_table` / `session_records`: a generation's per-token records (`StepRecord.as_dict()`).
- `beam_table`: every node of a beam search tree (`beam.BeamResult`), the root (the prompt) first.
- `tokenization_table`: a tokenization's tokens (`tokenizer_registry.TokenizationResult`): ids, texts,
  exact bytes and character spans (the UI tokenizes with at most `MAX_TOKEN_ROWS` token records;
  `meta["rows_cut"]` says when the text has more).
- `template_table`: the chat template's tokens (`chat.ChatTemplateView`) with role, part and loss mask.
- `attribution_table`: "Why this token?": a row per prompt token, a score column per method.
- `attention_table`: one head's attention weights in one layer of an "Inside the model" pass, one row
  per (query, key) pair the causal mask (and a sliding window) lets the query see.

Token text is the token's exact bytes decoded (`token_text.display_text`: valid UTF-8 as text,
a byte that is not as `<0xNN>`), untouched in the JSON; in the CSV the writer quotes commas, quotes
and line breaks, and a text cell that starts with = + - @, a tab or a carriage return gets a leading ' in the CSV (a
spreadsheet would run it as a formula; the JSON keeps the text exact);
`display` is the same text with visible whitespace, and `bytes` (where the view has them) the
exact bytes in hex. `to_csv` writes a header row and one row per token (`csv_rows` are those rows
as strings: a float as Python's shortest exact repr, a bool as true/false, a list as JSON, None
as empty); `to_json` writes the meta fields, the columns and the rows, one row per line (infinite
or NaN numbers become null). What it leaves out: running models (the builders read results the
backend computed; a tokenizer is loaded when none is given), files and downloads (the UI sends
the text to the browser, which saves it).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch

from playground.errors import PlaygroundError
from playground.token_text import display_text, hex_bytes, token_bytes, visible_whitespace

if TYPE_CHECKING:
    from playground.beam import BeamResult
    from playground.chat import ChatTemplateView
    from playground.generation import StepRecord
    from playground.inside.passes import InsidePass
    from playground.lab import LabSession, LabView
    from playground.sampling import FilterResult, RankedLogits
    from playground.tokenizer_registry import TokenizationResult

FORMATS = ("csv", "json")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json"}
DISTRIBUTION_COLUMNS = ("rank", "id", "text", "display", "bytes", "raw_prob", "processed_prob", "kept")
RECORD_COLUMNS = ("index", "id", "text", "display", "raw_prob", "prob", "rank", "eos_raw_prob", "eos_prob",
                  "kept", "chosen", "alternatives")
BEAM_COLUMNS = ("step", "id", "parent", "token_id", "text", "display", "logprob", "cumulative", "score", "rank",
                "vocab_rank", "order", "status", "ended", "eos")
TOKEN_COLUMNS = ("index", "id", "text", "display", "bytes", "start", "end", "special", "group", "partial")
TEMPLATE_COLUMNS = ("index", "id", "text", "display", "start", "end", "special", "role", "part", "message",
                    "loss_mask")
ATTENTION_COLUMNS = ("query", "query_id", "query_text", "key", "key_id", "key_text", "weight")
MAX_DISTRIBUTION_ROWS = 20_000  # a 262,144-token vocabulary in full is 25 MB of CSV per click
MAX_TOKEN_ROWS = 100_000  # tokens of one tokenization (about 6 MB of CSV); its counts stay exact
NO_RECORDS = "No generated tokens yet: press “Next token” or “Generate N” first."


@dataclass(frozen=True)
class Table:
    """One view's data: `rows` are JSON objects keyed by `columns`; `name` says what a row is."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict]
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Text


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """One CSV field: "" for None, true/false, a float's exact repr, JSON for a list or dict; a text
    that a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage return)
    gets a leading single quote (OWASP's advice against CSV injection). Numbers are written as
    numbers (-1.5 stays -1.5): only text cells are neutralised."""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_json_safe(value), ensure_ascii=False)
    return str(value)


def csv_rows(table: Table) -> list[list[str]]:
    """The header and one row of strings per table row, as `to_csv` writes them."""
    return [list(table.columns), *([csv_cell(row.get(c)) for c in table.columns] for row in table.rows)]


def to_csv(table: Table) -> str:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(csv_rows(table))
    return out.getvalue()


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def to_json(table: Table) -> str:
    """`{...meta, "columns": [...], "<name>": [row, ...]}`, one row per line."""
    head = json.dumps(_json_safe({**table.meta, "columns": list(table.columns)}), ensure_ascii=False)
    rows = ",\n".join(json.dumps(_json_safe(row), ensure_ascii=False) for row in table.rows)
    return f"{head[:-1]}, {json.dumps(table.name)}: [\n{rows}\n]}}\n"


def export(table: Table, fmt: str) -> str:
    """`table` as "csv" or "json" text."""
    if fmt == "csv":
        return to_csv(table)
    if fmt == "json":
        return to_json(table)
    raise PlaygroundError(f"Unknown download format {str(fmt)[:20]!r}: choose one of {', '.join(FORMATS)}.")


def _token_fields(tokenizer, token_id: int) -> dict:
    data = token_bytes(tokenizer, int(token_id))
    text = display_text(data)
    return {"text": text, "display": visible_whitespace(text), "bytes": hex_bytes(data)}


def _model_tokenizer(model_id: str):
    from playground.models import load_tokenizer

    return load_tokenizer(model_id)


# ---------------------------------------------------------------------------------------------
# The sampling lab


def distribution_table(ranked: RankedLogits, result: FilterResult, tokenizer, top_n: int,
                       meta: dict | None = None) -> Table:
    """Every token with a nonzero processed probability and the `top_n` most probable raw ones, by rank."""
    vocab, top_n = ranked.vocab_size, max(int(top_n), 1)
    processed, kept = result.probs, result.kept
    nonzero = processed > 0
    wanted = min(vocab, max(top_n, int(nonzero.sum())))
    count = min(wanted, max(top_n, MAX_DISTRIBUTION_ROWS))
    _, order = ranked.top(count)
    ids = order[:count]
    left = nonzero.clone()
    left[ids] = False
    if count == wanted and left.any():  # the rules keep a prefix of the model's order: only a safeguard
        extra = left.nonzero().flatten()
        ids = torch.cat([ids, extra[torch.sort(ranked.logits[extra], descending=True, stable=True).indices]])
    rows = [{"rank": rank, "id": token_id, **_token_fields(tokenizer, token_id), "raw_prob": raw,
             "processed_prob": prob, "kept": keep}
            for rank, (token_id, raw, prob, keep) in enumerate(
                zip(ids.tolist(), ranked.raw_probs[ids].tolist(), processed[ids].tolist(), kept[ids].tolist()),
                start=1)]
    meta = {**(meta or {}), "settings": result.settings.as_dict(), "vocab_size": vocab,
            "kept_count": result.kept_count, "raw_entropy_bits": result.raw_entropy_bits,
            "entropy_bits": result.entropy_bits, "top_n": top_n,
            "rows_left_out": int(left.sum()) if count < wanted else 0}
    return Table("tokens", DISTRIBUTION_COLUMNS, rows, meta)


def _session_meta(session: LabSession) -> dict:
    return {"model": session.model_id, "prompt": session.prompt, "chat_template": session.chat_template,
            "sequence_tokens": len(session.ids), "generated_tokens": len(session.records)}


def session_distribution(view: LabView, top_n: int) -> Table:
    """The distribution a lab view shows (after the session's text, cut by its rules)."""
    return distribution_table(view.ranked, view.result, view.tokenizer, top_n, _session_meta(view.session))


def records_table(records: Sequence[StepRecord], meta: dict | None = None) -> Table:
    """One row per generated token: `StepRecord.as_dict()`, its index and its display text."""
    rows = [{"index": r.index, **r.as_dict(), "display": visible_whitespace(r.text)} for r in records]
    return Table("records", RECORD_COLUMNS, rows, dict(meta or {}))


def session_records(session: LabSession) -> Table:
    """The lab session's generated tokens; a message while there are none."""
    if not session.records:
        raise PlaygroundError(NO_RECORDS)
    return records_table(session.records, {**_session_meta(session), "stop": session.stop_note})


# ---------------------------------------------------------------------------------------------
# Beam search, tokenizers, chat templates, attention


def beam_table(result: BeamResult, tokenizer=None) -> Table:
    """Every node of the search tree (the root is the prompt); `tokenizer`: the model's by default."""
    tokenizer = _model_tokenizer(result.model_id) if tokenizer is None else tokenizer
    rows = []
    for node in result.nodes:
        if node.token_id is None:
            text = {"text": result.prompt_text, "display": visible_whitespace(result.prompt_text)}
        else:
            text = {key: value for key, value in _token_fields(tokenizer, node.token_id).items() if key != "bytes"}
        rows.append({"step": node.step, "id": node.id, "parent": node.parent, "token_id": node.token_id, **text,
                     "logprob": node.logprob, "cumulative": node.cumulative, "score": node.score,
                     "rank": node.rank, "vocab_rank": node.vocab_rank, "order": node.order,
                     "status": node.status, "ended": node.ended, "eos": node.eos})
    meta = {"model": result.model_id, "prompt": result.prompt_text, "prompt_ids": list(result.prompt_ids),
            "settings": asdict(result.settings), "eos_token_ids": list(result.eos_token_ids),
            "candidates_per_step": result.candidates_per_step, "steps": result.steps,
            "stop_reason": result.stop_reason, "sequences": [asdict(s) for s in result.sequences],
            "greedy": asdict(result.greedy) if result.greedy else None,
            "sampled": asdict(result.sampled) if result.sampled else None}
    return Table("nodes", BEAM_COLUMNS, rows, meta)


def tokenization_table(result: TokenizationResult) -> Table:
    """The tokens of a tokenization (all of them unless it was capped: then `meta` says so)."""
    rows = [{"index": t.index, "id": t.id, "text": t.text, "display": visible_whitespace(t.text),
             "bytes": hex_bytes(t.bytes), "start": t.start, "end": t.end, "special": t.special,
             "group": t.group, "partial": t.partial} for t in result.tokens]
    meta = {"tokenizer": result.tokenizer_id, "num_tokens": result.num_tokens, "num_chars": result.num_chars,
            "num_bytes": result.num_bytes, "rows_cut": result.truncated, "text": result.text}
    return Table("tokens", TOKEN_COLUMNS, rows, meta)


def template_table(view: ChatTemplateView) -> Table:
    """The chat template's tokens: role, part, message and loss mask (1 = trained on)."""
    rows = [{"index": t.index, "id": t.id, "text": t.text, "display": visible_whitespace(t.text), "start": t.start,
             "end": t.end, "special": t.special, "role": t.role, "part": t.part, "message": t.message,
             "loss_mask": int(t.trained)} for t in view.tokens]
    meta = {"model": view.model_id, "messages": [dict(m) for m in view.messages], "rendered": view.rendered,
            "add_generation_prompt": view.add_generation_prompt, "num_tokens": view.num_tokens,
            "num_trained": view.num_trained, "default_system_prompt": view.default_system_prompt}
    return Table("tokens", TEMPLATE_COLUMNS, rows, meta)


def attention_table(result: InsidePass, layer: int, head: int, tokenizer=None) -> Table:
    """One head's weights: a row per (query, key) the mask lets the query see, queries in order."""
    from playground.inside.attention import attention_map

    shown = attention_map(result, layer, head)
    tokenizer = _model_tokenizer(result.model_id) if tokenizer is None else tokenizer
    texts = [display_text(token_bytes(tokenizer, i)) for i in result.ids]
    weights = shown.weights.tolist()
    rows = [{"query": q, "query_id": result.ids[q], "query_text": texts[q], "key": k, "key_id": result.ids[k],
             "key_text": texts[k], "weight": weights[q][k]}
            for q in range(len(result.ids)) for k in range(q + 1) if shown.visible(q, k)]
    meta = {"model": result.model_id, "text": result.text, "layer": shown.layer.layer, "kind": shown.layer.kind,
            "window": shown.layer.window, "head": shown.head, "kv_head": shown.kv_head,
            "shares_with": list(shown.shares_with), "ids": list(result.ids)}
    return Table("weights", ATTENTION_COLUMNS, rows, meta)


def attribution_table(result) -> Table:
    """"Why this token?" (`attribution.Attribution`): a row per prompt token, a score column per method
    (empty for start tokens); the target, its probability and integrated gradients' check in `meta`."""
    keys = [row.key for row in result.methods]
    tokenizer = _model_tokenizer(result.model_id)
    rows = [{"position": t.position, "id": t.id, **_token_fields(tokenizer, t.id), "start": t.start,
             **{key: row.scores[t.position] for key, row in zip(keys, result.methods)}} for t in result.tokens]
    checks = {row.key: {"steps": row.steps, "f_input": row.f_input, "f_baseline": row.f_baseline,
                        "completeness_error": row.completeness_error}
              for row in result.methods if row.completeness_error is not None}
    meta = {"model": result.model_id, "prompt": result.text, "target_id": result.target_id,
            "target_text": _token_fields(tokenizer, result.target_id)["text"], "target_prob": result.target_prob,
            "target_rank": result.target_rank,
            "methods": {row.key: {"title": row.title, "formula": row.formula, "is_attribution": row.is_attribution}
                        for row in result.methods}, **checks}
    return Table("tokens", ("position", "id", "text", "display", "bytes", "start", *keys), rows, meta)
