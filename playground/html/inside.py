"""Text for the "Inside the model" tab: the architecture card, the parameter table, the teacher-forcing
and KV cache summaries, as Markdown (Gradio renders it to HTML) and table rows.

Every string that comes from a model or a user (ids, token text) goes through `html.escape`; the
numbers are formatted here (`count`: 134.5M, 174.6B) so the page, the API and the tests read the
same figures. What it leaves out: computing them (`playground.inside`), charts (`playground.plots.inside`).
"""

from __future__ import annotations

import html

from playground.inside import arch
from playground.inside.arch import ArchitectureCard, Parameters, TableRow
from playground.inside.forcing import TeacherForcing
from playground.inside.kv import KVReport, KVShape

TABLE_HEADERS = ["Model", "Layers", "Model dim", "FFN dim", "Heads", "KV heads", "Vocabulary",
                 "Parameters (formula)", "Lecture says", "Check"]
KV_HEADERS = ["Model", "Layers", "Heads", "KV heads", "Head size", "KV bytes / token (16-bit)",
              "with MHA", "GQA saves", "8k-token cache"]

FORMULA = (
    "**One formula** (V vocabulary, d model dim, L layers, h heads, kv KV heads, d<sub>h</sub> head size, "
    "f FFN dim): parameters = V·d (×2 if the output layer is not tied) + learned positions·d + "
    "L · [ d·h·d<sub>h</sub> + 2·d·kv·d<sub>h</sub> + h·d<sub>h</sub>·d "
    "(attention: W<sub>Q</sub>, W<sub>K</sub>, "
    "W<sub>V</sub>, W<sub>O</sub>) + 3·d·f (gated MLP; 2·d·f for GPT's) × experts + norms ] + final norm, "
    "plus the biases where a model has them (GPT).")


