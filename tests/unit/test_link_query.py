"""Deep-link parameters (`playground.link_query`): parsing never raises and says what it could not
use; writing leaves out defaults; slugs are stable."""

from __future__ import annotations

from urllib.parse import parse_qs

from playground import link_query
from playground.link_query import Param

PARAMS = [Param("prompt", "text", "Hi"), Param("top_p", "float", 1.0, 0.01, 1.0), Param("n", "int", 20, 1, 200),
          Param("chat", "bool", False), Param("model", "choice", "a", choices=("a", "b")),
          Param("compare", "choices", ["a"], choices=("a", "b", "c"), max_items=2)]


def test_parse_reads_every_kind():
    values, notes = link_query.parse({"prompt": "Once upon", "top_p": "0.9", "n": "5", "chat": "1", "model": "b",
                                     "compare": "b,c"}, PARAMS)
    assert values == {"prompt": "Once upon", "top_p": 0.9, "n": 5, "chat": True, "model": "b", "compare": ["b", "c"]}
    assert notes == []


def test_parse_clamps_and_refuses_with_notes_never_raising():
    values, notes = link_query.parse({"top_p": "7", "n": "2.5", "chat": "maybe", "model": "zz", "compare": "a,q",
                                     "top_k": "3", "tab": "sampling"}, PARAMS)
    assert values == {"top_p": 1.0, "compare": ["a"]}
    assert any(note.startswith("top_p: 7 is out of range 0.01..1") for note in notes)
    assert any("n: '2.5' is not a whole number" in note for note in notes)
    assert any("chat:" in note for note in notes) and any("model: 'zz'" in note for note in notes)
    assert any("q not available" in note for note in notes)
    assert notes[-1] == "not used by this tab: top_k"  # `tab` is every link's, not unknown


def test_nan_infinity_and_long_text():
    values, notes = link_query.parse({"top_p": "nan", "n": "inf", "prompt": "x" * 5000}, PARAMS)
    assert "top_p" not in values and "n" not in values and len(values["prompt"]) == link_query.MAX_TEXT
    assert len(notes) == 3


def test_query_string_leaves_out_defaults_and_round_trips():
    values = {"prompt": "Hi", "top_p": 0.9, "n": 20, "chat": True, "model": "a", "compare": ["b", "c"]}
    query = link_query.query_string("sampling", PARAMS, values, present=True, run="generate")
    parsed = {k: v[0] for k, v in parse_qs(query).items()}
    assert parsed == {"tab": "sampling", "top_p": "0.9", "chat": "1", "compare": "b,c", "run": "generate", "present": "1"}
    again, notes = link_query.parse(parsed, PARAMS)
    assert notes == [] and again == {"top_p": 0.9, "chat": True, "compare": ["b", "c"]}


def test_slug():
    assert link_query.slug("Short answers win (length penalty -1)") == "short-answers-win-length-penalty-1"
    assert link_query.slug("Count the r's in strawberry") == "count-the-r-s-in-strawberry"


def test_token_ids_parse_cap_refuse_and_round_trip():
    ids = Param("tokens", "ids", (), max_items=3)
    assert link_query.parse_value(ids, "12, 345,6") == ([12, 345, 6], None)
    assert link_query.parse_value(ids, "") == ([], None)
    value, note = link_query.parse_value(ids, "1,2,3,4")
    assert value == [1, 2, 3] and note == "tokens: only the first 3 token ids were used"
    for bad in ("1,x", "-1", "²", "1.5", "9999999999"):
        value, note = link_query.parse_value(ids, bad)
        assert value is None and "is not a list of token ids" in note, bad
    assert link_query.encode_value(ids, [12, 345]) == "12,345" and link_query.encode_value(ids, ()) == ""
