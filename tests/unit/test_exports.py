"""The data downloads on real objects of the tiny random model and the packaged tokenizer_registry.

Every table's CSV parses back (csv.reader) to exactly the rows it was written from, header first,
token text untouched (commas, quotes, line breaks and partial UTF-8 included; a text a spreadsheet
would run as a formula gets a leading quote: tests/unit/test_csv_injection.py); its JSON parses to the
same rows. The distribution holds every token the rules leave a nonzero probability plus the top N,
ranked by the model; the records are the session's `as_dict()`; beam nodes, tokens, template tokens
and attention weights carry what their views draw.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from playground import beam, chat, exports, lab, tokenizer_registry
from playground.errors import PlaygroundError
from playground.inside import attention, passes
from playground.models import load_tokenizer
from playground.sampling import RankedLogits, SamplingSettings, filter_logits
from playground.token_text import display_text

MODEL = "tiny-random"


def parsed_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def check_round_trip(table: exports.Table) -> dict:
    """CSV and JSON both parse back to the table's rows; returns the parsed JSON."""
    text = exports.export(table, "csv")
    assert parsed_csv(text) == exports.csv_rows(table)
    assert parsed_csv(text)[0] == list(table.columns)
    data = json.loads(exports.export(table, "json"))
    assert data["columns"] == list(table.columns)
    assert [[row[c] for c in table.columns] for row in data[table.name]] == \
        [[exports._json_safe(row[c]) for c in table.columns] for row in table.rows]
    return data


def test_odd_cells_survive_the_round_trip():
    rows = [{"a": "comma, \"quote\"", "b": 0.1 + 0.2, "c": True, "d": None},
            {"a": "line\nbreak\r\nand\rreturn", "b": float("-inf"), "c": False, "d": [1, "x"]},
            {"a": "<0xF0><0x9F>", "b": 1e-300, "c": False, "d": {"k": float("nan")}}]
    table = exports.Table("rows", ("a", "b", "c", "d"), rows, {"note": "ünïcode"})
    data = check_round_trip(table)
    body = parsed_csv(exports.to_csv(table))[1:]
    assert [r[0] for r in body] == [r["a"] for r in rows]
    assert float(body[0][1]) == 0.1 + 0.2 and body[1][1] == "-inf" and body[0][2] == "true" and body[0][3] == ""
    assert json.loads(body[1][3]) == [1, "x"]
    assert data["note"] == "ünïcode" and data["rows"][1]["b"] is None
    with pytest.raises(PlaygroundError, match="csv, json"):
        exports.export(table, "xlsx")


@pytest.fixture(scope="module")
def session():
    session = lab.open_session(MODEL, "Hello, world", False, 1024)
    lab.append_token(session, SamplingSettings(), load_tokenizer(MODEL).convert_tokens_to_ids(","))
    lab.next_token(session, SamplingSettings(temperature=1.2, top_k=20), 5)
    return session


@pytest.mark.parametrize("settings, top_n", [(SamplingSettings(top_k=7), 20), (SamplingSettings(top_p=0.05), 3),
                                             (SamplingSettings(temperature=0.0), 10)])
def test_the_distribution_holds_every_nonzero_token_and_the_top_n(session, settings, top_n):
    view = lab.view(session, settings)
    table = exports.session_distribution(view, top_n)
    data = check_round_trip(table)
    rows = table.rows
    nonzero = set(torch.nonzero(view.result.probs > 0).flatten().tolist())
    _, order = view.ranked.top(top_n)
    assert {r["id"] for r in rows} == nonzero | set(order[:top_n].tolist())
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["raw_prob"] for r in rows] == sorted((r["raw_prob"] for r in rows), reverse=True)
    tokenizer = view.tokenizer
    for row in rows:
        assert row["raw_prob"] == float(view.ranked.raw_probs[row["id"]])
        assert row["processed_prob"] == float(view.result.probs[row["id"]])
        assert row["kept"] == bool(view.result.kept[row["id"]])
        assert display_text(bytes.fromhex(row["bytes"])) == row["text"]
        assert row["text"] == tokenizer.decode([row["id"]]) or "<0x" in row["text"]
    assert sum(r["processed_prob"] for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert data["model"] == MODEL and data["kept_count"] == view.result.kept_count
    assert parsed_csv(exports.to_csv(table))[1][2] == rows[0]["text"]  # the text as decoded, in the CSV


def test_rules_that_keep_the_whole_vocabulary_keep_the_first_rows(session):
    view = lab.view(session, SamplingSettings())
    table = exports.session_distribution(view, 20)
    assert len(table.rows) == exports.MAX_DISTRIBUTION_ROWS < view.result.vocab_size
    _, order = view.ranked.top(exports.MAX_DISTRIBUTION_ROWS)
    assert [r["id"] for r in table.rows] == order[:exports.MAX_DISTRIBUTION_ROWS].tolist()
    assert table.meta["rows_left_out"] == view.result.vocab_size - exports.MAX_DISTRIBUTION_ROWS
    assert exports.session_distribution(view, 25_000).meta["rows_left_out"] == view.result.vocab_size - 25_000


def test_distribution_of_hand_made_logits_with_odd_tokens():
    tokenizer = load_tokenizer(MODEL)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("Ċ", ",", "\"")]  # a line break, a comma, a quote
    logits = torch.full((tokenizer.vocab_size,), -10.0)
    logits[ids] = torch.tensor([5.0, 4.0, 3.0])
    ranked = RankedLogits(logits)
    table = exports.distribution_table(ranked, filter_logits(ranked, SamplingSettings(top_k=2)), tokenizer, 3)
    assert [(r["id"], r["text"], r["kept"]) for r in table.rows] == [(ids[0], "\n", True), (ids[1], ",", True),
                                                                     (ids[2], "\"", False)]
    assert table.rows[2]["processed_prob"] == 0.0
    body = parsed_csv(exports.to_csv(table))[1:]
    assert [r[2] for r in body] == ["\n", ",", "\""] and [r[3] for r in body] == ["↵", ",", "\""]
    check_round_trip(table)