def count(n: float) -> str:
    """A parameter count as people say it: 116.5M, 174.6B."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def size(n: float) -> str:
    """Bytes as KiB / MiB / GiB."""
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{int(n):,} B"


def _ranges(numbers) -> str:
    """0, 1, 2, 4 -> "0–2, 4"."""
    parts, numbers = [], list(numbers)
    start = prev = None
    for n in numbers + [None]:
        if start is None:
            start = prev = n
        elif n is not None and n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}" if start == prev else f"{start}–{prev}")
            start = prev = n
    return ", ".join(parts)


def _rope(card: ArchitectureCard) -> str:
    names = {"all": "", "full_attention": " (full-attention layers)", "sliding_attention": " (sliding-window layers)"}
    return "RoPE, " + ", ".join(f"θ = {theta:,.0f}{names.get(kind, ' (' + html.escape(kind) + ')')}"
                                for kind, theta in card.rope_theta.items()) if card.rope_theta else "?"


def _sharing(card: ArchitectureCard) -> str:
    if card.kv_heads == card.heads:
        return f"{card.kv_heads}: multi-head attention (a key/value head per query head)"
    if card.kv_heads == 1:
        return f"1: multi-query attention, all {card.heads} query heads share one key/value head"
    g = card.group_size
    groups = "; ".join(f"heads {k * g}–{k * g + g - 1} read KV head {k}" for k in range(min(card.kv_heads, 4)))
    return (f"{card.kv_heads}: grouped-query attention, {g} query heads share each key/value head "
            f"({groups}{'; …' if card.kv_heads > 4 else ''})")


def card_markdown(card: ArchitectureCard) -> str:
    sliding = card.sliding_layers
    if sliding:
        full = [i for i in range(card.layers) if i not in sliding]
        windows = (f"{len(sliding)} of {card.layers} (window {card.sliding_window:,} tokens): {_ranges(sliding)}; "
                   f"full attention: {_ranges(full)}")
    else:
        windows = "none: every layer attends to the whole context"
    rows = [
        ("Layers", f"{card.layers}"),
        ("Model dimension (hidden size)", f"{card.hidden:,}"),
        ("Attention heads", f"{card.heads} (head size {card.head_dim})"),
        ("Key/value heads", _sharing(card)),
        ("MLP", f"{card.ffn:,} wide, {html.escape(card.activation)}"),
        ("Vocabulary", f"{card.vocab:,}"),
        ("Context length", f"{card.context_length:,} tokens"),
        ("Positional embeddings", _rope(card)),
        ("Sliding-window layers", windows),
        ("Embeddings", "tied: the output layer reuses the embedding matrix" if card.tied_embeddings
         else "separate input embedding and output layer"),
    ]
    lines = [f"### {html.escape(card.model_id)}",
             f"{html.escape(card.model_type)} · {card.dtype} on {card.device}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "**Parameters, counted from the loaded weights** (a tied matrix once)", "",
              "| group | counted | formula |", "|---|---:|---:|"]
    formula = card.formula
    for group in ("embeddings", "attention", "mlp", "norms"):
        counted = getattr(card.counted, group)
        lines.append(f"| {'MLP' if group == 'mlp' else group} | {counted:,} | "
                     f"{getattr(formula, group):,} |" if formula else f"| {group} | {counted:,} | – |")
    if card.counted.other:
        lines.append(f"| other | {card.counted.other:,} | – |")
    total = card.counted.total
    verdict = ("✓ the formula gives exactly the counted total" if card.formula_exact
               else html.escape(card.formula_note) or "✗ the formula differs from the count")
    lines.append(f"| **total** | **{total:,}** ({count(total)}) | {formula.total:,} |" if formula
                 else f"| **total** | **{total:,}** ({count(total)}) | – |")
    lines += ["", verdict]
    return "\n".join(lines)


def capacity_markdown(card: ArchitectureCard) -> str:
    """The lecture's "up to 2 bits per parameter" as a calculator: this model, then the lecture's
    models, two to a row (the whole table fits a projector's screen)."""
    rows = arch.capacities(card)
    mine = rows[0]
    lines = [f"**Knowledge capacity: up to {mine.bits_per_parameter:g} bits per parameter.** "
             f"{html.escape(card.model_id)}: {count(mine.parameters)} parameters × {mine.bits_per_parameter:g} bits "
             f"÷ 8 = at most **{size(mine.bytes)}** of memorised facts.", "",
             "| model (parameters) | at most | model (parameters) | at most |", "|---|---:|---|---:|"]
    cells = [f"{html.escape(row.name)} ({count(row.parameters)}) | {size(row.bytes)}" for row in rows]
    cells += [" | "] * (len(cells) % 2)
    lines += [f"| {cells[i]} | {cells[i + 1]} |" for i in range(0, len(cells), 2)]
    lines += ["", f"<small>{html.escape(arch.CAPACITY_SOURCE)}.</small>"]
    return "\n".join(lines)


def _shape_cells(row: TableRow) -> list:
    s = row.shape
    return [s.layers, f"{s.hidden:,}", f"{s.ffn:,}", s.heads, s.kv_heads, f"{s.vocab:,}"]


def _formula_cell(p: Parameters) -> str:
    text = f"{count(p.total)} ({p.total:,})"
    return text + f"; {count(p.active)} active per token" if p.active != p.total else text


def table_rows(rows: list[TableRow]) -> list[list]:
    """The parameter table as the app shows it (the loaded model first, then the lecture's)."""
    return [[html.escape(r.name), *_shape_cells(r), _formula_cell(r.formula), r.lecture_says, r.check]
            for r in rows]


def forcing_markdown(forced: TeacherForcing) -> str:
    n = len(forced.tokens)
    product = " · ".join(f"{t.prob:.3g}" for t in forced.tokens[:6]) + (" · …" if n > 6 else "")
    start = " ".join(html.escape(t) for t in forced.context) or "nothing"
    return (f"After {start}, the text's {n} tokens, each scored given all tokens before it, "
            f"from **one** forward pass:\n\n"
            f"P(text) = {product} = **{forced.probability:.3e}**  \n"
            f"log P(text) = Σ log P(tᵢ | t<sub>&lt;i</sub>) = **{forced.total_logprob:.4f}** "
            f"({forced.total_bits:.2f} bits, perplexity {forced.perplexity:.2f})  \n"
            f"The same numbers as `python -m playground score --model {html.escape(forced.model_id)} TEXT`.")


def kv_markdown(report: KVReport) -> str:
    s = report.shape
    per = s.per_token_bytes
    lines = [f"**Per token:** {s.layers} layers × 2 (key and value) × {s.kv_heads} KV heads × {s.head_dim} "
             f"× {s.dtype_bytes} bytes = **{per:,} bytes** ({size(per)})."]
    if report.measured_bytes is not None:
        mark = "✓ equal" if report.matches else "✗ different"
        lines.append(f"**After these {report.tokens} tokens:** formula {report.formula_bytes:,} bytes, "
                     f"the real cache {report.measured_bytes:,} bytes: {mark}.")
    if s.sliding_layers:
        lines.append(f"{s.sliding_layers} of {s.layers} layers keep only their last {s.window - 1:,} tokens "
                     f"(sliding window {s.window:,}): past the window only the {s.layers - s.sliding_layers} "
                     f"full-attention layers grow.")
    full = report.context_length
    lines.append(f"**At the full context ({full:,} tokens):** {size(s.bytes_at(full))} for one sequence.")
    if s.kv_heads != s.heads:
        lines.append(f"**Multi-head attention** ({s.heads} KV heads) would keep {s.mha_per_token_bytes:,} bytes "
                     f"per token: grouped-query attention saves **{s.saving:g}×**.")
    else:
        lines.append("This model uses multi-head attention: one key/value head per query head, nothing shared.")
    return "\n\n".join(lines)


def kv_rows(shapes: list[KVShape]) -> list[list]:
    return [[html.escape(s.name), s.layers, s.heads, s.kv_heads, s.head_dim, size(s.per_token_bytes),
             size(s.mha_per_token_bytes), f"{s.saving:g}×", size(8192 * s.per_token_bytes)] for s in shapes]


ENCODER_CSS = """
.encoder-table { border-collapse: collapse; font-size: 1.0rem; }
.encoder-table th { text-align: right; padding: 2px 8px; font-weight: 600; white-space: nowrap; }
.encoder-table td { text-align: center; padding: 2px 3px; border: 1px solid #e5e7eb; white-space: nowrap; }
.encoder-table td.seg-a { background: #eef2ff; }
.encoder-table td.seg-b { background: #fef3c7; }
.encoder-table tr.plus td, .encoder-table tr.plus th { border: none; padding: 0; line-height: 0.9; font-size: 0.8em; color: #6b7280; }
.encoder-table code { font-size: 1.0rem; }
.encoder-note { font-size: 1.0rem; margin: 0 0 4px; }
html.playground-present .encoder-table, html.playground-present .encoder-table code { font-size: 15px; }
html.playground-present .encoder-note { font-size: 17px; }
"""


def encoder_table_html(pair) -> str:
    """The slide's table for a real encoding (`inside.encoder_only.EncodedPair`): the input tokens, then
    the three rows summed for each, E_token[id] + E_segment + E_position; every token text escaped."""
    segment = ["seg-a" if s == 0 else "seg-b" for s in pair.segments]

    def row(head: str, cells: list[str], plus: bool = False) -> str:
        tds = "".join(f'<td class="{segment[i]}">{cell}</td>' for i, cell in enumerate(cells))
        return f'<tr><th>{head}</th>{tds}</tr>' + ('<tr class="plus"><th></th>' + "<td>+</td>" * len(cells) + "</tr>"
                                                   if plus else "")

    tokens = [f'<code title="token id {i}">{html.escape(t)}</code>' for t, i in zip(pair.tokens, pair.ids)]
    token_rows = [f'<span title="row {i} of the token embedding matrix">E<sub>{html.escape(t)}</sub></span>'
                  for t, i in zip(pair.tokens, pair.ids)]
    segments = ["E<sub>A</sub>" if s == 0 else "E<sub>B</sub>" for s in pair.segments]
    positions = [f"E<sub>{p}</sub>" for p in pair.positions]
    return ('<table class="encoder-table">' + row("Input", tokens) + row("Token", token_rows, plus=True)
            + row("Segment", segments, plus=True) + row("Position", positions) + "</table>")


def encoder_note_html(pair) -> str:
    """What the table shows, in words derived from the encoding."""
    pieces = ", ".join(f"<code>{html.escape(t)}</code>" for t in dict.fromkeys(pair.continued)) or "none"
    first_b = pair.segments.index(1) if 1 in pair.segments else len(pair.tokens)
    return (f'<p class="encoder-note">WordPiece, {pair.vocab_size:,} entries, trained here on <i>Pride and '
            "Prejudice</i> ch. 1–9 (no BERT vocabulary ships offline; BERT's has 30,522): <code>[CLS]</code> first, "
            f"<code>[SEP]</code> after each sentence, segment B from position {first_b}; pieces that continue a "
            f"word: {pieces}. Each input vector is the sum of the three rows below it.</p>")