def test_records_are_the_sessions_as_dict(session):
    table = exports.session_records(session)
    data = check_round_trip(table)
    assert [{k: v for k, v in row.items() if k not in ("index", "display")} for row in data["records"]] == \
        [r.as_dict() for r in session.records]
    assert [row["index"] for row in data["records"]] == [0, 1]
    assert data["records"][0]["text"] == "," and data["records"][0]["chosen"] == "forced"
    assert json.loads(parsed_csv(exports.to_csv(table))[1][-1]) == session.records[0].as_dict()["alternatives"]
    empty = lab.open_session(MODEL, "Nothing yet", False, 1024)
    with pytest.raises(PlaygroundError, match="Generate N"):
        exports.session_records(empty)


def test_beam_nodes_carry_the_tree():
    result = beam.run_beam_search(MODEL, "The beam, exported", beam.BeamSettings(3, 5, 1.0, False, 2),
                                  compare_greedy=True)
    table = exports.beam_table(result)
    data = check_round_trip(table)
    assert len(table.rows) == len(result.nodes)
    assert table.rows[0]["status"] == "root" and table.rows[0]["text"] == result.prompt_text
    tokenizer = load_tokenizer(MODEL)
    for row, node in zip(table.rows[1:], result.nodes[1:]):
        assert (row["id"], row["parent"], row["step"], row["token_id"], row["status"], row["score"]) == \
            (node.id, node.parent, node.step, node.token_id, node.status, node.score)
        assert row["display"] == node.label
        assert row["text"] == tokenizer.decode([node.token_id]) or "<0x" in row["text"]
    assert [s["ids"] for s in data["sequences"]] == [s.ids for s in result.sequences]
    assert data["greedy"]["ids"] == result.greedy.ids and data["settings"]["num_beams"] == 3
    body = parsed_csv(exports.to_csv(table))[1:]
    assert body[0][2] == "" and body[0][3] == ""  # the root has no parent and no token


@pytest.mark.parametrize("tokenizer_id, text", [("cl100k_base", "Hi, \"you\"\n\tthere 👋🏽 ünï"),
                                                 ("llama-3", "a,b\r\nc 🦜"), ("bytes", "é,\n")])
def test_tokenization_has_ids_texts_and_bytes(tokenizer_id, text):
    result = tokenizer_registry.tokenize(tokenizer_id, text, True)
    table = exports.tokenization_table(result)
    check_round_trip(table)
    assert [r["id"] for r in table.rows] == result.ids
    assert b"".join(bytes.fromhex(r["bytes"]) for r in table.rows if not r["special"]) == text.encode()
    assert "".join(text[r["start"]:r["end"]] for r in table.rows) == text
    body = parsed_csv(exports.to_csv(table))[1:]
    # the text itself, a quote before one a spreadsheet would run as a formula ("\tthere", "\r\n")
    assert [r[2] for r in body] == [("'" if t.text.startswith(exports.FORMULA_STARTS) else "") + t.text
                                    for t in result.tokens]


def test_template_tokens_with_roles_and_loss_mask():
    messages = [{"role": "user", "content": "Colour of oranges, please?\nThanks"},
                {"role": "assistant", "content": "Orange, \"mostly\"."}]
    view = chat.template_view(MODEL, messages)
    table = exports.template_table(view)
    data = check_round_trip(table)
    assert [r["id"] for r in table.rows] == list(view.ids)
    assert [r["loss_mask"] for r in table.rows] == view.loss_mask
    assert {r["role"] for r in table.rows if r["loss_mask"]} == {"assistant"}
    assert "".join(view.rendered[r["start"]:r["end"]] for r in table.rows) == view.rendered
    assert data["num_trained"] == view.num_trained and data["messages"][-1] == messages[-1]


def test_attention_rows_are_the_shown_heads_visible_weights():
    result = passes.inside_pass(MODEL, "Attention, exported.\nTwice")
    table = exports.attention_table(result, 1, 2)
    data = check_round_trip(table)
    shown = attention.attention_map(result, 1, 2)
    count = len(result.ids)
    assert len(table.rows) == count * (count + 1) // 2  # no window in this model: the whole lower triangle
    for row in table.rows:
        assert row["key"] <= row["query"] and row["weight"] == float(shown.weights[row["query"], row["key"]])
    sums = {}
    for row in table.rows:
        sums[row["query"]] = sums.get(row["query"], 0.0) + row["weight"]
    assert all(abs(total - 1) < 1e-4 for total in sums.values())
    assert data["layer"] == 1 and data["head"] == 2 and data["ids"] == list(result.ids)
    with pytest.raises(PlaygroundError, match="Layer 99"):
        exports.attention_table(result, 99, 0)
